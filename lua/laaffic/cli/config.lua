-- laaffic.cli.config: the settings of a command: the config file (`key = value` lines),
-- the LAAFFIC_* environment on top, and a sandbox's env file (`export NAME='value'`
-- lines, written by sandbox/laaffic-sandbox) on top of both with --sandbox. parse_env is
-- also the specs' reader of that file. Messages never quote a config line: it may hold
-- a secret.

local laaffic = require "laaffic"
local core = require "laaffic.core"
local util = require "laaffic.cli.util"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local pcall = pcall
local format = string.format

local EXIT, die, echo, read_file = util.EXIT, util.die, util.echo, util.read_file

local _M = {}

local CONFIG_KEYS = { api_key = true, api_secret = true, app_id = true, base_url = true,
                      path = true, cafile = true, timeout = true }
local ENV_KEYS = { api_key = "LAAFFIC_API_KEY", api_secret = "LAAFFIC_API_SECRET",
                   app_id = "LAAFFIC_APP_ID", base_url = "LAAFFIC_BASE_URL",
                   cafile = "LAAFFIC_CAFILE" }

-- The permission bits of path as octal digits, e.g. "600" (a symlink followed), or nil.
local function file_mode(path)
    local _, mode = core.file_id(path)
    return mode and format("%o", mode)
end

