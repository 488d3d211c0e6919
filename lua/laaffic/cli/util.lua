-- laaffic.cli.util: what every command of the CLI shares: the exit codes, the controlled
-- exit (die), reading a file, and the number formats of the messages.

local type = type
local tostring = tostring
local setmetatable = setmetatable
local error = error
local format = string.format
local floor = math.floor

local _M = {}

-- exit codes (documented in the help and in the README)
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

function _M.worse(a, b)
    return (URGENCY[b] or 0) > (URGENCY[a] or 0) and b or a
end

-- A controlled exit: raised with error(), caught by main.
local Exit = {}
Exit.__index = Exit
_M.Exit = Exit

function _M.die(code, msg, extra)
    error(setmetatable({ code = code, message = msg, extra = extra }, Exit), 0)
end

-- a shell word
function _M.q(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function int(n)
    if type(n) ~= "number" then return n end
    if n == floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then
        return format("%d", n)
    end
    return tostring(n)
end
_M.int = int

-- "12345678" -> "12,345,678"
local function grouped(n)
    local s = int(n or 0)
    local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
    return (out:gsub("^,", ""))
end
_M.grouped = grouped

function _M.plural(n, word, words)
    return grouped(n) .. " " .. (n == 1 and word or (words or word .. "s"))
end

function _M.read_file(path)
    local f, err = io.open(path, "rb")
    if not f then return nil, err end
    local s = f:read("*a")
    f:close()
    if not s then return nil, path .. ": cannot be read (a directory?)" end
    return s
end

function _M.shell_out(cmd)
    local p = io.popen(cmd, "r")
    if not p then return nil end
    local out = p:read("*a")
    p:close()
    return out
end

-- Runs cmd with sh; returns its stdout and its exit code (1 when sh could not be run).
function _M.sh(cmd)
    local out = _M.shell_out("{ " .. cmd .. "\n}; echo \"rc=$?\"") or ""
    local body, rc = out:match("^(.-)rc=(%d+)%s*$")
    return body or "", tonumber(rc) or 1
end

-- A name safe to echo in a message (a config key, an option's name): lowercase words
-- only. An argument's value is never echoed: a stray word on the command line may be a
-- credential pasted in the wrong place.
function _M.echo(s)
    s = tostring(s)
    if #s <= 24 and s:match("^%l[%l_%-]*$") then
        return "'" .. s .. "'"
    end
    return "(not shown)"
end

_M.NOT_SHOWN = " (not shown: it could be a credential)"

return _M
