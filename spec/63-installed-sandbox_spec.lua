-- The sandbox from an installed rock (README "The sandbox", issue 14 part 2): `luarocks
-- make` into a temporary tree as README's install section says, then, from a temporary
-- directory outside the checkout, with HOME and XDG_CACHE_HOME temporary (so the first
-- start builds the LuaJIT core into the cache) and only the tree's `luarocks path`: the
-- installed `laaffic sandbox start|status|stop`, `laaffic send --sandbox`, and a script
-- that requires laaffic (spec/installed.lua) creating a task against the sandbox. Under
-- Lua 5.4 the rock is installed for Lua 5.4; under LuaJIT for Lua 5.1 against LuaJIT's
-- headers, as README's OpenResty install block does (its `laaffic` runs on lua5.1).
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")
local sh, q, read, write, alive = SB.sh, SB.q, SB.read, SB.write, SB.alive

local ROOT = sh("cd " .. q(H.root) .. " && pwd"):match("^([^\n]+)")
local LUA = type(rawget(_G, "jit")) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
-- the rock's Lua version, luarocks make's extra arguments, the script's interpreter
local LV, MAKE_ARGS, APP_LUA = "5.4", "", "lua5.4"
if LUA == "luajit" then
    LV, MAKE_ARGS, APP_LUA = "5.1", "LUA_INCDIR=/usr/include/luajit-2.1 ", "luajit"
end

-- What a Lua or shell failure looks like: none of it may reach the user.
local function assert_no_trace(text)
    assert.falsy(text:find("stack traceback", 1, true), text)
    assert.falsy(text:find("%.lua:%d+:"), text)
    assert.falsy(text:find("line %d+:"), text)
end

