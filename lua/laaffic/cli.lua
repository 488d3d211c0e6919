-- laaffic.cli: the `laaffic` command-line tool. bin/laaffic only finds this module and
-- calls main(); everything else is here, so it is luacheck'd and testable.
--
--   local code = require("laaffic.cli").main(arg, { script = arg[0] })
--
-- Commands: send, validate, sign, sandbox (see HELP below and README "Command-line tool").
--
-- Secrets: the API secret and every Sign value stay out of argv (no flag takes them), out
-- of stderr and out of every message; only `sign` writes a Sign, to its stdout, and only
-- when stdout is not a terminal (or --show). Error messages never quote a config line or
-- an option's value that could be a credential.

local laaffic = require "laaffic"
local cjson = require "cjson.safe"

local core = laaffic.core
local csv = laaffic.csv

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local select = select
local setmetatable = setmetatable
local getmetatable = getmetatable
local pcall = pcall
local error = error
local format = string.format
local concat = table.concat
local sort = table.sort
local floor = math.floor
local huge = math.huge

local _M = { _VERSION = laaffic._VERSION }

-- exit codes (documented in HELP and in the README)
local EXIT = {
    OK = 0,          -- every part created / the input is valid / done
    FAILED = 1,      -- the API refused a part (status, already exists, protocol), or other failure
    USAGE = 2,       -- bad command line
    INVALID = 3,     -- the task or number list cannot be read or is invalid: nothing sent
    CONFIG = 4,      -- configuration or credentials (missing, unreadable, permissions)
    TRANSPORT = 5,   -- the request reached nothing (DNS, connect, TLS): nothing created
    AMBIGUOUS = 6,   -- a request may have reached the server: the task may exist
}
_M.EXIT = EXIT

-- when several parts fail differently, the exit code is the most urgent one
local URGENCY = { [EXIT.AMBIGUOUS] = 5, [EXIT.TRANSPORT] = 4, [EXIT.FAILED] = 3,
                  [EXIT.INVALID] = 2, [EXIT.CONFIG] = 1, [EXIT.OK] = 0 }

local MAX_ROWS = 200000
local MAX_REJECTS = 100000000       -- the encoder's own ceiling
local VALIDATE_MAX_REJECTS = 10000000

---------------------------------------------------------------------------------------
-- Help
---------------------------------------------------------------------------------------

local EXIT_HELP = [=[
exit codes:
  0  done: every part was created (send), the input is valid (validate)
  1  the API refused a part: a status such as -1 (authentication), -20 (data exists:
     the task may exist, check before re-sending) or -41 (the task name already exists;
     with --existing-ok an existing part counts as done), or an answer that is not the
     API's, or the list file changed during the send (the parts sent and not sent
     are listed); also "sandbox status" when it is not running
  2  usage error (unknown option, missing argument, a credential given as an option,
     sign refusing to write to a terminal)
  3  invalid input: the task or the number list cannot be read or does not validate;
     send checks the whole list first, so nothing was sent
  4  configuration or credentials: missing, unreadable, a config file readable by others,
     a bad base_url or cafile; the sandbox files not found
  5  network: the request reached nothing (DNS, refused, TLS); nothing was created, it is
     safe to run the same command again
  6  ambiguous: a request may have reached the server and the task may exist; run the same
     command again: a part that was created answers "already exists" (-41), never twice
When parts end differently the code is the first of 6, 5, 1, 3 that applies.
]=]

local HELP = {}

HELP.main = [=[
usage: laaffic [options] <command> [command options]

Create LAAFFIC AI-Agent group-call tasks: validate, sign and send them.

commands:
  send       build a task (JSON or Lua file, numbers from a CSV) and send it; a list
             longer than one task (200,000 numbers, or --max-rows) is sent in parts
  validate   check a task and its number list, print every problem; sends nothing
  sign       print signed request headers as curl config lines (laaffic sign | curl -K -)
  sandbox    start, stop or check the local sandbox server (from a source checkout)

options of every command:
  --config FILE   the config file (default: $LAAFFIC_CONFIG, else ~/.config/laaffic/config)
  --json          print one JSON document on stdout, for scripts
  -v, --verbose   log each request and answer on stderr
  -q, --quiet     print only errors
  -h, --help      this help; `laaffic <command> --help` for a command
  --version       print the version

credentials (never on the command line: other users can read it with ps):
  environment  LAAFFIC_API_KEY, LAAFFIC_API_SECRET, LAAFFIC_APP_ID, LAAFFIC_BASE_URL,
               LAAFFIC_CAFILE; these win over the config file
  config file  `key = value` lines: api_key, api_secret, app_id, base_url, path,
               cafile, timeout. # starts a comment line only, never a comment after a
               value; "..." or '...' quote a value whole (no escapes). A line that could
               be read two ways (`x = v  # note`) is refused with its line number. A file
               holding api_secret must not be readable by group or others (chmod 600).

]=] .. EXIT_HELP

local CSV_HELP = [=[
number list (CSV, --numbers FILE): a header row naming calleeNumber and any of
text1..text10 (other columns are ignored), RFC 4180 quoting, UTF-8 with or without BOM,
LF or CRLF; an empty cell is left out.
  --column FIELD=HEADER    take FIELD (calleeNumber, text1..text10) from the column named
                           HEADER; FIELD=N takes column number N; FIELD= ignores it
                           (repeatable)
  --delimiter C            one character (default ","; "tab" or "\t" for a tab)
  --no-header              the file has no header row: columns are calleeNumber, text1,
                           ... in order, or as --column FIELD=N numbers them
  --normalize              strip spaces, "+" and "-" from numbers ("+91 97776-54321")
  --dedupe                 drop a number that came earlier in the list
  --require-texts 1,2,3    every row must carry these textN, non-empty
  --no-truncate            a text over 30 characters is an error instead of being cut
  --rejects FILE           skip bad rows instead of failing, and write them to FILE as
                           CSV: line,column,field,message (written whole at the end;
                           FILE may not be the list, the task or the config file)
  --max-rejects N          give up after N bad rows (send: default 1000)
]=]

