-- laaffic.cli.sandbox_core's cache (README "The sandbox"): nginx loads the LuaJIT build of
-- laaffic.core found in ${XDG_CACHE_HOME:-$HOME/.cache}/laaffic, so a cache that another
-- user owns or may write, or a symbolic link planted in it, is refused before anything
-- there is used, and a build leaves a core that only its owner may write, whatever the
-- umask. A stand-in compiler makes the "core" (no real build: fast, no LuaJIT needed).
local sandbox_core = require("laaffic.cli.sandbox_core")
local util = require("laaffic.cli.util")

local function sh(cmd)
    local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
    local out = p:read("*a")
    p:close()
    local body, rc = out:match("^(.-)rc=(%d+)%s*$")
    return body, tonumber(rc)
end
local q = util.q

describe("the sandbox's cache of the LuaJIT core", function()
    local t, env, built

    local function ctx()
        return { env = function(k) return env[k] end, stderr = { write = function() end } }
    end
    -- ensure() -> the core's directory | nil, the failure's code and message
    local function ensure()
        local ok, r = pcall(sandbox_core.ensure, ctx(), t .. "/rock")
        if ok then return r end
        assert.are.equal("table", type(r), tostring(r))
        return nil, r.code, r.message
    end
    local function refused(what)
        local dir, code, msg = ensure()
        assert.is_nil(dir, what)
        assert.are.equal(util.EXIT.CONFIG, code, what)
        assert.matches("not yours alone", msg, 1, true)
        return msg
    end

    before_each(function()
        t = assert(sh("mktemp -d /tmp/laaffic-spec65.XXXXXX"):match("^(%S+)"))
        -- a rock's directory: its rockspec and src/; LuaJIT "headers"; a compiler that
        -- writes its -o file with mode 666
        local _, rc = sh("mkdir -p " .. q(t .. "/rock") .. " " .. q(t .. "/inc") ..
                         " && cp rockspec/laaffic-*.rockspec " .. q(t .. "/rock/") ..
                         " && cp -r src " .. q(t .. "/rock/") ..
                         " && touch " .. q(t .. "/inc/lua.h") .. " " .. q(t .. "/inc/lauxlib.h"))
        assert.are.equal(0, rc)
        local f = assert(io.open(t .. "/cc", "w"))
        f:write('#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && o=$2; shift; done\n',
                'echo core > "$o" && chmod 666 "$o"\n')
        f:close()
        sh("chmod 755 " .. q(t .. "/cc"))
        env = { CC = t .. "/cc", LAAFFIC_LUAJIT_INCDIR = t .. "/inc", XDG_CACHE_HOME = t .. "/cache",
                HOME = t .. "/home" }
        built = assert(ensure())
    end)

    after_each(function()
        if t then sh("rm -rf " .. q(t)) end
    end)

    it("builds a core no one else may write, and uses it again", function()
        assert.are.equal("", (sh("find " .. q(t .. "/cache") .. " -perm /022")))
        assert.are.equal(built, ensure())
    end)

    it("refuses a cache, a core directory or a core that others may write", function()
        for _, p in ipairs{ t .. "/cache/laaffic", built, built .. "/laaffic", built .. "/laaffic/core.so" } do
            for _, mode in ipairs{ "g+w", "o+w" } do
                sh("chmod " .. mode .. " " .. q(p))
                refused(p .. " " .. mode)
                sh("chmod go-w " .. q(p))
            end
        end
        assert.are.equal(built, ensure())
    end)

    it("refuses a cache or a core that another user owns", function()
        for _, p in ipairs{ t .. "/cache/laaffic", built, built .. "/laaffic/core.so" } do
            local _, rc = sh("chown nobody " .. q(p))
            if rc ~= 0 then return pending("chown needs root") end
            refused(p .. " owned by nobody")
            sh("chown " .. q((sh("id -un"):match("%S+"))) .. " " .. q(p))
        end
        assert.are.equal(built, ensure())
    end)

    it("refuses a symbolic link planted for the core's directory, the core, or the cache", function()
        sh("mv " .. q(built) .. " " .. q(t .. "/elsewhere") .. " && ln -s " .. q(t .. "/elsewhere") .. " " .. q(built))
        refused("the core's directory a link")
        sh("rm " .. q(built) .. " && mv " .. q(t .. "/elsewhere") .. " " .. q(built))
        sh("mv " .. q(built .. "/laaffic/core.so") .. " " .. q(t .. "/other.so") .. " && ln -s " ..
           q(t .. "/other.so") .. " " .. q(built .. "/laaffic/core.so"))
        refused("the core a link")
        sh("rm -rf " .. q(t .. "/cache") .. " && mkdir -p " .. q(t .. "/real") .. " " .. q(t .. "/cache") ..
           " && ln -s " .. q(t .. "/real") .. " " .. q(t .. "/cache/laaffic"))
        local msg = refused("the cache a link")
        assert.matches(t .. "/cache/laaffic", msg, 1, true)
        assert.are.equal("", (sh("ls -A " .. q(t .. "/real"))))
    end)
end)

