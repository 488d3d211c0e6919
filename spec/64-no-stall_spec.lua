-- A 200,000-number task does not stall the nginx worker that encodes it (README,
-- "OpenResty"): from a content handler and from a timer, with a Lua list and with a
-- 200,000-row CSV source, the client encodes slice_rows rows at a time and yields to nginx
-- between slices, so another request to the same (single) worker is served before the
-- encode is over; with slice_rows = 0 it is served only after it. And the task the
-- sandbox receives is byte for byte the one-call encode.
--
-- No timing is measured: the order of events is read from a counter in a shared dict.
-- The other request (/ping) waits in the worker, yielding with ngx.sleep(0.001), until
-- the send has begun: its wake-up is due before the encoder's first, so it runs at the
-- first yield after the encode began, which is between two slices, or, in one call, after
-- the encode (the client's clock is read once the body is encoded: that marks its end).
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")
local Nginx = dofile(H.root .. "/spec/nginx.lua")
local core = require("laaffic.core")
local sh, q, write = SB.sh, SB.q, SB.write

local HTTP = [==[
    lua_shared_dict seq 1m;
    init_worker_by_lua_block {
        -- the tasks are built here, so building them is not part of any request
        laaffic = require("laaffic")
        local core, cjson = require("laaffic.core"), require("cjson")
        local creds = dofile("@CREDS_FILE@")
        local rows, lines = {}, { "calleeNumber,text1,text2" }
        for i = 1, 200000 do
            rows[i] = { calleeNumber = string.format("9198%08d", i), text1 = "caller " .. i,
                        text2 = tostring(i) }
            lines[i + 1] = string.format("9198%08d,caller %d,%d", i, i, i)
        end
        local csv = table.concat(lines, "\n") .. "\n"
        local dict = ngx.shared.seq
        function TASK(name, mode)
            return { appId = creds.app_id, taskName = name, agentId = 110,
                     numberInfoList = mode == "csv" and assert(core.csv_string(csv)) or rows }
        end
        -- notes that event `what` of send `name` happened now, as the counter's next value
        function MARK(name, what)
            dict:set(name .. ":" .. what, (dict:incr("n", 1, 0)))
        end
        function SEND(name, mode, slice)
            local encoded = false
            local c = laaffic.new({ api_key = creds.api_key, api_secret = creds.api_secret,
                base_url = creds.base_url, transport = "cosocket", retries = 0, slice_rows = slice,
                clock = function()
                    if not encoded then -- first read right after the encode
                        encoded = true
                        MARK(name, "encoded")
                    end
                    return ngx.time()
                end })
            dict:set("started", name)
            local key_id, err = c:create_task(TASK(name, mode))
            MARK(name, "sent")
            dict:set(name .. ":result", cjson.encode({ key_id = key_id,
                err = not key_id and tostring(err) or nil }))
        end
    }
    server {
        listen 127.0.0.1:$PORT;
        # the other request: it waits (yielding) until send `name` has begun
        location = /ping {
            content_by_lua_block {
                local dict, name = ngx.shared.seq, ngx.var.arg_name
                dict:set(name .. ":waiting", true)
                local t0 = ngx.now()
                while dict:get("started") ~= name and ngx.now() - t0 < 60 do
                    ngx.sleep(0.001)
                end
                MARK(name, "ping")
                ngx.say("pong")
            }
        }
        location = /send {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                SEND(a.name, a.mode, tonumber(a.slice))
                ngx.print("sent")
            }
        }
        location = /send-timer {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local ok, err = ngx.timer.at(0, function(premature)
                    if not premature then SEND(a.name, a.mode, tonumber(a.slice)) end
                end)
                ngx.print(ok and "scheduled" or err)
            }
        }
        location = /state {
            content_by_lua_block {
                local dict, name = ngx.shared.seq, ngx.var.arg_name
                local out = {}
                for _, k in ipairs({ "waiting", "encoded", "ping", "sent" }) do
                    out[k] = dict:get(name .. ":" .. k)
                end
                out.result = dict:get(name .. ":result")
                ngx.say(require("cjson").encode(out))
            }
        }
        # the one-call encode's bytes, for the comparison with what the sandbox received
        location = /one-call {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local body = assert(laaffic.core.encode(TASK(a.name, a.mode)))
                ngx.say(require("cjson").encode({ md5 = ngx.md5(body), bytes = #body }))
            }
        }
    }
]==]

describe("a 200,000-number task in nginx", function()
    local sb, app

    local function get(path)
        local out = sh("curl -sS --max-time 120 " .. q(app:url(path)))
        local ok, v = pcall(cjson.decode, out)
        if ok then return v end
        return out
    end

    -- polls /state?name= until ready(state)
    local function state_when(name, ready)
        for _ = 1, 1200 do
            local st = get("/state?name=" .. name)
            if type(st) == "table" and ready(st) then return st end
            core.sleep(0.05)
        end
        error("gave up waiting for " .. name .. ": " .. app:log():sub(-3000))
    end

    lazy_setup(function()
        sb = SB.Sandbox.start()
        local env = sb.env
        -- the credentials reach nginx through a file only its owner reads, never argv
        local creds = sb.tmp .. "/app-creds.lua"
        write(creds, ("return { api_key = %q, api_secret = %q, app_id = %q, base_url = %q }")
              :format(env.LAAFFIC_SANDBOX_KEY, env.LAAFFIC_SANDBOX_SECRET,
                      env.LAAFFIC_SANDBOX_APP_ID, env.LAAFFIC_SANDBOX_HTTP))
        sh("chmod 600 " .. q(creds))
        app = Nginx.start{ workers = 1, log_level = "warn", http = (HTTP:gsub("@CREDS_FILE@", creds)) }
    end)

    lazy_teardown(function()
        if app then app:stop() end
        if sb then sb:stop() end
    end)

    -- Sends task `name` (via "content" or "timer", mode "list" or "csv", slice rows or
    -- the default) while /ping waits in the same worker; returns the order of events.
    local function send(via, mode, slice)
        local name = ("nostall-%s-%s-%s"):format(via, mode, tostring(slice or "default"))
        sh("curl -sS --max-time 120 -o /dev/null " .. q(app:url("/ping?name=" .. name)) ..
           " >/dev/null 2>&1 &")
        state_when(name, function(st) return st.waiting end)
        local args = "?name=" .. name .. "&mode=" .. mode .. (slice and "&slice=" .. slice or "")
        assert.are.equal(via == "timer" and "scheduled" or "sent",
                         get((via == "timer" and "/send-timer" or "/send") .. args))
        local st = state_when(name, function(s) return s.result and s.ping end)
        local result = cjson.decode(st.result)
        assert.is_not_nil(result.key_id, result.err)
        -- what the sandbox received is the one-call encode
        local want = get("/one-call?name=" .. name .. "&mode=" .. mode)
        local got = assert(sb:task_record(result.key_id), "no task " .. tostring(result.key_id))
        assert.are.same({ md5 = want.md5, bytes = want.bytes, rows = 200000 },
                        { md5 = got.md5, bytes = got.bytes, rows = got.rows })
        return st
    end

    for _, via in ipairs({ "content", "timer" }) do
        for _, mode in ipairs({ "list", "csv" }) do
            it("serves another request while it is encoded, from a " .. via .. " (" .. mode .. ")",
               function()
                local st = send(via, mode)
                assert.is_true(st.ping < st.encoded, cjson.encode(st))
                assert.is_true(st.encoded < st.sent, cjson.encode(st))
            end)

            it("holds the worker for the whole encode with slice_rows = 0, from a " .. via ..
               " (" .. mode .. ")", function()
                local st = send(via, mode, 0)
                assert.is_true(st.encoded < st.ping, cjson.encode(st))
            end)
        end
    end
end)
