-- laaffic.cli.sandbox: `laaffic sandbox start|stop|status`, which runs sandbox/laaffic-sandbox
-- (of a source checkout, or the copy an installed rock keeps in its directory) and reports
-- what it printed. For an installed rock, start first builds the LuaJIT core that nginx
-- loads (laaffic.cli.sandbox_core) and tells the script where it and the Lua modules are.

local core = require "laaffic.core"
local util = require "laaffic.cli.util"
local args = require "laaffic.cli.args"
local config = require "laaffic.cli.config"
local output = require "laaffic.cli.output"
local sandbox_core = require "laaffic.cli.sandbox_core"

local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local format = string.format
local concat = table.concat

local EXIT, die, q, read_file = util.EXIT, util.die, util.q, util.read_file
local NOT_SHOWN = util.NOT_SHOWN

local _M = {}

-- The checkout this module was loaded from ("" for the current directory), or nil.
local function checkout()
    return (debug.getinfo(1, "S").source:match("^@(.-)lua/laaffic/cli/[^/]*$"))
end

-- The absolute directory this module was loaded from, less laaffic/cli/: the checkout's
-- lua/, or an installed tree's share/lua/<version>.
local function lua_dir()
    local dir = debug.getinfo(1, "S").source:match("^@(.*)/laaffic/cli/[^/]*$") or "."
    if dir:sub(1, 1) ~= "/" then
        dir = (util.shell_out("pwd") or ""):match("^([^\n]*)") .. "/" .. dir
    end
    return dir
end

-- Whether path names a file with an execute bit (as test -x, for root).
local function executable(path)
    local id, mode = core.file_id(path)
    if not id then return false end
    local floor = math.floor
    return mode % 2 == 1 or floor(mode / 8) % 2 == 1 or floor(mode / 64) % 2 == 1
end

-- The sandbox an installed rock keeps in its directory: <tree>/share/lua/<ver>/ (where
-- this module was loaded from) -> <tree>/lib/luarocks/rocks-<ver>/laaffic/<version>-<rev>/.
local function rock_sandbox()
    local tree, ver = lua_dir():match("^(.*)/share/lua/([^/]+)$")
    if not tree then return nil end
    local out = util.shell_out("ls -d " .. q(tree .. "/lib/luarocks/rocks-" .. ver .. "/laaffic/" ..
                               core._VERSION) .. "-*/sandbox/laaffic-sandbox 2>/dev/null")
    return out and out:match("^([^\n]+)")
end

