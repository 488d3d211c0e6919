-- laaffic.cli.sandbox_core: the LuaJIT build of laaffic.core that the sandbox's nginx
-- loads, for an installed rock (a checkout has build/luajit/ from make). Built on first
-- use from the rock's copy of src/ with the installed rockspec's sources, defines and
-- libraries (the one list), against LuaJIT's headers, into a per-user cache, since the
-- rock's own directory may belong to root:
--   ${XDG_CACHE_HOME:-$HOME/.cache}/laaffic/luajit-core-<version>-<hash of the sources>/
-- A new version or changed sources get a new directory. Each build goes to a temporary
-- directory renamed into place at the end: two starts at once both succeed.

local util = require "laaffic.cli.util"

local load = load
local rawget = rawget
local pcall = pcall
local type = type
local ipairs = ipairs
local concat = table.concat

local EXIT, die, q, read_file, shell_out, sh = util.EXIT, util.die, util.q, util.read_file,
    util.shell_out, util.sh

local _M = {}

local DEBIAN_BUILD = "apt-get install gcc libssl-dev libcurl4-openssl-dev libluajit2-5.1-dev"

-- text compiled as a chunk whose globals are env (Lua 5.1's load takes no string).
local function load_in(text, name, env)
    local setfenv, loadstring = rawget(_G, "setfenv"), rawget(_G, "loadstring")
    if setfenv and loadstring then
        local chunk = loadstring(text, name)
        return chunk and setfenv(chunk, env)
    end
    return load(text, name, "t", env)
end

-- The rockspec (a Lua file of assignments) run in an empty environment: its version and
-- build.modules["laaffic.core"].
local function read_rockspec(path)
    local text = read_file(path)
    local env = {}
    local chunk = text and load_in(text, "=" .. path, env)
    local ok = chunk and pcall(chunk)
    local mod = ok and type(env.build) == "table" and type(env.build.modules) == "table" and
                env.build.modules["laaffic.core"]
    if type(mod) ~= "table" or type(mod.sources) ~= "table" or type(env.version) ~= "string" then
        die(EXIT.CONFIG, "sandbox: " .. path .. " does not read as laaffic's rockspec: " ..
            "reinstall the rock")
    end
    return env.version, mod
end

-- The directory holding LuaJIT's lua.h: $LAAFFIC_LUAJIT_INCDIR, pkg-config's, or Debian's.
local function luajit_incdir(env)
    local dir = env("LAAFFIC_LUAJIT_INCDIR")
    if not dir or dir == "" then
        dir = (shell_out("pkg-config --cflags-only-I luajit 2>/dev/null") or ""):match("%-I(%S+)") or
              "/usr/include/luajit-2.1"
    end
    if not (read_file(dir .. "/lua.h") and read_file(dir .. "/lauxlib.h")) then
        die(EXIT.CONFIG, "sandbox: the LuaJIT headers (lua.h, lauxlib.h) are not in " .. dir ..
            ", and nginx's LuaJIT needs its own build of laaffic.core. On Debian: " ..
            "apt-get install libluajit2-5.1-dev (or libluajit-5.1-dev); " ..
            "LAAFFIC_LUAJIT_INCDIR names another directory")
    end
    return dir
end

-- ${XDG_CACHE_HOME:-$HOME/.cache}/laaffic (a relative XDG_CACHE_HOME is ignored, as the
-- XDG spec says).
local function cache_base(env)
    local xdg, home = env("XDG_CACHE_HOME"), env("HOME")
    if xdg and xdg:sub(1, 1) == "/" then return xdg .. "/laaffic" end
    if home and home:sub(1, 1) == "/" then return home .. "/.cache/laaffic" end
    die(EXIT.CONFIG, "sandbox: neither XDG_CACHE_HOME nor HOME is an absolute directory: " ..
        "no cache for the LuaJIT build of laaffic.core")
end

-- Whether path is this user's alone: a directory (a regular file when file is true), not a
-- symbolic link, owned by this user, writable by no one else. nginx runs the core found in
-- the cache as this user: a cache another user may write or plant links in is not used.
local function ours(path, file)
    local _, rc = sh("p=" .. q(path) .. "; [ ! -L \"$p\" ] && [ -" .. (file and "f" or "d") ..
                     " \"$p\" ] && [ -O \"$p\" ] && [ -z \"$(find \"$p\" -maxdepth 0 -perm /022)\" ]")
    return rc == 0
end

-- Dies unless each of the paths (the last a file when last_file) is this user's alone.
local function check_ours(paths, last_file)
    for i, p in ipairs(paths) do
        if not ours(p, last_file and i == #paths) then
            die(EXIT.CONFIG, "sandbox: " .. p .. " is not yours alone (a symbolic link, another " ..
                "user's, or writable by others), and nginx would run the laaffic.core found there: " ..
                "remove it, or set XDG_CACHE_HOME to a directory of your own")
        end
    end
end

-- cc's command line: the rockspec's sources, defines, include and library directories
-- (luarocks' $(VAR)s are left to the compiler's defaults) and libraries.
local function compile_command(cc, mod, incdir, out)
    local words = { cc, "-O2 -fPIC -shared -I" .. q(incdir) }
    for _, d in ipairs(mod.incdirs or {}) do
        if not d:find("$(", 1, true) then words[#words + 1] = "-I" .. q(d) end
    end
    for _, d in ipairs(mod.defines or {}) do words[#words + 1] = "-D" .. q(d) end
    for _, s in ipairs(mod.sources) do words[#words + 1] = q(s) end
    words[#words + 1] = "-o " .. q(out)
    for _, d in ipairs(mod.libdirs or {}) do
        if not d:find("$(", 1, true) then words[#words + 1] = "-L" .. q(d) end
    end
    for _, l in ipairs(mod.libraries or {}) do words[#words + 1] = "-l" .. q(l) end
    return concat(words, " ")
end

-- The last n lines of text.
local function tail(text, n)
    local lines = {}
    for line in text:gmatch("[^\n]+") do
        lines[#lines + 1] = line
        if #lines > n then table.remove(lines, 1) end
    end
    return #lines > 0 and concat(lines, "\n") .. "\n" or ""
end

-- Compiles into a fresh temporary directory under base and renames it to final.
local function build(ctx, rockdir, mod, incdir, base, final)
    local cc = ctx.env("CC")
    if not cc or cc == "" then cc = "cc" end
    local _, found = sh("command -v " .. q(cc:match("^%S+")) .. " >/dev/null 2>&1")
    if found ~= 0 then
        die(EXIT.CONFIG, "sandbox: no C compiler (" .. cc .. ") to build laaffic.core for " ..
            "nginx's LuaJIT. On Debian: " .. DEBIAN_BUILD)
    end
    local _, rc = sh("mkdir -p " .. q(base))
    if rc == 0 then check_ours({ base }) end
    local tmp
    tmp, rc = sh("mktemp -d " .. q(base .. "/.build.XXXXXX"))
    tmp = tmp:match("^([^\n]+)")
    if rc ~= 0 or not tmp then
        die(EXIT.CONFIG, "sandbox: cannot make a directory in " .. base .. " (the cache of " ..
            "the LuaJIT build of laaffic.core)")
    end
    ctx.stderr:write("laaffic sandbox: building laaffic.core for nginx's LuaJIT into ", final,
                     " (first use)\n")
    local log = tmp .. "/build.log"
    -- the core and its directory writable by this user only, whatever the umask
    local _, crc = sh("mkdir -m 755 " .. q(tmp .. "/laaffic") .. " && cd " .. q(rockdir) .. " && " ..
                      compile_command(cc, mod, incdir, tmp .. "/laaffic/core.so") ..
                      " >" .. q(log) .. " 2>&1 && chmod go-w " .. q(tmp .. "/laaffic/core.so"))
    if crc ~= 0 or not read_file(tmp .. "/laaffic/core.so") then
        local text = tail(read_file(log) or "", 8)
        sh("rm -rf " .. q(tmp))
        ctx.stderr:write(text)
        die(EXIT.CONFIG, "sandbox: building laaffic.core for nginx's LuaJIT failed (" .. cc ..
            " exited " .. crc .. (text ~= "" and "; its last lines above" or "") ..
            "). On Debian: " .. DEBIAN_BUILD)
    end
    sh("rm -f " .. q(log))
    if not os.rename(tmp, final) then
        -- another start renamed its build first: use that one
        sh("rm -rf " .. q(tmp))
        if not read_file(final .. "/laaffic/core.so") then
            die(EXIT.CONFIG, "sandbox: cannot rename " .. tmp .. " to " .. final)
        end
    end
end

-- The directory for nginx's lua_package_cpath (it holds laaffic/core.so) of the rock in
-- rockdir, built on first use.
function _M.ensure(ctx, rockdir)
    local spec = (sh("ls " .. q(rockdir) .. "/laaffic-*.rockspec 2>/dev/null")):match("^([^\n]+)")
    if not spec then
        die(EXIT.CONFIG, "sandbox: no laaffic-*.rockspec in " .. rockdir .. ": reinstall the rock")
    end
    local version, mod = read_rockspec(spec)
    local files = { q(spec) }
    for _, s in ipairs(mod.sources) do
        if not read_file(rockdir .. "/" .. s) then
            die(EXIT.CONFIG, "sandbox: " .. s .. " is not in the rock's directory (" .. rockdir ..
                "): reinstall the rock")
        end
        files[#files + 1] = q(rockdir .. "/" .. s)
    end
    local sum = sh("cat " .. concat(files, " ") .. " " .. q(rockdir) .. "/src/*.h | md5sum")
    local base = cache_base(ctx.env)
    local final = base .. "/luajit-core-" .. version .. "-" .. sum:match("^%x+"):sub(1, 16)
    local _, rc = sh("[ -e " .. q(base) .. " ] || [ -L " .. q(base) .. " ]")
    if rc == 0 then check_ours({ base }) end
    if not read_file(final .. "/laaffic/core.so") then
        build(ctx, rockdir, mod, luajit_incdir(ctx.env), base, final)
    end
    check_ours({ base, final, final .. "/laaffic", final .. "/laaffic/core.so" }, true)
    return final
end

return _M
