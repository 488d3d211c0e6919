-- laaffic.transport.ngx.resty_http inside a real nginx (Debian's nginx + the OpenResty lua
-- module), against the local sandbox and small listeners in the same nginx.
--
-- lua-resty-http is not packaged by Debian 12 and its code stays out of this repository. By
-- default `resty.http` is spec/fixtures/resty_http_double/resty/http.lua, a stand-in
-- written from lua-resty-http's documented interface (new, set_timeouts, connect, request,
-- body_reader, set_keepalive) on real cosockets and real HTTP/1.1, passing on the
-- cosocket's own error strings as lua-resty-http does. `make check-resty-http
-- RESTY_HTTP=<its lib directory> [RESTY_STRING=<lua-resty-string's lib directory>]` runs
-- this same spec, unchanged, against a real copy (LAAFFIC_RESTY_HTTP and
-- LAAFFIC_RESTY_STRING name the directories); requests are counted at the server (the
-- sandbox), never inside the library.
--
-- Three nginx instances: `app` has resty.http on its package path (init_by_lua prepends
-- the directory), `bare` does not (and serves a TLS certificate for another name from its
-- own process), `broken` has a resty.http that cannot load (it needs a missing module).
local cjson = require("cjson")
-- the directories prepended to app's package path: the real library's, or the stand-in's
local RESTY_DIRS = {}
for _, var in ipairs({ "LAAFFIC_RESTY_HTTP", "LAAFFIC_RESTY_STRING" }) do
    local dir = os.getenv(var)
    if dir and dir ~= "" then RESTY_DIRS[#RESTY_DIRS + 1] = dir end
end
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")
local Nginx = dofile(H.root .. "/spec/nginx.lua")
local core = require("laaffic.core")
local sh, q, write, read = SB.sh, SB.q, SB.write, SB.read

local function urlencode(s)
    return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- GET path?args from an nginx; the answer decoded from JSON
local function call(srv, path, args)
    local parts = {}
    for k, v in pairs(args or {}) do
        parts[#parts + 1] = urlencode(k) .. "=" .. urlencode(v)
    end
    table.sort(parts)
    local url = srv:url(path) .. (#parts > 0 and ("?" .. table.concat(parts, "&")) or "")
    local out = sh("curl -sS --max-time 90 " .. q(url) .. " 2>&1")
    local ok, v = pcall(cjson.decode, out)
    assert(ok and type(v) == "table", "not JSON from " .. path .. ": " .. out:sub(1, 500) ..
           "\n" .. srv:log():sub(-3000))
    return v
end

-- an nginx server { } on listen (TLS with cert = { crt =, key = }) answering "<text>\n"
local function tls_server(listen, cert, text)
    return ("server { listen %s ssl; ssl_certificate %s; ssl_certificate_key %s; " ..
            "location / { return 200 \"%s\\n\"; } }\n"):format(listen, cert.crt, cert.key, text)
end

local function json_nil(v)
    if v == cjson.null then return nil end
    return v
end

-- nginx-side pieces both instances use: a timer that creates a task with the transport
-- laaffic.new picks by itself (auto), and where its outcome is read
local TIMER_LOCATIONS = [==[
    location = /create-timer {
        content_by_lua_block {
            local name = ngx.var.arg_name
            local ok, terr = ngx.timer.at(0, function(premature)
                if premature then return end
                local c = laaffic.new({ api_key = CREDS.api_key, api_secret = CREDS.api_secret,
                    app_id = CREDS.app_id, base_url = CREDS.base_url, resolve = CREDS.resolve })
                local key_id, err = c:create_task({ taskName = name, agentId = 110,
                    numberInfoList = { { calleeNumber = "919777654321" } } })
                if key_id then err = nil end   -- the second value is then the info table
                ngx.shared.results:set(name, require("cjson").encode({
                    key_id = key_id, kind = err and err.kind, message = err and tostring(err),
                    via = c.transport.last, resty_error = c.transport.resty_error }))
            end)
            ngx.say(require("cjson").encode({ scheduled = ok and true or false, err = terr }))
        }
    }
    location = /result {
        content_by_lua_block {
            ngx.say(ngx.shared.results:get(ngx.var.arg_name) or '{"pending":true}')
        }
    }
]==]

describe("laaffic.transport.ngx.resty_http (against " ..
         (os.getenv("LAAFFIC_RESTY_HTTP") or "a stand-in for lua-resty-http") .. ")", function()
    local sb, app, bare, broken, certs, env, secret, closed_port
    local messages = {}     -- every error message seen, for the secret check

    local function note(r)
        if type(r) == "table" then
            for _, k in ipairs({ "message", "load_error", "new_error" }) do
                if type(r[k]) == "string" then messages[#messages + 1] = r[k] end
            end
            for _, ev in ipairs(type(r.events) == "table" and r.events or {}) do
                if type(ev.message) == "string" then messages[#messages + 1] = ev.message end
            end
        end
        return r
    end

    local function adapter(args)
        return note(call(app, "/adapter", args))
    end

    local function client(args)
        return note(call(app, "/client", args))
    end

    -- the outcome of /create-timer?name=, polled until the timer has written it
    local function timer_result(srv, name)
        local started = call(srv, "/create-timer", { name = name })
        assert.is_true(started.scheduled, tostring(started.err))
        for _ = 1, 200 do
            local r = call(srv, "/result", { name = name })
            if not r.pending then return note(r) end
            core.sleep(0.05)
        end
        error("the timer did not finish: " .. srv:log():sub(-2000))
    end

    lazy_setup(function()
        sb = SB.Sandbox.start()
        env = sb.env
        secret = env.LAAFFIC_SANDBOX_SECRET
        local sbport = env.LAAFFIC_SANDBOX_HTTPS:match(":(%d+)$")
        certs = SB.tls_certs(sb.tmp)
        -- nginx takes one file of trusted CAs: the sandbox's and the one of tls_certs
        local bundle = sb.tmp .. "/trusted.pem"
        write(bundle, assert(read(env.LAAFFIC_SANDBOX_CA)) .. "\n" .. assert(read(certs.ca)))
        closed_port = Nginx.free_ports(1)[1]   -- nothing listens there
        -- the credentials reach nginx through a file only its owner reads, never argv
        local creds = sb.tmp .. "/app-creds.lua"
        write(creds, ("return { api_key = %q, api_secret = %q, app_id = %q, base_url = %q, " ..
                      "http_url = %q, resolve = { %q } }")
              :format(env.LAAFFIC_SANDBOX_KEY, secret, env.LAAFFIC_SANDBOX_APP_ID,
                      env.LAAFFIC_SANDBOX_HTTPS, env.LAAFFIC_SANDBOX_HTTP,
                      "localhost:" .. sbport .. ":127.0.0.1"))
        sh("chmod 600 " .. q(creds))

        local resty_path = ""
        for _, dir in ipairs(#RESTY_DIRS > 0 and RESTY_DIRS or { Nginx.root .. "/spec/fixtures/resty_http_double" }) do
            resty_path = resty_path .. dir .. "/?.lua;"
        end
        app = Nginx.start{ workers = 1, ports = 3, http = ([==[
            lua_shared_dict results 1m;
            lua_ssl_trusted_certificate @BUNDLE@;
            lua_ssl_verify_depth 4;
            init_by_lua_block {
                -- lua-resty-http (or its stand-in), found as resty.http
                package.path = "@RESTY_PATH@" .. package.path
                laaffic = require("laaffic")
                CREDS = dofile("@CREDS_FILE@")
                function ENDLESS()
                    local piece = string.rep("x", 65536)
                    local t0 = ngx.now()
                    while ngx.now() - t0 < 20 do
                        ngx.print(piece)
                        if not ngx.flush(true) then return end
                        ngx.sleep(0.002)
                    end
                end
                CREDS.resolve[#CREDS.resolve + 1] = "localhost:$PORT2:127.0.0.1"
                CREDS.resolve[#CREDS.resolve + 1] = "localhost:$PORT3:127.0.0.1"
            }
            server {
                listen 127.0.0.1:$PORT;
                client_body_buffer_size 1m;
                @TIMER_LOCATIONS@
                # the adapter on its own: a signed task (of ?rows= numbers, or ?big= MiB of body)
                # to ?url= or the sandbox
                location = /adapter {
                    content_by_lua_block {
                        local cjson = require("cjson")
                        local a = ngx.req.get_uri_args()
                        local c = laaffic.new({ api_key = CREDS.api_key, api_secret = CREDS.api_secret,
                            app_id = CREDS.app_id, base_url = a.base or CREDS.base_url })
                        local list = { { calleeNumber = "919777654321", text1 = "David" } }
                        for i = 1, tonumber(a.rows) or 0 do   -- ?rows=: a body of many pieces
                            list[i] = { calleeNumber = string.format("9197%08d", i), text1 = "David",
                                        text2 = "1234", text3 = "2026-04-10" }
                        end
                        local req = assert(c:build_task({ taskName = a.name or "spec61", agentId = 110,
                            numberInfoList = list }))
                        if a.url then req.url = a.url end
                        if a.big then req.body = string.rep("x", tonumber(a.big) * 1048576) end
                        local t, terr = require("laaffic.transport.ngx")[a.transport or "resty_http"]({
                            timeout = tonumber(a.timeout), resolve = CREDS.resolve,
                            max_response = tonumber(a.max) })
                        if not t then
                            ngx.say(cjson.encode({ load_error = terr }))
                            return
                        end
                        ngx.update_time()
                        local t0 = ngx.now()
                        local res, msg, kind, sent = t(req)
                        ngx.update_time()
                        local out = { sent_headers = req.headers, md5 = ngx.md5(tostring(req.body)),
                                      bytes = #tostring(req.body), elapsed = ngx.now() - t0,
                                      message = msg, kind = kind, sent = sent, name = t.name,
                                      library = require("resty.http")._VERSION }
                        if res then
                            out.status, out.headers, out.body = res.status, res.headers, res.body
                        end
                        ngx.say(cjson.encode(out))
                    }
                }
                # create_task through transport = "resty_http"
                location = /client {
                    content_by_lua_block {
                        local cjson = require("cjson")
                        local a = ngx.req.get_uri_args()
                        local events = {}
                        local c = laaffic.new({ api_key = CREDS.api_key,
                            api_secret = a.secret or CREDS.api_secret, app_id = CREDS.app_id,
                            base_url = a.base or CREDS.base_url, resolve = CREDS.resolve,
                            transport = "resty_http", retries = tonumber(a.retries) or 0, backoff = 0,
                            timeout = tonumber(a.timeout),
                            logger = function(ev)
                                if ev.event == "error" then
                                    events[#events + 1] = { kind = ev.kind, sent = ev.sent,
                                                            message = ev.message }
                                end
                            end })
                        local key_id, err = c:create_task({ taskName = a.name, agentId = 110,
                            numberInfoList = { { calleeNumber = "919777654321" } } })
                        ngx.say(cjson.encode({ key_id = key_id, kind = err and err.kind,
                            cause = err and err.cause, code = err and err.code,
                            message = err and tostring(err), events = events }))
                    }
                }
                # two transports of ?transport= one after the other to the same URL, each
                # on the connection pool: ?case=verify: an insecure one, then a verifying one
                # (the certificate is for other.example); ?case=pinned: two insecure ones
                # pinned to 127.0.0.1 and 127.0.0.2
                location = /pool {
                    content_by_lua_block {
                        local ngxt = require("laaffic.transport.ngx")
                        local a = ngx.req.get_uri_args()
                        local function one(opts)
                            local t = assert(ngxt[a.transport](opts))
                            local res, msg, kind, sent = t({ method = "POST", headers = {}, body = "{}",
                                url = "https://localhost:$PORT2/v3/x" })
                            return { status = res and res.status, body = res and res.body,
                                     message = msg, kind = kind, sent = sent }
                        end
                        local first = { "localhost:$PORT2:127.0.0.1" }
                        local second = a.case == "pinned" and { "localhost:$PORT2:127.0.0.2" } or first
                        local out = { one({ insecure = true, resolve = first }) }
                        out[2] = one({ insecure = a.case == "pinned", resolve = second })
                        ngx.say(require("cjson").encode(out))
                    }
                }
                # ?n= requests through ?transport= to a certificate for another name that
                # bare serves on ?port= (another process: there a handshake can complete at
                # once, and lua-resty-core 0.1.25 then raises from sslhandshake)
                location = /handshakes {
                    content_by_lua_block {
                        local a = ngx.req.get_uri_args()
                        local t = assert(require("laaffic.transport.ngx")[a.transport]({ timeout = 5,
                            resolve = { "localhost:" .. a.port .. ":127.0.0.1" } }))
                        local out = { kinds = {}, raised = {}, caught = 0 }
                        for _ = 1, tonumber(a.n) do
                            local ok, res, msg, kind, sent = pcall(t, { method = "POST", headers = {},
                                body = "{}", url = "https://localhost:" .. a.port .. "/v3/x" })
                            if not ok then
                                out.raised[#out.raised + 1] = tostring(res)
                            elseif res then
                                out.kinds.answered = (out.kinds.answered or 0) + 1
                            else
                                local k = tostring(kind) .. "/" .. tostring(sent)
                                out.kinds[k] = (out.kinds[k] or 0) + 1
                                if tostring(msg):find("raised", 1, true) then out.caught = out.caught + 1 end
                                out.message = msg
                            end
                        end
                        ngx.say(require("cjson").encode(out))
                    }
                }
                # an answer without end: 64 KiB pieces for up to 20 s, chunked, or (/endless-raw)
                # without a length or chunks, ending when the connection closes
                location = /endless { content_by_lua_block { ENDLESS() } }
                location = /endless-raw {
                    chunked_transfer_encoding off;
                    content_by_lua_block { ENDLESS() }
                }
                location = /short-raw {
                    chunked_transfer_encoding off;
                    content_by_lua_block { ngx.print(string.rep("y", 70000)) }
                }
                # answers with what arrived: the header names as the client wrote them
                location = /echo {
                    content_by_lua_block {
                        ngx.req.read_body()
                        local body = ngx.req.get_body_data() or ""
                        ngx.header["Content-Type"] = "application/json"
                        ngx.header["X-Laaffic-Echo"] = "Yes"
                        ngx.header["X-Twice"] = { "a", "b" }
                        ngx.say(require("cjson").encode({ headers = ngx.req.get_headers(100, true),
                            md5 = ngx.md5(body), bytes = #body, method = ngx.req.get_method(),
                            uri = ngx.var.request_uri }))
                    }
                }
                # takes the request line and headers, never reads the body
                location = /stall {
                    content_by_lua_block {
                        ngx.sleep(4)
                        ngx.exit(204)
                    }
                }
            }
            # certificates that verification must refuse; the same name and port on another
            # address (for pinned-address pools)
            @TLS_SERVERS@
        ]==]):gsub("@TIMER_LOCATIONS@", function() return TIMER_LOCATIONS end)
             :gsub("@CREDS_FILE@", creds):gsub("@BUNDLE@", bundle)
             :gsub("@RESTY_PATH@", function() return resty_path end)
             :gsub("@TLS_SERVERS@", function()
                 return tls_server("127.0.0.1:$PORT2", certs.wrong_host, "wrong host") ..
                        tls_server("127.0.0.2:$PORT2", certs.wrong_host, "second address") ..
                        tls_server("127.0.0.1:$PORT3", certs.expired, "expired")
             end) }

        bare = Nginx.start{ workers = 1, ports = 2, http = ([==[
            lua_shared_dict results 1m;
            lua_ssl_trusted_certificate @CA@;
            lua_ssl_verify_depth 4;
            init_by_lua_block {
                laaffic = require("laaffic")
                CREDS = dofile("@CREDS_FILE@")
            }
            server {
                listen 127.0.0.1:$PORT;
                @TIMER_LOCATIONS@
                location = /absent {
                    content_by_lua_block {
                        local t, err = require("laaffic.transport.ngx").resty_http({ timeout = 5 })
                        local ok, nerr = pcall(laaffic.new, { api_key = CREDS.api_key,
                            api_secret = CREDS.api_secret, transport = "resty_http" })
                        ngx.say(require("cjson").encode({ returned = t and tostring(t) or "nil",
                            load_error = err, new_raised = not ok, new_error = not ok and tostring(nerr) or nil,
                            found = (pcall(require, "resty.http")) }))
                    }
                }
            }
            @TLS_SERVER@
        ]==]):gsub("@TIMER_LOCATIONS@", function() return TIMER_LOCATIONS end)
             :gsub("@CREDS_FILE@", creds):gsub("@CA@", env.LAAFFIC_SANDBOX_CA)
             :gsub("@TLS_SERVER@", function()
                 return tls_server("127.0.0.1:$PORT2", certs.wrong_host, "wrong host")
             end) }

        -- a resty.http that needs a module that is not there, as lua-resty-http 0.17.2 and
        -- later need lua-resty-string (written here: one line, none of the library's code)
        local broken_dir = sb.tmp .. "/broken-resty"
        sh("mkdir -p " .. q(broken_dir .. "/resty"))
        write(broken_dir .. "/resty/http.lua", 'local to_hex = require("resty.string").to_hex\n' ..
              'return { _VERSION = "0.17.2", to_hex = to_hex }\n')
        broken = Nginx.start{ workers = 1, http = ([==[
            lua_shared_dict results 1m;
            lua_ssl_trusted_certificate @CA@;
            init_by_lua_block {
                package.path = "@BROKEN@/?.lua;" .. package.path
                laaffic = require("laaffic")
                CREDS = dofile("@CREDS_FILE@")
            }
            server {
                listen 127.0.0.1:$PORT;
                @TIMER_LOCATIONS@
                location = /load {
                    content_by_lua_block {
                        local ngxt = require("laaffic.transport.ngx")
                        local _, first = ngxt.resty_http({})
                        local _, second = ngxt.resty_http({})
                        local ok, nerr = pcall(laaffic.new, { api_key = CREDS.api_key,
                            api_secret = CREDS.api_secret, transport = "resty_http" })
                        ngx.say(require("cjson").encode({ first = first, second = second,
                            new_raised = not ok, new_error = tostring(nerr),
                            auto_error = ngxt.auto({}).resty_error }))
                    }
                }
            }
        ]==]):gsub("@TIMER_LOCATIONS@", function() return TIMER_LOCATIONS end)
             :gsub("@CREDS_FILE@", creds):gsub("@CA@", env.LAAFFIC_SANDBOX_CA)
             :gsub("@BROKEN@", broken_dir) }
    end)

    lazy_teardown(function()
        for _, srv in ipairs({ app or false, bare or false, broken or false }) do
            if srv then
                assert.is_true(srv:stop(), "an nginx of this spec is still running")
            end
        end
        if sb then
            local pid = sb.pid
            assert.are.equal(0, sb:stop())
            assert.is_false(SB.alive(pid))
        end
    end)

    before_each(function()
        sb:control("/_sandbox/reset", "{}")
    end)

    describe("auto in a timer", function()
        it("picks resty_http when resty.http is on the package path, and creates the task through it", function()
            local r = timer_result(app, "spec61-timer-resty")
            assert.are.equal("resty_http", r.via)
            assert.is_number(r.key_id, r.message)
            -- counted at the server: one request, through the adapter
            assert.are.equal(1, sb:requests().total)
            local rec = sb:task_record(r.key_id)
            assert.are.equal("spec61-timer-resty", rec.taskName)
            -- laaffic's User-Agent, not the library's default
            assert.truthy(rec.user_agent:find("^laaffic/"), rec.user_agent)
        end)

        it("picks cosocket when resty.http is not there", function()
            local r = timer_result(bare, "spec61-timer-bare")
            assert.are.equal("cosocket", r.via)
            assert.is_number(r.key_id, r.message)
            assert.are.equal(1, sb:requests().total)
            assert.are.equal("spec61-timer-bare", sb:task_record(r.key_id).taskName)
        end)
    end)

    it("resty_http() returns nil, \"lua-resty-http is not installed\" when the module is absent", function()
        local r = note(call(bare, "/absent"))
        assert.is_false(r.found)
        assert.are.equal("nil", r.returned)
        assert.are.equal("lua-resty-http is not installed", r.load_error)
        -- and asking for it by name fails at laaffic.new, saying why
        assert.is_true(r.new_raised)
        assert.truthy(r.new_error:find("transport 'resty_http': lua-resty-http is not installed", 1, true),
                      r.new_error)
    end)

    it("creates a task against the sandbox over HTTPS (verified, pinned address) through the adapter", function()
        local r = adapter({ name = "spec61-direct" })
        assert.are.equal("resty_http", r.name)
        -- the library asked for: the real one under make check-resty-http, else the stand-in
        assert.are.equal(#RESTY_DIRS == 0, r.library:find("stand-in", 1, true) ~= nil, r.library)
        assert.is_nil(json_nil(r.message))
        assert.are.equal(1, sb:requests().total)
        assert.are.equal(200, r.status)
        local answer = cjson.decode(r.body)
        assert.are.equal("0", answer.status)
        local rec = sb:task_record(answer.data)
        assert.are.equal("spec61-direct", rec.taskName)
        -- the sandbox checked Api-Key, Timestamp and Sign; the body is byte for byte ours
        assert.are.equal(r.md5, rec.md5)
        assert.are.equal(r.bytes, rec.bytes)
    end)

    for _, transport in ipairs({ "resty_http", "cosocket" }) do
        it(transport .. ": a 200,000-number body goes out in pieces and arrives byte for byte", function()
            local r = adapter({ name = "spec61-pieces-" .. transport, transport = transport,
                                rows = 200000, timeout = 20 })
            assert.is_nil(json_nil(r.message))
            assert.is_true(r.bytes > 16000000)
            assert.are.equal(200, r.status)
            local rec = sb:task_record(cjson.decode(r.body).data)
            assert.are.same({ 200000, r.bytes, r.md5 }, { rec.rows, rec.bytes, rec.md5 })
        end)
    end

    it("request headers (Api-Key, Timestamp, Sign, Content-Type) and the body arrive intact", function()
        local r = adapter({ url = app:url("/echo") })
        assert.are.equal(200, r.status, r.message)
        local got = cjson.decode(r.body)
        for _, name in ipairs({ "Api-Key", "Timestamp", "Sign", "Content-Type" }) do
            assert.is_string(r.sent_headers[name], name)
            assert.are.equal(r.sent_headers[name], got.headers[name], name)
        end
        assert.are.equal(env.LAAFFIC_SANDBOX_KEY, got.headers["Api-Key"])
        assert.are.equal(core.sign(env.LAAFFIC_SANDBOX_KEY, secret, tonumber(got.headers["Timestamp"])),
                         got.headers["Sign"])
        assert.are.equal("POST", got.method)
        assert.are.equal("/echo", got.uri)
        assert.are.equal("127.0.0.1:" .. app.port, got.headers["Host"])
        assert.truthy(tostring(got.headers["User-Agent"]):find("^laaffic/"))
        assert.are.equal(r.bytes, got.bytes)
        assert.are.equal(r.md5, got.md5)
    end)

    it("response headers come back with lower-case names, a repeated one joined", function()
        local r = adapter({ url = app:url("/echo") })
        assert.are.equal(200, r.status, r.message)
        assert.are.equal("Yes", r.headers["x-laaffic-echo"])
        assert.are.equal("a, b", r.headers["x-twice"])
        assert.are.equal("application/json", r.headers["content-type"])
        for name in pairs(r.headers) do
            assert.are.equal(name:lower(), name)
        end
    end)

    describe("connection pools never mix TLS settings or destinations", function()
        for _, transport in ipairs({ "cosocket", "resty_http" }) do
            it(transport .. ": an insecure client's pooled connection is not reused by a verifying one",
               function()
                local r = note(call(app, "/pool", { transport = transport, case = "verify" }))
                assert.are.same({ 200, "wrong host\n" }, { r[1].status, r[1].body }, r[1].message)
                assert.is_nil(json_nil(r[2].status), "the verifying client got an answer")
                assert.are.same({ "certificate", false }, { r[2].kind, r[2].sent }, r[2].message)
            end)

            it(transport .. ": clients pinned to different addresses get their own connections", function()
                local r = note(call(app, "/pool", { transport = transport, case = "pinned" }))
                assert.are.equal("wrong host\n", r[1].body, r[1].message)
                assert.are.equal("second address\n", r[2].body, r[2].message)
            end)
        end
    end)

    for _, transport in ipairs({ "cosocket", "resty_http" }) do
        it(transport .. ": a certificate refused by a handshake that raised (lua-resty-core " ..
           "0.1.25) is kind certificate, nothing sent, no raise", function()
            local n = 40
            local r = note(call(app, "/handshakes", { transport = transport, port = bare.ports[2], n = n }))
            assert.are.same({}, r.raised)
            assert.are.same({ ["certificate/false"] = n }, r.kinds, r.message)
        end)
    end

    describe("lua-resty-http that cannot be loaded (0.17.2+ without lua-resty-string)", function()
        it("every call reports the first reason and says what is missing", function()
            local r = note(call(broken, "/load"))
            assert.truthy(r.first:find("resty.string", 1, true), r.first)
            assert.truthy(r.first:find("need lua-resty-string", 1, true), r.first)
            assert.is_nil(r.first:find("loop or previous error", 1, true), r.first)
            assert.are.equal(r.first, r.second)
            assert.is_true(r.new_raised)
            assert.truthy(r.new_error:find(r.first, 1, true), r.new_error)
            assert.are.equal(r.first, r.auto_error)
        end)

        it("auto in a timer sends through cosocket and the error log says why", function()
            local res = timer_result(broken, "spec61-timer-broken")
            assert.are.equal("cosocket", res.via)
            assert.is_number(res.key_id, res.message)
            assert.truthy(res.resty_error:find("need lua-resty-string", 1, true))
            local log = broken:log()
            assert.truthy(log:find("transport auto uses cosocket in timers, not lua-resty-http: " ..
                                   "lua-resty-http could not be loaded", 1, true), log)
        end)
    end)

    for _, transport in ipairs({ "resty_http", "cosocket" }) do
        it(transport .. ": max_response is enforced while the answer is read (an endless answer, " ..
           "chunked or until close, stops at 1 MiB)", function()
            for _, path in ipairs({ "/endless", "/endless-raw" }) do
                local r = adapter({ url = app:url(path), max = 1048576, timeout = 5, transport = transport })
                assert.are.same({ "too_large", true }, { r.kind, r.sent }, path .. ": " .. tostring(r.message))
                assert.truthy(r.elapsed < 5, path .. " took " .. r.elapsed .. " s: the answer was read to its end")
            end
            -- control: an answer without a length that ends is read whole
            local r = adapter({ url = app:url("/short-raw"), max = 1048576, timeout = 5, transport = transport })
            assert.are.same({ 200, 70000 }, { r.status, #tostring(r.body) }, r.message)
        end)
    end

    describe("failures, and whether the request may have reached the server", function()
        it("a refused connection: kind connect, sent = false; the client retries it", function()
            local r = adapter({ url = "http://127.0.0.1:" .. closed_port .. "/v3/x" })
            assert.are.equal("connect", r.kind, r.message)
            assert.is_false(r.sent)
            assert.truthy(r.message:find("connection refused", 1, true), r.message)
            local c = client({ name = "spec61-refused", base = "http://127.0.0.1:" .. closed_port,
                               retries = 1 })
            assert.are.same({ "transport", "connect" }, { c.kind, c.cause })
            assert.are.equal(2, #c.events)
            for _, ev in ipairs(c.events) do
                assert.are.same({ "connect", false }, { ev.kind, ev.sent })
            end
        end)

        it("a read timeout: kind timeout, sent = true; the client does not retry it", function()
            -- plain HTTP: with TLS a slow handshake would time out too, before the body
            sb:fault({ mode = "hang", count = 2, ms = 8000 })
            local r = adapter({ name = "spec61-hang", timeout = 2, base = env.LAAFFIC_SANDBOX_HTTP })
            assert.are.equal("timeout", r.kind, r.message)
            assert.is_true(r.sent)
            local c = client({ name = "spec61-hang-2", timeout = 2, retries = 2,
                               base = env.LAAFFIC_SANDBOX_HTTP })
            assert.are.same({ "ambiguous", "timeout" }, { c.kind, c.cause })
            assert.are.equal(1, #c.events)
            assert.are.equal(2, sb:requests().total)
        end)

        it("a send that times out before the whole body went out: kind timeout, sent = false", function()
            -- /stall never reads: 32 MiB cannot all fit in the sockets' buffers
            local r = adapter({ url = app:url("/stall"), big = 32, timeout = 1 })
            assert.are.equal("timeout", r.kind, r.message)
            assert.is_false(r.sent)
        end)

        it("a reset after the whole request went out: kind connection, sent = true", function()
            -- "connection reset by peer" must not be taken for a failed connect
            sb:fault({ mode = "reset", count = 1 })
            local r = adapter({ name = "spec61-reset", base = env.LAAFFIC_SANDBOX_HTTP })
            assert.are.equal("connection", r.kind, r.message)
            assert.is_true(r.sent)
            assert.truthy(r.message:find("reset", 1, true), r.message)
        end)

        for _, transport in ipairs({ "resty_http", "cosocket" }) do
            it(transport .. ": a reset after 300 KB of a 17 MB body: kind connection, sent = false, " ..
               "nothing created", function()
                sb:fault({ mode = "reset", bytes = 300000, count = 1 })
                local r = adapter({ name = "spec61-reset-mid-" .. transport, transport = transport,
                                    rows = 200000, base = env.LAAFFIC_SANDBOX_HTTP, timeout = 20 })
                assert.is_true(r.bytes > 16000000)
                assert.are.same({ "connection", false }, { r.kind, r.sent }, r.message)
                assert.are.equal(1, sb:requests().total)
                local _, named = sb:tasks("spec61-reset-mid-" .. transport)
                assert.are.equal(0, named)
            end)
        end

        for _, transport in ipairs({ "resty_http", "cosocket" }) do
            it(transport .. ": an answer that is not HTTP after the whole body: kind connection, sent = true",
               function()
                sb:fault({ mode = "not_http", count = 1 })
                local r = adapter({ name = "spec61-nothttp-" .. transport, transport = transport,
                                    base = env.LAAFFIC_SANDBOX_HTTP })
                assert.are.same({ "connection", true }, { r.kind, r.sent }, r.message)
                assert.are.equal(1, sb:requests().faults.not_http)
            end)
        end

        it("a connection closed without an answer after the body: kind connection, sent = true", function()
            sb:fault({ mode = "drop", count = 1 })
            local r = adapter({ name = "spec61-drop" })
            assert.are.equal("connection", r.kind, r.message)
            assert.is_true(r.sent)
        end)

        it("a certificate for another name or an expired one: kind certificate, sent = false, not retried", function()
            for _, port in ipairs({ app.ports[2], app.ports[3] }) do
                local r = adapter({ url = "https://localhost:" .. port .. "/v3/x" })
                assert.are.equal("certificate", r.kind, r.message)
                assert.is_false(r.sent)
                local c = client({ name = "spec61-cert-" .. port, base = "https://localhost:" .. port,
                                   retries = 2 })
                assert.are.same({ "transport", "certificate" }, { c.kind, c.cause })
                assert.are.equal(1, #c.events)
            end
            assert.are.equal(0, sb:requests().total)
        end)
    end)

    it("the secret never appears in an error message or in nginx's logs", function()
        -- failures of every kind, with the right secret and with another one
        client({ name = "spec61-s1", base = "http://127.0.0.1:" .. closed_port })
        client({ name = "spec61-s2", base = "https://localhost:" .. app.ports[2] })
        sb:fault({ mode = "drop", count = 1 })
        client({ name = "spec61-s3" })
        local other = "spec61-other-secret-" .. os.time()
        local bad = client({ name = "spec61-s4", secret = other })
        assert.are.same({ "status", -1 }, { bad.kind, bad.code })
        assert.is_true(#messages >= 4)
        for _, m in ipairs(messages) do
            assert.is_nil(m:find(secret, 1, true), m)
            assert.is_nil(m:find(other, 1, true), m)
        end
        for _, srv in ipairs({ app, bare }) do
            local log = srv:log()
            assert.is_nil(log:find(secret, 1, true))
            assert.is_nil(log:find(other, 1, true))
        end
    end)
end)