describe("the sandbox from a rock installed for Lua " .. LV .. " (" .. LUA .. ") #slow", function()
    if LUA ~= "lua5.4" and LUA ~= "luajit" then
        it("runs under Lua 5.4 and LuaJIT", function() pending("Lua 5.4 and LuaJIT only") end)
        return
    end
    local t, tree, work, lua_path, lua_cpath, info

    setup(function()
        t = assert(sh("mktemp -d /tmp/laaffic-spec63.XXXXXX"):match("^(%S+)"))
        tree, work = t .. "/tree", t .. "/work"
        local out, rc = sh("mkdir -p " .. q(t .. "/src") .. " " .. q(work) .. " " .. q(t .. "/home") ..
            " && cd " .. q(ROOT) .. " && cp -r src lua rockspec bin sandbox doc " .. q(t .. "/src/") ..
            " && cd " .. q(t .. "/src") .. " && luarocks --lua-version=" .. LV .. " make --deps-mode=none" ..
            " --tree=" .. q(tree) .. " " .. MAKE_ARGS .. "rockspec/laaffic-*.rockspec >" ..
            q(t .. "/make.log") .. " 2>&1")
        assert(rc == 0, "luarocks make failed: " .. (read(t .. "/make.log") or "") .. out)
        -- the source copy goes: nothing may be found through it
        sh("rm -rf " .. q(t .. "/src"))
        -- the tree's paths and Lua's defaults, not the LUA_PATH this spec runs with
        out = sh("env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 " ..
                 "luarocks --lua-version=" .. LV .. " --tree=" .. q(tree) .. " path")
        lua_path = assert(out:match("LUA_PATH='([^']*)'"), out)
        lua_cpath = assert(out:match("LUA_CPATH='([^']*)'"), out)
        write(work .. "/task.json", '{"taskName":"spec63-cli","agentId":110,' ..
              '"numberInfoList":[{"calleeNumber":"919777654321"}]}\n')
    end)

    -- Runs a command in work/ with a clean environment: PATH, HOME, XDG_CACHE_HOME, the
    -- tree's LUA_PATH/LUA_CPATH, a state file of its own, and env's NAME = value.
    local function run(cmd, env)
        local vars = { PATH = SYS_PATH, HOME = t .. "/home", XDG_CACHE_HOME = t .. "/cache",
                       LUA_PATH = lua_path, LUA_CPATH = lua_cpath,
                       LAAFFIC_SANDBOX_STATE = t .. "/state" }
        for k, v in pairs(env or {}) do vars[k] = v or nil end
        local words = {}
        for k, v in pairs(vars) do words[#words + 1] = k .. "=" .. q(v) end
        local _, code = sh("cd " .. q(work) .. " && env -i " .. table.concat(words, " ") .. " " ..
                           cmd .. " >" .. q(t .. "/out") .. " 2>" .. q(t .. "/err") .. " </dev/null")
        return { code = code, out = read(t .. "/out") or "", err = read(t .. "/err") or "" }
    end
    local function laaffic(args, env)
        return run(q(tree .. "/bin/laaffic") .. " " .. args, env)
    end
    local function cached_core()
        return (sh("ls -d " .. q(t .. "/cache") .. "/laaffic/luajit-core-*/laaffic/core.so 2>/dev/null")
                :match("^([^\n]+)"))
    end

    -- Processes whose command line names the tree (the sandbox script and its --ttl
    -- watcher run from there), after up to 3 s for them to go. "[.]": the pattern does not
    -- match the shell that runs pgrep.
    local function left_running()
        local pattern = q((t:gsub("%.", "[.]")) .. "/")
        local out = ""
        for _ = 1, 30 do
            out = sh("pgrep -af " .. pattern .. " || true")
            if out == "" then break end
            sh("sleep 0.1")
        end
        return out
    end

    teardown(function()
        if t then
            laaffic("sandbox stop")
            sh("rm -rf " .. q(t))
        end
    end)

    it("nginx missing: names the Debian packages, no trace, nothing built", function()
        local r = laaffic("sandbox start", { NGINX = t .. "/nowhere/nginx" })
        assert.are_not.equal(0, r.code)
        assert.truthy(r.err:find("apt-get install nginx libnginx-mod-http-lua", 1, true), r.err)
        assert_no_trace(r.err)
        assert.is_nil(cached_core())
        assert.equals(1, laaffic("sandbox status").code)
    end)

    it("LuaJIT headers missing: names the Debian package, no trace, nothing left", function()
        local r = laaffic("sandbox start", { LAAFFIC_LUAJIT_INCDIR = t .. "/nowhere" })
        assert.are_not.equal(0, r.code)
        assert.truthy(r.err:find("libluajit2-5.1-dev", 1, true), r.err)
        assert_no_trace(r.err)
        assert.is_nil(cached_core())
        assert.equals("", sh("ls -A " .. q(t .. "/cache/laaffic") .. " 2>/dev/null"))
        assert.equals(1, laaffic("sandbox status").code)
    end)

    it("a compiler that fails or makes nothing: says what to install, no trace, no cache", function()
        for _, cc in ipairs{ "false", "true" } do
            local r = laaffic("sandbox start", { CC = cc })
            assert.are_not.equal(0, r.code)
            assert.truthy(r.err:find("libssl-dev libcurl4-openssl-dev", 1, true), r.err)
            assert_no_trace(r.err)
            assert.equals("", sh("ls -A " .. q(t .. "/cache/laaffic") .. " 2>/dev/null"))
        end
        local r = laaffic("sandbox start", { CC = "no-such-cc" })
        assert.are_not.equal(0, r.code)
        assert.truthy(r.err:find("no C compiler", 1, true), r.err)
        assert.truthy(r.err:find("apt-get install gcc", 1, true), r.err)
    end)

    it("start from outside the checkout builds the LuaJIT core into the cache on first use", function()
        local r = laaffic("sandbox start --json --ttl 600")
        assert.equals(0, r.code, r.err)
        assert.truthy(r.err:find("building laaffic.core", 1, true), r.err)
        info = SB.decode(r.out)
        assert.truthy(info and info.ok and info.pid, r.out)
        info.pid = tonumber(("%d"):format(info.pid))     -- cjson decodes 123 as 123.0 on 5.4
        assert.truthy(alive(info.pid))
        local core = cached_core()
        assert.truthy(core, "no core.so in the cache")
        -- nginx loaded the cached core and the tree's modules, not the checkout's
        local maps = read("/proc/" .. sh("pgrep -P " .. info.pid):match("%d+") .. "/maps") or ""
        assert.truthy(maps:find(core, 1, true), "the worker did not load " .. core)
        local conf = read(info.dir .. "/nginx.conf")
        assert.truthy(conf:find(tree .. "/share/lua/" .. LV .. "/?.lua", 1, true), conf)
        assert.falsy(conf:find(ROOT, 1, true), conf)
        r = laaffic("sandbox status")
        assert.equals(0, r.code, r.err)
        assert.truthy(r.out:find("running: pid " .. info.pid, 1, true), r.out)
    end)

    it("laaffic send --sandbox creates a task the sandbox recorded", function()
        local r = laaffic("send --json --sandbox " .. q(info.dir) .. " --task task.json")
        assert.equals(0, r.code, r.err)
        local part = SB.decode(r.out).parts[1]
        assert.equals("spec63-cli", part.task_name)
        assert.truthy(part.key_id, r.out)
        local sb = setmetatable({ tmp = t, n = 0, env = SB.parse_env(read(info.env_file)) }, SB.Sandbox)
        local rec = sb:task_record(part.key_id)
        assert.truthy(rec, "the sandbox has no task " .. tostring(part.key_id))
        assert.equals("spec63-cli", rec.taskName)
    end)

    it("a script that requires laaffic creates a task against it", function()
        write(work .. "/app.lua", read(ROOT .. "/spec/installed.lua"))
        local r = run(APP_LUA .. " app.lua " .. q(tree), { LAAFFIC_SANDBOX_ENV = info.env_file })
        assert.equals(0, r.code, r.err .. r.out)
        local key_id = tonumber(r.out:match("sandbox keyId (%d+)"))
        assert.truthy(key_id, r.out)
        local sb = setmetatable({ tmp = t, n = 0, env = SB.parse_env(read(info.env_file)) }, SB.Sandbox)
        assert.equals("installed-sandbox", (sb:task_record(key_id) or {}).taskName)
    end)

    it("stop: nginx and its workers are gone, nothing is left running", function()
        local workers = sh("pgrep -P " .. info.pid)
        local r = laaffic("sandbox stop")
        assert.equals(0, r.code, r.err)
        assert.falsy(alive(info.pid))
        for w in workers:gmatch("%d+") do assert.falsy(alive(tonumber(w))) end
        assert.equals("", left_running())
        assert.equals(1, laaffic("sandbox status").code)
        assert.equals("", sh("test -e " .. q(info.dir) .. " && echo left"))
    end)

    it("two first starts at once both succeed and leave one cached core", function()
        local bin, d1, d2 = q(tree .. "/bin/laaffic"), t .. "/sb1", t .. "/sb2"
        write(t .. "/two.sh", bin .. " sandbox start --ttl 600 --dir " .. q(d1) .. " >/dev/null 2>&1 &\n" ..
              bin .. " sandbox start --ttl 600 --dir " .. q(d2) .. " >/dev/null 2>&1; b=$?\n" ..
              "wait $!; echo \"$? $b\"\n")
        local r = run("sh " .. q(t .. "/two.sh"), { XDG_CACHE_HOME = t .. "/cache2" })
        assert.equals("0 0\n", r.out, r.err)
        local dirs = sh("ls -A " .. q(t .. "/cache2/laaffic"))
        assert.truthy(dirs:match("^luajit%-core%-[^\n]+\n$"), dirs)
        for _, d in ipairs{ d1, d2 } do
            assert.equals(0, laaffic("sandbox status --dir " .. q(d)).code)
            assert.equals(0, laaffic("sandbox stop --dir " .. q(d)).code)
        end
        assert.equals("", left_running())
    end)

    it("a second start reuses the cached core", function()
        local core = cached_core()
        local before = sh("stat -c %i:%Y:%s " .. q(core))
        local r = laaffic("sandbox start --ttl 600")
        assert.equals(0, r.code, r.err)
        assert.falsy(r.err:find("building", 1, true), r.err)
        assert.equals(before, sh("stat -c %i:%Y:%s " .. q(core)))
        assert.equals(core, cached_core())
        r = laaffic("sandbox stop")
        assert.equals(0, r.code, r.err)
        assert.equals("", left_running())
    end)

    it("a rock without its copy of a source: says to reinstall it, no trace (last: it breaks the rock)", function()
        sh("rm -f " .. q(tree) .. "/lib/luarocks/rocks-" .. LV .. "/laaffic/*/src/sign.c")
        local r = laaffic("sandbox start", { XDG_CACHE_HOME = t .. "/cache3" })
        assert.equals(4, r.code, r.err)
        assert.truthy(r.err:find("src/sign.c is not in the rock's directory", 1, true), r.err)
        assert.truthy(r.err:find("reinstall the rock", 1, true), r.err)
        assert_no_trace(r.err)
        assert.equals("", sh("ls -A " .. q(t .. "/cache3") .. " 2>/dev/null"))
    end)
end)
