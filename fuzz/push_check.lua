-- fuzz/push_check.lua - what laaffic.push.parse promises about any body, as a checker.
--
-- Shared by the libFuzzer harness fuzz/push_fuzz.c and by
-- spec/17-fuzz-regressions_spec.lua (for the saved inputs of fuzz/regressions/push/).
-- Pure Lua, for Lua 5.4 and LuaJIT.
--
--   local C = dofile("fuzz/push_check.lua")
--   local ok, why = C.check(body, opts, records, err)
--
-- The promises (lua/laaffic/push.lua, README "Receiving status-report pushes"):
--   * nil, err (a string) or a list of records; no more than max_records of them;
--   * an error is never parse's own last-resort "cannot parse the body" (that is a raise
--     inside parse, caught by its pcall: a bug, unless it is an out-of-memory error);
--   * each record: voiceId a non-empty string of at most 512 bytes; the number fields nil
--     or a finite number (an integer on Lua 5.4 for the count-like ones when integral);
--     the string fields nil or a string; *_unix nil or a finite number; no documented field
--     left as JSON null; rec.raw a table holding only documented names (and "raw"), whose
--     fields are then nil in the record;
--   * every other field is the value as sent: equal to what a plain cjson decode of the
--     same body gives for that record;
--   * with opts.invalid (a table), the records that cannot be keyed are listed there, in
--     order, as { index, raw, err }: raw is the record's text as sent (a plain decode of it
--     gives the plain decode's record), err starts "record <index>: "; the others are the
--     records, in order.
local cjson = require("cjson.safe")

local C = {}

-- Known, reported findings a fuzzing campaign may step around (push_fuzz.c fills this
-- from LAAFFIC_FUZZ_IGNORE="tag,..."; the spec never does):
--   nested-quote  unknown fields of a record whose voiceId, callee or displayNum is a
--                 number a double may not hold are not compared (parse's second pass
--                 quoted those keys' numbers at any depth; fixed:
--                 fuzz/regressions/push/nested-callee-quoted-in-unknown-field)
--   time-unix     a pushed "<time field>_unix" is not checked when the time field itself
--                 is absent (parse kept it as sent; fixed: it now goes to rec.raw:
--                 fuzz/regressions/push/pushed-time-unix-field-kept)
C.ignore = {}

local function inexact(v)
    return type(v) == "number" and not (v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53)
end

local null = cjson.null
local huge = math.huge
local floor = math.floor
local format = string.format
local mtype = math.type

local NUMBER = { "type", "billPeriod", "code", "ringDuration", "chargedDuration", "rate", "cost",
                 "settleRate", "settlePay", "quoteExchange", "aiAgentChargedDuration",
                 "aiAgentBillPeriod", "aiAgentRate", "aiAgentFee", "aiAgentQuoteRate",
                 "aiAgentQuoteFee", "terminationCode", "sipCode" }
local COUNT_LIKE = { type = true, billPeriod = true, code = true, ringDuration = true,
                     chargedDuration = true, aiAgentChargedDuration = true,
                     aiAgentBillPeriod = true, terminationCode = true, sipCode = true }
local TIME = { "submitTime", "callTime", "ringingTime", "answerTime", "hangupTime" }
local STRING = { "voiceId", "callee", "displayNum", "recordingFileId", "currency",
                 "terminationReason", "scriptId", "intent" }

local DOCUMENTED = { raw = true }
for _, k in ipairs(NUMBER) do DOCUMENTED[k] = true end
for _, k in ipairs(TIME) do DOCUMENTED[k] = true; DOCUMENTED[k .. "_unix"] = true end
for _, k in ipairs(STRING) do DOCUMENTED[k] = true end

local reference = cjson.new()
reference.decode_invalid_numbers(false)
reference.decode_max_depth(1000)

local function finite(n) return type(n) == "number" and n == n and n > -huge and n < huge end

local function is_list(t)
    local n = 0
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k ~= floor(k) then return false end
        n = n + 1
    end
    return n == #t
end

local function same(a, b, depth)
    if a == b then return true end
    if type(a) ~= "table" or type(b) ~= "table" or depth > 1100 then return false end
    for k, v in pairs(a) do
        if not same(v, b[k], depth + 1) then return false end
    end
    for k in pairs(b) do
        if a[k] == nil then return false end
    end
    return true
end

-- The records a plain decode of the body gives (same shape rules as parse), or nil.
local function reference_records(body)
    if body:sub(1, 3) == "\239\187\191" then body = body:sub(4) end
    local first = body:match("^[ \t\r\n]*([^ \t\r\n])")
    local doc = reference.decode(body)
    if type(doc) ~= "table" then return nil end
    if first == "[" then return doc end
    if doc.array ~= nil and doc.voiceId == nil then return doc.array end
    return { doc }
