-- laaffic.cli.args: the command line: which options each command takes, parse(argv), and
-- the checks of option values (integers, --require-texts, the encoder's options).
-- A credential is never taken from the command line, and an argument's value is never
-- echoed in a message.

local util = require "laaffic.cli.util"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local format = string.format
local floor = math.floor

local EXIT, die, echo, grouped = util.EXIT, util.die, util.echo, util.grouped

local _M = {}

local MAX_ROWS = 200000
local MAX_REJECTS = 100000000       -- the encoder's own ceiling
local VALIDATE_MAX_REJECTS = 10000000

-- kinds: flag, value, list (repeatable value), optional (value only if the next argument
-- does not look like an option), count
local GLOBAL = { json = "flag", verbose = "count", quiet = "flag", config = "value",
                 help = "flag", version = "flag" }
local SHORT = { v = "verbose", q = "quiet", h = "help" }

local CSV_OPTS = { numbers = "value", column = "list", delimiter = "value",
                   ["no-header"] = "flag", normalize = "flag", dedupe = "flag",
                   ["require-texts"] = "value", ["no-truncate"] = "flag", rejects = "value",
                   ["max-rejects"] = "value" }
_M.CSV_OPTS = CSV_OPTS

local COMMANDS = {
    send = { task = "value", sandbox = "optional", ["max-rows"] = "value",
             concurrency = "value", ["existing-ok"] = "flag", strict = "flag" },
    validate = { task = "value", sandbox = "optional", ["max-rows"] = "value", strict = "flag" },
    sign = { timestamp = "value", show = "flag", sandbox = "optional" },
    sandbox = { dir = "value", ttl = "value" },
}
for _, name in ipairs({ "send", "validate" }) do
    for k, v in pairs(CSV_OPTS) do COMMANDS[name][k] = v end
end

-- An option that would carry a credential: refused with an explanation.
local function credential_option(name)
    local n = name:lower():gsub("[%-_]", "")
    return n:find("secret", 1, true) or n:find("password", 1, true) or n == "apikey" or
           n == "key" or n == "token" or n == "sign" or n == "appsecret" or n == "passwd"
end

local CREDENTIAL_MSG =
    "credentials are never taken from the command line (other users can read a " ..
    "process's arguments with ps). Set LAAFFIC_API_KEY and LAAFFIC_API_SECRET in the " ..
    "environment, or put api_key and api_secret in a config file that only you can read " ..
    "(chmod 600; --config FILE, $LAAFFIC_CONFIG, or ~/.config/laaffic/config)"

local function set(opts, name, kind, value)
    local key = name:gsub("%-", "_")
    if kind == "flag" then
        opts[key] = true
    elseif kind == "count" then
        opts[key] = (opts[key] or 0) + 1
    elseif kind == "list" then
        local l = opts[key]
        l[#l + 1] = value
    else
        opts[key] = value
    end
end

-- One `--name[=value]` at argv[i] of command; sets it in opts, returns the next index.
local function long_option(argv, i, command, opts)
    local a = argv[i]
    local name, value = a:match("^%-%-([^=]+)=(.*)$")
    name = name or a:sub(3)
    if credential_option(name) then
        die(EXIT.USAGE, "--" .. name .. ": " .. CREDENTIAL_MSG)
    end
    local kind = GLOBAL[name] or (command and COMMANDS[command] and COMMANDS[command][name])
    if not kind then
        die(EXIT.USAGE, "unknown option --" .. echo(name):gsub("^'(.*)'$", "%1") ..
            (command and (" for " .. command) or "") ..
            " (try laaffic " .. (command and (command .. " ") or "") .. "--help)")
    end
    if kind == "flag" or kind == "count" then
        if value then die(EXIT.USAGE, "--" .. name .. " takes no value") end
        set(opts, name, kind)
    elseif kind == "optional" then
        if not value and argv[i + 1] and argv[i + 1]:sub(1, 1) ~= "-" then
            i = i + 1
            value = argv[i]
        end
        set(opts, name, kind, value or true)
    else
        if not value then
            i = i + 1
            value = argv[i]
            if value == nil then die(EXIT.USAGE, "--" .. name .. " needs a value") end
        end
        set(opts, name, kind, value)
    end
    return i + 1
end

-- parse(argv) -> command, opts (global and the command's), positional arguments
function _M.parse(argv)
    local opts, pos = { column = {} }, {}
    local command
    local i, n = 1, #argv
    while i <= n do
        local a = argv[i]
        if a == "--" then
            for k = i + 1, n do pos[#pos + 1] = argv[k] end
            break
        elseif a:sub(1, 2) == "--" then
            i = long_option(argv, i, command, opts) - 1
        elseif a:match("^%-%a") then
            for c in a:sub(2):gmatch(".") do
                local name = SHORT[c]
                if not name then
                    die(EXIT.USAGE, "unknown option -" .. (c:match("%a") or "?") ..
                        " (try laaffic --help)")
                end
                set(opts, name, GLOBAL[name])
            end
        elseif not command and COMMANDS[a] then
            command = a
        elseif not command and a == "help" then
            command = "help"
        else
            pos[#pos + 1] = a
        end
        i = i + 1
    end
    return command, opts, pos
end

function _M.int_option(opts, key, lo, hi, default)
    local v = opts[key]
    if v == nil then return default end
    local n = tonumber(v)
    if not (type(v) == "string" and v:match("^%d+$") and n and n >= lo and n <= hi) then
        die(EXIT.USAGE, format("--%s must be an integer from %s to %s", key:gsub("_", "-"),
                               grouped(lo), grouped(hi)))
    end
    return floor(n)
end

local function require_texts(opts)
    if not opts.require_texts then return nil end
    local list = {}
    for n in tostring(opts.require_texts):gmatch("[^,%s]+") do
        local k = tonumber(n)
        if not (n:match("^%d+$") and k >= 1 and k <= 10) then
            die(EXIT.USAGE, "--require-texts takes text numbers 1 to 10, e.g. 1,2,3")
        end
        list[#list + 1] = k
    end
    if #list == 0 then die(EXIT.USAGE, "--require-texts takes text numbers, e.g. 1,2,3") end
    return list
end

-- The encoder's options of send and validate.
function _M.encoder_opts(opts, command)
    local max_rejects_default = command == "validate" and VALIDATE_MAX_REJECTS or 1000
    return {
        require_texts = require_texts(opts),
        truncate = not opts.no_truncate,
        max_rows = _M.int_option(opts, "max_rows", 1, MAX_ROWS, MAX_ROWS),
        max_rejects = _M.int_option(opts, "max_rejects", 0, MAX_REJECTS, max_rejects_default),
        strict = opts.strict or nil,
    }
end

return _M
