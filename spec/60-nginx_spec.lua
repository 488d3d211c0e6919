-- laaffic inside a real nginx (Debian's nginx + the OpenResty lua module, LuaJIT): the
-- module loads in init_by_lua, content_by_lua and timers; a content handler creates a
-- task against the sandbox through nginx's own HTTP client (nginx/laaffic.conf included
-- as-is), a timer through the cosocket transport; and the worker is not blocked while a
-- 200,000-number task is on its way to a slowed sandbox.
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")
local Nginx = dofile(H.root .. "/spec/nginx.lua")
local sh, q, write, read = SB.sh, SB.q, SB.write, SB.read

local function get(url)
    local out = sh("curl -sS --max-time 30 " .. q(url))
    return out
end

local function get_json(url)
    local out = get(url)
    local ok, v = pcall(cjson.decode, out)
    assert(ok, "not JSON from " .. url .. ": " .. out)
    return v
end

describe("laaffic in nginx", function()
    local sb, app

    lazy_setup(function()
        sb = SB.Sandbox.start()
        local env = sb.env
        local port = env.LAAFFIC_SANDBOX_HTTPS:match(":(%d+)$")
        -- the credentials reach nginx through a file only its owner reads, never argv
        local creds = sb.tmp .. "/app-creds.lua"
        write(creds, ("return { api_key = %q, api_secret = %q, app_id = %q, base_url = %q, " ..
                      "resolve = { %q } }")
              :format(env.LAAFFIC_SANDBOX_KEY, env.LAAFFIC_SANDBOX_SECRET,
                      env.LAAFFIC_SANDBOX_APP_ID, env.LAAFFIC_SANDBOX_HTTPS,
                      "localhost:" .. port .. ":127.0.0.1"))
        sh("chmod 600 " .. q(creds))
        app = Nginx.start{ workers = 1, http = ([[
            lua_shared_dict results 1m;
            lua_ssl_trusted_certificate @CA@;
            lua_ssl_verify_depth 4;
            upstream laaffic_api { server 127.0.0.1:@SBPORT@; keepalive 8; }
            init_by_lua_block {
                laaffic = require("laaffic")
                CREDS = dofile("@CREDS_FILE@")
                INIT_VERSION = laaffic._VERSION
            }
            init_worker_by_lua_block {
                -- no I/O is allowed here: laaffic says so instead of blocking or crashing
                local c = laaffic.new(CREDS)
                local ok, key_id, err = pcall(c.create_task, c, { taskName = "from-init-worker",
                    agentId = 110, numberInfoList = { { calleeNumber = "919777654321" } } })
                ngx.shared.results:set("init_worker", ok and (tostring(key_id) .. "|" ..
                    tostring(err and err.kind) .. "|" .. tostring(err and err.message))
                    or ("raised: " .. tostring(key_id)))
            }
            server {
                listen 127.0.0.1:$PORT;
                proxy_ssl_trusted_certificate @CA@;
                include @ROOT@/nginx/laaffic.conf;

                location = /info {
                    content_by_lua_block {
                        local c = laaffic.new(CREDS)
                        ngx.say(require("cjson").encode({ init = INIT_VERSION,
                            content = require("laaffic")._VERSION,
                            transport = tostring(c.transport),
                            sign = laaffic.core.sign("bDqJFiq9", "7bz1lzh9", 1630468800) }))
                    }
                }
                location = /create {
                    content_by_lua_block {
                        local o = {}
                        for k, v in pairs(CREDS) do o[k] = v end
                        if ngx.var.arg_secret then o.api_secret = ngx.var.arg_secret end
                        local n = tonumber(ngx.var.arg_rows) or 1
                        o.transport = ngx.var.arg_transport
                        -- each failed attempt's kind and sent, in the answer
                        local failures = {}
                        o.logger = function(ev)
                            -- "sending" from the moment the encoded task goes to the transport
                            if ev.event == "request" and n > 1000 then
                                ngx.shared.results:set("sending", true)
                            end
                            if ev.event == "error" then
                                failures[#failures + 1] = { kind = ev.kind, sent = ev.sent }
                            end
                        end
                        local c = laaffic.new(o)
                        local rows = {}
                        for i = 1, n do
                            rows[i] = { calleeNumber = string.format("9197%08d", i), text1 = "David" }
                        end
                        local key_id, err = c:create_task({ taskName = ngx.var.arg_name,
                            agentId = 110, numberInfoList = rows })
                        ngx.shared.results:delete("sending")
                        ngx.say(require("cjson").encode({ key_id = key_id,
                            kind = err and err.kind, code = err and err.code,
                            message = err and tostring(err), via = c.transport.last or
                            c.transport.name, failures = failures }))
                    }
                }
                location = /create-timer {
                    content_by_lua_block {
                        local name = ngx.var.arg_name
                        local ok, terr = ngx.timer.at(0, function(premature)
                            if premature then return end
                            local c = laaffic.new(CREDS)
                            local key_id, err = c:create_task({ taskName = name, agentId = 110,
                                numberInfoList = { { calleeNumber = "919777654321" } } })
                            ngx.shared.results:set(name, require("cjson").encode({
                                key_id = key_id, kind = err and err.kind,
                                message = err and tostring(err), via = c.transport.last,
                                version = require("laaffic")._VERSION }))
                        end)
                        ngx.say(ok and "scheduled" or ("timer: " .. tostring(terr)))
                    }
                }
                location = /result {
                    content_by_lua_block {
                        ngx.say(ngx.shared.results:get(ngx.var.arg_name) or "null")
                    }
                }
                location = /ping {
                    content_by_lua_block {
                        ngx.say(ngx.shared.results:get("sending") and "sending" or "idle")
                    }
                }
                # a chunked answer whose chunk-size line is not hex, on the raw socket
                location = /bad-chunk {
                    content_by_lua_block {
                        ngx.req.read_body()
                        local sock = ngx.req.socket(true)
                        sock:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n")
                        ngx.exit(444)
                    }
                }
                # the cosocket transport sending a 200,000-number body (build_task) to the
                # sandbox, with the body closed 0.3 s into the send
                location = /cosocket-close {
                    content_by_lua_block {
                        local c = laaffic.new(CREDS)
                        local rows = {}
                        for i = 1, 200000 do
                            rows[i] = { calleeNumber = string.format("9197%08d", i) }
                        end
                        local req = assert(c:build_task({ taskName = ngx.var.arg_name,
                            agentId = 110, numberInfoList = rows }))
                        local t = require("laaffic.transport.ngx").cosocket({ timeout = 10,
                            resolve = CREDS.resolve })
                        local th = ngx.thread.spawn(function() return t(req) end)
                        ngx.sleep(0.3)
                        req.body:close()
                        local ok, res, msg, kind, sent = ngx.thread.wait(th)
                        ngx.say(require("cjson").encode({ raised = not ok and tostring(res) or nil,
                            status = ok and res and res.status, message = msg, kind = kind,
                            sent = sent }))
                    }
                }
                # ?transport= (cosocket or subrequest) sending 1 MB to a peer that takes each
                # send at once (ngx.socket.tcp and ngx.location.capture replaced for the call),
                # each send costing 3 ms of the worker: what was sent, and how often the
                # transport slept to let the other requests in
                location = /yields {
                    content_by_lua_block {
                        local sent, sleeps = {}, 0
                        local function busy(ms)
                            ngx.update_time()
                            local t0 = ngx.now()
                            repeat ngx.update_time() until ngx.now() - t0 >= ms / 1000
                        end
                        local lines = { "HTTP/1.1 200 OK", "Content-Length: 2", "" }
                        local peer = {
                            settimeouts = function() end,
                            connect = function() return 1 end,
                            getreusedtimes = function() return 0 end,
                            send = function(_, data)
                                if type(data) == "table" then data = table.concat(data) end
                                sent[#sent + 1] = data
                                busy(3)
                                return #data
                            end,
                            receive = function(_, what)
                                if what == "*l" then return table.remove(lines, 1) end
                                return "{}"
                            end,
                            setkeepalive = function() return 1 end,
                            close = function() return 1 end,
                        }
                        local function capture(_, o)
                            sent[1] = o.body
                            o.ctx.laaffic.upstream_status = "200"
                            o.ctx.laaffic.upstream_sent = tostring(#o.body)
                            return { status = 200, header = {}, body = "{}" }
                        end
                        local tcp, loc, sleep = ngx.socket.tcp, ngx.location.capture, ngx.sleep
                        ngx.socket.tcp = function() return peer end
                        ngx.location.capture = capture
                        ngx.sleep = function(sec) sleeps = sleeps + 1; return sleep(sec) end
                        local body = ngx.var.arg_number and 1234567 or string.rep("0123456789", 100000)
                        local t = require("laaffic.transport.ngx")[ngx.var.arg_transport]({})
                        local ok, res, msg = pcall(t, { method = "POST", url = "http://127.0.0.1:9/x",
                                                        headers = {}, body = body })
                        ngx.socket.tcp, ngx.location.capture, ngx.sleep = tcp, loc, sleep
                        local sizes = {}
                        for i, piece in ipairs(sent) do sizes[i] = #piece end
                        local all = table.concat(sent)
                        ngx.say(require("cjson").encode({ raised = not ok and tostring(res) or nil,
                            status = ok and res and res.status, message = msg, sizes = sizes,
                            sleeps = sleeps, whole = all:sub(-#tostring(body)) == tostring(body),
                            head = all:sub(1, #all - #tostring(body)):match("^POST /x HTTP/1.1\r\n") ~= nil }))
                    }
                }
                # a transport called with a header it cannot write (?transport=, ?case=)
                location = /bad-header {
                    content_by_lua_block {
                        local cases = { bool = { ["X-Flag"] = true }, tbl = { ["X-T"] = {} },
                                        name = { [true] = "1" },
                                        crlf = { ["X-A"] = "a\r\nX-B: b" } }
                        local tcp, connects = ngx.socket.tcp, 0
                        ngx.socket.tcp = function() connects = connects + 1; return tcp() end
                        local t = require("laaffic.transport.ngx")[ngx.var.arg_transport]({ timeout = 5 })
                        if not t then return ngx.say('{"unavailable":true}') end
                        local ok, res, msg, kind, sent = pcall(t, { method = "POST",
                            url = "http://127.0.0.1:" .. ngx.var.server_port .. "/x",
                            headers = cases[ngx.var.arg_case], body = "{}" })
                        ngx.socket.tcp = tcp
                        ngx.say(require("cjson").encode({ raised = not ok and tostring(res) or nil,
                            message = msg, kind = kind, sent = sent, connects = connects }))
                    }
                }
                # the cosocket transport on its own, to ?path= on this server
                location = /cosocket {
                    content_by_lua_block {
                        local t = require("laaffic.transport.ngx").cosocket({ timeout = 5 })
                        local ok, res, msg, kind, sent = pcall(t, { method = "POST",
                            url = "http://127.0.0.1:" .. ngx.var.server_port .. ngx.var.arg_path,
                            headers = {}, body = "{}" })
                        ngx.say(require("cjson").encode({ raised = not ok and tostring(res) or nil,
                            status = ok and res and res.status, message = msg, kind = kind,
                            sent = sent }))
                    }
                }
            }
        ]]):gsub("@CREDS_FILE@", creds):gsub("@CA@", env.LAAFFIC_SANDBOX_CA)
           :gsub("@SBPORT@", port):gsub("@ROOT@", Nginx.root) }
    end)

    lazy_teardown(function()
        if app then
            assert.is_true(app:stop(), "the app nginx is still running")
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

    it("loads in init_by_lua and content_by_lua, and picks the non-blocking transport", function()
        local info = get_json(app:url("/info"))
        assert.are.equal(info.init, info.content)
        assert.are.equal("05d7a50893e22a5c4bb3216ae3396c7c", info.sign)
        assert.are.equal("laaffic.transport.ngx.auto", info.transport)
    end)

    it("refuses to send from init_worker (no I/O there), with a message naming the phase", function()
        local v = get(app:url("/result?name=init_worker"))
        assert.truthy(v:find("|transport|", 1, true), v)
        assert.truthy(v:find("init_worker", 1, true), v)
    end)

    it("a content handler creates a task through nginx/laaffic.conf (subrequest)", function()
        local r = get_json(app:url("/create?name=ngx-content-1"))
        assert.is_number(r.key_id, r.message)
        assert.are.equal("subrequest", r.via)
        local rec = sb:task_record(r.key_id)
        assert.are.equal("ngx-content-1", rec.taskName)
        assert.truthy(rec.user_agent:find("^laaffic/"))
    end)

    it("server answers map to errors through the subrequest too (-1, -41)", function()
        local bad = get_json(app:url("/create?name=ngx-content-2&secret=wrong"))
        assert.are.same({ "status", -1 }, { bad.kind, bad.code })
        assert.is_number(get_json(app:url("/create?name=ngx-content-3")).key_id)
        local again = get_json(app:url("/create?name=ngx-content-3"))
        assert.are.same({ "already_exists", -41 }, { again.kind, again.code })
    end)

    it("a dropped connection through the subrequest is ambiguous, never retried", function()
        sb:fault({ mode = "drop", count = 1 })
        local r = get_json(app:url("/create?name=ngx-drop"))
        assert.are.equal("ambiguous", r.kind, r.message)
        local _, reqs = sb:control("/_sandbox/requests")
        assert.are.equal(1, reqs.total)
    end)

    it("a timer creates a task through the cosocket transport (subrequests are not allowed there)", function()
        assert.are.equal("scheduled\n", get(app:url("/create-timer?name=ngx-timer-1")))
        local r
        for _ = 1, 100 do
            local out = get(app:url("/result?name=ngx-timer-1"))
            if out ~= "null\n" then r = cjson.decode(out) break end
            require("laaffic.core").sleep(0.05)
        end
        assert.is_table(r, "the timer did not finish")
        assert.is_number(r.key_id, r.message)
        assert.are.equal("cosocket", r.via)
        assert.are.equal(sb:task_record(r.key_id).taskName, "ngx-timer-1")
    end)

    it("the cosocket transport answers a malformed chunked body with an error, not a raise", function()
        local r = get_json(app:url("/cosocket?path=/bad-chunk"))
        assert.is_nil(r.raised)
        assert.are.same({ "reading the answer's body: bad chunk size", "connection", true },
                        { r.message, r.kind, r.sent })
    end)

    it("the cosocket transport sends a 200,000-number body in pieces that join up to it", function()
        local r = get_json(app:url("/create?name=ngx-pieces&rows=200000&transport=cosocket"))
        assert.is_number(r.key_id, r.message)
        assert.are.equal("cosocket", r.via)
        assert.are.same({}, r.failures)
        -- the sandbox parsed the whole JSON body: every row is there
        assert.are.equal(200000, sb:task_record(r.key_id).rows)
    end)

    it("a reset after 300 KB of a 17 MB body through the cosocket: sent = false, retried, " ..
       "one task", function()
        sb:fault({ mode = "reset", bytes = 300000, count = 1 })
        local r = get_json(app:url("/create?name=ngx-reset-mid&rows=200000&transport=cosocket"))
        -- the first attempt failed while its body was going out: nothing the server can have
        assert.are.same({ { kind = "connection", sent = false } }, r.failures)
        assert.is_number(r.key_id, r.message)
        local _, reqs = sb:control("/_sandbox/requests")
        assert.are.equal(2, reqs.total)
        local _, named = sb:tasks("ngx-reset-mid")
        assert.are.equal(1, named)
        assert.truthy((read(sb.dir .. "/logs/error.log") or ""):find("reset after 300000 body bytes", 1, true))
    end)

    it("the cosocket transport sends at most 256 KB at a time and sleeps between pieces when " ..
       "the peer takes every send at once", function()
        local r = get_json(app:url("/yields?transport=cosocket"))
        assert.is_nil(r.raised)
        assert.are.equal(200, r.status, r.message)
        assert.is_true(r.whole and r.head)
        -- 1,000,000 bytes: the head with the first 256 KB piece, then three more
        assert.are.equal(4, #r.sizes)
        for i = 2, 4 do assert.is_true(r.sizes[i] <= 262144) end
        -- each send held the worker 3 ms: a 1 ms sleep before every later piece
        assert.are.equal(3, r.sleeps)
    end)

    it("a header that is not a string or number, or holds CR LF: kind url, before connecting", function()
        for _, t in ipairs{ "cosocket", "resty_http" } do
            for _, case in ipairs{ "bool", "tbl", "name", "crlf" } do
                local r = get_json(app:url("/bad-header?transport=" .. t .. "&case=" .. case))
                if not r.unavailable then -- resty_http: when lua-resty-http is installed
                    assert.is_nil(r.raised, t .. " " .. case)
                    assert.are.same({ "url", false, 0 }, { r.kind, r.sent, r.connects }, t .. " " .. case)
                    assert.truthy(r.message:find("header", 1, true), r.message)
                end
            end
        end
    end)

    it("the subrequest transport sleeps before and after copying a big body to a string", function()
        local r = get_json(app:url("/yields?transport=subrequest"))
        assert.is_nil(r.raised)
        assert.are.equal(200, r.status, r.message)
        assert.are.same({ 1000000 }, r.sizes)
        assert.is_true(r.whole)
        assert.are.equal(2, r.sleeps)
    end)

    it("the subrequest transport sends a body that is not a string as its tostring", function()
        local r = get_json(app:url("/yields?transport=subrequest&number=1"))
        assert.is_nil(r.raised)
        assert.are.equal(200, r.status, r.message)
        assert.are.same({ 7 }, r.sizes)
        assert.is_true(r.whole)
        assert.are.equal(0, r.sleeps)
    end)

    it("a body closed while the cosocket sends it fails as not sent, kind url, nothing created", function()
        -- the sandbox waits before it reads, so the send is still under way at the close
        sb:fault({ mode = "slow_read", count = 1, ms = 1500 })
        local r = get_json(app:url("/cosocket-close?name=ngx-closed-mid"))
        assert.is_nil(r.raised)
        assert.are.same({ "url", false }, { r.kind, r.sent })
        assert.truthy(r.message:find("the body was closed while it was being sent", 1, true), r.message)
        local _, named = sb:tasks("ngx-closed-mid")
        assert.are.equal(0, named)
    end)

    it("does not block the worker: while a 200,000-number task goes to a slowed sandbox, " ..
       "other requests are answered within 50 ms", function()
        sb:fault({ mode = "slow_read", count = 1, ms = 2500 })
        local script = sb:file("nonblocking.sh")
        local out = sb:file("nonblocking.out")
        write(script, table.concat({
            "set -u",
            "curl -sS --max-time 60 -o " .. q(out .. ".create") .. " " ..
                q(app:url("/create?name=ngx-big&rows=200000")) .. " &",
            "big=$!",
            "for i in $(seq 1 60); do",
            "  curl -sS --max-time 5 -o " .. q(out .. ".ping") .. " -w '%{time_total} ' " ..
                q(app:url("/ping")) .. " >> " .. q(out),
            "  cat " .. q(out .. ".ping") .. " >> " .. q(out),
            "  kill -0 $big 2>/dev/null || break",
            "  sleep 0.05",
            "done",
            "wait $big",
        }, "\n") .. "\n")
        local log = sh("bash " .. q(script) .. " 2>&1")
        local answer = read(out .. ".create")
        assert(answer, "no answer to /create: " .. log .. app:log():sub(-2000))
        local ok, created = pcall(cjson.decode, answer)
        assert(ok, "not JSON from /create: " .. answer:sub(1, 500))
        assert.is_number(created.key_id, created.message)
        local rec = sb:task_record(created.key_id)
        assert.are.equal(200000, rec.rows)
        -- A ping counts once the client knows the send is under way: the first ping that
        -- answers "sending" may have been issued before, and waited out the encode (CPU
        -- work, synchronous by nature); every later one was issued during the send.
        local during, worst, seen = 0, 0, false
        for t, state in assert(read(out)):gmatch("([%d.]+) (%a+)\n") do
            if state == "sending" then
                if seen then
                    during = during + 1
                    worst = math.max(worst, tonumber(t))
                end
                seen = true
            end
        end
        assert.is_true(during >= 5, "only " .. during .. " pings were answered during the send")
        assert.is_true(worst < 0.05, ("a ping took %.1f ms during the send: %s"):format(worst * 1000,
                       read(out):gsub("\n", " ")))
    end)
end)
