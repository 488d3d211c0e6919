-- laaffic.cli.task: reads --task: a .json file (the API's request JSON, `//` and `/* */`
-- comments allowed as in the vendor's own example) or a .lua file returning the task
-- table, run without io/os/require and under an instruction and memory bound.

local laaffic = require "laaffic"
local cjson = require "cjson.safe"
local util = require "laaffic.cli.util"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local next = next
local select = select
local setmetatable = setmetatable
local getmetatable = getmetatable
local pcall = pcall
local error = error
local format = string.format
local concat = table.concat

local EXIT, die, grouped, read_file = util.EXIT, util.die, util.grouped, util.read_file

local _M = {}

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


_M.load = load_task

return _M
