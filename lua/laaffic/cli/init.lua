-- laaffic.cli: the `laaffic` command-line tool. bin/laaffic only finds this module and
-- calls main(); the commands live in laaffic/cli/ (send, validate, sandbox; sign here),
-- so they are luacheck'd and testable.
--
--   local code = require("laaffic.cli").main(arg, { script = arg[0] })
--
-- Secrets: the API secret and every Sign value stay out of argv (no flag takes them), out
-- of stderr and out of every message; only `sign` writes a Sign, to its stdout, and only
-- when stdout is not a terminal (or --show). Error messages never quote a config line or
-- an option's value that could be a credential.

local laaffic = require "laaffic"
local core = require "laaffic.core"
local util = require "laaffic.cli.util"
local args = require "laaffic.cli.args"
local config = require "laaffic.cli.config"
local output = require "laaffic.cli.output"
local HELP = require "laaffic.cli.help"

local type = type
local ipairs = ipairs
local tostring = tostring
local getmetatable = getmetatable
local pcall = pcall
local concat = table.concat

local EXIT, die, NOT_SHOWN = util.EXIT, util.die, util.NOT_SHOWN

local _M = { _VERSION = laaffic._VERSION, EXIT = EXIT, HELP = HELP }

-- Is file descriptor fd (1 or 2) a terminal?
local function isatty(fd)
    return core.isatty(fd)
end

local function cmd_sign(ctx, opts)
    local cfg = config.load_settings(opts, ctx.env)
    cfg = config.apply_sandbox(cfg, opts, ctx.env)
    local ts = opts.timestamp
    if ts ~= nil and not (type(ts) == "string" and ts:match("^%d+$") and #ts <= 12) then
        die(EXIT.USAGE, "--timestamp takes unix seconds (digits)")
    end
    local client = config.make_client(cfg)
    local h, err = client:headers(ts or os.time())
    client:close()
    if not h then die(EXIT.FAILED, tostring(err)) end
    if not opts.show and ctx.isatty(1) then
        die(EXIT.USAGE, "sign: refusing to write the Sign (a credential) to a terminal: pipe " ..
            "it, e.g. `laaffic sign | curl -K - --data-binary @task.json URL`, or add --show")
    end
    local names = { "Content-Type", "Api-Key", "Timestamp", "Sign" }
    if opts.json then
        local t = {}
        for _, k in ipairs(names) do t[k] = h[k] end
        ctx.stdout:write(output.json(t), "\n")
    else
        local lines = {}
        for _, k in ipairs(names) do
            lines[#lines + 1] = 'header = "' .. (k .. ": " .. h[k]):gsub('[\\"]', "\\%0") .. '"'
        end
        ctx.stdout:write(concat(lines, "\n"), "\n")
    end
    return EXIT.OK
end

-- Parses argv and runs the command; returns the exit code or raises an Exit.
local function run(ctx, argv, opts_out)
    local command, opts, pos = args.parse(argv)
    opts_out.opts = opts
    if opts.version then
        ctx.stdout:write("laaffic ", laaffic._VERSION, "\n")
        return EXIT.OK
    end
    if command == "help" then
        local topic = pos[1]
        ctx.stdout:write(HELP[topic] or HELP.main)
        return (topic == nil or HELP[topic]) and EXIT.OK or EXIT.USAGE
    end
    if opts.help then
        ctx.stdout:write(HELP[command] or HELP.main)
        return EXIT.OK
    end
    if not command then
        if pos[1] then
            die(EXIT.USAGE, "unknown command" .. NOT_SHOWN ..
                " (send, validate, sign, sandbox; see laaffic --help)")
        end
        ctx.stderr:write(HELP.main)
        return EXIT.USAGE
    end
    if command ~= "sandbox" and pos[1] then
        die(EXIT.USAGE, command .. ": unexpected argument" .. NOT_SHOWN ..
            " (see laaffic " .. command .. " --help)")
    end
    if (command == "send" or command == "validate") and
       (type(opts.task) ~= "string" or opts.task == "") then
        die(EXIT.USAGE, command .. ": --task FILE is required (a .json or .lua task file; " ..
            "see laaffic " .. command .. " --help)")
    end
    ctx.progress = not opts.quiet and ctx.isatty(2)
    if command == "sign" then return cmd_sign(ctx, opts) end
    return require("laaffic.cli." .. command).command(ctx, opts, pos)
end

-- Prints a controlled exit (or an internal error) and returns its exit code.
local function report(ctx, e, json)
    if getmetatable(e) ~= util.Exit then
        e = { code = EXIT.FAILED, message = "internal error: " .. tostring(e) }
    end
    local problems = e.extra and e.extra.problems
    if json then
        local kinds = { [EXIT.USAGE] = "usage", [EXIT.CONFIG] = "config",
                        [EXIT.INVALID] = "invalid", [EXIT.FAILED] = "failed" }
        ctx.stdout:write(output.json({ ok = false, exit_code = e.code,
            problems = problems and output.problems_json(problems),
            error = { kind = kinds[e.code] or "failed", message = e.message } }), "\n")
    else
        if problems and (#problems > 1 or problems[1] and problems[1].text ~= e.message) then
            output.print_problems(ctx.stdout, problems)
        end
        ctx.stderr:write("laaffic: ", e.message, "\n")
    end
    return e.code
end

-- main(argv [, ctx]) -> exit code. ctx: script (arg[0]), stdout, stderr, env (getenv),
-- isatty(fd).
function _M.main(argv, ctx)
    ctx = ctx or {}
    ctx.stdout = ctx.stdout or io.stdout
    ctx.stderr = ctx.stderr or io.stderr
    ctx.env = ctx.env or os.getenv
    ctx.isatty = ctx.isatty or isatty
    local argl = {}
    for i = 1, #(argv or {}) do argl[i] = argv[i] end
    -- --json before the parse, for a usage error's JSON
    local parsed = { opts = {} }
    for _, a in ipairs(argl) do
        if a == "--" then break end
        if a == "--json" then parsed.opts.json = true end
    end
    local ok, code = pcall(run, ctx, argl, parsed)
    if ok then return code end
    return report(ctx, code, parsed.opts.json)
end

return _M