end

local function check_record(rec, i, ref)
    local p = "record " .. i .. ": "
    if type(rec) ~= "table" then return false, p .. "not a table" end
    local id = rec.voiceId
    if type(id) ~= "string" or id == "" or #id > 512 then
        return false, p .. "voiceId is " .. type(id) .. " " .. tostring(id)
    end
    for _, k in ipairs(NUMBER) do
        local v = rec[k]
        if v ~= nil then
            if not finite(v) then return false, p .. k .. " is " .. tostring(v) end
            if mtype and COUNT_LIKE[k] and v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53
                and mtype(v) ~= "integer" then
                return false, p .. k .. " is an integral float, not an integer"
            end
        end
    end
    for _, k in ipairs(STRING) do
        local v = rec[k]
        if v ~= nil and type(v) ~= "string" then return false, p .. k .. " is a " .. type(v) end
    end
    for _, k in ipairs(TIME) do
        if rec[k] == null then return false, p .. k .. " is null" end
        local u = rec[k .. "_unix"]
        if C.ignore["time-unix"] and rec[k] == nil then u = nil end
        if u ~= nil and not finite(u) then
            return false, format("%s%s_unix is %s %s", p, k, type(u), tostring(u))
        end
    end
    local raw = rec.raw
    if type(raw) ~= "table" then return false, p .. "raw is a " .. type(raw) end
    for k in pairs(raw) do
        if not DOCUMENTED[k] then return false, p .. "raw holds " .. tostring(k) end
        -- a "<time>_unix" the platform sent is kept in raw beside the one parse computes
        if k ~= "raw" and not k:find("_unix$") and rec[k] ~= nil then
            return false, p .. k .. " is both typed and raw"
        end
        if k:find("_unix$") and ref and type(ref) == "table" and not same(raw[k], ref[k], 0) then
            return false, p .. "raw." .. k .. " is not the value sent"
        end
    end
    if ref and C.ignore["nested-quote"] and type(ref) == "table"
        and (inexact(ref.voiceId) or inexact(ref.callee) or inexact(ref.displayNum)) then
        ref = nil
    end
    if ref then
        if type(ref) ~= "table" then return false, p .. "a plain decode does not give an object" end
        if not same(raw.raw, ref.raw, 0) then return false, p .. "a pushed raw was not kept" end
        for k, v in pairs(ref) do
            if not DOCUMENTED[k] and not same(rec[k], v, 0) then
                return false, p .. "field " .. tostring(k) .. " differs from the plain decode"
            end
        end
        for k in pairs(rec) do
            if not DOCUMENTED[k] and ref[k] == nil then
                return false, p .. "field " .. tostring(k) .. " was not sent"
            end
        end
    end
    return true
end

-- With opts.invalid: checks its entries against the reference records and returns the
-- reference records of the good ones, or nil, why.
local function split_invalid(ref, invalid)
    local good, at = {}, 1
    for i = 1, #ref do
        local bad = invalid[at]
        if bad and bad.index == i then
            local p = "invalid[" .. at .. "]: "
            if type(bad.raw) ~= "string" or type(bad.err) ~= "string"
                or bad.err:sub(1, #("record " .. i .. ": ")) ~= "record " .. i .. ": " then
                return nil, p .. "not { index, raw, err = \"record " .. i .. ": ...\" }"
            end
            if not same(reference.decode(bad.raw), ref[i], 0) then
                return nil, p .. "raw is not record " .. i .. " as sent: " .. bad.raw
            end
            at = at + 1
        else
            good[#good + 1] = ref[i]
        end
    end
    if invalid[at] ~= nil then return nil, "invalid lists more records than the body has" end
    return good
end

-- Returns true | false, why.
function C.check(body, opts, records, err)
    if records == nil then
        if type(err) ~= "string" then return false, "nil without a string error" end
        if err:find("^cannot parse the body") and not err:find("not enough memory") then
            return false, "parse raised inside its pcall: " .. err
        end
        return true
    end
    if type(records) ~= "table" or not is_list(records) then return false, "records is not a list" end
    local max = opts and opts.max_records or 100000
    if #records > max then return false, "more records than max_records" end
    local ref = reference_records(body)
    if type(ref) == "table" and opts and opts.invalid then
        local why
        ref, why = split_invalid(ref, opts.invalid)
        if not ref then return false, why end
    elseif opts and opts.invalid and next(opts.invalid) ~= nil then
        return false, "opts.invalid filled for a body that does not decode"
    end
    if not ref or type(ref) ~= "table" or #ref ~= #records then
        return false, "a plain decode of the body does not give as many records"
    end
    for i = 1, #records do
        local ok, why = check_record(records[i], i, ref[i])
        if not ok then return false, why end
    end
    return true
end

return C
