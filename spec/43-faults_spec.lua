-- The fault matrix: client:create_task against the real sandbox (sandbox/laaffic-sandbox)
-- while the network or the server misbehaves. Every fault must give its documented error
-- kind and never a duplicate task: after each one the sandbox's /_sandbox/tasks holds at
-- most one task of that taskName, and a re-send with the same taskName either creates the
-- one task (nothing had been created) or is answered already_exists (the lost attempt had
-- created it) - never a second task.
--
--   wire faults (sandbox fault modes), over HTTP/1.1 and over HTTP/2 on TLS:
--     reset (RST mid-body), short_body (headers then close; a Content-Length larger than
--     the body sent), cut_json (honest length, JSON cut), slow_headers and slow_body
--     (slow-loris answers), redirect (3xx to a second listener, which must get nothing)
--   TLS faults: a front nginx on 127.0.0.1 with certificates made by openssl at test time
--     (other.example only; expired), proxying to the sandbox, so anything that got
--     through would be seen there; the same front with a good certificate as the control
--   DNS: a name under .invalid
--   the push receiver: a push whose connection ends mid-body never reaches on_record
--
-- Runs under Lua 5.4 and LuaJIT. python3 is the raw test peer (listener, raw client).
local laaffic = require("laaffic")
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")
local Nginx = dofile(H.root .. "/spec/nginx.lua")
local sh, q, read = SB.sh, SB.q, SB.read

local seq = 0
local function task(extra)
    seq = seq + 1
    local t = {
        taskName = ("spec43-%d-%d"):format(os.time(), seq), agentId = 110,
        numberInfoList = { { calleeNumber = "919777654321", text1 = "David", text2 = "5000" } },
    }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
end

local function rows(n)
    local list = {}
    for i = 1, n do
        list[i] = { calleeNumber = ("9197%08d"):format(i), text1 = "David", text2 = tostring(i) }
    end
    return list
end

local function contains(list, v)
    for _, x in ipairs(list) do
        if x == v then return true end
    end
    return false
end

-- the libcurl error number in a transport message ("... (curl 56: ...)")
local function curl_code(msg)
    return tonumber(tostring(msg):match("%(curl (%d+):"))
end

local TRANSPORTS = {
    { name = "HTTP/1.1", base = "LAAFFIC_SANDBOX_HTTP", http2 = false, version = 1.1 },
    { name = "HTTP/2 over TLS", base = "LAAFFIC_SANDBOX_HTTPS", http2 = true, version = 2 },
}

