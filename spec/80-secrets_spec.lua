-- No secret leaks: everything the SDK can emit (errors of every kind, the logger's events,
-- tostring of the client, requests, headers, errors and sources, a deep dump of the client
-- table, create_tasks results) and everything the CLI prints at every verbosity is
-- searched for the API secret and for every Sign value that could have been made while
-- the spec ran. On a hit the spec says where, never what.
local laaffic = require("laaffic")
local core = require("laaffic.core")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")
local S = dofile(H.root .. "/spec/shell.lua")

-- a secret unlike anything else in the output, and its own key
local KEY = "kEy4Spec80"
local SECRET = "zQ9-sEcReT-80x"

-- Every text the SDK emitted, with where it came from.
local emitted = {}
local function emit(where, v)
    emitted[#emitted + 1] = { where = where, text = tostring(v) }
end

-- A deep, cycle-safe dump of any value: keys, values, metatables, upvalues of functions.
local function dump(v, out, seen)
    out, seen = out or {}, seen or {}
    local t = type(v)
    if t == "table" then
        -- the globals lead everywhere, this spec's own SECRET included: not the client's
        if seen[v] or v == _G or v == package.loaded then return out end
        seen[v] = true
        for k, x in pairs(v) do
            dump(k, out, seen)
            dump(x, out, seen)
        end
        local mt = getmetatable(v)
        if type(mt) == "table" then dump(mt, out, seen) end
    elseif t == "function" then
        if seen[v] then return out end
        seen[v] = true
        for i = 1, 255 do
            local name, x = debug.getupvalue(v, i)
            if not name then break end
            -- laaffic.init's private table is reachable only through its functions'
            -- upvalues, on purpose: a debug-library walk is not a "table dump"
            if name ~= "private" and name ~= "_ENV" then dump(x, out, seen) end
        end
    else
        out[#out + 1] = tostring(v)
    end
    return out
end

local t_start = os.time()

-- every Sign this key and secret could have produced from t_start-60 to now+60
local function signs()
    local out = {}
    for ts = t_start - 60, os.time() + 60 do
        out[#out + 1] = core.sign(KEY, SECRET, ts)
    end
    return out
end

local function assert_clean(list)
    local all = signs()
    for _, e in ipairs(list) do
        if e.text:find(SECRET, 1, true) then
            error("the API secret appears in: " .. e.where, 2)
        end
        for _, s in ipairs(all) do
            if e.text:find(s, 1, true) then
                error("a Sign value appears in: " .. e.where, 2)
            end
        end
    end
end

describe("secrets", function()
    local sb, env, events

    local function client(o)
        local opts = {
            api_key = KEY, api_secret = SECRET, app_id = env.LAAFFIC_SANDBOX_APP_ID,
            base_url = env.LAAFFIC_SANDBOX_HTTPS, cafile = env.LAAFFIC_SANDBOX_CA, backoff = 0,
            timeout = 5, retries = 1,
            logger = function(ev) events[#events + 1] = ev end,
        }
        for k, v in pairs(o or {}) do opts[k] = v end
        return laaffic.new(opts)
    end
    local seq = 0
    local function task(extra)
        seq = seq + 1
        local t = { taskName = ("spec80-%d-%d"):format(t_start, seq), agentId = 110,
                    numberInfoList = { { calleeNumber = "919777654321", text1 = "David" } } }
        for k, v in pairs(extra or {}) do t[k] = v end
        return t
    end

    setup(function()
        -- the sandbox knows our key and secret, so some requests succeed
        sb = SB.Sandbox.start{ LAAFFIC_SANDBOX_KEY = KEY, LAAFFIC_SANDBOX_SECRET = SECRET }
        env = sb.env
        events = {}
    end)
    teardown(function()
        if sb then sb:stop() end
    end)

    it("the checker itself finds a secret and a Sign where there is one", function()
        assert.has_error(function() assert_clean({ { where = "x", text = "a" .. SECRET .. "b" } }) end)
        local sign = core.sign(KEY, SECRET, os.time())
        assert.has_error(function() assert_clean({ { where = "x", text = "Sign: " .. sign } }) end)
        assert_clean({ { where = "x", text = "nothing here" } })
    end)

    it("is not in the client object, its tostring, or a deep dump of it", function()
        local c = client()
        emit("tostring(client)", c)
        for i, s in ipairs(dump(c)) do emit("dump(client)[" .. i .. "]", s) end
        local req = assert(c:build_task(task()))
        emit("tostring(req)", req)
        emit("tostring(req.headers)", req.headers)
        assert.truthy(#req.headers.Sign == 32)   -- the Sign is there, for the transport
        assert_clean(emitted)
    end)

    it("is not in any error or logger event, whatever fails", function()
        local c = client()
        local runs = {
            function() return c:create_task(task()) end,                                -- success
            function() return c:create_task(task({ agentId = "x" })) end,               -- invalid
            function() return client{ api_secret = "wrong" }:create_task(task()) end,   -- -1 from the server
            function() return client{ base_url = "https://no-such-host.invalid" }:create_task(task()) end,
            function() return client{ cafile = "/dev/null" }:create_task(task()) end,   -- certificate
            function() return client{ base_url = "https://127.0.0.1:1" }:create_task(task()) end,
            function()
                sb:fault{ mode = "status500" }
                return c:create_task(task())
            end,
            function()
                sb:fault{ mode = "garbage" }
                return c:create_task(task())
            end,
            function()
                sb:fault{ mode = "drop" }
                return c:create_task(task())
            end,
            function()
                local t = task()
                c:create_task(t)
                return c:create_task(t)                                                  -- already_exists
            end,
            function()
                local src = assert(laaffic.csv.from_string("calleeNumber\n919777654321\nbad\n"))
                local result, err = c:create_tasks(task({ numberInfoList = src }), { max_rows = 1 })
                for i, s in ipairs(dump(result)) do emit("create_tasks result[" .. i .. "]", s) end
                return nil, err
            end,
        }
        for i, run in ipairs(runs) do
            local ok, err = run()
            emit("run " .. i .. " result", ok)
            if err then
                emit("run " .. i .. " tostring(err)", err)
                for k, s in ipairs(dump(err)) do emit("run " .. i .. " err field " .. k, s) end
            end
        end
        for i, ev in ipairs(events) do
            for k, s in ipairs(dump(ev)) do emit("logger event " .. i .. "." .. k, s) end
        end
        assert.is_true(#events >= 10)
        assert_clean(emitted)
    end)

    it("is not in what the CLI prints, at any verbosity, on success and on failure", function()
        local cli = H.root .. "/bin/laaffic"
        local f = io.open(cli)
        if not f then
            pending("bin/laaffic is not there yet")
            return
        end
        f:close()
        local lua = H.lua_bin and H.lua_bin() or (arg and arg[-1]) or "lua5.4"
        local dir = assert(S.sh("mktemp -d /tmp/laaffic-spec80.XXXXXX")):match("^(%S+)")
        local task_file = dir .. "/task.json"
        S.write(task_file, ('{"taskName":"spec80-cli-%d","agentId":110,' ..
            '"numberInfoList":[{"calleeNumber":"919777654321"}]}'):format(t_start))
        local csv_file = dir .. "/list.csv"
        S.write(csv_file, "calleeNumber,text1\n919777654321,a\nbad,b\n919777654322,c\n")
        local envs = table.concat({
            "LAAFFIC_API_KEY=" .. S.q(KEY), "LAAFFIC_API_SECRET=" .. S.q(SECRET),
            "LAAFFIC_APP_ID=" .. S.q(env.LAAFFIC_SANDBOX_APP_ID),
            "LAAFFIC_BASE_URL=" .. S.q(env.LAAFFIC_SANDBOX_HTTPS),
            "LAAFFIC_CAFILE=" .. S.q(env.LAAFFIC_SANDBOX_CA),
            "LUA_PATH=" .. S.q(os.getenv("LUA_PATH") or ""), "LUA_CPATH=" .. S.q(os.getenv("LUA_CPATH") or ""),
            "HOME=" .. S.q(dir),
        }, " ")
        local cmds = {
            "send --task " .. task_file,
            "send --task " .. task_file,                      -- already exists
            "send --task " .. task_file .. " --numbers " .. csv_file,
            "send --task " .. task_file .. " --numbers " .. csv_file .. " --rejects " .. dir .. "/rej.csv",
            "validate --task " .. task_file .. " --numbers " .. csv_file,
            -- the secret pasted as a stray argument is never echoed back
            "send --task " .. task_file .. " " .. SECRET, SECRET .. " send", "sandbox " .. SECRET,
            -- sign's stdout is the Sign, by design (for `laaffic sign | curl -K -`): only
            -- its stderr is searched
            "sign",
        }
        local outs, first = 0, {}
        for i, c in ipairs(cmds) do
            local redirect = c == "sign" and "2>&1 >/dev/null" or "2>&1"
            for _, flags in ipairs{ "", "-v", "-v -v", "--json", "-q", "--json -v" } do
                local out = S.sh(("env %s %s %s %s %s %s"):format(envs, lua, cli, c, flags, redirect))
                outs = outs + 1
                first[i] = first[i] or out or ""
                emit("laaffic " .. c:gsub(dir, "DIR") .. " " .. flags, out or "")
            end
        end
        -- the commands did run: a task was created, a row was refused, a list was checked
        assert.truthy(first[1]:find("created, keyId", 1, true), "the first send did not create")
        assert.truthy(first[2]:find("already exists", 1, true), "the second send was not refused")
        assert.truthy(first[5]:find("list.csv:3:1: calleeNumber", 1, true), "validate found nothing")
        -- the wrong secret: the server's refusal is printed, the secret is not
        local out = S.sh(("env %s LAAFFIC_API_SECRET=wrong-%s %s %s send --task %s -v 2>&1"):format(
            envs, "x", lua, cli, task_file))
        emit("laaffic send with a wrong secret", out or "")
        S.sh("rm -rf " .. S.q(dir))
        assert.is_true(outs > 30)
        assert_clean(emitted)
    end)
end)