describe("laaffic-sandbox start with a path nginx.conf cannot hold", function()
    local t
    local ROOT = sh("pwd"):match("^([^\n]+)")

    before_each(function()
        t = assert(sh("mktemp -d /tmp/laaffic-spec65.XXXXXX"):match("^(%S+)"))
        -- what find_core looks for, as an installed rock gives it: nothing gets that far
        sh("mkdir -p " .. q(t .. "/lua/laaffic") .. " " .. q(t .. "/core/laaffic") .. " && touch " ..
           q(t .. "/lua/laaffic/http1.lua") .. " " .. q(t .. "/core/laaffic/core.so"))
    end)

    after_each(function()
        if t then
            for _, d in ipairs{ "a b", 'x");os.exit(7)--', "sb", "shared" } do
                sh("LAAFFIC_SANDBOX_STATE=" .. q(t .. "/state") .. " sandbox/laaffic-sandbox stop --dir " ..
                   q(t .. "/" .. d) .. " >/dev/null")
            end
            sh("rm -rf " .. q(t))
        end
    end)

    -- start with LAAFFIC_SANDBOX_LUA_DIR (t/lua by default) and arguments -> exit code, stderr
    local function start(lua, args, cd)
        local out, rc = sh("{ cd " .. q(cd or ROOT) .. " && env LAAFFIC_SANDBOX_STATE=" .. q(t .. "/state") ..
                           " LAAFFIC_SANDBOX_LUA_DIR=" .. q(lua or t .. "/lua") ..
                           " LAAFFIC_SANDBOX_CORE_DIR=" .. q(t .. "/core") .. " " ..
                           q(ROOT .. "/sandbox/laaffic-sandbox") .. " start --ttl 30 " .. args ..
                           " 2>&1 >/dev/null; }")
        return rc, out
    end

    it("refuses a --dir with a space or a quote before making anything, naming it", function()
        for _, d in ipairs{ "a b", 'x");os.exit(7)--' } do
            local rc, err = start(nil, "--dir " .. q(t .. "/" .. d))
            assert.are.equal(1, rc, err)
            assert.matches("--dir (" .. t .. "/" .. d .. "): nginx.conf cannot hold this path", err, 1, true)
            assert.is_nil(io.open(t .. "/" .. d .. "/nginx.conf"))
        end
        -- a relative --dir is checked as the absolute path it names
        local rc, err = start(nil, "--dir " .. q("rel dir"), t)
        assert.are.equal(1, rc, err)
        assert.matches("nginx.conf cannot hold", err, 1, true)
    end)

    it("leaves the mode of a --dir it did not make, and refuses one others may write", function()
        sh("mkdir -p " .. q(t .. "/shared") .. " && chmod 1777 " .. q(t .. "/shared"))
        local rc, err = start(nil, "--dir " .. q(t .. "/shared"))
        assert.are.equal(1, rc, err)
        assert.matches("--dir " .. t .. "/shared: others may write in it", err, 1, true)
        assert.are.equal("1777\n", (sh("stat -c %a " .. q(t .. "/shared"))))
        assert.are.equal("", (sh("ls -A " .. q(t .. "/shared"))))
    end)

    it("refuses a Lua directory with ; ? $ or a quote (nginx.conf's package paths)", function()
        for _, d in ipairs{ "l;d", "l?d", "l$prefix", 'l"d' } do
            local lua = t .. "/" .. d
            sh("mkdir -p " .. q(lua .. "/laaffic") .. " && touch " .. q(lua .. "/laaffic/http1.lua"))
            local rc, err = start(lua, "--dir " .. q(t .. "/sb"))
            assert.are.equal(1, rc, err)
            assert.matches("LAAFFIC_SANDBOX_LUA_DIR (" .. lua .. "): nginx.conf cannot hold", err, 1, true)
        end
    end)
end)