describe("fault matrix: client:create_task against the sandbox", function()
    local sb, env, events
    local clients = {}      -- closed after each test: an idle HTTP/2 connection holds up nginx's quit

    local function client(o)
        local opts = {
            api_key = env.LAAFFIC_SANDBOX_KEY, api_secret = env.LAAFFIC_SANDBOX_SECRET,
            app_id = env.LAAFFIC_SANDBOX_APP_ID, base_url = env.LAAFFIC_SANDBOX_HTTPS,
            cafile = env.LAAFFIC_SANDBOX_CA, backoff = 0, timeout = 10, retries = 3,
            logger = function(ev)
                if ev.event ~= "request" then events[#events + 1] = ev end
            end,
        }
        for k, v in pairs(o or {}) do opts[k] = v end
        local c = laaffic.new(opts)
        clients[#clients + 1] = c
        return c
    end

    -- No duplicate, whatever happened: the sandbox has `created` (0 or 1) tasks of this
    -- name; a re-send on the same client (which remembers an ambiguous attempt) gives
    -- already_exists naming the lost attempt when one exists, else creates the one task;
    -- and one more re-send is already_exists. Returns the task's record.
    local function assert_no_duplicate(c, t, created)
        local _, named = sb:tasks(t.taskName)
        assert.are.equal(created and 1 or 0, named, "tasks named " .. t.taskName .. " after the fault")
        local again, err = c:create_task(t)
        if created then
            assert.is_nil(again, "a second task was created")
            assert.are.equal("already_exists", err.kind)
            assert.truthy(err.message:find("earlier attempt", 1, true), err.message)
        else
            assert.is_truthy(again, tostring(err))
        end
        local third, err3 = c:create_task(t)
        assert.is_nil(third)
        assert.are.equal("already_exists", err3.kind)
        local tasks
        tasks, named = sb:tasks(t.taskName)
        assert.are.equal(1, named, "exactly one task named " .. t.taskName)
        for _, rec in ipairs(tasks) do
            if rec.taskName == t.taskName then return rec end
        end
    end

    lazy_setup(function()
        sb = SB.Sandbox.start()
        env = sb.env
    end)
    lazy_teardown(function()
        if sb then
            local pid = sb.pid
            assert.are.equal(0, sb:stop())
            assert.is_false(SB.alive(pid), "the sandbox's nginx is still running")
        end
    end)
    before_each(function()
        events = {}
        sb:control("/_sandbox/reset", "{}")
    end)
    after_each(function()
        for _, c in ipairs(clients) do c:close() end
        clients = {}
    end)

    -- Each case: the fault armed for one request, the error kind create_task must give,
    -- the transport's kind and libcurl codes (when the transport failed) or the HTTP
    -- status (when an answer came), and whether the sandbox created the task.
    local CASES = {
        {
            name = "a reset mid-request (HTTP/1.1: a TCP RST after 64 body bytes; HTTP/2: RST_STREAM)",
            fault = { mode = "reset", bytes = 64 }, created = false,
            kind = "ambiguous", transport = "connection",
            -- 56 recv / 55 send failure over HTTP/1.1; over HTTP/2 the stream is reset
            curl = { [1.1] = { 55, 56 }, [2] = { 16, 92 } },
            -- a real RST: a FIN would be curl 52 "Empty reply from server"
            text = { [1.1] = "reset by peer" },
        },
        {
            name = "the headers, then the connection closed (no body)",
            fault = { mode = "short_body", bytes = 0 }, created = true,
            kind = "ambiguous", transport = "connection",
            curl = { [1.1] = { 18 }, [2] = { 16, 18, 92 } },
        },
        {
            name = "a Content-Length larger than the body sent, then closed",
            fault = { mode = "short_body", bytes = 20 }, created = true,
            kind = "ambiguous", transport = "connection",
            curl = { [1.1] = { 18 }, [2] = { 16, 18, 92 } },
        },
        {
            name = "a JSON answer cut short, its Content-Length honest",
            fault = { mode = "cut_json" }, created = true,
            kind = "ambiguous", http_status = 200,
        },
        {
            name = "a slow-loris answer: status line and headers a byte every 300 ms",
            fault = { mode = "slow_headers", ms = 300 }, created = true, timeout = 0.8,
            kind = "ambiguous", transport = "timeout", curl = { [1.1] = { 28 }, [2] = { 28 } },
        },
        {
            name = "a slow-loris answer: the body a byte every 300 ms",
            fault = { mode = "slow_body", ms = 300 }, created = true, timeout = 0.8,
            kind = "ambiguous", transport = "timeout", curl = { [1.1] = { 28 }, [2] = { 28 } },
        },
    }

    for _, tr in ipairs(TRANSPORTS) do
        describe("over " .. tr.name .. ":", function()
            for _, case in ipairs(CASES) do
                it(case.name .. " -> " .. case.kind .. ", not retried, no duplicate", function()
                    sb:fault(case.fault)
                    local c = client({ base_url = env[tr.base], http2 = tr.http2,
                                       timeout = case.timeout or 10 })
                    local t = task()
                    local t0 = core.now()
                    local key_id, err = c:create_task(t)
                    local took = core.now() - t0
                    assert.is_nil(key_id)
                    assert.are.equal(case.kind, err.kind, tostring(err))
                    assert.are.equal(1, #events, "retried after the request went out")
                    local ev = events[1]
                    if case.transport then
                        assert.are.same({ "error", case.transport, true }, { ev.event, ev.kind, ev.sent })
                        local code = curl_code(ev.message)
                        assert.truthy(contains(case.curl[tr.version], code),
                                      "unexpected libcurl error: " .. tostring(ev.message))
                        local text = case.text and case.text[tr.version]
                        if text then
                            assert.truthy(ev.message:find(text, 1, true), ev.message)
                        end
                        assert.truthy(err.message:find("may exist", 1, true), err.message)
                    else
                        assert.are.equal("response", ev.event)
                        assert.are.equal(case.http_status, err.http_status)
                        if case.kind == "ambiguous" then
                            assert.are.equal("http", err.cause)
                            assert.truthy(err.message:find("may exist", 1, true), err.message)
                        end
                    end
                    if case.transport then
                        assert.are.equal(case.transport, err.cause)
                    end
                    if case.timeout then
                        -- the deadline holds however slowly the bytes trickle
                        assert.is_true(took >= case.timeout - 0.05 and took < case.timeout + 1.5,
                                       "took " .. took)
                    end
                    assert.are.equal(1, sb:requests().faults[case.fault.mode], "the fault did not fire")
                    local rec = assert_no_duplicate(c, t, case.created)
                    assert.are.equal(tr.version, rec.http_version)
                end)
            end
        end)
    end

    it("a reset after 1000 bytes of a 1.3 MB body cuts the upload: ambiguous, one task at most", function()
        sb:fault({ mode = "reset", bytes = 1000 })
        local c = client({ base_url = env.LAAFFIC_SANDBOX_HTTP })
        local t = task({ numberInfoList = rows(20000) })
        local key_id, err = c:create_task(t)
        assert.is_nil(key_id)
        assert.are.equal("ambiguous", err.kind)
        assert.are.equal(1, #events)
        assert.are.same({ "connection", true }, { events[1].kind, events[1].sent })
        assert.truthy(contains({ 55, 56 }, curl_code(events[1].message)), events[1].message)
        -- the server read 1000 bytes of the body, no more, before it reset the connection
        local log = read(sb.dir .. "/logs/error.log") or ""
        assert.truthy(log:find("reset after 1000 body bytes", 1, true))
        assert.are.equal(20000, assert_no_duplicate(c, t, false).rows)
    end)

    it("a 3xx redirect to another host is not followed: protocol with the 3xx, the other host gets nothing",
       function()
        local other = SB.listener(sb.tmp, 120)
        local ok, failure = pcall(function()
            for _, tr in ipairs(TRANSPORTS) do
                for _, code in ipairs({ 301, 302, 303, 307, 308 }) do
                    events = {}
                    sb:fault({ mode = "redirect", http_status = code,
                               location = "http://127.0.0.1:" .. other.port .. SB.API })
                    local c = client({ base_url = env[tr.base], http2 = tr.http2 })
                    local t = task()
                    local key_id, err = c:create_task(t)
                    assert.is_nil(key_id, "followed the " .. code .. " redirect")
                    assert.are.same({ "protocol", code }, { err.kind, err.http_status })
                    assert.truthy(err.message:find("HTTP " .. code, 1, true), err.message)
                    assert.are.equal(1, #events)
                    assert.are.equal(0, (other.connections()), "the other host got a connection")
                    assert_no_duplicate(c, t, false)
                end
            end
            -- the other host was listening all along: a request does reach it
            local out = sh("curl -s --max-time 5 -d x http://127.0.0.1:" .. other.port .. "/probe")
            assert.truthy(out:find("999999", 1, true))
            local n, lines = other.connections()
            assert.are.equal(1, n)
            assert.truthy(lines[1]:find("POST /probe", 1, true))
        end)
        other.stop()
        assert(ok, failure)
    end)

    it("a non-HTTP answer (garbage\\r\\n\\r\\n) after the whole body: ambiguous, not retried, " ..
       "one task; the CLI says it may exist (exit 6), never \"safe to run again\"", function()
        sb:fault({ mode = "not_http" })
        local c = client({ base_url = env.LAAFFIC_SANDBOX_HTTP })
        local t = task()
        local key_id, err = c:create_task(t)
        assert.is_nil(key_id)
        assert.are.equal("ambiguous", err.kind, tostring(err))
        assert.are.equal(1, #events, "retried after the body went out")
        -- libcurl's "Received HTTP/0.9 when not allowed" (curl 1) or a weird reply (curl 8)
        assert.are.same({ "error", true }, { events[1].event, events[1].sent })
        assert.truthy(contains({ 1, 8 }, curl_code(events[1].message)), events[1].message)
        assert.are.equal(1, sb:requests().faults.not_http)
        assert_no_duplicate(c, t, true)

        -- the command-line tool, on the same fault
        local dir = sb.tmp .. "/cli43"
        sh("mkdir -p " .. q(dir))
        local name = task().taskName
        SB.write(dir .. "/task.json", cjson.encode({ taskName = name, agentId = 110,
            numberInfoList = { { calleeNumber = "919777654321", text1 = "David" } } }))
        SB.write(dir .. "/env.sh", table.concat({
            "export LAAFFIC_API_KEY=" .. q(env.LAAFFIC_SANDBOX_KEY),
            "export LAAFFIC_API_SECRET=" .. q(env.LAAFFIC_SANDBOX_SECRET),
            "export LAAFFIC_APP_ID=" .. q(env.LAAFFIC_SANDBOX_APP_ID),
            "export LAAFFIC_BASE_URL=" .. q(env.LAAFFIC_SANDBOX_HTTP), "" }, "\n"))
        local lua = type(rawget(_G, "jit")) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
        sb:fault({ mode = "not_http" })
        local out, rc = SB.sh("cd " .. q(H.root) .. " && unset LAAFFIC_CONFIG LAAFFIC_CAFILE && " ..
                              "export HOME=" .. q(dir) .. " && . " .. q(dir .. "/env.sh") .. " && " ..
                              lua .. " bin/laaffic send --task " .. q(dir .. "/task.json") .. " 2>&1")
        assert.are.equal(6, rc, out)
        assert.is_nil(out:find("safe to run", 1, true), out)
        local _, named = sb:tasks(name)
        assert.are.equal(1, named)
    end)

    it("a URL libcurl refuses (ftp://): url, nothing sent; the same code after a request is connection",
       function()
        local h = core.http({})
        local res, msg, kind, sent = h:request("POST", "ftp://127.0.0.1:1/x", {}, "{}")
        assert.is_nil(res)
        assert.are.same({ "url", false }, { kind, sent }, msg)
        assert.are.equal(1, curl_code(msg))      -- CURLE_UNSUPPORTED_PROTOCOL, as not_http gives
        h:close()
    end)

    it("TLS spoken to a plain-HTTP port (the handshake fails): tls, nothing sent, retried", function()
        local c = client({ base_url = env.LAAFFIC_SANDBOX_HTTP:gsub("^http:", "https:"), retries = 2 })
        local t = task()
        local key_id, err = c:create_task(t)
        assert.is_nil(key_id)
        assert.are.same({ "transport", "tls" }, { err.kind, err.cause })
        assert.are.equal(3, #events)
        for _, ev in ipairs(events) do
            assert.are.same({ "error", "tls", false }, { ev.event, ev.kind, ev.sent })
            assert.are.equal(35, curl_code(ev.message), ev.message)   -- SSL_CONNECT_ERROR
        end
        assert.are.equal(0, sb:requests().total)
        assert_no_duplicate(client({ base_url = env.LAAFFIC_SANDBOX_HTTP }), t, false)
    end)

    it("a name that does not resolve (.invalid): transport, nothing sent, retried; the message says so",
       function()
        local port = env.LAAFFIC_SANDBOX_HTTP:match(":(%d+)$")
        local host = ("laaffic-spec43-%d.invalid"):format(os.time())
        local c = client({ base_url = "http://" .. host .. ":" .. port, retries = 2 })
        local t = task()
        local key_id, err = c:create_task(t)
        assert.is_nil(key_id)
        assert.are.equal("transport", err.kind)
        assert.are.equal(3, #events)            -- retried: nothing can have been sent
        for _, ev in ipairs(events) do
            assert.are.same({ "error", "dns", false }, { ev.event, ev.kind, ev.sent })
        end
        assert.truthy(err.message:find("after 3 attempt(s)", 1, true), err.message)
        assert.truthy(err.message:lower():find("resolve", 1, true), err.message)
        assert.truthy(err.message:find(host, 1, true), err.message)
        assert.are.equal(0, sb:requests().total)
        -- nothing was created: the same taskName through a reachable URL creates the one task
        assert_no_duplicate(client({ base_url = env.LAAFFIC_SANDBOX_HTTP }), t, false)
    end)

    describe("TLS certificate faults (a TLS front on 127.0.0.1 proxying to the sandbox)", function()
        local certs, front
        local PORTS = { good = 1, wrong_host = 2, expired = 3 }

        local function port(name)
            return front.ports[PORTS[name]]
        end
        -- the requests the front logged for that certificate (its readiness probe, plain
        -- HTTP to the TLS port, is a GET)
        local function access_lines(name)
            local n = 0
            for line in (read(front.dir .. "/logs/" .. name .. ".access") or ""):gmatch("[^\n]+") do
                if line:find('"POST ', 1, true) then n = n + 1 end
            end
            return n
        end
        local function tls_client(name, o)
            local opts = { base_url = "https://127.0.0.1:" .. port(name), cafile = certs.ca }
            for k, v in pairs(o or {}) do opts[k] = v end
            return client(opts)
        end

        lazy_setup(function()
            certs = SB.tls_certs(sb.tmp)
            local upstream = env.LAAFFIC_SANDBOX_HTTP:match("^http://(.*)$")
            local servers = {}
            for name, i in pairs(PORTS) do
                local c = certs[name]
                servers[#servers + 1] = table.concat({
                    "server {",
                    "  listen 127.0.0.1:$PORT" .. i .. " ssl http2;",
                    "  ssl_certificate " .. c.crt .. ";",
                    "  ssl_certificate_key " .. c.key .. ";",
                    "  access_log logs/" .. name .. ".access;",
                    "  location / { proxy_pass http://" .. upstream .. "; }",
                    "}",
                }, "\n")
            end
            front = Nginx.start({ ports = 3, http = table.concat(servers, "\n") })
        end)
        lazy_teardown(function()
            if front then assert.is_true(front:stop()) end
        end)

        it("the certificates are what the cases need (openssl verify)", function()
            local _, rc = sh("openssl verify -CAfile " .. q(certs.ca) .. " " .. q(certs.good.crt) ..
                             " " .. q(certs.wrong_host.crt))
            assert.are.equal(0, rc)
            local out = SB.sh("openssl verify -CAfile " .. q(certs.ca) .. " " .. q(certs.expired.crt) .. " 2>&1")
            assert.truthy(out:find("certificate has expired", 1, true), out)
        end)

        it("control: the front with a good certificate passes the task to the sandbox", function()
            local key_id, info = tls_client("good"):create_task(task())
            assert.is_truthy(key_id, tostring(info))
            assert.are.equal(1, sb:requests().total)
            assert.are.equal(1, access_lines("good"))
        end)

        it("one libcurl multi never lends a connection across TLS settings", function()
            -- a multi's handles share its connection cache: an insecure handle's connection
            -- must not serve a handle that verifies (here against another CA, which must fail)
            local m = core.multi()
            local url = "https://127.0.0.1:" .. port("good") .. "/probe"
            local function run(h)
                m:add(h, "GET", url, {}, nil)
                for _ = 1, 20 do
                    local done = m:wait(1)[1]
                    if done then return done end
                end
                error("the multi did not finish")
            end
            local first = run(core.http({ insecure = true, http2 = false }))
            assert.is_table(first.response, tostring(first.error))
            -- control: the cache is shared (a second insecure handle reuses the connection)
            local again = run(core.http({ insecure = true, http2 = false }))
            assert.are.equal(0, again.response.connects)
            local strict = run(core.http({ cafile = env.LAAFFIC_SANDBOX_CA, http2 = false }))
            assert.is_nil(strict.response, "the verifying handle got an answer")
            assert.are.same({ "certificate", false }, { strict.kind, strict.sent }, strict.error)
            -- and one that verifies against the right CA does not reuse the unverified one
            local good = run(core.http({ cafile = certs.ca, http2 = false }))
            assert.are.equal(1, good.response.connects)
            m:close()
        end)

        local TLS_CASES = {
            { name = "wrong_host", title = "a certificate for other.example only",
              text = "subject name" },
            { name = "expired", title = "an expired certificate", text = "expired" },
        }
        for _, case in ipairs(TLS_CASES) do
            it(case.title .. ": transport, nothing sent, not retried, no task", function()
                local before = access_lines(case.name)
                local c = tls_client(case.name, { retries = 2 })
                local t = task()
                local key_id, err = c:create_task(t)
                assert.is_nil(key_id)
                assert.are.same({ "transport", "certificate" }, { err.kind, err.cause })
                -- another attempt cannot change the certificate: not retried
                assert.are.equal(1, #events)
                assert.are.same({ "error", "certificate", false },
                                { events[1].event, events[1].kind, events[1].sent })
                assert.are.equal(60, curl_code(err.message), err.message)  -- PEER_FAILED_VERIFICATION
                assert.truthy(err.message:find(case.text, 1, true), err.message)
                assert.truthy(err.message:find("certificate is not trusted", 1, true), err.message)
                -- nothing got through the handshake: no request at the front, none proxied
                assert.are.equal(before, access_lines(case.name))
                assert.are.equal(0, sb:requests().total)
                -- and no task: the same name through the good front creates the one task
                assert_no_duplicate(tls_client("good"), t, false)
            end)
        end
    end)

    describe("the new sandbox fault modes on the wire (a raw client)", function()
        local function raw_post(body)
            return table.concat({
                "POST " .. SB.API .. " HTTP/1.1", "Host: 127.0.0.1", "Content-Type: " .. SB.CT,
                "Content-Length: " .. #body, "Connection: close", "", body,
            }, "\r\n")
        end
        local port

        before_each(function()
            port = tonumber(env.LAAFFIC_SANDBOX_HTTP:match(":(%d+)$"))
        end)

        it("reset answers a TCP RST; without the fault the same request gets an answer", function()
            local body = ("x"):rep(4000)
            sb:fault({ mode = "reset", bytes = 100 })
            local res = SB.raw_exchange(sb.tmp, port, raw_post(body), 3)
            assert.are.equal("ConnectionResetError", res.error)
            assert.are.equal("", res.data)
            res = SB.raw_exchange(sb.tmp, port, raw_post(body), 3)
            assert.truthy(res.data:find("^HTTP/1.1 200"), res.data)
        end)

        it("slow_headers trickles the status line a byte at a time", function()
            sb:fault({ mode = "slow_headers", ms = 200 })
            local res = SB.raw_exchange(sb.tmp, port, raw_post("{}"), 1.1)
            assert.is_nil(res.error)                    -- still open at the deadline
            assert.truthy(#res.data >= 3 and #res.data <= 8, "got " .. #res.data .. " bytes")
            assert.are.equal(("HTTP/1.1 200 OK"):sub(1, #res.data), res.data)
            for _, chunk in ipairs(res.chunks) do
                assert.are.equal(1, chunk[2])
            end
        end)

        it("arming checks the new parameters and shows them", function()
            local function arm(t)
                return (sb:control("/_sandbox/fault", cjson.encode(t)))
            end
            assert.are.equal(400, arm({ mode = "redirect" }))            -- no location
            assert.are.equal(400, arm({ mode = "redirect", location = "ftp://x/" }))
            assert.are.equal(400, arm({ mode = "redirect", location = "http://x/", http_status = 200 }))
            assert.are.equal(400, arm({ mode = "reset", location = "http://x/" }))
            assert.are.equal(400, arm({ mode = "short_body", bytes = -1 }))
            assert.are.equal(400, arm({ mode = "short_body", bytes = 1.5 }))
            local shown = sb:fault({ mode = "redirect", location = "http://127.0.0.1:9/x", http_status = 308 })
            assert.are.same({ "redirect", "http://127.0.0.1:9/x", 308 },
                            { shown.mode, shown.location, shown.http_status })
            shown = sb:fault({ mode = "short_body", bytes = 7, count = 2 })
            assert.are.same({ "short_body", 7, 2 }, { shown.mode, shown.bytes, shown.count })
            assert.is_nil(shown.location)                                 -- not carried over
            sb:fault({ mode = "none" })
        end)
    end)
end)

describe("the push receiver, when a push's connection ends mid-body", function()
    local srv

    setup(function()
        srv = Nginx.start({ log_level = "info", http = [[
            lua_shared_dict spec43_push 1m;
            init_by_lua_block {
                local push = require("laaffic.push")
                local seen = ngx.shared.spec43_push
                package.loaded["spec43.push"] = push.handler{ open = true, on_record = function(rec)
                    seen:incr("calls", 1, 0)
                    seen:set("last", rec.voiceId)
                end }
            }
            server {
                listen 127.0.0.1:$PORT;
                location = /push { content_by_lua_block { require("spec43.push")() } }
                location = /calls {
                    content_by_lua_block {
                        ngx.say(ngx.shared.spec43_push:get("calls") or 0, " ",
                                ngx.shared.spec43_push:get("last") or "-")
                    }
                }
            }
        ]] })
    end)
    teardown(function()
        if srv then assert.is_true(srv:stop()) end
    end)

    local function post(body, length)
        return table.concat({
            "POST /push HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json;charset=UTF-8",
            "Content-Length: " .. (length or #body), "Connection: close", "", body,
        }, "\r\n")
    end
    local function calls()
        return (sh("curl -s --max-time 5 " .. q(srv:url("/calls"))):gsub("%s+$", ""))
    end

    it("never calls on_record for the part that arrived (the body was cut, then the client left)", function()
        local dir = srv.dir
        -- what arrives is valid JSON on its own: only the missing bytes tell it is cut
        local part = '[{"voiceId":"cut-1","type":1,"callee":"919777654321","code":"0"}]'
        local full = part .. (" "):rep(64)
        local res = SB.raw_exchange(dir, srv.port, post(part, #full), 3, true)
        assert.is_falsy(res.data:find("^HTTP/1.1 200"), res.data)   -- no success answer
        assert.are.equal("0 -", calls())
        assert.truthy(srv:log():find("client prematurely closed connection", 1, true))
        -- control: the whole body is handled, once
        res = SB.raw_exchange(dir, srv.port, post(full), 3)
        assert.truthy(res.data:find("^HTTP/1.1 200"), res.data)
        assert.are.equal("1 cut-1", calls())
    end)
end)
