-- laaffic.push_parse: the reader of a status-report push body, for laaffic.push.
--
-- parse(body [, opts]) turns the platform's JSON (a list of records, {"array":[...]}, or
-- one record) into records with typed fields, in plain Lua 5.4 or LuaJIT. Pushes are
-- unsigned, re-sent and described only by an unverified vendor page, so the reader is
-- tolerant and never raises on a body; it keeps long digit strings exact and the bytes of a
-- record it cannot key. Users call it as laaffic.push.parse (README.md, "Receiving
-- status-report pushes").

local type = type
local pairs = pairs
local next = next
local select = select
local ipairs = ipairs
local pcall = pcall
local tostring = tostring
local floor = math.floor
local format = string.format
local concat = table.concat
local byte = string.byte
local unpack_list = table.unpack or unpack -- luacheck: ignore 143 (unpack: Lua 5.1/LuaJIT)

local cjson_safe = require("cjson.safe")
local options = require("laaffic.options")
local values = require("laaffic.push_values")

local finite, to_number, as_int, safe_integer = values.finite, values.to_number, values.as_int,
    values.safe_integer
local number_text, unix_time = values.number_text, values.unix_time

local _M = {}

local DEFAULT_MAX_BYTES = 8 * 1024 * 1024
local DEFAULT_MAX_RECORDS = 100000
local DEFAULT_MAX_DEPTH = 20
local MAX_VOICE_ID = 512

-- Documented numeric fields: true for count-like ones (integers on Lua 5.4 when integral).
local NUMBER_FIELDS = {
    type = true, billPeriod = true, code = true, ringDuration = true, chargedDuration = true,
    aiAgentChargedDuration = true, aiAgentBillPeriod = true, terminationCode = true,
    sipCode = true,
    rate = false, cost = false, settleRate = false, settlePay = false, quoteExchange = false,
    aiAgentRate = false, aiAgentFee = false, aiAgentQuoteRate = false, aiAgentQuoteFee = false,
}
local TIME_FIELDS = { "submitTime", "callTime", "ringingTime", "answerTime", "hangupTime" }
local TIME_UNIX = {}
for i, name in ipairs(TIME_FIELDS) do TIME_UNIX[i] = name .. "_unix" end
local STRING_FIELDS = { "callee", "displayNum", "recordingFileId", "currency",
                        "terminationReason", "scriptId", "intent" }
-- String fields whose numeric form is quoted in the body before decoding, so that long
-- digit strings keep every digit (a double holds 15-16).
local QUOTE_NUMBERS = { "voiceId", "callee", "displayNum" }
local QUOTED = { voiceId = true, callee = true, displayNum = true }
local INEXACT = "inexact"

-- The same as two arrays, for a numeric loop.
local NUMBER_NAMES, NUMBER_INTEGRAL = {}, {}
do
    local names = {}
    for k in pairs(NUMBER_FIELDS) do names[#names + 1] = k end
    table.sort(names)
    for i, k in ipairs(names) do
        NUMBER_NAMES[i], NUMBER_INTEGRAL[i] = k, NUMBER_FIELDS[k]
    end
    _M.NUMBER_FIELDS = { unpack_list(names) }
    _M.TIME_FIELDS = { unpack_list(TIME_FIELDS) }
    _M.STRING_FIELDS = { "voiceId", unpack_list(STRING_FIELDS) }
end

local null = cjson_safe.null

---------------------------------------------------------------------------------------
-- parse
---------------------------------------------------------------------------------------

local decoders = {}

local function decoder(depth)
    local d = decoders[depth]
    if not d then
        d = cjson_safe.new()
        d.decode_max_depth(depth)
        d.decode_invalid_numbers(false)
        decoders[depth] = d
    end
    return d
end


local function is_list(t)
    local n = #t
    local count = 0
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then return false end
        count = count + 1
    end
    return count == n
end

-- The text of a record that cannot be keyed, for on_invalid and the log: its bytes as
-- sent, found by the small scanner below (cjson keeps no positions). The body is valid
-- JSON when it runs (cjson decoded it), so the scanner checks nothing.
local function skip_ws(body, i)
    return body:find("[^ \t\r\n]", i) or #body + 1
end

local skip_value

local function skip_string(body, i) -- i at the opening quote; returns the closing one's
    local j = i + 1
    while true do
        local q = body:find('["\\]', j)
        if not q then return #body end
        if byte(body, q) == 34 then return q end
        j = q + 2
    end
end

-- The elements of the array at i (its '['): a list of { from, to }, and the ']'.
local function array_spans(body, i)
    local spans = {}
    i = skip_ws(body, i + 1)
    while i <= #body and byte(body, i) ~= 93 do
        local e = skip_value(body, i)
        spans[#spans + 1] = { i, e }
        i = skip_ws(body, e + 1)
        if byte(body, i) == 44 then i = skip_ws(body, i + 1) end
    end
    return spans, i
end

-- Calls fn(key_from, key_to, value_from) for each member of the object at i (its '{')
-- and returns the '}'. fn returns the value's last byte when it skipped it itself.
local function each_member(body, i, fn)
    i = skip_ws(body, i + 1)
    while byte(body, i) == 34 do
        local ke = skip_string(body, i)
        local v = skip_ws(body, skip_ws(body, ke + 1) + 1) -- past ':'
        local e = fn and fn(i, ke, v) or skip_value(body, v)
        i = skip_ws(body, e + 1)
        if byte(body, i) == 44 then i = skip_ws(body, i + 1) end
    end
    return i
end

-- Returns the last byte of the JSON value at i.
skip_value = function(body, i)
    local c = byte(body, i)
    if c == 34 then return skip_string(body, i) end
    if c == 91 then return select(2, array_spans(body, i)) end
    if c == 123 then return each_member(body, i) end
    local _, e = body:find("^[%w%.%+%-]+", i)
    return e or i
end

-- The spans of the records of body, in the order decode_list gives them: a bare array's
-- elements, those of the wrapper's "array" (the last, as cjson keeps), or the object.
local function record_spans(body, first, single)
    local i = skip_ws(body, 1)
    if first == "[" then return (array_spans(body, i)) end
    if single then return { { i, each_member(body, i) } } end
    local spans
    each_member(body, i, function(ks, ke, v)
        if byte(body, v) == 91 and cjson_safe.decode(body:sub(ks, ke)) == "array" then
            local s, e = array_spans(body, v)
            spans = s
            return e
        end
    end)
    return spans or {}
end

-- The JSON text of v written back from the decode: the fallback should the scanner
-- and the decode ever disagree (numbers to a double's last digit, cjson's key order).
local function raw_json(v)
    local t = type(v)
    if t == "string" then
        return cjson_safe.encode(v) or '"?"'
    elseif t == "number" then
        if finite(v) then return number_text(v) end
        return v ~= v and "NaN" or (v > 0 and "1e999" or "-1e999")
    elseif t ~= "table" then
        return v == null and "null" or tostring(v)
    end
    local parts = {}
    if next(v) ~= nil and is_list(v) then
        for i = 1, #v do parts[i] = raw_json(v[i]) end
        return "[" .. concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do
        parts[#parts + 1] = raw_json(tostring(k)) .. ":" .. raw_json(x)
    end
    return "{" .. concat(parts, ",") .. "}"
end

-- The options of parse, also taken by the handler (laaffic.options rules).
local LIMIT_RULES = {
    { "max_bytes", type = "number", above = 0, what = "a positive number" },
    { "max_records", type = "number", above = 0, what = "a positive number" },
    { "max_depth", type = "number", above = 0, max = 1000, what = "a positive number up to 1000" },
    { "utc_offset", type = "number", min = -86400, max = 86400,
      what = "a number of seconds between -86400 and 86400" },
}
local PARSE_OPTIONS = { { "invalid", type = "table",
                          what = "a table (the records that cannot be keyed are appended)" } }
for i, r in ipairs(LIMIT_RULES) do PARSE_OPTIONS[i + 1] = r end
PARSE_OPTIONS = options.spec(PARSE_OPTIONS)

-- Quotes numbers given for voiceId/callee/displayNum, so they decode as their exact
-- digits. Inside a JSON string every '"' is escaped, so '"voiceId"' followed by ':' only
-- matches a real key, and quoting a number keeps the document valid JSON.
-- Only tokens that are JSON numbers are quoted: malformed ones stay and fail to decode.
local function is_json_number(s)
    local int, rest = s:match("^(%-?%d+)(.*)$")
    if not int or int:match("^%-?0%d") then return false end
    return rest == "" or rest:match("^%.%d+$") ~= nil or rest:match("^%.%d+[eE][-+]?%d+$") ~= nil
        or rest:match("^[eE][-+]?%d+$") ~= nil
end

local function quote_id_numbers(body)
    local out, last = nil, 1
    for _, k in ipairs(QUOTE_NUMBERS) do
        local key = '"' .. k .. '"'
        local from = 1
        while true do
            local _, e = body:find(key, from, true) -- plain: fast on large bodies
            if not e then break end
            from = e + 1
            -- skip ' ', '\t', '\r', '\n' and one ':'; only a '-' or a digit after them
            -- needs a closer look (the usual '"' does not)
            local i, c = from, byte(body, from)
            while c == 32 or c == 9 or c == 10 or c == 13 or c == 58 do
                i = i + 1
                c = byte(body, i)
            end
            local a, b, num
            if c == 45 or (c and c >= 48 and c <= 57) then
                a, b, num = body:find("^%s*:%s*(%-?%d[%d%.eE+-]*)", from)
            end
            if a and is_json_number(num) then
                out = out or {}
                out[#out + 1] = { b - #num + 1, b }
            end
        end
    end
    if not out then return body end
    table.sort(out, function(x, y) return x[1] < y[1] end)
    local parts = {}
    for i = 1, #out do
        local a, b = out[i][1], out[i][2]
        parts[#parts + 1] = body:sub(last, a - 1)
        parts[#parts + 1] = '"' .. body:sub(a, b) .. '"'
        last = b + 1
    end
    parts[#parts + 1] = body:sub(last)
    return concat(parts)
end

-- Types the documented fields of one record in place. Returns true, or nil, reason.
local function type_record(rec, utc_offset)
    local raw = {}
    local pushed_raw = rec.raw
    if pushed_raw ~= nil then raw.raw = pushed_raw end

    local id = rec.voiceId
    if id == nil or id == null then
        return nil, "voiceId: missing"
    end
    local inexact = false
    if type(id) == "number" then
        if not finite(id) then return nil, "voiceId: must be a finite number or a string" end
        if not safe_integer(id) then inexact = true end
        id = number_text(id)
    elseif type(id) ~= "string" then
        return nil, "voiceId: must be a string or number"
    end
    if id == "" then return nil, "voiceId: empty" end
    if #id > MAX_VOICE_ID then
        return nil, "voiceId: longer than " .. MAX_VOICE_ID .. " bytes"
    end
    rec.voiceId = id

    for i = 1, #NUMBER_NAMES do
        local name, integral = NUMBER_NAMES[i], NUMBER_INTEGRAL[i]
        local v = rec[name]
        if v ~= nil then
            if v == null then
                rec[name] = nil
            else
                local n, empty = to_number(v)
                if n then
                    rec[name] = integral and as_int(n) or n
                else
                    rec[name] = nil
                    if not empty then raw[name] = v end
                end
            end
        end
    end

    for i = 1, #TIME_FIELDS do
        local name, uname = TIME_FIELDS[i], TIME_UNIX[i]
        local v = rec[name]
        -- "<time>_unix" is ours: one the platform sent is kept in raw, never passed on
        if rec[uname] ~= nil then
            raw[uname] = rec[uname]
            rec[uname] = nil
        end
        if v == null then
            rec[name] = nil
        elseif v ~= nil then
            rec[uname] = unix_time(v, utc_offset)
        end
    end

    for i = 1, #STRING_FIELDS do
        local name = STRING_FIELDS[i]
        local v = rec[name]
        if v == null then
            rec[name] = nil
        elseif type(v) == "number" then
            if finite(v) then
                if QUOTED[name] and not safe_integer(v) then inexact = true end
                rec[name] = number_text(v)
            else
                rec[name] = nil
                raw[name] = v
            end
        elseif v ~= nil and type(v) ~= "string" then
            rec[name] = nil
            raw[name] = v
        end
    end

    rec.raw = raw
    return true, inexact and INEXACT or nil
end

-- Decodes the body into its list of records (not typed yet). Returns list | nil, err.
local function decode_list(body, first, opts)
    local doc, err = decoder(opts.max_depth or DEFAULT_MAX_DEPTH).decode(body)
    if doc == nil then
        return nil, "invalid JSON: " .. tostring(err)
    end
    if type(doc) ~= "table" then -- cannot happen after the first-byte check; be safe
        return nil, "invalid JSON: the body must be a JSON array or object"
    end

    local list, single
    if first == "[" then
        list = doc
    elseif doc.array ~= nil and doc.voiceId == nil then
        list = doc.array
        if type(list) ~= "table" or not is_list(list) then
            return nil, "array: must be a list of records"
        end
    else
        list, single = { doc }, true
    end
    return list, nil, single
end

-- Decodes and types the records. Returns list, bad | nil, err | false when a voiceId, callee
-- or displayNum was sent as a number that a double may not hold exactly (past 2^53, or with
-- a fraction or exponent): the caller then decodes the body again with those numbers quoted
-- and passes that decode as `exact`, whose records give those three fields' digits (only
-- those: every other field, however deep, is the plain decode's).
-- A record that cannot be keyed fails the whole list, unless opts.invalid is given: it is
-- then left out of list and described in bad, { index =, raw =, err = } each.
local function decode_records(body, first, opts, exact)
    local list, err, single = decode_list(body, first, opts)
    if not list then return nil, err end

    local n = #list
    local max_records = opts.max_records or DEFAULT_MAX_RECORDS
    if n > max_records then
        return nil, format("too many records: %d (at most %d)", n, max_records)
    end
    local utc_offset = opts.utc_offset or 0
    local keep_bad = opts.invalid ~= nil
    local bad, out, spans = nil, list, nil
    for i = 1, n do
        local rec = list[i]
        local why
        if type(rec) ~= "table" or rec[1] ~= nil then
            why = "must be an object"
        else
            local q = exact and exact[i]
            if type(q) == "table" then
                for _, k in ipairs(QUOTE_NUMBERS) do
                    if type(rec[k]) == "number" and type(q[k]) == "string" then rec[k] = q[k] end
                end
            end
            local ok, twhy = type_record(rec, utc_offset)
            if not ok then
                why = twhy -- (type_record changes rec only once it has a voiceId)
            elseif twhy == INEXACT and not exact then
                return false
            end
        end
        if why then
            why = format("record %d: %s", i, why)
            if not keep_bad then return nil, why end
            if out == list then -- from the first bad one on, the good ones go to a new list
                out = {}
                for j = 1, i - 1 do out[j] = list[j] end
            end
            if not spans then
                spans = record_spans(body, first, single)
                if #spans ~= n then spans = {} end
            end
            local span = spans[i]
            bad = bad or {}
            bad[#bad + 1] = { index = i, raw = span and body:sub(span[1], span[2]) or raw_json(rec),
                              err = why }
        elseif out ~= list then
            out[#out + 1] = rec
        end
    end
    return out, bad
end

local function parse(body, opts)
    if type(body) ~= "string" then
        return nil, "body must be a string, got " .. type(body)
    end
    local max_bytes = opts.max_bytes or DEFAULT_MAX_BYTES
    if #body > max_bytes then
        return nil, format("body too large: %d bytes (at most %d)", #body, max_bytes)
    end
    if body:sub(1, 3) == "\239\187\191" then body = body:sub(4) end -- a UTF-8 BOM
    local first = body:match("^[ \t\r\n]*([^ \t\r\n])")
    if not first then return nil, "empty body" end
    if first ~= "[" and first ~= "{" then
        return nil, "invalid JSON: the body must be a JSON array or object"
    end
    local list, err = decode_records(body, first, opts, nil)
    if list == false then
        -- rare: quote the id-like numbers in the text, so they decode as their exact digits
        local exact = decode_list(quote_id_numbers(body), first, opts)
        list, err = decode_records(body, first, opts, exact or {})
    end
    if list and err then -- err: the records that cannot be keyed (opts.invalid)
        local invalid = opts.invalid
        for i = 1, #err do invalid[#invalid + 1] = err[i] end
        err = nil
    end
    return list, err
end

function _M.parse(body, opts)
    opts = options.check("laaffic.push.parse", opts, PARSE_OPTIONS, 2, true)
    -- parse has no known way to raise; the pcall keeps the "never raises" promise even for
    -- an out-of-memory error in the decoder.
    local ok, records, err = pcall(parse, body, opts)
    if not ok then
        return nil, "cannot parse the body: " .. tostring(records)
    end
    return records, err
end

_M.DEFAULT_MAX_BYTES = DEFAULT_MAX_BYTES
_M.LIMIT_RULES = LIMIT_RULES -- the limits the handler takes too

return _M
