-- laaffic.cli.output: what the commands print besides their own lines: one JSON document
-- (--json), the problem lines, the progress bar on a terminal and the request log of -v.

local cjson = require "cjson"
local laaffic = require "laaffic"
local util = require "laaffic.cli.util"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local setmetatable = setmetatable
local getmetatable = getmetatable
local format = string.format
local concat = table.concat
local floor = math.floor

local core = laaffic.core
local int, grouped, plural = util.int, util.grouped, util.plural

local _M = {}

---------------------------------------------------------------------------------------
-- JSON through lua-cjson, and three things its 2.1.0 (Debian's) does not do: an empty
-- array() stays [] (cjson writes {} for any empty table), an integer keeps every digit
-- (cjson's %.14g would round a 15- or 16-digit keyId) and bytes that are not UTF-8
-- become U+FFFD (cjson copies them, and the document would not be JSON). Such values go
-- through cjson as marked strings that the gsub below turns back into [] and digits.
---------------------------------------------------------------------------------------

local json = cjson.new()
json.encode_invalid_numbers("null")

local ARRAY = {}
function _M.array(t)
    return setmetatable(t or {}, ARRAY)
end

-- NUL is written \u0000: a marked string can only be a whole value, after : , or [
local MARK = "\0laaffic:"
local EMPTY = MARK .. "[]\0"
local MARKED = '([:,%[])"\\u0000laaffic:([%[%]#%-%d]+)\\u0000"'

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
        out[#out + 1] = ok and s:sub(i, i + len - 1) or "\239\191\189"
        i = i + (ok and len or 1)
    end
    return concat(out)
end

-- a copy of v for cjson, with the values it would write wrong marked
local function prepare(v)
    local t = type(v)
    if t == "string" then
        -- a string that looks marked (a crafted message) stays a string
        return v:sub(1, #MARK) == MARK and "\0" .. v or utf8_clean(v)
    elseif t == "number" then
        if v == floor(v) and (v >= 1e14 or v <= -1e14) and v > -2 ^ 53 and v < 2 ^ 53 then
            return MARK .. "#" .. format("%d", v) .. "\0"
        end
        return v
    elseif t ~= "table" then
        return v
    end
    if getmetatable(v) == ARRAY and v[1] == nil then return EMPTY end
    local c = {}
    for k, x in pairs(v) do c[k] = prepare(x) end
    return c
end

-- json(v) -> one JSON document (encoded inside [ ], so that even v itself has a comma,
-- a colon or a bracket before it)
function _M.json(v)
    local s = json.encode({ prepare(v) }):gsub(MARKED, function(before, value)
        return before .. (value:match("^#(%-?%d+)$") or "[]")
    end)
    return s:sub(2, -2)
end

function _M.error_json(err)
    if type(err) ~= "table" then return { kind = "internal", message = tostring(err) } end
    local e = {}
    for _, k in ipairs({ "kind", "code", "name", "message", "field", "reason", "http_status",
                         "file", "line", "column" }) do
        e[k] = err[k]
    end
    e.text = tostring(err)
    return e
end

function _M.problem_json(p)
    return { file = p.file, line = p.line, column = p.column, field = p.field,
             message = p.message, code = p.code, index = p.index, part = p.part, text = p.text }
end

-- problems as an array() of problem_json
function _M.problems_json(problems)
    local out = _M.array()
    for _, p in ipairs(problems) do out[#out + 1] = _M.problem_json(p) end
    return out
end

function _M.print_problems(out, problems)
    for _, p in ipairs(problems) do
        out:write(p.text, "\n")
    end
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
_M.progress_bar = progress_bar

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
_M.make_logger = make_logger

return _M
