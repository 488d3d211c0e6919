-- client:create_task against the local sandbox: the libcurl transport over real HTTP and
-- HTTPS on 127.0.0.1, every answer mapped to an error, TLS verification, timeouts, the
-- retry policy (retries counted; never after the body may have gone out), and a
-- 200,000-number task received intact.
local laaffic = require("laaffic")
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")
local sh, q, write, md5_file = SB.sh, SB.q, SB.write, SB.md5_file

local seq = 0
local function task(extra)
    seq = seq + 1
    local t = {
        taskName = ("spec41-%d-%d"):format(os.time(), seq), agentId = 110,
        numberInfoList = { { calleeNumber = "919777654321", text1 = "David", text2 = "5000" } },
        recallFlow = laaffic.recall.by_intent{ intents = { "99999" }, interval = 1, rounds = 2,
                                               agent_id = 110 },
    }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
end

describe("client:create_task against the sandbox", function()
    local sb, env, events, all_events

    local function client(o)
        local opts = {
            api_key = env.LAAFFIC_SANDBOX_KEY, api_secret = env.LAAFFIC_SANDBOX_SECRET,
            app_id = env.LAAFFIC_SANDBOX_APP_ID, base_url = env.LAAFFIC_SANDBOX_HTTPS,
            cafile = env.LAAFFIC_SANDBOX_CA, backoff = 0, timeout = 10,
            logger = function(ev)
                all_events[#all_events + 1] = ev
                if ev.event ~= "request" then events[#events + 1] = ev end
            end,
        }
        for k, v in pairs(o or {}) do opts[k] = v end
        return laaffic.new(opts)
    end

    -- a transport that sends a different body than the SDK encoded: to reach the server's
    -- own checks past the client-side validation
    local function with_body(c, body)
        local inner = c.transport
        c.transport = function(req)
            req.body = body
            return inner(req)
        end
        return c
    end

    -- A TCP listener on 127.0.0.1 that accepts connections and never says a word (for 8 s):
    -- an HTTPS client's handshake waits on it. Returns its port.
    local function silent_listener()
        local script, portfile = sb:file("silent.py"), sb:file("silent.port")
        write(script, table.concat({
            "import socket, sys, time, os",
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(8); s.settimeout(0.5)",
            "open(sys.argv[1] + '.tmp', 'w').write(str(s.getsockname()[1]))",
            "os.rename(sys.argv[1] + '.tmp', sys.argv[1])",
            "conns, end = [], time.time() + 8",
            "while time.time() < end:",
            "    try: conns.append(s.accept())",
            "    except Exception: pass",
        }, "\n") .. "\n")
        sh("python3 " .. q(script) .. " " .. q(portfile) .. " >/dev/null 2>&1 &")
        for _ = 1, 100 do
            local port = SB.read(portfile)
            if port then return port end
            core.sleep(0.05)
        end
        error("the silent listener did not start")
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
        events, all_events = {}, {}
        sb:control("/_sandbox/reset", "{}")
    end)

    it("creates a task over HTTPS: an integer keyId, recorded by the sandbox", function()
        local c = client()
        local t = task()
        local key_id, info = c:create_task(t)
        assert.is_truthy(key_id, tostring(info))
        assert.are.equal("number", type(key_id))
        assert.are.equal(key_id, math.floor(key_id))
        assert.are.equal(1, info.attempts)
        assert.are.equal(200, info.http_status)
        local rec = sb:task_record(key_id)
        assert.are.equal(t.taskName, rec.taskName)
        assert.are.equal(1, rec.rows)
        assert.are.equal(info.bytes, rec.bytes)
        c:close()
    end)

    it("reuses one TLS connection across calls, over HTTP/2", function()
        local c = client()
        for _ = 1, 5 do
            assert.is_truthy(c:create_task(task()))
        end
        local connects = {}
        for _, ev in ipairs(events) do
            connects[#connects + 1] = ev.connects
            assert.are.equal("2", ev.http_version)
        end
        assert.are.same({ 1, 0, 0, 0, 0 }, connects)
        c:close()
    end)

    it("opens a new connection per call with reuse = false", function()
        local c = client({ reuse = false })
        for _ = 1, 3 do
            assert.is_truthy(c:create_task(task()))
        end
        for _, ev in ipairs(events) do
            assert.are.equal(1, ev.connects)
        end
    end)

    it("speaks plain HTTP/1.1 too, and the path without /v3", function()
        local c = client({ base_url = env.LAAFFIC_SANDBOX_HTTP, path = "/voice/group/call/send/agent" })
        local key_id, info = c:create_task(task())
        assert.is_truthy(key_id, tostring(info))
        assert.are.equal("1.1", events[1].http_version)
        assert.are.equal("/voice/group/call/send/agent", sb:task_record(key_id).path)
    end)

    it("sends its User-Agent: laaffic/<version> by default, or the user_agent option", function()
        local k1 = assert(client():create_task(task()))
        assert.are.equal("laaffic/" .. laaffic._VERSION, sb:task_record(k1).user_agent)
        local k2 = assert(client({ user_agent = "acme-dialer/2" }):create_task(task()))
        assert.are.equal("acme-dialer/2", sb:task_record(k2).user_agent)
    end)

    it("goes through the proxy option (the sandbox's nginx serves the proxied request)", function()
        -- the target host does not resolve: only a proxy can deliver this request
        local port = env.LAAFFIC_SANDBOX_HTTP:match(":(%d+)$")
        local c = client({ base_url = "http://only-via-proxy.invalid:" .. port,
                           proxy = env.LAAFFIC_SANDBOX_HTTP, retries = 0 })
        local key_id, err = c:create_task(task())
        assert.is_truthy(key_id, tostring(err))
        -- and without the proxy the name does not resolve: kind transport, nothing sent
        local c2 = client({ base_url = "http://only-via-proxy.invalid:" .. port, retries = 0 })
        local k2, err2 = c2:create_task(task())
        assert.is_nil(k2)
        assert.are.equal("transport", err2.kind)
        assert.are.equal("dns", events[#events].kind)
    end)

    describe("maps every answer to an error", function()
        it("-1 for a wrong secret", function()
            local c = client({ api_secret = "not-the-secret" })
            local key_id, err = c:create_task(task())
            assert.is_nil(key_id)
            assert.are.same({ "status", -1, "auth_failed" }, { err.kind, err.code, err.name })
            assert.are.equal(200, err.http_status)
        end)

        it("-1 for an appId the account does not have", function()
            local key_id, err = client({ app_id = "NOPE1234" }):create_task(task())
            assert.is_nil(key_id)
            assert.are.equal(-1, err.code)
        end)

        it("-16 when the clock is off: re-signed with the server's Date, then created", function()
            local c = client({ clock = function() return os.time() - 3600 end })
            local key_id, info = c:create_task(task())
            assert.is_truthy(key_id, tostring(info))
            assert.are.equal(2, info.attempts)
            assert.are.equal(2, #events)
            -- the skew is remembered: the next task needs one attempt
            events = {}
            local k2, info2 = c:create_task(task())
            assert.is_truthy(k2, tostring(info2))
            assert.are.equal(1, info2.attempts)
        end)

        it("-16 with retries = 0 is an error named timestamp_expired", function()
            local c = client({ clock = function() return os.time() - 3600 end, retries = 0 })
            local key_id, err = c:create_task(task())
            assert.is_nil(key_id)
            assert.are.same({ "status", -16, "timestamp_expired" }, { err.kind, err.code, err.name })
        end)

        it("-18 for a body that is not JSON", function()
            local key_id, err = with_body(client(), "this is not json"):create_task(task())
            assert.is_nil(key_id)
            assert.are.same({ -18, "server_error" }, { err.code, err.name })
        end)

        it("-21 from the server's own field check, with its reason", function()
            local bad = assert(core.encode(task({ appId = env.LAAFFIC_SANDBOX_APP_ID })))
            bad = bad:gsub('"919777654321"', '"12345"')
            local key_id, err = with_body(client(), bad):create_task(task())
            assert.is_nil(key_id)
            assert.are.same({ "status", -21, "invalid_data" }, { err.kind, err.code, err.name })
            assert.truthy(err.reason:find("numberInfoList[1].calleeNumber", 1, true))
        end)

        it("-22 for a nodeList that does not match recallNum", function()
            local bad = assert(core.encode(task({ appId = env.LAAFFIC_SANDBOX_APP_ID })))
            bad = bad:gsub('"recallNum":2', '"recallNum":3')
            local key_id, err = with_body(client(), bad):create_task(task())
            assert.is_nil(key_id)
            assert.are.same({ -22, "invalid_parameter" }, { err.code, err.name })
        end)

        it("-41 for a name used before: kind already_exists", function()
            local c = client()
            local t = task()
            assert.is_truthy(c:create_task(t))
            local key_id, err = c:create_task(t)
            assert.is_nil(key_id)
            assert.are.same({ "already_exists", -41, "task_name_exists" }, { err.kind, err.code, err.name })
        end)

        it("an invalid task never reaches the server", function()
            local key_id, err = client():create_task(task({ agentId = 2147483648 }))
            assert.is_nil(key_id)
            assert.are.same({ "invalid", "agentId" }, { err.kind, err.field })
            assert.are.equal(0, #events)
        end)
    end)

    describe("TLS", function()
        it("fails verification without the sandbox's CA (no retry can help: kind transport)", function()
            local c = client({ cafile = "/dev/null", retries = 1 })
            local key_id, err = c:create_task(task())
            assert.is_nil(key_id)
            assert.are.same({ "transport", "certificate" }, { err.kind, err.cause })
            assert.are.equal(1, #events)       -- nothing was sent, but a retry cannot help
            assert.are.equal("certificate", events[1].kind)
            assert.is_false(events[1].sent)
            local _, tasks = sb:control("/_sandbox/tasks")
            assert.are.equal(0, #tasks)
        end)

        it("fails for a name the certificate does not carry", function()
            local port = env.LAAFFIC_SANDBOX_HTTPS:match(":(%d+)$")
            local c = client({ base_url = "https://wrong-host.test:" .. port, retries = 0,
                               resolve = { "wrong-host.test:" .. port .. ":127.0.0.1" } })
            local key_id, err = c:create_task(task())
            assert.is_nil(key_id)
            assert.are.equal("transport", err.kind)
            assert.are.equal("certificate", events[1].kind)
        end)

        it("insecure = true turns verification off (and only then passes without the CA)", function()
            local key_id = client({ cafile = "/dev/null", insecure = true }):create_task(task())
            assert.is_truthy(key_id)
        end)
    end)

    describe("retries and timeouts", function()
        it("counts retries to a closed port, then reports kind transport", function()
            -- a port that was free a moment ago and that nothing listens on
            local port = assert(sh("python3 -c 'import socket;s=socket.socket();" ..
                                   "s.bind((\"127.0.0.1\",0));print(s.getsockname()[1])'"))
            local c = client({ base_url = "http://127.0.0.1:" .. port:match("%d+"), retries = 3 })
            local key_id, err = c:create_task(task())
            assert.is_nil(key_id)
            assert.are.equal("transport", err.kind)
            assert.are.equal(4, #events)
            for i, ev in ipairs(events) do
                assert.are.same({ "error", "connect", false, i }, { ev.event, ev.kind, ev.sent, ev.attempt })
            end
        end)

        it("backs off between attempts (the sleep function sees doubling delays)", function()
            local slept = {}
            local c = client({ base_url = "http://127.0.0.1:1", retries = 3, backoff = 0.25,
                               sleep = function(s) slept[#slept + 1] = s end })
            assert.is_nil((c:create_task(task())))
            assert.are.same({ 0.25, 0.5, 1 }, slept)
        end)

        it("a server that accepts but never answers the TLS handshake: a timeout with nothing sent, retried", function()
            -- a TCP listener on 127.0.0.1 that accepts and then says nothing
            local port = silent_listener()
            local c = client({ base_url = "https://localhost:" .. port, timeout = 0.5, retries = 1 })
            local t0 = core.now()
            local key_id, err = c:create_task(task())
            assert.is_nil(key_id)
            assert.are.equal("transport", err.kind)
            assert.are.equal(2, #events)
            assert.are.same({ "timeout", false }, { events[1].kind, events[1].sent })
            assert.is_true(core.now() - t0 < 4)
        end)

        it("connect_timeout bounds the connection phase (TLS handshake included)", function()
            local port = silent_listener()
            local c = client({ base_url = "https://localhost:" .. port, connect_timeout = 0.3,
                               timeout = 30, retries = 0 })
            local t0 = core.now()
            local key_id, err = c:create_task(task())
            local took = core.now() - t0
            assert.is_nil(key_id)
            assert.are.equal("transport", err.kind)
            assert.are.same({ "timeout", false }, { events[1].kind, events[1].sent })
            assert.is_true(took >= 0.25 and took < 3, "took " .. took)
        end)

        it("a server that reads the body and never answers: ambiguous, not retried", function()
            sb:fault({ mode = "hang", count = 1, ms = 5000 })
            local c = client({ timeout = 1, retries = 3 })
            local t = task()
            local key_id, err = c:create_task(t)
            assert.is_nil(key_id)
            assert.are.equal("ambiguous", err.kind)
            assert.truthy(tostring(err):find("may exist", 1, true))
            assert.are.equal(1, #events)
            assert.are.same({ "timeout", true }, { events[1].kind, events[1].sent })
        end)

        it("a dropped connection after the body: ambiguous, not retried", function()
            sb:fault({ mode = "drop", count = 1 })
            local key_id, err = client({ retries = 3 }):create_task(task())
            assert.is_nil(key_id)
            assert.are.equal("ambiguous", err.kind)
            assert.are.equal(1, #events)
        end)

        it("after an ambiguous drop that did create the task, a re-send says already_exists", function()
            sb:fault({ mode = "drop_after_create", count = 1 })
            local c = client()
            local t = task()
            local key_id, err = c:create_task(t)
            assert.is_nil(key_id)
            assert.are.equal("ambiguous", err.kind)
            local again, err2 = c:create_task(t)
            assert.is_nil(again)
            assert.are.equal("already_exists", err2.kind)
            assert.truthy(tostring(err2):find("earlier attempt", 1, true))
            local _, tasks = sb:control("/_sandbox/tasks")
            assert.are.equal(1, #tasks)     -- exactly one task, never a duplicate
        end)

        it("-20 after an ambiguous drop is a status error that may exist, never \"it was created\"", function()
            sb:fault({ mode = "drop", count = 1 })
            local c = client()
            local t = task()
            local _, err = c:create_task(t)
            assert.are.equal("ambiguous", err.kind)
            sb:fault({ mode = "status", status = -20, count = 1 })
            local again, err2 = c:create_task(t)
            assert.is_nil(again)
            assert.are.same({ "status", -20, "data_exists" }, { err2.kind, err2.code, err2.name })
            local text = tostring(err2)
            assert.falsy(text:find("earlier attempt", 1, true), text)
            assert.truthy(text:find("may already exist", 1, true), text)
            assert.truthy(text:find(t.taskName, 1, true), text)
            -- the earlier outcome is still unknown: a -41 later is that attempt's task
            local _, tasks = sb:control("/_sandbox/tasks")
            assert.are.equal(0, #tasks)
        end)

        it("HTTP 500: ambiguous (the task may exist), quoting a bounded part of the answer, not retried", function()
            sb:fault({ mode = "status500", count = 1 })
            local key_id, err = client({ retries = 3 }):create_task(task())
            assert.is_nil(key_id)
            assert.are.same({ "ambiguous", 500, "http" }, { err.kind, err.http_status, err.cause })
            assert.truthy(err.message:find("may exist", 1, true))
            assert.truthy(err.message:find("HTTP 500", 1, true))
            assert.is_true(#err.message < 400)
            assert.are.equal(1, #events)
        end)

        it("a non-JSON 200: ambiguous, quoting what came back", function()
            sb:fault({ mode = "garbage", count = 1 })
            local key_id, err = client():create_task(task())
            assert.is_nil(key_id)
            assert.are.equal("ambiguous", err.kind)
            assert.truthy(err.message:find("oops", 1, true))
        end)

        it("a delay within the deadline is just slower", function()
            sb:fault({ mode = "delay", count = 1, ms = 300 })
            local t0 = core.now()
            local key_id = client():create_task(task())
            assert.is_truthy(key_id)
            assert.is_true(core.now() - t0 >= 0.3)
        end)
    end)

    it("the logger sees method, URL, status and timing, never the secret or the Sign", function()
        local secret = env.LAAFFIC_SANDBOX_SECRET
        local c = client()
        local signs = {}
        local inner = c.transport
        c.transport = function(req)
            signs[#signs + 1] = req.headers.Sign
            return inner(req)
        end
        sb:fault({ mode = "drop", count = 1 })
        c:create_task(task())
        c:create_task(task({ agentId = 0 }))
        c:create_task(task())
        assert.is_true(#signs >= 2)
        local seen = {}
        local requests = 0
        for _, ev in ipairs(all_events) do
            if ev.event == "request" then requests = requests + 1 end
            assert.is_string(ev.method)
            assert.is_string(ev.url)
            if ev.event ~= "request" then assert.is_number(ev.elapsed) end
            for k, v in pairs(ev) do seen[#seen + 1] = tostring(k) .. "=" .. tostring(v) end
        end
        assert.are.equal(#signs, requests)     -- a "request" event before every attempt
        local all = table.concat(seen, "\n")
        assert.is_nil(all:find(secret, 1, true))
        for _, s in ipairs(signs) do
            assert.is_nil(all:find(s, 1, true))
            assert.is_nil(all:lower():find(s:lower(), 1, true))
        end
    end)

    it("a logger that raises does not break the send", function()
        local c = client({ logger = function() error("logger boom") end })
        assert.is_truthy(c:create_task(task()))
    end)

    it("sends a 200,000-number task that arrives intact (same md5) #slow", function()
        local rows = {}
        for i = 1, 200000 do
            rows[i] = { calleeNumber = ("9197%08d"):format(i), text1 = "David", text2 = tostring(i) }
        end
        local c = client({ timeout = 60 })
        local t = task({ numberInfoList = rows })
        local req = assert(c:build_task(t))
        local f = sb:file("big")
        write(f, tostring(req.body))
        local key_id, info = c:create_task(t)
        assert.is_truthy(key_id, tostring(info))
        local rec = sb:task_record(key_id)
        assert.are.equal(200000, rec.rows)
        assert.are.equal(#tostring(req.body), rec.bytes)
        assert.are.equal(md5_file(f), rec.md5)
    end)
end)

describe("laaffic.parse_http_date", function()
    it("reads the IMF-fixdate form", function()
        assert.are.equal(1630468800, laaffic.parse_http_date("Wed, 01 Sep 2021 04:00:00 GMT"))
        assert.are.equal(951782400, laaffic.parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
        assert.are.equal(0, laaffic.parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"))
    end)
    it("rejects anything else", function()
        for _, s in ipairs({ "", "yesterday", "Wed, 01 Foo 2021 04:00:00 GMT", 42 }) do
            assert.is_nil(laaffic.parse_http_date(s))
        end
    end)
end)

local _ = cjson and q

describe("every documented status maps to an error with its code and name", function()
    local status = require("laaffic.status")
    local function client_answering(body, http)
        return laaffic.new{
            api_key = "k", api_secret = "s", app_id = "2Xql9RBI", retries = 0,
            transport = function()
                return { status = http or 200, headers = {}, body = body }
            end,
        }
    end
    local codes = {}
    for code in pairs(status.codes) do
        if code ~= 0 then codes[#codes + 1] = code end
    end
    table.sort(codes)

    it("covers the 19 documented error codes (-67 and -68 both)", function()
        assert.are.equal(19, #codes)
    end)

    for _, code in ipairs(codes) do
        it(("status %d"):format(code), function()
            local body = ('{"status":"%d","reason":"vendor says %d"}'):format(code, code)
            local key_id, err = client_answering(body):create_task(task())
            assert.is_nil(key_id)
            assert.are.equal(code, err.code)
            assert.are.equal(status.codes[code].name, err.name)
            assert.are.equal(("vendor says %d"):format(code), err.reason)
            -- only -41 names the task; -20 "Data existing" does not say what exists
            local want = code == -41 and "already_exists" or "status"
            assert.are.equal(want, err.kind)
            assert.truthy(tostring(err):find(("status %d"):format(code), 1, true))
        end)
    end

    it("an undocumented status is still an error that carries it", function()
        local _, err = client_answering('{"status":"-99","reason":"new"}'):create_task(task())
        assert.are.equal(-99, err.code)
        assert.are.equal("new", err.reason)
    end)

    it("success without data is a protocol error, not a nil keyId", function()
        local key_id, err = client_answering('{"status":"0","reason":"success"}'):create_task(task())
        assert.is_nil(key_id)
        assert.are.equal("protocol", err.kind)
    end)

    it("a status given as a JSON number is read too", function()
        local key_id = client_answering('{"status":0,"reason":"success","data":7}'):create_task(task())
        assert.are.equal(7, key_id)
    end)

    it("quotes at most 200 bytes of a long non-JSON answer", function()
        local _, err = client_answering(("x"):rep(100000)):create_task(task())
        assert.are.equal("ambiguous", err.kind)
        assert.is_true(#tostring(err) < 500)
    end)
end)