HELP.send = [=[
usage: laaffic send --task FILE [--numbers FILE.csv] [options]

Builds the task and sends it. The whole list is checked first: if any row is invalid
(and --rejects is not given) nothing is sent, every problem is printed, exit code 3.
A list longer than one task is sent as parts named <taskName>-part-1, -part-2, ...,
several at once; running the same command again creates only the parts that are missing
(the others answer "already exists"). Prints each part's keyId or error.

  --task FILE          the task: a .json file (the API's request JSON) or a .lua file
                       returning the task table (no io/os; laaffic.recall is there);
                       "-" reads JSON from stdin
  --numbers FILE       the number list as CSV: replaces the task's numberInfoList
  --sandbox [DIR]      send to the local sandbox (its URL, CA and credentials from
                       DIR/env; default: the running one)
  --max-rows N         numbers per part (default and at most 200,000)
  --concurrency N      parts sent at once (default 4, at most 64)
  --existing-ok        a part that already exists counts as done (exit 0), e.g. when
                       re-running a send that stopped part-way
  --strict             a warning (a rule laaffic infers but the vendor's pages do not
                       state, e.g. sendTime with a "T") is an error: nothing is sent

]=] .. CSV_HELP .. "\n" .. EXIT_HELP

HELP.validate = [=[
usage: laaffic validate --task FILE [--numbers FILE.csv] [options]

Checks the task and every row of its list without sending anything (no network, no
credentials needed), prints every problem - file:line:column for the CSV, the field
path (numberInfoList[3].calleeNumber) for the task file - and a summary: rows, the parts
a send would make, rejected rows, duplicates, and the warnings (rules laaffic infers
but the vendor's pages do not state: the task is valid, but likely not what you meant).
Exit code 0 when valid, 3 when not.

  --task FILE, --numbers FILE, --max-rows N, --sandbox [DIR], --strict   as for send
  --max-rejects N      stop after N bad rows (default 10,000,000)

]=] .. CSV_HELP

HELP.sign = [=[
usage: laaffic sign [--timestamp N] [--show] [--sandbox [DIR]]

Prints the signed request headers (Content-Type, Api-Key, Timestamp, Sign) as curl
config lines, so that

  laaffic sign | curl -K - --data-binary @task.json https://api.laaffic.com/v3/voice/group/call/send/agent

sends a request by hand. The Sign is a credential: it is written to stdout only, and
not to a terminal unless --show is given. --json prints the headers as one JSON object.

  --timestamp N        sign for unix time N (default: now; the API accepts a few minutes)
  --show               write to a terminal too
]=]

HELP.sandbox = [=[
usage: laaffic sandbox start|stop|status [--dir DIR] [--ttl SECONDS]

Runs sandbox/laaffic-sandbox, the local stand-in for the API (nginx with the lua module
on 127.0.0.1, HTTP and HTTPS with a CA of its own). It needs a source checkout (the
sandbox/ folder and the LuaJIT build of laaffic.core): run bin/laaffic from the
checkout, or set LAAFFIC_SANDBOX_BIN to the checkout's sandbox/laaffic-sandbox.
Then `laaffic send --sandbox [DIR] ...` sends to it.

  start    start one (in DIR, default a new temporary directory) and print its URLs
  stop     stop it and remove its temporary files
  status   exit 0 when it runs, 1 when not
  --ttl S  (start) the sandbox stops itself after S seconds, and its files go as
           with stop
]=]

---------------------------------------------------------------------------------------
-- Small helpers
---------------------------------------------------------------------------------------

-- A controlled exit: raised with error(), caught by main.
local Exit = {}
Exit.__index = Exit

local function die(code, msg, extra)
    error(setmetatable({ code = code, message = msg, extra = extra }, Exit), 0)
end

local function q(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function int(n)
    if type(n) ~= "number" then return n end
    if n == floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then
        return format("%d", n)
    end
    return tostring(n)
end

-- "12345678" -> "12,345,678"
local function grouped(n)
    local s = int(n or 0)
    local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
    return (out:gsub("^,", ""))
end

local function plural(n, word, words)
    return grouped(n) .. " " .. (n == 1 and word or (words or word .. "s"))
end

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then return nil, err end
    local s = f:read("*a")
    f:close()
    if not s then return nil, path .. ": cannot be read (a directory?)" end
    return s
end

-- os.execute's success on Lua 5.4 (true) and LuaJIT/5.1 (status 0)
local function shell_ok(cmd)
    local r = os.execute(cmd)
    if type(r) == "number" then return r == 0 end
    return r == true
end

local function shell_out(cmd)
    local p = io.popen(cmd, "r")
    if not p then return nil end
    local out = p:read("*a")
    p:close()
    return out
end

-- Is file descriptor fd (1 or 2) a terminal? `test -t` inherits our descriptors.
local function isatty(fd)
    return shell_ok("test -t " .. fd)
end

-- A name safe to echo in a message (a config key, an option's name): lowercase words
-- only. An argument's value is never echoed: a stray word on the command line may be a
-- credential pasted in the wrong place.
local function echo(s)
    s = tostring(s)
    if #s <= 24 and s:match("^%l[%l_%-]*$") then
        return "'" .. s .. "'"
    end
    return "(not shown)"
end

local NOT_SHOWN = " (not shown: it could be a credential)"

---------------------------------------------------------------------------------------
-- JSON output (own encoder: arrays stay arrays when empty, keys are sorted, "/" is not
-- escaped, and invalid UTF-8 in a message cannot make the document invalid)
---------------------------------------------------------------------------------------

local ARRAY = {}
local function array(t)
    return setmetatable(t or {}, ARRAY)
end

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
              ["\b"] = "\\b", ["\f"] = "\\f" }

-- Replaces bytes that are not valid UTF-8 with U+FFFD.
local function utf8_clean(s)
    if not s:find("[\128-\255]") then return s end
    local out, i, n = {}, 1, #s
    while i <= n do
        local c = s:byte(i)
        local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2 or
                    (c >= 0xE0 and c <= 0xEF) and 3 or (c >= 0xF0 and c <= 0xF4) and 4 or 0
        local ok = len > 0 and i + len - 1 <= n
        for k = 1, ok and len - 1 or 0 do
            local cc = s:byte(i + k)
            if cc < 0x80 or cc > 0xBF then ok = false end
        end
        if ok then
            out[#out + 1] = s:sub(i, i + len - 1)
            i = i + len
        else
            out[#out + 1] = "\239\191\189"
            i = i + 1
        end
    end
    return concat(out)
end

local function json_string(s)
    s = utf8_clean(s):gsub('[%c"\\]', function(c)
        return ESC[c] or format("\\u%04x", c:byte())
    end)
    return '"' .. s .. '"'
end

local function to_json(v, out)
    local t = type(v)
    if t == "string" then
        out[#out + 1] = json_string(v)
    elseif t == "number" then
        if v ~= v or v == huge or v == -huge then
            out[#out + 1] = "null"
        elseif v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
            out[#out + 1] = format("%d", v)
        else
            out[#out + 1] = format("%.14g", v)
        end
    elseif t == "boolean" then
        out[#out + 1] = v and "true" or "false"
    elseif t == "table" then
        if getmetatable(v) == ARRAY or (v[1] ~= nil) then
            out[#out + 1] = "["
            for i = 1, #v do
                if i > 1 then out[#out + 1] = "," end
                to_json(v[i], out)
            end
            out[#out + 1] = "]"
        else
            local keys = {}
            for k in pairs(v) do keys[#keys + 1] = tostring(k) end
            sort(keys)
            out[#out + 1] = "{"
            for i, k in ipairs(keys) do
                if i > 1 then out[#out + 1] = "," end
                out[#out + 1] = json_string(k)
                out[#out + 1] = ":"
                to_json(v[k], out)
            end
            out[#out + 1] = "}"
        end
    else
        out[#out + 1] = "null"
    end
end

local function encode_json(v)
    local out = {}
    to_json(v, out)
    return concat(out)
end

---------------------------------------------------------------------------------------
-- Command line parsing
---------------------------------------------------------------------------------------

-- kinds: flag, value, list (repeatable value), optional (value only if the next argument
-- does not look like an option), count
local GLOBAL = { json = "flag", verbose = "count", quiet = "flag", config = "value",
                 help = "flag", version = "flag" }
local SHORT = { v = "verbose", q = "quiet", h = "help" }

local CSV_OPTS = { numbers = "value", column = "list", delimiter = "value",
                   ["no-header"] = "flag", normalize = "flag", dedupe = "flag",
                   ["require-texts"] = "value", ["no-truncate"] = "flag", rejects = "value",
                   ["max-rejects"] = "value" }

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

-- Parses argv into opts (global and the command's) and positional arguments.
local function parse_args(argv)
    local opts, pos = { column = {} }, {}
    local command
    local i, n = 1, #argv
    local function spec_of(name)
        return GLOBAL[name] or (command and COMMANDS[command] and COMMANDS[command][name])
    end
    local function set(name, kind, value)
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
    while i <= n do
        local a = argv[i]
        if a == "--" then
            for k = i + 1, n do pos[#pos + 1] = argv[k] end
            break
        elseif a:sub(1, 2) == "--" then
            local name, value = a:match("^%-%-([^=]+)=(.*)$")
            name = name or a:sub(3)
            if credential_option(name) then
                die(EXIT.USAGE, "--" .. name .. ": " .. CREDENTIAL_MSG)
            end
            local kind = spec_of(name)
            if not kind then
                die(EXIT.USAGE, "unknown option --" .. echo(name):gsub("^'(.*)'$", "%1") ..
                    (command and (" for " .. command) or "") ..
                    " (try laaffic " .. (command and (command .. " ") or "") .. "--help)")
            end
            if kind == "flag" or kind == "count" then
                if value then die(EXIT.USAGE, "--" .. name .. " takes no value") end
                set(name, kind)
            elseif kind == "optional" then
                if not value and argv[i + 1] and argv[i + 1]:sub(1, 1) ~= "-" then
                    i = i + 1
                    value = argv[i]
                end
                set(name, kind, value or true)
            else
                if not value then
                    i = i + 1
                    value = argv[i]
                    if value == nil then die(EXIT.USAGE, "--" .. name .. " needs a value") end
                end
                set(name, kind, value)
            end
        elseif a:match("^%-%a") then
            for c in a:sub(2):gmatch(".") do
                local name = SHORT[c]
                if not name then
                    die(EXIT.USAGE, "unknown option -" .. (c:match("%a") or "?") ..
                        " (try laaffic --help)")
                end
                set(name, GLOBAL[name])
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

local function int_option(opts, key, lo, hi, default)
    local v = opts[key]
    if v == nil then return default end
    local n = tonumber(v)
    if not (type(v) == "string" and v:match("^%d+$") and n and n >= lo and n <= hi) then
        die(EXIT.USAGE, format("--%s must be an integer from %s to %s", key:gsub("_", "-"),
                               grouped(lo), grouped(hi)))
    end
    return floor(n)
end

---------------------------------------------------------------------------------------
-- Configuration and credentials
---------------------------------------------------------------------------------------

local CONFIG_KEYS = { api_key = true, api_secret = true, app_id = true, base_url = true,
                      path = true, cafile = true, timeout = true }
local ENV_KEYS = { api_key = "LAAFFIC_API_KEY", api_secret = "LAAFFIC_API_SECRET",
                   app_id = "LAAFFIC_APP_ID", base_url = "LAAFFIC_BASE_URL",
                   cafile = "LAAFFIC_CAFILE" }

-- The permission bits of path, e.g. "600" (stat follows a symlink), or nil.
local function file_mode(path)
    local out = shell_out("stat -L -c '%a' -- " .. q(path) .. " 2>/dev/null")
    return out and out:match("^(%d+)%s*$")
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
            if cfg.api_secret then
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
-- state file of bin/laaffic-sandbox.
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
-- The task file
---------------------------------------------------------------------------------------

-- "...at character 57" -> line, column of that character in text
local function position(text, pos)
    local before = text:sub(1, pos - 1)
    local _, lines = before:gsub("\n", "")
    local last = before:match("[^\n]*$")
    return lines + 1, #last + 1
end

-- Blanks `//` and `/* */` comments outside strings (keeping every newline, so positions
-- stay right): the vendor's own curl example has them.
local function strip_comments(s)
    local out, i, n = {}, 1, #s
    while i <= n do
        local a = s:find('["/]', i)
        if not a then
            out[#out + 1] = s:sub(i)
            break
        end
        out[#out + 1] = s:sub(i, a - 1)
        local c = s:sub(a, a)
        if c == '"' then
            local j = a + 1
            while true do
                local b = s:find('["\\]', j)
                if not b then j = n + 1 break end
                if s:sub(b, b) == "\\" then j = b + 2 else j = b + 1 break end
            end
            out[#out + 1] = s:sub(a, j - 1)
            i = j
        elseif s:sub(a + 1, a + 1) == "/" then
            local e = s:find("\n", a, true) or n + 1
            out[#out + 1] = (" "):rep(e - a)
            i = e
        elseif s:sub(a + 1, a + 1) == "*" then
            local _, e = s:find("*/", a + 2, true)
            e = e or n
            out[#out + 1] = s:sub(a, e):gsub("[^\n]", " ")
            i = e + 1
        else
            out[#out + 1] = c
            i = a + 1
        end
    end
    return concat(out)
end

local function load_json_task(name, text)
    local v, err = cjson.decode(text)
    if v == nil and (text:find("//", 1, true) or text:find("/*", 1, true)) then
        local v2 = cjson.decode(strip_comments(text))
        if v2 ~= nil then v, err = v2, nil end
    end
    if v == nil then
        local msg = tostring(err)
        local at = tonumber(msg:match("at character (%d+)"))
        if at then
            local line, col = position(text, at)
            return nil, { file = name, line = line, column = col, message = msg,
                          text = format("%s:%d:%d: not valid JSON: %s", name, line, col, msg) }
        end
        return nil, { file = name, message = msg, text = name .. ": not valid JSON: " .. msg }
    end
    if type(v) ~= "table" or v[1] ~= nil or next(v) == nil and text:match("^%s*%[") then
        return nil, { file = name, message = "must be a JSON object",
                      text = name .. ": the task must be a JSON object ({...})" }
    end
    return v
end

-- The environment of a Lua task file: no io, os, require, load or debug.
local function task_env()
    local function copy(t)
        local c = {}
        for k, v in pairs(t or {}) do c[k] = v end
        return c
    end
    local lib = { recall = laaffic.recall, null = cjson.null, _VERSION = laaffic._VERSION,
                  status = laaffic.status }
    lib.recall = copy(laaffic.recall)
    local env = {
        laaffic = lib, string = copy(string), table = copy(table), math = copy(math),
        utf8 = rawget(_G, "utf8") and copy(utf8) or nil,
        pairs = pairs, ipairs = ipairs, next = next, select = select, type = type,
        tostring = tostring, tonumber = tonumber, error = error, assert = assert,
        pcall = pcall, unpack = table.unpack or rawget(_G, "unpack"),
        print = function(...)
            local t = {}
            for k = 1, select("#", ...) do t[k] = tostring((select(k, ...))) end
            io.stderr:write(concat(t, "\t"), "\n")
        end,
    }
    env._G = env
    return env
end

-- What a task file raised, as a sentence: error({...}) or error() would print
-- "table: 0x..." or "nil".
local function raised(v)
    if type(v) == "string" then return v end
    if v == nil then return "raised an error without a message" end
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__tostring then
        local ok, text = pcall(tostring, v)
        if ok and type(text) == "string" then return text end
    end
    if type(v) == "table" then
        local msg = rawget(v, "message") or rawget(v, "msg") or rawget(v, "error")
        if type(msg) == "string" or type(msg) == "number" then
            return "raised a table whose message is: " .. tostring(msg)
        end
        return "raised a table, not a message (use error(\"text\"))"
    end
    return "raised a " .. type(v) .. " (" .. tostring(v) .. "), not a message"
end

-- A task file runs under an instruction count and a memory bound: `while true do end`
-- must end with an error, not hang validate or send. The bound raises again at every
-- check once reached, and the env's pcall passes it on, so the file cannot catch it.
local TASK_MAX_INSTRUCTIONS = 5e8
local TASK_MAX_KB = 2 * 1024 * 1024
local HOOK_EVERY = 1e6
local TASK_LIMIT = setmetatable({}, { __tostring = function()
    return format("did not finish within %s instructions or %s MB of memory (an endless " ..
                  "loop?)", grouped(TASK_MAX_INSTRUCTIONS), grouped(TASK_MAX_KB / 1024))
end })

local function run_bounded(chunk)
    local jit = rawget(_G, "jit")
    if type(jit) == "table" and jit.off then
        jit.off(chunk, true)        -- compiled code runs no hooks
    end
    local n = 0
    debug.sethook(function()
        n = n + 1
        if n * HOOK_EVERY > TASK_MAX_INSTRUCTIONS or collectgarbage("count") > TASK_MAX_KB then
            error(TASK_LIMIT, 0)
        end
    end, "", HOOK_EVERY)
    local ok, v = pcall(chunk)
    debug.sethook()
    return ok, v
end

local function load_lua_task(name, text)
    if text:sub(1, 1) == "\27" then
        return nil, { file = name, text = name .. ": precompiled Lua is not accepted" }
    end
    local env = task_env()
    local function pass_limit(ok, ...)
        if not ok and ... == TASK_LIMIT then error(TASK_LIMIT, 0) end
        return ok, ...
    end
    env.pcall = function(f, ...) return pass_limit(pcall(f, ...)) end
    local chunk, err = load(text, "@" .. name, "t", env)
    if not chunk then
        return nil, { file = name, message = tostring(err), text = tostring(err) }
    end
    local ok, v = run_bounded(chunk)
    if not ok then
        local msg = v == TASK_LIMIT and (name .. ": " .. tostring(v)) or raised(v)
        if type(v) ~= "string" and v ~= TASK_LIMIT then msg = name .. ": " .. msg end
        return nil, { file = name, message = msg, text = msg ..
            (msg:find("a nil value", 1, true) and
             " (a task file has no io, os, require or load)" or "") }
    end
    if type(v) ~= "table" then
        return nil, { file = name, text = name .. ": must return the task table, returned " ..
                      type(v) }
    end
    return v
end

-- Reads --task: returns task, the name errors show.
local function load_task(opts)
    local path = opts.task
    if type(path) ~= "string" or path == "" then
        die(EXIT.USAGE, "--task FILE is required (a .json or .lua task file)")
    end
    -- the ending says how to read it: a CSV or anything else run as Lua would give a
    -- baffling syntax error
    local ext = path ~= "-" and path:match("[^/]%.([^./]*)$")
    ext = ext and ext:lower()
    if ext and ext ~= "json" and ext ~= "lua" then
        die(EXIT.USAGE, "--task " .. path .. ": the task file must be a .json or .lua file " ..
            "(a file without either ending is read as JSON; the number list goes to --numbers)")
    end
    local text, err, name
    if path == "-" then
        name = "<stdin>"
        text = io.stdin:read("*a")
    else
        name = path
        text, err = read_file(path)
    end
    if not text then
        die(EXIT.INVALID, "cannot read the task: " .. tostring(err))
    end
    local task, problem
    if ext == "lua" then
        task, problem = load_lua_task(name, text)
    else
        task, problem = load_json_task(name, text:gsub("^\239\187\191", ""))
    end
    if not task then
        die(EXIT.INVALID, problem.text, { problems = { problem } })
    end
    return task, name
end

---------------------------------------------------------------------------------------
-- The number list
---------------------------------------------------------------------------------------

local FIELDS = { calleeNumber = "calleeNumber" }
for k = 1, 10 do FIELDS["text" .. k] = "text" .. k end

local function csv_options(opts)
    local o = {}
    local columns
    for _, spec in ipairs(opts.column) do
        local field, value = spec:match("^([^=]+)=(.*)$")
        local key = field and (FIELDS[field] or FIELDS[field:lower() == "calleenumber" and
                                                          "calleeNumber" or field:lower()])
        if not key then
            die(EXIT.USAGE, "--column takes FIELD=HEADER or FIELD=N, FIELD one of " ..
                "calleeNumber, text1 ... text10")
        end
        columns = columns or {}
        if value == "" then
            columns[key] = false
        elseif value:match("^%d+$") then
            local n = tonumber(value)
            if n < 1 then die(EXIT.USAGE, "--column " .. key .. "=N: N counts from 1") end
            columns[key] = n
        else
            columns[key] = value
        end
    end
    o.columns = columns
    if opts.delimiter then
        local d = opts.delimiter
        if d == "tab" or d == "\\t" then d = "\t" end
        if #d ~= 1 or d == '"' or d == "\n" or d == "\r" then
            die(EXIT.USAGE, "--delimiter must be one character (\"tab\" for a tab), not a quote")
        end
        o.delimiter = d
    end
    if opts.no_header then o.header = false end
    if opts.normalize then o.normalize = true end
    if opts.dedupe then o.dedupe = true end
    return o
end

-- The list source: returns make() -> a fresh list (a table, or a new CSV source each time),
-- and the name that messages show.
local function number_source(opts, task, taskname)
    if not opts.numbers then
        for k in pairs(CSV_OPTS) do
            local key = k:gsub("%-", "_")
            if key ~= "numbers" and key ~= "require_texts" and key ~= "no_truncate" and
               key ~= "rejects" and key ~= "max_rejects" and
               (key == "column" and #opts.column > 0 or key ~= "column" and opts[key]) then
                die(EXIT.USAGE, "--" .. k .. " is for the CSV list: give --numbers FILE")
            end
        end
        local list = task.numberInfoList
        return function() return list end, taskname
    end
    local path = opts.numbers
    local copts = csv_options(opts)
    local function make()
        local ok, src, err = pcall(csv.open, path, copts)
        if not ok then
            die(EXIT.USAGE, "--numbers: " .. tostring(src):gsub("^.-laaffic%.csv%.open: ", ""))
        end
        if not src then
            local line = err.line
            -- the reader's message may name the file already: name it once
            local msg = tostring(err.message)
            local at = path .. (line and (":" .. int(line)) or "") .. ": "
            if msg:sub(1, #at) == at then
                msg = msg:sub(#at + 1)
            elseif msg:sub(1, #path + 2) == path .. ": " then
                msg = msg:sub(#path + 3)
            end
            local text = at .. msg
            die(EXIT.INVALID, text, { problems = { { file = path, line = line,
                message = msg, text = text } } })
        end
        return src
    end
    make():close()      -- fail early, before anything else
    return make, path
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

---------------------------------------------------------------------------------------
-- Progress bar (stderr, a terminal only, after the first second)
---------------------------------------------------------------------------------------

local function size_text(n)
    if n >= 1e6 then return format("%.1f MB", n / 1e6) end
    if n >= 1e3 then return format("%.0f kB", n / 1e3) end
    return format("%d bytes", n)
end

local function progress_bar(err, enabled, label)
    local start = core.now()
    local drawn = false
    local bar = { label = label }
    -- p: parts (built), done, rows, total (parts, when known), bytes/size (a CSV file)
    function bar.update(p)
        if not enabled or core.now() - start < 1 then return end
        local frac, total, approx = nil, p.total, false
        local done = p.done or 0
        if not total and p.size and p.size > 0 and p.bytes and p.parts and p.parts > 0 then
            -- the parts the whole file will make, from how much of it the built ones took
            local read = math.min(1, p.bytes / p.size)
            total = read >= 1 and p.parts or math.max(p.parts, math.ceil(p.parts / read))
            approx = read < 1
        end
        if total and total > 0 then
            frac = math.max(0, math.min(1, done / total))
        end
        local width = 24
        local filled = frac and floor(frac * width + 0.5) or 0
        local line = format("%s [%s%s]%s %d of %s%s done, %s rows", bar.label,
            ("#"):rep(filled), ("-"):rep(width - filled),
            frac and format(" %3d%%", floor(frac * 100 + 0.5)) or "", done,
            approx and "~" or "", plural(total or p.parts or 0, "part"),
            grouped(p.rows or 0))
        if p.size and p.size > 0 and p.bytes then
            line = line .. format(", %s of %s read", size_text(p.bytes), size_text(p.size))
        end
        err:write("\r\27[K", line)
        err:flush()
        drawn = true
    end
    function bar.clear()
        if drawn then
            err:write("\r\27[K")
            err:flush()
            drawn = false
        end
    end
    return bar
end

---------------------------------------------------------------------------------------
-- Validation (validate, and send's check before sending)
---------------------------------------------------------------------------------------

local BASE_NAME = "laaffic-validate"

local function base_task()
    return { appId = "validate", taskName = BASE_NAME, agentId = 1,
             numberInfoList = { { calleeNumber = "100000000" } } }
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    return keys
end

-- Every problem with the task's own fields, one per top-level field (each is checked on
-- its own in an otherwise valid task, so one bad field does not hide another), and the
-- warnings: rules the vendor's pages do not state (problems too when strict).
local function field_problems(task, taskname, app_id, has_numbers, strict)
    local problems, warnings = {}, array()
    local function add(field, message, code)
        problems[#problems + 1] = { file = taskname, field = field, message = message,
            code = code, text = taskname .. ": " .. message }
    end
    local function warned(info)
        for _, w in ipairs(info.warnings) do
            warnings[#warnings + 1] = { file = taskname, field = w.field, code = w.code,
                message = w.field .. ": " .. w.message,
                text = taskname .. ": warning: " .. w.field .. ": " .. w.message }
        end
    end
    local eopts = { strict = strict }
    local required = { "appId", "taskName", "agentId" }
    if not has_numbers then required[#required + 1] = "numberInfoList" end
    for _, k in ipairs(required) do
        if task[k] == nil and not (k == "appId" and app_id) then
            add(k, k .. ": is required" .. (k == "appId" and
                " (or set app_id in the config file, or LAAFFIC_APP_ID)" or
                k == "numberInfoList" and " (or give --numbers FILE.csv)" or ""), -22)
        end
    end
    for _, k in ipairs(sorted_keys(task)) do
        if k ~= "numberInfoList" then
            local t = base_task()
            t[k] = task[k]
            local ok, json, msg, field, code = pcall(core.encode, t, eopts)
            if not ok then
                add(tostring(k), tostring(json), -22)
            elseif not json then
                add(field or tostring(k), tostring(msg), code)
            else
                warned(msg)
            end
        end
    end
    if #problems == 0 then
        -- the fields together (a rule across fields would show here)
        local t = {}
        for k, v in pairs(task) do t[k] = v end
        t.appId = t.appId or app_id
        t.numberInfoList = base_task().numberInfoList
        local ok, json, msg, field, code = pcall(core.encode, t, eopts)
        if not ok then
            add("", tostring(json), -22)
        elseif not json then
            add(field or "", tostring(msg), code)
        end
    end
    return problems, warnings
end

local function valid_name(task)
    local n = task.taskName
    if type(n) ~= "string" then return nil end
    local ok, json = pcall(core.encode, { appId = "v", taskName = n, agentId = 1,
                                          numberInfoList = base_task().numberInfoList })
    return ok and json and n or nil
end

-- The counts of a CSV list read to its end, and its identity (the send's source must
-- have the same); closes it. Returns whether it is still the file that was opened.
local function csv_done(report, list)
    local si = list:info()
    report.rows, report.duplicates = floor(si.rows), floor(si.duplicates)
    report.identity = si.identity
    local same, why = list:check()
    list:close()
    return same, why
end

-- Checks every row of the list, part by part as a send would build them.
-- Returns { problems (field, then rows, then parts), row_problems, part_problems, rows,
-- parts = { { part, task_name, rows } }, rejected, duplicates, truncated }.
local function check(task, taskname, make_list, listname, enc, app_id, has_numbers, bar)
    local report = { rows = 0, parts = array(), rejected = 0, duplicates = 0, truncated = 0,
                     row_problems = array(), part_problems = array() }
    report.field_problems, report.warnings = field_problems(task, taskname, app_id, has_numbers,
                                                            enc.strict)
    local list = make_list()
    local is_csv = csv.is(list)
    local name = valid_name(task) or BASE_NAME
    local rejects = {}
    local o = { require_texts = enc.require_texts, truncate = enc.truncate,
                max_rows = enc.max_rows, rejects = rejects, max_rejects = enc.max_rejects }
    local n = not is_csv and type(list) == "table" and #list or nil
    local total = n and math.max(1, math.ceil(n / enc.max_rows)) or nil
    local function part_problem(k, msg, where, field, code)
        local text
        if where and where.line or msg:find(listname, 1, true) then
            text = msg          -- the encoder's message names the file (file:line:column)
        else
            text = listname .. ": " .. (k > 1 and ("part " .. k .. ": ") or "") .. msg
        end
        report.part_problems[#report.part_problems + 1] = { file = where and where.file or
            listname, line = where and where.line, column = where and where.column,
            field = field, message = msg, code = code, part = k, text = text }
    end
    if n == 0 and enc.strict then
        part_problem(1, "numberInfoList: is empty: no number to call", nil, "numberInfoList", -21)
    elseif n == 0 then          -- the pages give only a maximum: a warning, nothing to check
        report.warnings[#report.warnings + 1] = { file = listname, field = "numberInfoList",
            code = -21, message = "numberInfoList: is empty: no number to call",
            text = listname .. ": warning: numberInfoList: is empty: no number to call" }
        report.parts[1] = { part = 1, rows = 0, task_name = name }
    elseif list ~= nil then
        local k = 0
        local more = true
        while more do
            k = k + 1
            if not is_csv then o.part = k end
            local before = is_csv and list:info().bytes
            local t = { appId = "validate", taskName = name, agentId = 1, numberInfoList = list }
            local ok, body, info, field, code, where = pcall(core.encode_body, t, o)
            if not ok then
                part_problem(k, tostring(body), nil, "numberInfoList", -22)
                break
            end
            if body then
                body:close()
                report.parts[#report.parts + 1] = { part = k, rows = info.rows,
                    task_name = info.task_name or name }
                report.truncated = report.truncated + (info.truncated or 0)
                if not is_csv then report.rows = report.rows + info.rows end
                more = info.more and true or false
            else
                part_problem(k, tostring(info), where, field, code)
                if field == "taskName" and name ~= BASE_NAME then
                    name = BASE_NAME     -- report the name once, go on checking the rows
                end
                if is_csv then
                    -- only a part's name can fail and leave the rest of the file readable
                    local si = list:info()
                    more = field == "taskName" and not si.done and si.bytes > before
                else
                    more = n ~= nil and k * enc.max_rows < n
                end
            end
            if bar then
                local si = is_csv and list:info()
                bar.update({ parts = k, done = k, total = total, rows = is_csv and si.rows or
                             report.rows, bytes = si and si.bytes, size = si and si.size })
            end
        end
        local same, why = true, nil
        if is_csv then same, why = csv_done(report, list) end
        if not same then
            part_problem(k, "the file changed while it was being checked (" .. tostring(why) ..
                         ")", nil, "numberInfoList")
        end
    end
    for _, r in ipairs(rejects) do
        local p = { field = r.field, message = r.message, code = r.code, index = r.index }
        if r.line then
            p.file, p.line, p.column = listname, r.line, r.column
            p.text = format("%s:%s:%s: %s: %s", listname, int(r.line), int(r.column or 0),
                            tostring(r.field), tostring(r.message))
        else
            p.file = listname
            p.text = format("%s: %s: %s", listname, tostring(r.field), tostring(r.message))
        end
        report.row_problems[#report.row_problems + 1] = p
    end
    report.rejected = #rejects
    local all = array()
    for _, group in ipairs({ report.field_problems, report.row_problems, report.part_problems }) do
        for _, p in ipairs(group) do all[#all + 1] = p end
    end
    report.problems = all
    return report
end

---------------------------------------------------------------------------------------
-- Output
---------------------------------------------------------------------------------------

local function error_json(err)
    if type(err) ~= "table" then return { kind = "internal", message = tostring(err) } end
    local e = {}
    for _, k in ipairs({ "kind", "code", "name", "message", "field", "reason", "http_status",
                         "file", "line", "column" }) do
        e[k] = err[k]
    end
    e.text = tostring(err)
    return e
end

local function problem_json(p)
    return { file = p.file, line = p.line, column = p.column, field = p.field,
             message = p.message, code = p.code, index = p.index, part = p.part, text = p.text }
end

local KIND_EXIT = { ambiguous = EXIT.AMBIGUOUS, transport = EXIT.TRANSPORT,
                    invalid = EXIT.INVALID, io = EXIT.INVALID, status = EXIT.FAILED,
                    already_exists = EXIT.FAILED, protocol = EXIT.FAILED,
                    internal = EXIT.FAILED }

local function worse(a, b)
    return (URGENCY[b] or 0) > (URGENCY[a] or 0) and b or a
end

-- The request logger of -v: one line per event on stderr (no header, no body: the Sign
-- is in the headers and never reaches a log).
local function make_logger(err, bar)
    return function(ev)
        if bar then bar.clear() end
        local name = ev.task_name and format(" %q", ev.task_name) or ""
        if ev.event == "request" then
            err:write(format("laaffic: %s %s%s (attempt %d, %s bytes)\n", tostring(ev.method),
                tostring(ev.url), name, ev.attempt or 0, int(ev.bytes or 0)))
        elseif ev.event == "response" then
            err:write(format("laaffic: HTTP %s%s in %.3f s%s\n", tostring(ev.status), name,
                ev.elapsed or 0, ev.http_version and (" (HTTP/" .. tostring(ev.http_version) ..
                ")") or ""))
        else
            err:write(format("laaffic: %s%s failed after %.3f s (%s, %s): %s\n",
                tostring(ev.method or "request"), name, ev.elapsed or 0, tostring(ev.kind),
                ev.sent == false and "nothing sent" or "may have been sent",
                tostring(ev.message)))
        end
        err:flush()
    end
end

-- CSV field quoting (RFC 4180)
local function csv_field(v)
    if v == nil then return "" end
    v = tostring(v)
    if v:find('[,"\r\n]') then
        return '"' .. v:gsub('"', '""') .. '"'
    end
    return v
end

-- A name for a temporary file beside path (same directory: the rename is atomic).
local function temp_beside(path)
    local f = io.open("/dev/urandom", "rb")
    local r = f and f:read(6)
    if f then f:close() end
    local hex = r and r:gsub(".", function(c) return format("%02x", c:byte()) end) or
                format("%x%x", os.time(), floor(core.now() * 1e6) % 0x1000000)
    local dir, base = path:match("^(.*/)([^/]*)$")
    return (dir or "") .. "." .. (base or path) .. ".laaffic-" .. hex
end

-- --rejects FILE must never be a file the command reads: it is replaced at the end.
-- Compared by device and inode, so another spelling or a link is caught too.
local function check_rejects_path(opts, cfg)
    if not opts.rejects then return end
    local id = core.file_id(opts.rejects)
    if id then
        for _, input in ipairs({ { opts.numbers, "number list" },
                                 { opts.task ~= "-" and opts.task, "task file" },
                                 { cfg.config_path, "config file" } }) do
            if type(input[1]) == "string" and core.file_id(input[1]) == id then
                die(EXIT.USAGE, format("--rejects %s is the %s (%s): it would be overwritten; " ..
                    "give another file", opts.rejects, input[2], input[1]))
            end
        end
    end
    -- fail now, not after the send, when the directory cannot take the file
    local tmp = temp_beside(opts.rejects)
    local f, err = io.open(tmp, "wb")
    if not f then die(EXIT.USAGE, "--rejects: cannot write beside " .. opts.rejects .. ": " ..
                      tostring(err)) end
    f:close()
    os.remove(tmp)
end

-- Writes the rejects to a temporary file renamed over path at the end: path is never
-- truncated first, and holds either its old content or the whole new list.
local function write_rejects(path, rejects)
    local tmp = temp_beside(path)
    local f, err = io.open(tmp, "wb")
    if not f then return nil, err end
    local ok, werr = f:write("line,column,field,message\n")
    for _, r in ipairs(rejects) do
        if not ok then break end
        ok, werr = f:write(csv_field(r.line and int(r.line)), ",",
            csv_field(r.column and int(r.column)), ",", csv_field(r.field), ",",
            csv_field(r.message), "\n")
    end
    local closed, cerr = f:close()
    if ok and closed then
        ok, werr = os.rename(tmp, path)
    else
        ok, werr = nil, werr or cerr
    end
    if not ok then
        os.remove(tmp)
        return nil, werr
    end
    return true
end

---------------------------------------------------------------------------------------
-- Commands
---------------------------------------------------------------------------------------

local function encoder_opts(opts, command)
    local max_rejects_default = command == "validate" and VALIDATE_MAX_REJECTS or 1000
    return {
        require_texts = require_texts(opts),
        truncate = not opts.no_truncate,
        max_rows = int_option(opts, "max_rows", 1, MAX_ROWS, MAX_ROWS),
        max_rejects = int_option(opts, "max_rejects", 0, MAX_REJECTS, max_rejects_default),
        strict = opts.strict or nil,
    }
end

local function print_problems(out, problems)
    for _, p in ipairs(problems) do
        out:write(p.text, "\n")
    end
end

local function cmd_validate(ctx, opts)
    local started = core.now()
    local enc = encoder_opts(opts, "validate")
    local cfg = load_settings(opts, ctx.env)
    cfg = apply_sandbox(cfg, opts, ctx.env)
    local task, taskname = load_task(opts)
    local make_list, listname = number_source(opts, task, taskname)
    check_rejects_path(opts, cfg)
    local bar = progress_bar(ctx.stderr, ctx.progress, "validating")
    local report = check(task, taskname, make_list, listname, enc, cfg.app_id,
                         opts.numbers ~= nil, bar)
    bar.clear()
    local ok = #report.problems == 0
    if opts.rejects then
        local rows = {}
        for _, p in ipairs(report.row_problems) do
            rows[#rows + 1] = { line = p.line, column = p.column,
                                field = p.field, message = p.message }
        end
        local w, werr = write_rejects(opts.rejects, rows)
        if not w then die(EXIT.USAGE, "--rejects: " .. tostring(werr)) end
    end
    if opts.json then
        local problems, warnings = array(), array()
        for _, p in ipairs(report.problems) do problems[#problems + 1] = problem_json(p) end
        for _, p in ipairs(report.warnings) do warnings[#warnings + 1] = problem_json(p) end
        ctx.stdout:write(encode_json({
            ok = ok, problems = problems, warnings = warnings, rows = report.rows,
            parts = #report.parts,
            tasks = report.parts, rejected = report.rejected, duplicates = report.duplicates,
            truncated = report.truncated, task = taskname,
            numbers = opts.numbers, exit_code = ok and EXIT.OK or EXIT.INVALID,
            time = floor((core.now() - started) * 1000 + 0.5) / 1000,
        }), "\n")
    else
        print_problems(ctx.stdout, report.problems)
        print_problems(ctx.stdout, report.warnings)
        if not opts.quiet or not ok then
            ctx.stdout:write(format("%s%s rows, %s (at most %s rows each); %s rejected, %s, " ..
                "%s truncated%s\n", ok and "valid: " or format("INVALID: %s; ",
                plural(#report.problems, "problem")), grouped(report.rows),
                plural(#report.parts, "task"), grouped(enc.max_rows), grouped(report.rejected),
                plural(report.duplicates, "duplicate"), plural(report.truncated, "text"),
                #report.warnings > 0 and ("; " .. plural(#report.warnings, "warning") ..
                " (--strict makes them errors)") or ""))
        end
    end
    return ok and EXIT.OK or EXIT.INVALID
end

-- "part 2", "parts 2 to 4", "parts 1, 3 to 5"
local function part_list(nums)
    local out, i = {}, 1
    while i <= #nums do
        local j = i
        while nums[j + 1] == nums[j] + 1 do j = j + 1 end
        out[#out + 1] = i == j and tostring(nums[i]) or format("%d to %d", nums[i], nums[j])
        i = j + 1
    end
    return (#nums == 1 and "part " or "parts ") .. concat(out, ", ")
end

-- One entry per part of the check (the counts a send reports are the check's): a part
-- the send never read, or read and refused to send (the file changed, a bad row), is
-- "not_sent". Returns parts, the exit code, how many were not sent, and the error.
local function send_parts(result, err, report, existing_ok)
    local code, parts, sent, unsent = EXIT.OK, array(), {}, {}
    for k = 1, math.max(#result.parts, #report.parts) do
        local e, c = result.parts[k] or {}, report.parts[k] or {}
        local entry = { part = k, task_name = e.task_name or c.task_name, rows = e.rows or c.rows }
        local kind = e.error and e.error.kind
        if e.key_id then
            entry.key_id, entry.status = e.key_id, "created"
        elseif e.exists then
            entry.status, entry.error = "exists", error_json(e.error)
            if not existing_ok then code = worse(code, EXIT.FAILED) end
        elseif e.error then
            entry.status, entry.error = "failed", error_json(e.error)
            -- after the check, a bad row or an unreadable file is a failure, not exit 3
            code = worse(code, (kind == "io" or kind == "invalid") and EXIT.FAILED or
                               KIND_EXIT[kind] or EXIT.FAILED)
        else
            entry.status = "not_sent"
        end
        local is_sent = e.key_id or e.exists or (e.error and kind ~= "io" and kind ~= "invalid")
        local list = is_sent and sent or unsent
        list[#list + 1] = k
        parts[#parts + 1] = entry
    end
    if err and code == EXIT.OK then
        code = worse(code, KIND_EXIT[err.kind] or EXIT.FAILED)
    end
    if not err and (result.rows ~= report.rows or #result.parts ~= #report.parts) then
        code = worse(code, EXIT.FAILED)
        err = { kind = "io", message = format("the send read %s in %s, the check %s in %s: " ..
            "the list changed", plural(result.rows, "row"), plural(#result.parts, "part"),
            plural(report.rows, "row"), plural(#report.parts, "part")) }
    end
    if err and #unsent > 0 then
        -- why the first part not sent was not: the summary of create_tasks adds nothing
        local first = (result.parts[unsent[1]] or {}).error or err
        local msg = (#sent > 0 and (part_list(sent) .. (#sent == 1 and " was" or " were") ..
            " sent, ") or "no part was sent, ") .. part_list(unsent) ..
            (#unsent == 1 and " was" or " were") .. " not: " .. tostring(first.message)
        err = { kind = err.kind, code = err.code, field = err.field, file = err.file,
                line = err.line, column = err.column, message = msg, text = "laaffic: " .. msg }
        setmetatable(err, { __tostring = function(x) return x.text end })
    end
    return parts, code, #unsent, err
end

-- Prints what a send did: o = { parts, code, not_sent, err, result, rows (the check's),
-- rejects, rejects_written, elapsed }. Returns the exit code.
local function send_output(ctx, opts, task, o)
    local parts, code, result = o.parts, o.code, o.result
    if opts.json then
        local warnings = array()
        for _, p in ipairs(o.warnings) do warnings[#warnings + 1] = problem_json(p) end
        ctx.stdout:write(encode_json({
            ok = code == EXIT.OK, exit_code = code, parts = parts, created = result.created,
            existing = result.existing, failed = result.failed, not_sent = o.not_sent,
            rows = o.rows, rejected = result.rejected, duplicates = result.duplicates,
            time = floor(o.elapsed * 1000 + 0.5) / 1000, rejects_file = o.rejects_written,
            error = o.err and error_json(o.err) or nil, warnings = warnings,
        }), "\n")
        return code
    end
    print_problems(ctx.stderr, o.warnings)
    local split = #parts > 1 or (parts[1] and parts[1].task_name ~= task.taskName)
    for _, e in ipairs(parts) do
        local head = (split and format("part %d ", e.part) or "") .. format("%q", tostring(
            e.task_name or task.taskName)) .. (e.rows and format(" (%s)", plural(e.rows, "row"))
            or "")
        local line
        if e.status == "created" then
            line = head .. ": created, keyId " .. tostring(int(e.key_id))
        elseif e.status == "exists" then
            line = head .. ": already exists (" .. (opts.existing_ok and "counted as done" or
                "not created again; --existing-ok counts it as done") .. ")"
        elseif e.status == "not_sent" then
            line = head .. ": not sent"
        else
            line = head .. ": FAILED: " .. tostring(e.error and e.error.text)
        end
        if e.status == "created" or e.status == "exists" then
            if not opts.quiet then ctx.stdout:write(line, "\n") end
        else
            (opts.quiet and ctx.stderr or ctx.stdout):write(line, "\n")
        end
    end
    if not opts.quiet then
        local extra = {}
        if result.rejected > 0 or o.rejects then
            extra[#extra + 1] = grouped(result.rejected) .. " rejected" ..
                (o.rejects_written and (" (listed in " .. o.rejects_written .. ")") or "")
        end
        if result.duplicates > 0 then
            extra[#extra + 1] = plural(result.duplicates, "duplicate") .. " dropped"
        end
        ctx.stdout:write(format("%s: %d created, %d already existed, %d failed, of %s%s; %s%s; " ..
            "%.2f s\n", code == EXIT.OK and "done" or "FAILED", result.created, result.existing,
            result.failed, plural(#parts, "part"), o.not_sent > 0 and
            format(" (%d not sent)", o.not_sent) or "", plural(o.rows, "row"),
            #extra > 0 and (", " .. concat(extra, ", ")) or "", o.elapsed))
    end
    if o.err and o.not_sent > 0 then
        ctx.stderr:write("laaffic: ", tostring(o.err.message), "\n")
    end
    if code == EXIT.AMBIGUOUS then
        ctx.stderr:write("laaffic: the outcome of a part is unknown: it may have been created. " ..
            "Run the same command again: a part that exists answers \"already exists\" and is " ..
            "not created twice (add --existing-ok to count it as done)\n")
    end
    return code
end

local function cmd_send(ctx, opts)
    local started = core.now()
    local concurrency = int_option(opts, "concurrency", 1, 64, 4)
    local enc = encoder_opts(opts, "send")
    local cfg = load_settings(opts, ctx.env)
    cfg = apply_sandbox(cfg, opts, ctx.env)
    -- the input first (a missing task file is the first thing to say), then the
    -- credentials, before the check of a long list
    local task, taskname = load_task(opts)
    local make_list, listname = number_source(opts, task, taskname)
    check_rejects_path(opts, cfg)
    require_credentials(cfg)

    -- check the whole list first: an invalid task sends nothing
    local bar = progress_bar(ctx.stderr, ctx.progress, "checking")
    local report = check(task, taskname, make_list, listname, enc, cfg.app_id,
                         opts.numbers ~= nil, bar)
    local blocking = array()
    for _, group in ipairs({ report.field_problems, opts.rejects and {} or report.row_problems,
                             report.part_problems }) do
        for _, p in ipairs(group) do blocking[#blocking + 1] = p end
    end
    if #blocking > 0 then
        bar.clear()
        local hint = not opts.rejects and #report.row_problems > 0 and
            "; --rejects FILE skips bad rows and sends the rest" or ""
        die(EXIT.INVALID, format("%s: nothing was sent%s", plural(#blocking, "problem"), hint),
            { problems = blocking })
    end

    local client = make_client(cfg, opts.verbose and make_logger(ctx.stderr, bar) or nil,
                               enc.strict)
    local t = {}
    for k, v in pairs(task) do t[k] = v end
    t.numberInfoList = make_list()
    if csv.is(t.numberInfoList) and t.numberInfoList:info().identity ~= report.identity then
        t.numberInfoList:close()
        die(EXIT.INVALID, listname .. " changed after it was checked: nothing was sent; run " ..
            "the command again once the file stays as it is")
    end
    local total = #report.parts
    bar.label = "sending"
    local rejects = opts.rejects and {} or nil
    local result, err = client:create_tasks(t, {
        concurrency = concurrency, max_rows = enc.max_rows, require_texts = enc.require_texts,
        truncate = enc.truncate, rejects = rejects, max_rejects = enc.max_rejects,
        on_progress = function(p)
            p.total = total
            bar.update(p)
        end,
    })
    bar.clear()
    client:close()
    if csv.is(t.numberInfoList) then t.numberInfoList:close() end

    local parts, code, not_sent, err2 = send_parts(result, err, report, opts.existing_ok)
    err = err2
    local rejects_written
    if rejects then
        local w, werr = write_rejects(opts.rejects, rejects)
        if not w then
            ctx.stderr:write("laaffic: --rejects: ", tostring(werr), "\n")
            code = worse(code, EXIT.FAILED)
        else
            rejects_written = opts.rejects
        end
    end
    local elapsed = core.now() - started
    return send_output(ctx, opts, task, { parts = parts, code = code, not_sent = not_sent,
        err = err, result = result, rows = report.rows, rejects = rejects,
        rejects_written = rejects_written, elapsed = elapsed, warnings = report.warnings })
end

local function cmd_sign(ctx, opts)
    local cfg = load_settings(opts, ctx.env)
    cfg = apply_sandbox(cfg, opts, ctx.env)
    local ts = opts.timestamp
    if ts ~= nil and not (type(ts) == "string" and ts:match("^%d+$") and #ts <= 12) then
        die(EXIT.USAGE, "--timestamp takes unix seconds (digits)")
    end
    local client = make_client(cfg)
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
        ctx.stdout:write(encode_json(t), "\n")
    else
        local lines = {}
        for _, k in ipairs(names) do
            lines[#lines + 1] = 'header = "' .. (k .. ": " .. h[k]):gsub('[\\"]', "\\%0") .. '"'
        end
        ctx.stdout:write(concat(lines, "\n"), "\n")
    end
    return EXIT.OK
end

-- sandbox/laaffic-sandbox: $LAAFFIC_SANDBOX_BIN, or the checkout's sandbox/ beside this
-- script's bin/ (resolving symlinks), with the sandbox's Lua modules in it.
local function find_sandbox(ctx)
    local bin = ctx.env("LAAFFIC_SANDBOX_BIN")
    local tried = {}
    if bin and bin ~= "" then
        tried[#tried + 1] = bin
    else
        local script = ctx.script or "laaffic"
        local real = shell_out("readlink -f -- " .. q(script) .. " 2>/dev/null")
        real = real and real:match("^([^\n]+)") or script
        for _, s in ipairs({ script, real }) do
            local b = (s:match("^(.*)/[^/]*$") or ".") .. "/../sandbox/laaffic-sandbox"
            if b ~= tried[1] then tried[#tried + 1] = b end
        end
    end
    for _, b in ipairs(tried) do
        local dir = b:match("^(.*)/[^/]*$") or "."
        if shell_ok("test -x " .. q(b)) and read_file(dir .. "/lua/laaffic_sandbox/api.lua") then
            return b
        end
    end
    die(EXIT.CONFIG, "sandbox: sandbox/laaffic-sandbox and its files (sandbox/lua/, " ..
        "the LuaJIT build of laaffic.core) are not installed: they come with a source " ..
        "checkout. Run bin/laaffic from the checkout, or set LAAFFIC_SANDBOX_BIN to the " ..
        "checkout's sandbox/laaffic-sandbox (looked for: " .. concat(tried, ", ") .. ")")
end

local function cmd_sandbox(ctx, opts, pos)
    local action = pos[1]
    if action ~= "start" and action ~= "stop" and action ~= "status" then
        die(EXIT.USAGE, "sandbox: say start, stop or status" ..
            (action and (", not the word given" .. NOT_SHOWN) or ""))
    end
    if pos[2] then die(EXIT.USAGE, "sandbox " .. action .. ": unexpected argument" .. NOT_SHOWN) end
    if opts.ttl and action ~= "start" then die(EXIT.USAGE, "--ttl is for sandbox start") end
    local ttl = int_option(opts, "ttl", 0, 10 * 365 * 86400, nil)
    local bin = find_sandbox(ctx)
    local errfile = os.tmpname()
    local cmd = q(bin) .. " " .. action .. (opts.dir and (" --dir " .. q(opts.dir)) or "") ..
                (ttl and (" --ttl " .. ttl) or "") .. " 2>" .. q(errfile) .. "; echo \"rc=$?\""
    local out = shell_out(cmd) or ""
    local errtext = read_file(errfile) or ""
    os.remove(errfile)
    local body, rc = out:match("^(.-)rc=(%d+)%s*$")
    rc = tonumber(rc) or 1
    body = body or ""
    if action == "start" then
        if rc ~= 0 then
            ctx.stderr:write(errtext)
            die(EXIT.FAILED, "sandbox start failed (exit " .. rc .. ")")
        end
        local e = parse_env(body)
        local info = { ok = true, dir = e.LAAFFIC_SANDBOX_DIR, pid = tonumber(e.LAAFFIC_SANDBOX_PID),
                       http = e.LAAFFIC_SANDBOX_HTTP, https = e.LAAFFIC_SANDBOX_HTTPS,
                       ca = e.LAAFFIC_SANDBOX_CA, app_id = e.LAAFFIC_SANDBOX_APP_ID,
                       env_file = e.LAAFFIC_SANDBOX_DIR and (e.LAAFFIC_SANDBOX_DIR .. "/env") }
        if opts.json then
            ctx.stdout:write(encode_json(info), "\n")
        elseif not opts.quiet then
            ctx.stdout:write(format("sandbox running: pid %s, dir %s\n  http   %s\n  https  %s" ..
                " (CA %s)\n  appId  %s\nsend to it:  laaffic send --sandbox %s --task task.json\n" ..
                "stop it:     laaffic sandbox stop%s\n", tostring(info.pid), tostring(info.dir),
                tostring(info.http), tostring(info.https), tostring(info.ca), tostring(info.app_id),
                q(info.dir or ""), opts.dir and (" --dir " .. q(opts.dir)) or ""))
        end
        return EXIT.OK
    elseif action == "stop" then
        if rc ~= 0 then
            ctx.stderr:write(errtext)
            die(EXIT.FAILED, "sandbox stop failed (exit " .. rc .. ")")
        end
        local msg = errtext:match("stopped pid %d+") or errtext:match("not running") or "stopped"
        if opts.json then
            ctx.stdout:write(encode_json({ ok = true, result = msg }), "\n")
        elseif not opts.quiet then
            ctx.stdout:write("sandbox: ", msg, "\n")
        end
        return EXIT.OK
    else
        local running = rc == 0
        if opts.json then
            local pid, dir = body:match("running: pid (%d+), dir ([^\n]+)")
            ctx.stdout:write(encode_json({ ok = running, running = running,
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
end

---------------------------------------------------------------------------------------
-- main
---------------------------------------------------------------------------------------

-- main(argv [, ctx]) -> exit code. ctx: script (arg[0]), stdout, stderr, env (getenv).
function _M.main(argv, ctx)
    ctx = ctx or {}
    ctx.stdout = ctx.stdout or io.stdout
    ctx.stderr = ctx.stderr or io.stderr
    ctx.env = ctx.env or os.getenv
    ctx.isatty = ctx.isatty or isatty
    local args = {}
    for i = 1, #(argv or {}) do args[i] = argv[i] end

    local opts = {}
    for _, a in ipairs(args) do
        if a == "--" then break end
        if a == "--json" then opts.json = true end   -- for a usage error's JSON
    end
    local ok, code = pcall(function()
        local command, pos
        command, opts, pos = parse_args(args)
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
        if command == "send" then return cmd_send(ctx, opts) end
        if command == "validate" then return cmd_validate(ctx, opts) end
        if command == "sign" then return cmd_sign(ctx, opts) end
        return cmd_sandbox(ctx, opts, pos)
    end)
    if ok then return code end
    local e = code
    if getmetatable(e) ~= Exit then
        e = { code = EXIT.FAILED, message = "internal error: " .. tostring(e) }
    end
    if opts.json then
        local problems
        if e.extra and e.extra.problems then
            problems = array()
            for _, p in ipairs(e.extra.problems) do problems[#problems + 1] = problem_json(p) end
        end
        local kinds = { [EXIT.USAGE] = "usage", [EXIT.CONFIG] = "config",
                        [EXIT.INVALID] = "invalid", [EXIT.FAILED] = "failed" }
        ctx.stdout:write(encode_json({ ok = false, exit_code = e.code, problems = problems,
            error = { kind = kinds[e.code] or "failed", message = e.message } }), "\n")
    else
        if e.extra and e.extra.problems and #e.extra.problems > 1 or
           (e.extra and e.extra.problems and e.extra.problems[1] and
            e.extra.problems[1].text ~= e.message) then
            print_problems(ctx.stdout, e.extra.problems)
        end
        ctx.stderr:write("laaffic: ", e.message, "\n")
    end
    return e.code
end

_M.HELP = HELP

return _M
