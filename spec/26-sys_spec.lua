-- core.file_id's mode and core.isatty: what the command-line tool asks the core instead of
-- shelling out to `stat -L -c %a` (the config file's permission check) and `test -t`
-- (whether to draw progress and colours).
local core = require("laaffic.core")
local here = (debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./")
local S = dofile(here .. "shell.lua")
local H = dofile(here .. "helpers.lua")
local q = S.q

local LUA = H.is_luajit and "luajit" or "lua5.4"

-- Runs `code` in a child interpreter with this build of the core; stdin from /dev/null.
local function child(code, wrap)
    local cmd = "LUA_CPATH=" .. q(package.cpath) .. " " .. LUA .. " -e " .. q(code) .. " </dev/null"
    return S.sh(wrap and wrap(cmd) or cmd)
end

describe("core.file_id", function()
    local tmpdir
    setup(function() tmpdir = S.sh("mktemp -d /tmp/laaffic-spec26.XXXXXX"):match("^(%S+)") end)
    teardown(function() if tmpdir then S.sh("rm -rf " .. q(tmpdir)) end end)

    it("returns the permission bits of the file, a symlink followed", function()
        local path = tmpdir .. "/laaffic.conf"
        S.write(path, "api_key = k\n")
        assert(S.sh("chmod 600 " .. q(path) .. " && ln -s " .. q(path) .. " " .. q(tmpdir .. "/link")))
        local id, mode = core.file_id(path)
        assert.truthy(id:match("^%d+:%d+$"))
        assert.equal(tonumber("600", 8), mode)
        S.sh("chmod 2640 " .. q(path))
        assert.equal(tonumber("2640", 8), select(2, core.file_id(path)))
        assert.equal(tonumber("2640", 8), select(2, core.file_id(tmpdir .. "/link")))
        local none, err = core.file_id(tmpdir .. "/nosuch")
        assert.is_nil(none)
        assert.matches("No such file", err, 1, true)
    end)
end)

describe("core.isatty", function()
    local code = "local c = require('laaffic.core') " ..
                 "io.write(tostring(c.isatty(0)), ' ', tostring(c.isatty(1)))"

    it("is false for /dev/null and a pipe", function()
        assert.equal("false false", child(code .. " io.flush()", function(cmd) return cmd .. " | cat" end))
    end)

    it("is true for a terminal", function()
        if S.sh("command -v script"):match("^%s*$") then
            pending("needs script(1) for a pseudo-terminal")
            return
        end
        local out = child(code, function(cmd) return "script -qec " .. q(cmd) .. " /dev/null" end)
        assert.truthy(out:find("false true", 1, true), out)
    end)

    it("is false for a descriptor that is not open, and refuses a negative one", function()
        assert.is_false(core.isatty(999))
        assert.has_error(function() core.isatty(-1) end)
        assert.has_error(function() core.isatty("x") end)
    end)
end)