-- sandbox/laaffic-sandbox: $LAAFFIC_SANDBOX_BIN, or the sandbox/ beside this script's bin/
-- (a checkout's, or the rock directory's where luarocks keeps bin/laaffic), or in the
-- source checkout the CLI runs from, or in the rock this module was installed with.
local function find_sandbox(ctx)
    local bin = ctx.env("LAAFFIC_SANDBOX_BIN")
    local tried = {}
    if bin and bin ~= "" then
        tried[#tried + 1] = bin
    else
        local script, root = ctx.script or "laaffic", checkout()
        tried[1] = (script:match("^(.*)/[^/]*$") or ".") .. "/../sandbox/laaffic-sandbox"
        local b = root and ((root == "" and "./" or root) .. "sandbox/laaffic-sandbox")
        if b and b ~= tried[1] then tried[#tried + 1] = b end
        tried[#tried + 1] = rock_sandbox()
    end
    for _, b in ipairs(tried) do
        local dir = b:match("^(.*)/[^/]*$") or "."
        if executable(b) and read_file(dir .. "/lua/laaffic_sandbox/api.lua") then
            return b
        end
    end
    die(EXIT.CONFIG, "sandbox: sandbox/laaffic-sandbox and its files (sandbox/lua/) are not " ..
        "found: they come with the rock (in its directory under lib/luarocks/) and with a " ..
        "source checkout. Reinstall the rock, run bin/laaffic from the checkout, or set " ..
        "LAAFFIC_SANDBOX_BIN to a sandbox/laaffic-sandbox (looked for: " .. concat(tried, ", ") .. ")")
end

-- Whether the sandbox at bin belongs to a source checkout (its Makefile builds the
-- LuaJIT core into build/luajit/, which the script uses as it always did).
local function in_checkout(bin)
    local root = (bin:match("^(.*)/[^/]*$") or ".") .. "/.."
    return read_file(root .. "/Makefile") ~= nil and read_file(root .. "/lua/laaffic/init.lua") ~= nil
end

-- Runs sandbox/laaffic-sandbox ACTION; returns its exit code, stdout and stderr.
local function run(bin, action, opts, ttl, env)
    local errfile = os.tmpname()
    local body, rc = util.sh((env or "") .. q(bin) .. " " .. action ..
                             (opts.dir and (" --dir " .. q(opts.dir)) or "") ..
                             (ttl and (" --ttl " .. ttl) or "") .. " 2>" .. q(errfile))
    local errtext = read_file(errfile) or ""
    os.remove(errfile)
    return rc, body, errtext
end

local function start(ctx, opts, body)
    local e = config.parse_env(body)
    local info = { ok = true, dir = e.LAAFFIC_SANDBOX_DIR, pid = tonumber(e.LAAFFIC_SANDBOX_PID),
                   http = e.LAAFFIC_SANDBOX_HTTP, https = e.LAAFFIC_SANDBOX_HTTPS,
                   ca = e.LAAFFIC_SANDBOX_CA, app_id = e.LAAFFIC_SANDBOX_APP_ID,
                   env_file = e.LAAFFIC_SANDBOX_DIR and (e.LAAFFIC_SANDBOX_DIR .. "/env") }
    if opts.json then
        ctx.stdout:write(output.json(info), "\n")
    elseif not opts.quiet then
        ctx.stdout:write(format("sandbox running: pid %s, dir %s\n  http   %s\n  https  %s" ..
            " (CA %s)\n  appId  %s\nsend to it:  laaffic send --sandbox %s --task task.json\n" ..
            "stop it:     laaffic sandbox stop%s\n", tostring(info.pid), tostring(info.dir),
            tostring(info.http), tostring(info.https), tostring(info.ca), tostring(info.app_id),
            q(info.dir or ""), opts.dir and (" --dir " .. q(opts.dir)) or ""))
    end
    return EXIT.OK
end

local function status(ctx, opts, rc, body, errtext)
    local running = rc == 0
    if opts.json then
        local pid, dir = body:match("running: pid (%d+), dir ([^\n]+)")
        ctx.stdout:write(output.json({ ok = running, running = running,
            pid = tonumber(pid), dir = dir,
            http = body:match("LAAFFIC_SANDBOX_HTTP='([^']*)'"),
            https = body:match("LAAFFIC_SANDBOX_HTTPS='([^']*)'") }), "\n")
    elseif not opts.quiet then
        ctx.stdout:write((body:gsub("export ", "")))
    end
    if rc ~= 0 and rc ~= 3 then
        ctx.stderr:write(errtext)
    end
    return running and EXIT.OK or EXIT.FAILED
end

-- For an installed rock's sandbox: nginx and its lua module first (the script's check, so
-- a missing package is named before any build), then the LuaJIT core, built on first use.
-- Returns the environment words that tell the script where the core and modules are.
local function installed_env(ctx, bin)
    local rc, _, errtext = run(bin, "check", {})
    if rc ~= 0 then
        ctx.stderr:write(errtext)
        die(EXIT.CONFIG, "sandbox start: the sandbox needs nginx with its lua module and lua-cjson")
    end
    local core_dir = ctx.env("LAAFFIC_SANDBOX_CORE_DIR")
    if not core_dir or core_dir == "" then
        core_dir = sandbox_core.ensure(ctx, (bin:match("^(.*)/[^/]*$") or ".") .. "/..")
    end
    return "LAAFFIC_SANDBOX_LUA_DIR=" .. q(lua_dir()) .. " LAAFFIC_SANDBOX_CORE_DIR=" .. q(core_dir) .. " "
end

function _M.command(ctx, opts, pos)
    local action = pos[1]
    if action ~= "start" and action ~= "stop" and action ~= "status" then
        die(EXIT.USAGE, "sandbox: say start, stop or status" ..
            (action and (", not the word given" .. NOT_SHOWN) or ""))
    end
    if pos[2] then die(EXIT.USAGE, "sandbox " .. action .. ": unexpected argument" .. NOT_SHOWN) end
    if opts.ttl and action ~= "start" then die(EXIT.USAGE, "--ttl is for sandbox start") end
    local ttl = args.int_option(opts, "ttl", 0, 10 * 365 * 86400, nil)
    local bin = find_sandbox(ctx)
    local env = action == "start" and not in_checkout(bin) and installed_env(ctx, bin) or nil
    local rc, body, errtext = run(bin, action, opts, ttl, env)
    if action == "status" then return status(ctx, opts, rc, body, errtext) end
    if rc ~= 0 then
        ctx.stderr:write(errtext)
        die(EXIT.FAILED, "sandbox " .. action .. " failed (exit " .. rc .. ")")
    end
    if action == "start" then return start(ctx, opts, body) end
    local msg = errtext:match("stopped pid %d+") or errtext:match("not running") or "stopped"
    if opts.json then
        ctx.stdout:write(output.json({ ok = true, result = msg }), "\n")
    elseif not opts.quiet then
        ctx.stdout:write("sandbox: ", msg, "\n")
    end
    return EXIT.OK
end

return _M