-- The config file format (README "Command-line tool"): one `key = value` per line;
-- blank lines and lines whose first non-blank character is # are skipped; spaces around
-- the key, "=" and the value are dropped; a value in "..." or '...' is taken whole, with
-- no escapes (spaces and # inside kept). There are no comments after a value: a line
-- that could be read two ways (an unquoted value with " #" in it, a quote not closed
-- or followed by more text), an empty value or a key given twice is refused with its
-- line number, so that a credential is never silently read as something else.
-- Messages never quote the line (it may hold a secret).
local function config_value(path, n, key, value)
    local function bad(why)
        die(EXIT.CONFIG, format("%s:%d: %s: %s", path, n, key, why))
    end
    local q1 = value:sub(1, 1)
    if q1 == '"' or q1 == "'" then
        local inner, rest = value:match("^" .. q1 .. "([^" .. q1 .. "]*)" .. q1 .. "(.*)$")
        if not inner then bad("the quote is not closed on this line") end
        if rest ~= "" then
            bad("text after the closing quote (no comments after a value: put a # comment " ..
                "on a line of its own)")
        end
        if inner == "" then bad("the value is empty") end
        return inner
    end
    if value == "" then bad("the value is empty") end
    if value:find("%s#") then
        bad("an unquoted value with \" #\" in it (no comments after a value: put a # " ..
            "comment on a line of its own, or quote the value)")
    end
    if value:find("[\"']") then
        bad("a quote inside an unquoted value (quote the whole value, or not at all)")
    end
    return value
end

local function parse_config(path, text)
    local cfg = {}
    local n = 0
    text = text:gsub("^\239\187\191", "")
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        n = n + 1
        line = line:gsub("\r$", "")
        if not line:match("^%s*$") and not line:match("^%s*#") then
            local key, value = line:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
            if not key then
                -- the line is not quoted: it may hold a secret
                die(EXIT.CONFIG, format("%s:%d: not a `key = value` line", path, n))
            end
            if not CONFIG_KEYS[key] then
                die(EXIT.CONFIG, format("%s:%d: unknown key %s (known: api_key, api_secret, " ..
                    "app_id, base_url, path, cafile, timeout)", path, n, echo(key)))
            end
            if cfg["line:" .. key] then
                die(EXIT.CONFIG, format("%s:%d: %s is given again (first on line %d)", path, n,
                    key, cfg["line:" .. key]))
            end
            cfg[key] = config_value(path, n, key, value)
            cfg["line:" .. key] = n
        end
    end
    return cfg
end

-- A config file holding api_secret must not be readable by group or others.
local function check_private(path)
    local mode = file_mode(path)
    if not mode then
        die(EXIT.CONFIG, path .. ": cannot check its permissions (stat failed)")
    end
    local m = tonumber(mode, 8) or 0
    if m % 64 ~= 0 then
        die(EXIT.CONFIG, format("%s holds api_secret but its permissions (%s) let " ..
            "group or others read it: run `chmod 600 %s` (laaffic refuses it, as " ..
            "ssh refuses a private key others can read)", path, mode, path))
    end
end

-- The settings: the config file, then the environment on top, then the sandbox's env
-- file on top of both when --sandbox is given.
local function load_settings(opts, env)
    local path, explicit = opts.config, true
    if path == nil then
        path = env("LAAFFIC_CONFIG")
        if path == "" then path = nil end
    end
    if path == nil then
        explicit = false
        local home = env("HOME")
        path = home and home ~= "" and (home .. "/.config/laaffic/config") or nil
    end
    local cfg = {}
    local source = {}
    if path then
        local text, err = read_file(path)
        if not text then
            if explicit then
                die(EXIT.CONFIG, "cannot read the config file: " .. tostring(err))
            end
        else
            cfg = parse_config(path, text)
            if cfg.api_secret then check_private(path) end
            for k in pairs(CONFIG_KEYS) do
                if cfg[k] then source[k] = path end
            end
        end
    end
    for k, name in pairs(ENV_KEYS) do
        local v = env(name)
        if v and v ~= "" then
            cfg[k] = v
            source[k] = name
        end
    end
    if cfg.timeout ~= nil then
        local t = tonumber(cfg.timeout)
        if not t or t <= 0 or t > 86400 then
            die(EXIT.CONFIG, (source.timeout or "config") .. ": timeout must be seconds (a " ..
                "number above 0)")
        end
        cfg.timeout = t
    end
    cfg.config_path = path
    cfg.source = source
    return cfg
end

-- `export NAME='value'` lines of a sandbox env file -> { NAME = value }
local function parse_env(text)
    local t = {}
    for line in text:gmatch("[^\n]+") do
        local name, value = line:match("^export%s+([%w_]+)=(.*)$")
        if name then
            value = value:gsub("^'(.*)'$", "%1"):gsub("'\\''", "'")
            t[name] = value
        end
    end
    return t
end

local SANDBOX_STATE = "/tmp/laaffic-sandbox.current"

-- The directory of the sandbox named by --sandbox [DIR], $LAAFFIC_SANDBOX_DIR, or the
-- state file of sandbox/laaffic-sandbox.
local function sandbox_dir(arg, env)
    if type(arg) == "string" then return arg end
    local d = env("LAAFFIC_SANDBOX_DIR")
    if d and d ~= "" then return d end
    local state = env("LAAFFIC_SANDBOX_STATE")
    local s = read_file(state and state ~= "" and state or SANDBOX_STATE)
    d = s and s:match("^([^\n]+)")
    if d then return d end
    die(EXIT.CONFIG, "--sandbox: no sandbox is running (start one with `laaffic sandbox " ..
        "start`, or give --sandbox DIR)")
end

local function apply_sandbox(cfg, opts, env)
    if not opts.sandbox then return cfg end
    local dir = sandbox_dir(opts.sandbox, env)
    local text = read_file(dir .. "/env")
    if not text then
        die(EXIT.CONFIG, "--sandbox: " .. dir .. "/env not found: is the sandbox running? " ..
            "(laaffic sandbox status --dir " .. dir .. ")")
    end
    local e = parse_env(text)
    if not (e.LAAFFIC_SANDBOX_HTTPS and e.LAAFFIC_SANDBOX_KEY and e.LAAFFIC_SANDBOX_SECRET) then
        die(EXIT.CONFIG, "--sandbox: " .. dir .. "/env lacks the sandbox's URL or credentials")
    end
    cfg.base_url, cfg.cafile = e.LAAFFIC_SANDBOX_HTTPS, e.LAAFFIC_SANDBOX_CA
    cfg.api_key, cfg.api_secret = e.LAAFFIC_SANDBOX_KEY, e.LAAFFIC_SANDBOX_SECRET
    cfg.app_id = e.LAAFFIC_SANDBOX_APP_ID
    cfg.path = e.LAAFFIC_SANDBOX_PATH or cfg.path
    for _, k in ipairs({ "base_url", "cafile", "api_key", "api_secret", "app_id" }) do
        cfg.source[k] = dir .. "/env"
    end
    return cfg
end

local function require_credentials(cfg)
    for _, k in ipairs({ "api_key", "api_secret" }) do
        if not cfg[k] then
            die(EXIT.CONFIG, format("no %s: set %s in the environment or %s in %s (never on " ..
                "the command line)", k == "api_key" and "API key" or "API secret", ENV_KEYS[k], k,
                cfg.config_path or "a config file (--config FILE)"))
        end
    end
    if cfg.cafile then
        local f = io.open(cfg.cafile, "rb")
        if not f then
            die(EXIT.CONFIG, "cafile " .. cfg.cafile .. " cannot be read (from " ..
                tostring(cfg.source.cafile) .. ")")
        end
        f:close()
    end
end

local function make_client(cfg, logger, strict)
    require_credentials(cfg)
    local ok, client = pcall(laaffic.new, {
        api_key = cfg.api_key, api_secret = cfg.api_secret, app_id = cfg.app_id,
        base_url = cfg.base_url, path = cfg.path, cafile = cfg.cafile,
        timeout = cfg.timeout, logger = logger, strict = strict,
    })
    if not ok then
        -- laaffic.new names the option, never a credential's value
        die(EXIT.CONFIG, tostring(client):gsub("^.-laaffic%.new: ", "") ..
            (cfg.source.base_url and (" (base_url from " .. cfg.source.base_url .. ")") or ""))
    end
    return client
end

---------------------------------------------------------------------------------------
_M.parse_config = parse_config
_M.load_settings = load_settings
_M.parse_env = parse_env
_M.apply_sandbox = apply_sandbox
_M.require_credentials = require_credentials
_M.make_client = make_client
_M.ENV_KEYS = ENV_KEYS

return _M
