-- fuzz/builder.lua - turns a byte string into a task table and encode options, and checks
-- what laaffic.core.encode made of it.
--
-- Shared by the libFuzzer harness fuzz/encode_fuzz.c (which runs it in the Lua 5.4 state
-- that holds the instrumented core) and by spec/17-fuzz-regressions_spec.lua (which feeds
-- the saved inputs of fuzz/regressions/encode/ through it under busted), so that a saved
-- crashing input builds the same table in both. Pure Lua, for Lua 5.4 and LuaJIT (on
-- LuaJIT the integer-only values become doubles: the table differs, the checks still hold).
--
--   local B = dofile("fuzz/builder.lua")
--   local task, opts, opts_bad = B.build(bytes)
--   -- opts_bad: the options are malformed on purpose and encode must raise
--   local ok, why = B.check_success(task, opts, json, info)   -- json: what encode returned
--   local ok, why = B.check_failure(msg, field, code)
--
-- The bytes are read front to back as a little grammar (see build below); running out of
-- bytes reads zeros, so a short input is a small, mostly valid task. Nothing here calls
-- the encoder: check_success re-derives what the output must contain from the task.
local cjson = require("cjson")

local B = {}

local null = cjson.null
local floor = math.floor
local huge = math.huge
local char = string.char
local format = string.format
local maxint = math.maxinteger or 2 ^ 63
local minint = math.mininteger or -2 ^ 63
local mtype = math.type or function() return "float" end

-- a strict decoder for the check: no NaN/Infinity/hex numbers
local strict = cjson.new()
strict.decode_invalid_numbers(false)
strict.decode_max_depth(1000)

B.MAX_ROWS = 200000

---------------------------------------------------------------------------------------
-- reading the bytes
---------------------------------------------------------------------------------------

local Reader = {}
Reader.__index = Reader

local function reader(s)
    -- budget: bytes of generated strings and table slots, so one input stays cheap
    return setmetatable({ s = s, pos = 1, n = #s, strbudget = 300000, slots = 20000, mts = {} },
                        Reader)
end

function Reader:more() return self.pos <= self.n end

function Reader:u8()
    local b = self.s:byte(self.pos)
    self.pos = self.pos + 1
    return b or 0
end

function Reader:u16() return self:u8() * 256 + self:u8() end

function Reader:s8()
    local b = self:u8()
    return b < 128 and b or b - 256
end

function Reader:pick(list) return list[self:u8() % #list + 1] end

-- up to n raw bytes of the input (fewer at its end)
function Reader:take(n)
    local a = self.pos
    local b = a + n - 1
    if b > self.n then b = self.n end
    self.pos = a + n
    return self.s:sub(a, b)
end

function Reader:spend(nbytes)
    if nbytes > self.strbudget then return false end
    self.strbudget = self.strbudget - nbytes
    return true
end

---------------------------------------------------------------------------------------
-- values
---------------------------------------------------------------------------------------

local function utf8_char(cp)
    if cp < 0x80 then return char(cp) end
    if cp < 0x800 then return char(0xC0 + floor(cp / 64), 0x80 + cp % 64) end
    if cp < 0x10000 then
        return char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
    end
    return char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64,
                0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- code points by class: ASCII, escapes, 2-, 3- and 4-byte sequences, and the edges
local CODEPOINTS = { 0x41, 0x7A, 0x20, 0x7E, 0x7F, 0x00, 0x01, 0x08, 0x0A, 0x1F, 0x22, 0x5C,
                     0x2F, 0x80, 0xE9, 0x7FF, 0x800, 0x4E2D, 0xFFFD, 0xD7FF, 0xE000, 0xFFFF,
                     0x2028, 0x10000, 0x1F600, 0x10FFFF }

-- byte sequences a validator must refuse (and a few it must take)
local ODD_BYTES = { "\192\128", "\193\191", "\224\128\128", "\224\159\191", "\237\160\128",
                    "\237\191\191", "\240\128\128\128", "\240\143\191\191", "\244\144\128\128",
                    "\245\128\128\128", "\255", "\254", "\128", "\191", "\226\130", "\240\159\152",
                    "\226\130\172", "\240\159\152\128", "\0", "\"", "\\", "\127" }

local STRINGS = { "", "a", "ab", "99999", "0", "-1", "1e5", "0x10", "nan", "inf", " 12 ",
                  "123456", "12345", "1234567890123456789", "919777654321", "+919777654321",
                  "2026-02-28 10:00:00", "2024-02-29 23:59:59", "2023-02-29 00:00:00",
                  "2026-13-01 00:00:00", "2026-04-31 12:00:00", "0000-01-01 00:00:00",
                  "9999-12-31 23:59:59", "2026-01-01T00:00:00", "2026-01-01 24:00:00",
                  "00:00", "23:59", "24:00", "9:00", "12:60", "12:5a", "array", "object",
                  "calleeNumber", "text1", "taskName", "\"quoted\"", "back\\slash",
                  "tab\tnl\ncr\rbs\bff\f", "\226\128\168\226\128\169", "caf\195\169",
                  "\228\184\173\230\150\135", "\240\159\152\128" }

local INTS = { 0, 1, -1, 2, 3, 5, 6, 9, 10, 18, 19, 20, 30, 31, 63, 64, 65, 120, 121, 999,
               1000, 200000, 200001, 2147483647, 2147483648, -2147483648, -2147483649,
               9007199254740992, 9007199254740993, maxint, minint, maxint - 1, minint + 1 }

local FLOATS = { 0.5, -0.0, 0 / 0, huge, -huge, 1e300, -1e300, 5e-324, 2.2250738585072014e-308,
                 2 ^ 53, 2 ^ 63, -2 ^ 63, 2 ^ 64, 1e15, 1e15 + 0.5, 1e16, 9.2e18, 9.3e18, 3.0,
                 999.0, 1000.0, 10.0, 2147483647.0, 2147483648.0, 0.1, 1 / 3, -1e-7, 123.456,
                 1.7976931348623157e308, 4.9406564584124654e-324, 1e21, 1e-5, 100.25 }

local function function_value() return 1 end

local function special(r)
    local k = r:u8() % 7
    if k == 0 then return function_value end
    if k == 1 then return print end
    if k == 2 then return coroutine.create(function_value) end
    if k == 3 then return io.stdout end
    if k == 4 then return null end
    if k == 5 and debug and debug.upvalueid then
        -- a light userdata that is not NULL (the upvalue id of reader's upvalue)
        local ok, id = pcall(debug.upvalueid, B.build, 1)
        if ok and id ~= nil then return id end
    end
    return null
end

local function gen_utf8(r, nchars)
    local t = {}
    for i = 1, nchars do
        local b = r:u8()
        if b < 96 then
            t[i] = char(0x61 + b % 26)
        elseif b < 240 then
            t[i] = utf8_char(CODEPOINTS[b % #CODEPOINTS + 1])
        else
            t[i] = ODD_BYTES[b % #ODD_BYTES + 1]
        end
    end
    return table.concat(t)
end

local function gen_digits(r, n)
    local t = {}
    for i = 1, n do t[i] = char(48 + r:u8() % 10) end
    return table.concat(t)
end

-- a long string: a chunk of the input repeated, around the encoder's 4 KiB windows
local function gen_long(r)
    local chunk = r:take(r:u8() % 8 + 1)
    if chunk == "" then chunk = "x" end
    local target = r:u16() % 20000 + 1
    if not r:spend(target) then target = 31 end
    local s = chunk:rep(floor(target / #chunk) + 1)
    return s:sub(1, target)
end

local function gen_string(r)
    local k = r:u8() % 8
    if k == 0 then return r:take(r:u8() % 40) end -- raw bytes, any
    if k == 1 then return gen_utf8(r, r:u8() % 40) end
    if k == 2 then return gen_digits(r, r:u8() % 24) end
    if k == 3 then return gen_long(r) end
    if k == 4 then return r:pick(ODD_BYTES) .. gen_utf8(r, r:u8() % 4) end
    if k == 5 then -- control characters and escapes
        local t = {}
        for i = 1, r:u8() % 16 do t[i] = char(r:u8() % 36) end
        return table.concat(t)
    end
    return r:pick(STRINGS)
end

local function gen_number(r)
    local k = r:u8() % 4
    if k == 0 then return r:s8() end
    if k == 1 then return r:pick(INTS) end
    if k == 2 then return r:pick(FLOATS) end
    -- a float from bytes: a / b * 10^e
    local a = r:u16() - 32768
    return a / (r:u8() + 1) * 10 ^ (r:s8() % 40 - 20)
end

local gen_value, gen_table, rows_within_budget

-- keys: names the rules know, raw names, and keys JSON has no form for
local KNOWN_KEYS = { "appId", "taskName", "displayNum", "maxCalls", "maxRingingTime", "agentId",
                     "enableRecording", "sendTime", "allowSendTime", "numberInfoList",
                     "recallFlow", "calleeNumber", "text1", "text2", "text3", "text10", "text11",
                     "text0", "strTime", "endTime", "recallType", "recallInterval", "recallNum",
                     "nodeList", "recallIntent", "calloutRate", "__jsontype", "raw", "" }

local function gen_key(r)
    local k = r:u8() % 12
    if k < 5 then return r:pick(KNOWN_KEYS) end
    if k < 8 then return gen_utf8(r, r:u8() % 12) end
    if k == 8 then return r:take(r:u8() % 16) end
    if k == 9 then return r:pick(INTS) end
    if k == 10 then
        local f = r:pick({ 1.5, -0.5, 2 ^ 60, 1e300, huge, -huge, 3.0 })
        return f
    end
    local o = r:u8() % 3
    if o == 0 then return true end
    if o == 1 then return {} end
    return function_value
end

local function rawset_key(t, k, v)
    if k ~= nil and k == k then rawset(t, k, v) end
end

-- metatables whose methods must never be called by the encoder (it reads raw)
local function raising() error("laaffic fuzz: a metamethod was called", 0) end
local TRAP_MT = { __index = raising, __newindex = raising, __len = raising, __pairs = raising,
                  __eq = raising, __call = raising }
local TRAP_MT_NO_INDEX = { __newindex = raising, __len = raising, __pairs = raising,
                           __eq = raising, __call = raising }

-- Known, reported findings a fuzzing campaign may step around so that it finds others
-- (the C harness fills this from LAAFFIC_FUZZ_IGNORE="tag,tag"; the spec never does):
--   index-trap  no __index in the trap metatable (encode.c reads task.numberInfoList with
--               lua_getfield: fuzz/regressions/encode/index-metamethod-*)
--   cycle-cost  no cycles and no 200,001-row lists (a cycle makes the encoder write what
--               comes before it up to 64 times before it fails, so a cycle next to a
--               large list or string takes seconds and gigabytes:
--               fuzz/regressions/encode/timeout-self-cycle-*)
B.ignore = {}

-- Metatables are set when the table is complete (build's last step), so that the builder
-- itself never runs into the trap.
local function set_mt(r, t)
    local k = r:u8() % 5
    local mt
    if k == 0 then mt = { __jsontype = "array" }
    elseif k == 1 then mt = { __jsontype = "object" }
    elseif k == 2 then mt = B.ignore["index-trap"] and TRAP_MT_NO_INDEX or TRAP_MT
    elseif k == 3 then mt = { __jsontype = "array", __metatable = false }
    else mt = { __jsontype = "array\0junk" } end
    r.mts[#r.mts + 1] = { t, mt }
end

-- stack: the tables being built, for cycles
function gen_table(r, depth, stack)
    local t = {}
    if depth > 80 or r.slots <= 0 then return t end
    stack[#stack + 1] = t
    local k = r:u8() % 8
    local n = r:u8() % 8
    r.slots = r.slots - n
    if k <= 2 then -- a list
        for i = 1, n do t[i] = gen_value(r, depth + 1, stack) end
    elseif k <= 4 then -- an object
        for _ = 1, n do rawset_key(t, gen_key(r), gen_value(r, depth + 1, stack)) end
    elseif k == 5 then -- sparse list
        for _ = 1, n do t[r:u8() % 12 + 1] = gen_value(r, depth + 1, stack) end
    elseif k == 6 then -- mixed
        for i = 1, n do t[i] = gen_value(r, depth + 1, stack) end
        rawset_key(t, gen_key(r), gen_value(r, depth + 1, stack))
    else -- a cycle back to a table being built
        local up = stack[r:u8() % #stack + 1]
        if not B.ignore["cycle-cost"] then t.up = up end
    end
    if r:u8() % 8 == 0 then set_mt(r, t) end
    stack[#stack] = nil
    return t
end

function gen_value(r, depth, stack)
    local k = r:u8() % 16
    if k == 0 then return false end
    if k == 1 then return true end
    if k <= 4 then return gen_number(r) end
    if k <= 9 then return gen_string(r) end
    if k <= 12 then return gen_table(r, depth or 1, stack or {}) end
    if k == 13 then return special(r) end
    if k == 14 then return null end
    return nil
end

-- a chain of depth nested lists or objects, around the 64-level limit
local function gen_chain(r)
    local depth = r:u8() % 80 + 1
    local as_list = r:u8() % 2 == 0
    local root = {}
    local cur = root
    for _ = 2, depth do
        local nxt = {}
        if as_list then cur[1] = nxt else cur.k = nxt end
        cur = nxt
    end
    if r:u8() % 2 == 0 then cur.leaf = gen_value(r, 100, {}) end
    return root
end

---------------------------------------------------------------------------------------
-- field-shaped values: mostly near the rule's edges, sometimes anything
---------------------------------------------------------------------------------------

local function near_int(r, lo, hi)
    local k = r:u8() % 10
    local v
    if k == 0 then v = lo - 1
    elseif k == 1 then v = lo
    elseif k == 2 then v = hi
    elseif k == 3 then v = hi + 1
    elseif k == 4 then v = lo + r:u8() % 16
    elseif k == 5 then v = (lo + r:u16()) % (hi + 1)
    elseif k == 6 then return (lo + r:u8() % 8) + 0.0 -- integral float
    elseif k == 7 then return lo + 0.5
    elseif k == 8 then return tostring(lo) -- a string, a wrong type
    else return gen_number(r) end
    return v
end

local function gen_date(r)
    local k = r:u8() % 4
    if k == 0 then return r:pick(STRINGS) end
    if k == 1 then return null end
    -- YYYY-MM-DD HH:MM:SS from bytes, often a real date, sometimes one digit off
    local y = r:pick({ 2024, 2025, 2026, 2100, 2000, 1900, 1, 9999, 0 })
    local mo = r:u8() % 14
    local d = r:u8() % 33
    local h, mi, s = r:u8() % 25, r:u8() % 61, r:u8() % 61
    local str = format("%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s)
    if k == 3 then
        local i = r:u8() % #str + 1
        str = str:sub(1, i - 1) .. char(r:u8()) .. str:sub(i + 1)
    end
    return str
end

local function gen_hhmm(r)
    local k = r:u8() % 4
    if k == 0 then return r:pick(STRINGS) end
    if k == 1 then return gen_value(r, 1, {}) end
    return format("%02d:%02d", r:u8() % 26, r:u8() % 62)
end

local function gen_name(r, lo, hi)
    -- a string of about lo..hi characters, multi-byte ones included
    local k = r:u8() % 7
    local n = k == 6 and r:u8() % (hi + 2) or ({ lo - 1, lo, lo + 1, hi - 1, hi, hi + 1 })[k + 1]
    if n < 0 then n = 0 end
    return gen_utf8(r, n)
end

local function gen_callee(r)
    local k = r:u8() % 8
    if k < 5 then return gen_digits(r, r:pick({ 6, 18, 12, 5, 19, 0, 7, 11 })) end
    if k == 5 then return gen_string(r) end
    if k == 6 then return gen_digits(r, 6) .. r:pick(ODD_BYTES) end
    return gen_value(r, 1, {})
end

local function gen_text(r)
    local k = r:u8() % 10
    if k < 4 then return gen_name(r, 1, 30) end
    if k == 4 then return gen_long(r) end
    if k == 5 then return gen_number(r) end
    if k == 6 then return null end
    if k == 7 then return "" end
    return gen_value(r, 1, {})
end

local ROW_KEYS = { "calleeNumber", "text1", "text2", "text3", "text4", "text5", "text6", "text7",
                   "text8", "text9", "text10" }

local function gen_row(r)
    local row = { calleeNumber = gen_digits(r, 12) }
    for _ = 1, r:u8() % 4 do
        local k = r:u8() % 14
        if k == 0 then
            row.calleeNumber = gen_callee(r)
        elseif k <= 10 then
            row[ROW_KEYS[k + 1]] = gen_text(r)
        elseif k == 11 then
            rawset_key(row, gen_key(r), gen_value(r, 2, { row }))
        elseif k == 12 then
            row[r:pick(ROW_KEYS)] = nil
        else
            if not B.ignore["cycle-cost"] then row.self = row end
        end
    end
    return row
end

local function gen_window(r)
    local w = { strTime = gen_hhmm(r), endTime = gen_hhmm(r) }
    if r:u8() % 4 == 0 then rawset_key(w, gen_key(r), gen_value(r, 2, { w })) end
    if r:u8() % 8 == 0 then w[r:pick({ "strTime", "endTime" })] = nil end
    return w
end

local function gen_node(r)
    local k = r:u8() % 6
    if k == 0 then return { agentId = tostring(r:u16()) } end
    if k == 1 then return { agentId = gen_string(r) } end
    if k == 2 then return gen_value(r, 2, {}) end
    if k == 3 then
        local n = { agentId = near_int(r, 1, 2147483647) }
        rawset_key(n, gen_key(r), gen_value(r, 2, { n }))
        return n
    end
    return { agentId = near_int(r, 1, 2147483647) }
end

local function gen_recall(r, kind)
    local rounds = r:u8() % 3 + 1
    local f = { recallType = kind, recallInterval = 1 + r:u8() % 60, recallNum = rounds,
                nodeList = {} }
    for i = 1, rounds do f.nodeList[i] = { agentId = 110 + i } end
    if kind == 3 then f.recallIntent = { "99999" } end
    return f
end

local RECALL_FIELDS = { "recallType", "recallInterval", "recallNum", "nodeList", "recallIntent" }

local function mutate_recall(r, task)
    if type(task.recallFlow) ~= "table" then task.recallFlow = gen_recall(r, 0) end
    local f = task.recallFlow
    local name = r:pick(RECALL_FIELDS)
    local k = r:u8() % 6
    if name == "recallType" then
        f.recallType = k < 4 and r:pick({ 0, 1, 3, 2, -1, 4, 3.0, "3" }) or gen_value(r, 2, {})
    elseif name == "recallInterval" or name == "recallNum" then
        f[name] = near_int(r, 1, 2147483647)
        if name == "recallNum" and k < 3 and type(f[name]) == "number" and f[name] >= 0
            and f[name] < 20 and f[name] == floor(f[name]) then
            -- keep the nodes in step with the rounds, most of the time
            local nodes = {}
            for i = 1, f[name] do nodes[i] = gen_node(r) end
            f.nodeList = nodes
        end
    elseif name == "nodeList" then
        if k < 4 and type(f.nodeList) == "table" then
            f.nodeList[r:u8() % (#f.nodeList + 2) + 1] = gen_node(r)
        else
            f.nodeList = gen_value(r, 2, { f })
        end
    else
        if k < 4 then
            local list = {}
            for i = 1, r:u8() % 4 do
                list[i] = r:u8() % 4 == 0 and gen_value(r, 3, {}) or r:pick({ "99999", "1", "", "a\"b" })
            end
            f.recallIntent = list
        elseif k == 4 then
            f.recallIntent = nil
        else
            f.recallIntent = gen_value(r, 2, { f })
        end
    end
    if r:u8() % 16 == 0 then rawset_key(f, gen_key(r), gen_value(r, 2, { f })) end
end

local TOP_FIELDS = { "appId", "taskName", "displayNum", "maxCalls", "maxRingingTime", "agentId",
                     "enableRecording", "sendTime", "allowSendTime", "numberInfoList",
                     "recallFlow" }

local function field_value(r, name, task)
    if r:u8() % 4 == 0 then return gen_value(r, 1, { task }) end
    if name == "appId" then return r:u8() % 2 == 0 and "2Xql9RBI" or gen_name(r, 1, 8) end
    if name == "taskName" then return gen_name(r, 2, 64) end
    if name == "displayNum" then return gen_digits(r, r:pick({ 0, 1, 20, 21, 8 })) end
    if name == "maxCalls" then return near_int(r, 1, 999) end
    if name == "maxRingingTime" then return near_int(r, 10, 120) end
    if name == "agentId" then return near_int(r, 1, 2147483647) end
    if name == "enableRecording" then return near_int(r, 0, 1) end
    if name == "sendTime" then return gen_date(r) end
    if name == "allowSendTime" then
        local l = {}
        for i = 1, r:u8() % 5 do l[i] = gen_window(r) end
        return l
    end
    if name == "numberInfoList" then
        local l = {}
        for i = 1, r:u8() % 6 + 1 do l[i] = gen_row(r) end
        return l
    end
    return gen_recall(r, r:pick({ 0, 1, 3 }))
end

-- What a repeated row costs in the JSON, roughly: its keys and strings (a text is cut at
-- 30 characters: 30 bytes of ASCII, at most 120 of UTF-8), 16 bytes for anything else.
local TEXT_KEY = {}
for i = 1, 10 do TEXT_KEY["text" .. i] = true end
local function row_weight(row)
    local w = 2
    if type(row) ~= "table" then return 16 end
    for k, v in next, row do
        w = w + (type(k) == "string" and #k or 16) + 4
        if type(v) == "string" then
            w = w + (TEXT_KEY[k] and math.min(#v, v:find("[\128-\255]") and 120 or 30) or #v)
        else
            w = w + 16
        end
    end
    return w
end

-- Op 7 repeats rows n0 + 1 .. n; rows whose repeats would pass OUT_BUDGET bytes of JSON
-- get fewer (a row with a 9.5 KB unknown field 200,001 times made 1.9 GB, a minute per
-- input under ASan: the list is then not what is tested). Below the budget, as before.
-- (weights: a row table's weight, once per build: the rows repeat)
local OUT_BUDGET = 16 * 1024 * 1024
function rows_within_budget(l, n0, n, weights)
    local w = 0
    for i = 1, n0 do
        local row = l[i]
        local rw = weights[row]
        if not rw then
            rw = row_weight(row)
            if type(row) == "table" then weights[row] = rw end
        end
        w = w + rw
    end
    if n0 == 0 or w / n0 * n <= OUT_BUDGET then return n end
    return math.max(n0, floor(OUT_BUDGET / (w / n0)))
end

local function base_task()
    return {
        appId = "2Xql9RBI", taskName = "fuzz-task", agentId = 110,
        numberInfoList = { { calleeNumber = "919777654321", text1 = "David" } },
    }
end

---------------------------------------------------------------------------------------
-- build
---------------------------------------------------------------------------------------

local function gen_opts(r, mode)
    local opts = {}
    if mode >= 2 then
        local mask = r:u16()
        local list = {}
        for k = 1, 10 do
            if mask % 2 == 1 then list[#list + 1] = k end
            mask = floor(mask / 2)
        end
        opts.require_texts = list
    end
    local t = r:u8() % 3
    if t == 1 then opts.truncate = true elseif t == 2 then opts.truncate = false end
    if mode == 3 then
        -- malformed on purpose: encode must raise (argument misuse)
        local k = r:u8() % 6
        if k == 0 then opts.require_texts = { 11 }
        elseif k == 1 then opts.require_texts = { 0 }
        elseif k == 2 then opts.require_texts = { 1.5 }
        elseif k == 3 then opts.require_texts = "1"
        elseif k == 4 then opts.truncate = "no"
        else opts.require_texts = { "1" } end
        return opts, k == 4 and "truncate" or "require_texts"
    end
    return opts, nil
end

-- Returns task, opts, opts_bad.
--   byte 1 (flags): bits 0-1 opts (0 none, 1 truncate only, 2 with require_texts, 3
--   malformed); bit 2 start from nothing instead of a valid base task; bits 3-4 a
--   recallFlow (0 none, 1 recallType 0, 2 type 1, 3 type 3); bit 5 an allowSendTime;
--   bits 6-7 rows (1, 3, 70, or an empty list).
--   Then the options, then operations until the bytes run out (see OPS).
function B.build(bytes)
    local r = reader(bytes)
    local flags = r:u8()
    local omode = flags % 4
    local opts, bad_key
    local bad = {} -- option name -> true while its value is malformed on purpose
    if omode > 0 then opts, bad_key = gen_opts(r, omode) end
    if bad_key then bad[bad_key] = true end
    local task = floor(flags / 4) % 2 == 0 and base_task() or {}
    local rk = floor(flags / 8) % 4
    if rk > 0 then task.recallFlow = gen_recall(r, ({ 0, 1, 3 })[rk]) end
    if floor(flags / 32) % 2 == 1 then
        task.allowSendTime = { { strTime = "09:00", endTime = "18:00" } }
    end
    local rows = floor(flags / 64)
    if rows > 0 and type(task.numberInfoList) == "table" then
        local n = ({ 3, 70, 0 })[rows]
        local l = {}
        for i = 1, n do l[i] = { calleeNumber = format("91977765%04d", i), text1 = "r" .. i } end
        task.numberInfoList = l
    end

    local ops = 0
    while r:more() and ops < 200 do
        ops = ops + 1
        local byte = r:u8()
        local op = byte % 12
        if byte >= 240 then -- the list options: rejects, max_rejects, max_rows, part
            local k = byte - 240
            opts = opts or {}
            if k < 2 then opts.rejects, bad.rejects = {}, nil
            elseif k < 4 then opts.max_rejects, bad.max_rejects = r:u8() % 4, nil
            elseif k < 7 then opts.max_rows, bad.max_rows = r:u8() % 6 + 1, nil
            elseif k < 10 then opts.part, bad.part = r:u8() % 5 + 1, nil
            elseif k == 10 then opts.max_rows, bad.max_rows = r:pick({ 0, 200001, 1.5, "2" }), true
            elseif k == 11 then opts.part, bad.part = r:pick({ 0, -1, 1000001, 2.5 }), true
            elseif k == 12 then opts.max_rejects, bad.max_rejects = r:pick({ -1, 100000001, "1" }), true
            elseif k == 13 then opts.rejects, bad.rejects = r:pick({ "x", 1, true }), true
            else opts.rejects, opts.max_rejects, bad.rejects, bad.max_rejects = {}, 0, nil, nil end
        elseif op == 0 then -- a known top-level field, shaped for its rule
            local name = r:pick(TOP_FIELDS)
            task[name] = field_value(r, name, task)
        elseif op == 1 then -- any key, any value
            rawset_key(task, gen_key(r), gen_value(r, 1, { task }))
        elseif op == 2 then -- a row: set one of its fields
            if type(task.numberInfoList) ~= "table" then task.numberInfoList = {} end
            local l = task.numberInfoList
            local i = r:u8() % (#l + 1) + 1
            if type(l[i]) ~= "table" then l[i] = gen_row(r) end
            local k = r:u8() % 13
            if k == 0 then l[i].calleeNumber = gen_callee(r)
            elseif k <= 10 then l[i][ROW_KEYS[k + 1]] = gen_text(r)
            elseif k == 11 then rawset_key(l[i], gen_key(r), gen_value(r, 2, { task, l, l[i] }))
            else l[i] = gen_value(r, 2, { task, l }) end
        elseif op == 3 then
            mutate_recall(r, task)
        elseif op == 4 then -- allowSendTime entries
            if type(task.allowSendTime) ~= "table" then task.allowSendTime = {} end
            local l = task.allowSendTime
            l[r:u8() % (#l + 2) + 1] = r:u8() % 8 == 0 and gen_value(r, 2, {}) or gen_window(r)
        elseif op == 5 then -- remove a field
            local k = r:u8() % 3
            if k == 0 then
                task[r:pick(TOP_FIELDS)] = nil
            elseif k == 1 and type(task.numberInfoList) == "table" then
                local row = task.numberInfoList[r:u8() % (#task.numberInfoList + 1) + 1]
                if type(row) == "table" then row[r:pick(ROW_KEYS)] = nil end
            elseif type(task.numberInfoList) == "table" then
                task.numberInfoList[r:u8() % (#task.numberInfoList + 1) + 1] = nil
            end
        elseif op == 6 then -- a cycle
            local k = r:u8() % 4
            if B.ignore["cycle-cost"] then k = -1 end
            if k == -1 then task.self = gen_chain(r)
            elseif k == 0 then task.self = task
            elseif k == 1 and type(task.numberInfoList) == "table"
                and type(task.numberInfoList[1]) == "table" then
                task.numberInfoList[1].back = task.numberInfoList
            elseif k == 2 and type(task.recallFlow) == "table"
                and type(task.recallFlow.nodeList) == "table"
                and type(task.recallFlow.nodeList[1]) == "table" then
                task.recallFlow.nodeList[1].flow = task.recallFlow
            else task.extra = { { task } } end
        elseif op == 7 then -- many rows (the same row table), past the estimate and the limit
            local l = task.numberInfoList
            if type(l) == "table" and type(l[1]) == "table" then
                local k = r:u8()
                local n = (k == 255 and not B.ignore["cycle-cost"]) and B.MAX_ROWS + 1 or #l + k
                local n0 = #l
                r.weights = r.weights or {}
                n = rows_within_budget(l, n0, n, r.weights)
                if n <= B.MAX_ROWS + 1 then
                    for i = n0 + 1, n do l[i] = l[(i - 1) % n0 + 1] end
                end
            end
        elseif op == 8 then -- a metatable on one of the tables
            local k = r:u8() % 3
            local t = k == 0 and task or k == 1 and task.numberInfoList or task.recallFlow
            if type(t) == "table" then set_mt(r, t) end
        elseif op == 9 then -- a deep chain under any key
            rawset_key(task, gen_key(r), gen_chain(r))
        elseif op == 10 then -- numberInfoList itself, anything
            task.numberInfoList = gen_value(r, 1, { task })
        else -- an unknown field in a row, with a long or odd string
            local l = task.numberInfoList
            if type(l) == "table" and type(l[1]) == "table" then
                rawset_key(l[1], gen_key(r), gen_string(r))
            end
        end
    end
    for _, m in ipairs(r.mts) do pcall(setmetatable, m[1], m[2]) end -- (a protected one stays)
    return task, opts, next(bad) ~= nil
end

---------------------------------------------------------------------------------------
-- checks (raw access only: a table may carry the trap metatable)
---------------------------------------------------------------------------------------

local rawlen = rawlen or function(t) return #t end -- LuaJIT: # ignores __len on tables

local function ulen(s)
    local _, n = s:gsub("[^\128-\191]", "")
    return n
end

-- The first n characters of s as the encoder reads them: sequence lengths from the lead
-- bytes (a success means these n were valid), and nothing after the nth is looked at, so
-- a text is cut when any byte follows its 30th character, valid or not.
local function uprefix(s, n)
    local count, i = 0, 1
    while i <= #s and count < n do
        local c = s:byte(i)
        i = i + (c < 0xC0 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4)
        count = count + 1
    end
    return s:sub(1, i - 1)
end

-- strict UTF-8 (RFC 3629): the specs' validator, found beside this file
local utf8_valid = dofile(((debug.getinfo(1, "S").source:match("^@(.*)[/\\]")) or "fuzz") ..
                          "/../spec/utf8_valid.lua")
B.utf8_valid = utf8_valid

local function isint(v)
    return type(v) == "number" and v == v and v > -huge and v < huge and v == floor(v)
end

local function int_in(v, lo, hi) return isint(v) and v >= lo and v <= hi end

local function digits(v, lo, hi)
    return type(v) == "string" and #v >= lo and #v <= hi and not v:find("[^0-9]")
end

local function absent(v) return v == nil or v == null end

local function count(t)
    local n = 0
    for _ in next, t do n = n + 1 end
    return n
end

local function is_list(t)
    local n = 0
    for k in next, t do
        if type(k) ~= "number" or k < 1 or k ~= floor(k) then return false end
        n = n + 1
    end
    return n == rawlen(t)
end

-- Deep equality of a task value and its decoded JSON: true | false, why (the path below
-- the value, then the reason; built only on a failure, as a 200,000-row check calls it
-- per row).
local function same_at(a, b, depth)
    if depth > 70 then return false, ": nested past the limit in the output" end
    local ta = type(a)
    if a == null then
        if b == null then return true end
        return false, ": null became " .. tostring(b)
    end
    if ta == "boolean" or ta == "string" then
        if a == b then return true end
        return false, format(": %q became %q", tostring(a), tostring(b))
    end
    if ta == "number" then
        if type(b) == "number" and a + 0.0 == b then return true end
        return false, format(": %.17g became %s", a, tostring(b))
    end
    if ta ~= "table" then return false, ": a " .. ta .. " was encoded" end
    if type(b) ~= "table" then return false, ": a table became " .. tostring(b) end
    local na, nb = count(a), count(b)
    if na ~= nb then return false, format(": %d entries became %d", na, nb) end
    for k, v in next, a do
        local ok, why = same_at(v, b[k], depth + 1)
        if not ok then return false, "." .. tostring(k) .. why end
    end
    return true
end

local function same(a, b, path, depth)
    local ok, why = same_at(a, b, depth)
    if ok then return true end
    return false, path .. why
end

local function text_of(v)
    if type(v) == "string" then return v end
    if mtype(v) == "integer" then return format("%d", v) end
    if v == floor(v) and math.abs(v) < 1e15 then return format("%d", v) end
    return format("%.14g", v)
end

-- One row against its output; returns true, texts cut | false, why.
local function check_row(row, out, i, req, truncate)
    local p = "numberInfoList[" .. i .. "]"
    local cut = 0
    if type(row) ~= "table" or type(out) ~= "table" then return false, p .. ": not an object" end
    local callee = rawget(row, "calleeNumber")
    -- the bounds restated from the vendor's pages on purpose, not read from src/rules.h: an
    -- oracle that shared the encoder's constants would share its mistakes
    if not digits(callee, 6, 18) then return false, p .. ".calleeNumber accepted" end
    if count(row) ~= count(out) then return false, p .. ": key count differs" end
    for k, v in next, row do
        local o = out[k]
        local n = type(k) == "string" and k:match("^text(%d+)$")
        n = n and tonumber(n)
        if k == "calleeNumber" then
            if o ~= v then return false, p .. ".calleeNumber changed" end
        elseif n and n >= 1 and n <= 10 and k == "text" .. n then
            if v == null then
                if req[n] then return false, p .. "." .. k .. ": required but null accepted" end
                if o ~= null then return false, p .. "." .. k .. ": null not kept" end
            elseif type(v) == "string" or type(v) == "number" then
                if type(v) == "number" and not (v == v and v > -huge and v < huge) then
                    return false, p .. "." .. k .. ": NaN/inf accepted"
                end
                local want = text_of(v)
                if req[n] and want == "" then return false, p .. "." .. k .. ": empty accepted" end
                if type(v) == "string" and #uprefix(v, 30) < #v then
                    if truncate == false then
                        return false, p .. "." .. k .. ": long text accepted with truncate = false"
                    end
                    want = uprefix(v, 30)
                    cut = cut + 1
                end
                if o ~= want then
                    return false, format("%s.%s: %q became %q", p, k, want, tostring(o))
                end
            else
                return false, p .. "." .. k .. ": a " .. type(v) .. " accepted"
            end
        else
            local ok, why = same(v, o, p .. "." .. tostring(k), 2)
            if not ok then return false, why end
        end
    end
    for n in next, req do
        if rawget(row, "text" .. n) == nil then return false, p .. ".text" .. n .. ": required, missing" end
    end
    return true, cut
end

local HHMM = "^[0-2]%d:[0-5]%d$"
local DATE = "^%d%d%d%d%-[01]%d%-[0-3]%d [0-2]%d:[0-5]%d:[0-5]%d$"
-- { name, lower bound, upper bound, required, the lower bound is only a warning }: a
-- warning (a rule the pages do not state) is an error with opts.strict only; the hard
-- bound is then the pages' Integer (32 bits).
local INT32_MIN, INT32_MAX = -2147483648, 2147483647
local INT_FIELDS = { { "maxCalls", 1, 999, false, true }, { "maxRingingTime", 10, 120 },
                     { "agentId", 1, INT32_MAX, true, true }, { "enableRecording", 0, 1 } }

-- An Integer whose lower bound lo is a warning: lo when warn_strict, else 32 bits.
local function count_in(v, lo, hi, warn_strict)
    return int_in(v, warn_strict and lo or INT32_MIN, hi)
end

local function check_windows(w, warn_strict)
    if type(w) ~= "table" or rawlen(w) > 3 then return false, "allowSendTime accepted" end
    for i = 1, rawlen(w) do
        local e = rawget(w, i)
        if type(e) ~= "table" then return false, "allowSendTime entry accepted" end
        for _, k in ipairs({ "strTime", "endTime" }) do
            local v = rawget(e, k)
            if v == nil then
                if warn_strict then return false, "allowSendTime entry without " .. k .. " accepted" end
            elseif v ~= null and not (type(v) == "string" and v:find(HHMM)) then
                return false, "allowSendTime entry accepted"
            end
        end
    end
    return true
end

local function check_recall(f, warn_strict)
    if type(f) ~= "table" then return false, "recallFlow accepted" end
    if next(f) == nil then
        if warn_strict then return false, "recallFlow {} accepted" end
        return true
    end
    local t, num, nodes, ri = rawget(f, "recallType"), rawget(f, "recallNum"),
        rawget(f, "nodeList"), rawget(f, "recallIntent")
    if not (t == 0 or t == 1 or t == 3) then return false, "recallType accepted" end
    if not count_in(rawget(f, "recallInterval"), 1, INT32_MAX, warn_strict) or
       not count_in(num, 1, INT32_MAX, warn_strict) then
        return false, "recallInterval/recallNum accepted"
    end
    local nn = 0 -- an absent (or null) nodeList has no node
    if type(nodes) == "table" then nn = rawlen(nodes) elseif not absent(nodes) then
        return false, "nodeList accepted"
    end
    if nn ~= num then return false, "nodeList accepted" end
    for i = 1, nn do
        local n = rawget(nodes, i)
        local a = type(n) == "table" and rawget(n, "agentId")
        if not (count_in(a, 1, INT32_MAX, warn_strict) or digits(a, 1, 10)) then
            return false, "nodeList agentId accepted"
        end
    end
    if warn_strict and t == 3 and (type(ri) ~= "table" or rawlen(ri) == 0) then
        return false, "recallIntent accepted"
    end
    if type(ri) == "table" then
        for i = 1, rawlen(ri) do
            local s = rawget(ri, i)
            if type(s) ~= "string" or (warn_strict and s == "") then return false, "intent accepted" end
        end
    end
    return true
end

-- The rules of doc/core-contract.md that a successful encode implies (a second, plainer
-- reading of them; the rows are checked in check_row).
local function check_rules(task, warn_strict)
    local function get(k) return rawget(task, k) end
    local app, name = get("appId"), get("taskName")
    if type(app) ~= "string" or (warn_strict and app == "") then return false, "appId accepted" end
    if type(name) ~= "string" or ulen(name) < 2 or ulen(name) > 64 then
        return false, "taskName accepted"
    end
    if not absent(get("displayNum")) and not digits(get("displayNum"), 0, 20) then
        return false, "displayNum accepted"
    end
    for _, b in ipairs(INT_FIELDS) do
        local v = get(b[1])
        if absent(v) then
            if b[4] then return false, b[1] .. " missing, accepted" end
        elseif not (b[5] and count_in(v, b[2], b[3], warn_strict) or int_in(v, b[2], b[3])) then
            return false, b[1] .. " accepted: " .. tostring(v)
        end
    end
    local st = get("sendTime") -- LocalDateTime: a string; the example's shape when warn_strict
    if not absent(st) and not (type(st) == "string" and (not warn_strict or st:find(DATE))) then
        return false, "sendTime accepted"
    end
    local w = get("allowSendTime")
    if not absent(w) then
        local ok, why = check_windows(w, warn_strict)
        if not ok then return false, why end
    end
    local f = get("recallFlow")
    if not absent(f) then
        local ok, why = check_recall(f, warn_strict)
        if not ok then return false, why end
    end
    return true
end

-- The options for one call: a copy with a fresh opts.rejects list (encode and
-- encode_body each get their own; check_success reads what the call appended).
function B.call_opts(opts)
    if type(opts) ~= "table" then return opts end
    local o = {}
    for k, v in next, opts do o[k] = v end
    if type(opts.rejects) == "table" then o.rejects = {} end
    return o
end

-- encode and encode_body listed the same rejects
function B.same_rejects(o1, o2)
    local a = type(o1) == "table" and o1.rejects
    local b = type(o2) == "table" and o2.rejects
    if type(a) ~= "table" or type(b) ~= "table" then return true end
    return same(a, b, "opts.rejects", 1)
end

-- What the core says of one row: nil when it encodes, else { field, message, code }.
-- A verdict found for row `from` as it would read for row `to` (the field's index).
local function reindex(v, from, to)
    local prefix, field = "numberInfoList[" .. from .. "]", v.field
    if from ~= to and type(field) == "string" and field:sub(1, #prefix) == prefix then
        field = "numberInfoList[" .. to .. "]" .. field:sub(#prefix + 1)
    end
    return { field = field, message = v.message, code = v.code }
end

local function verdict_of(core, task, opts, from, index)
    local json, msg, field, code = core.encode(task, opts)
    if json then return nil end
    if type(field) == "string" and msg:sub(1, #field + 2) == field .. ": " then
        msg = msg:sub(#field + 3)
    end
    return reindex({ field = field, message = msg, code = code }, from, index)
end

-- Row i alone, in a one-row task of its own: cheap, and right unless a field of the row
-- refers back to the list or the task (a cycle then closes elsewhere).
local function row_alone(core, row, i, opts)
    local t = { appId = "a", taskName = "fz", agentId = 1, numberInfoList = { row } }
    return verdict_of(core, t, { require_texts = opts.require_texts, truncate = opts.truncate },
                      1, i)
end

-- Row i in its own task and list (part i of one-row parts), as the full encode met it;
-- O(rows) for the list check, so used only where row_alone disagrees with the core.
local function row_in_context(core, task, i, opts)
    return verdict_of(core, task, { part = i, max_rows = 1, require_texts = opts.require_texts,
                                    truncate = opts.truncate }, i, i)
end

-- A successful encode: the JSON is valid (strict UTF-8, decodes with a strict cjson),
-- holds exactly the task's fields (rows: texts cut to 30 characters, numbers as text),
-- and the task obeys the rules. Returns true | false, why.
function B.check_success(task, opts, json, info, core)
    if type(json) ~= "string" then return false, "the result is not a string" end
    if type(info) ~= "table" then return false, "no info table" end
    if info.bytes ~= #json then return false, "info.bytes ~= #json" end
    if not utf8_valid(json) then return false, "the JSON is not valid UTF-8" end
    if json:find("[%z\1-\31]") then return false, "a raw control byte in the JSON" end
    local ok, doc = pcall(strict.decode, json)
    if not ok then return false, "the JSON does not decode: " .. tostring(doc) end
    if type(doc) ~= "table" then return false, "the JSON is not an object" end
    local warn_strict = type(opts) == "table" and opts.strict == true
    local rok, rwhy = check_rules(task, warn_strict)
    if not rok then return false, rwhy end
    local rows = rawget(task, "numberInfoList")
    if type(rows) ~= "table" or not is_list(rows) or
       (rawlen(rows) < 1 and (warn_strict or (type(opts) == "table" and opts.part ~= nil))) then
        return false, "numberInfoList accepted"
    end
    -- which rows: all, or part k of max_rows; without opts.rejects every one of them
    -- must be valid, with it the invalid ones are listed there and left out. With
    -- opts.part the list itself may be longer than 200,000 (each part is at most max_rows).
    local o = opts or {}
    if o.part == nil and rawlen(rows) > B.MAX_ROWS then
        return false, "numberInfoList of more than " .. B.MAX_ROWS .. " rows accepted"
    end
    local n, max = rawlen(rows), o.max_rows or B.MAX_ROWS
    local first, last, split = 1, n, o.part ~= nil
    if o.part then
        first = (o.part - 1) * max + 1
        last = math.min(n, first + max - 1)
        if first > n then return false, "a part past the list accepted" end
    elseif n > max then
        return false, "more than max_rows rows accepted"
    end
    local more = last < n
    local keep, rejects = {}, {}
    local listed, in_context, alone = {}, {}, {}
    if type(o.rejects) == "table" then
        for _, r in ipairs(o.rejects) do
            if type(r) == "table" and r.index then listed[r.index] = r end
        end
    end
    for i = first, last do
        local row = rawget(rows, i)
        local bad = false
        if type(o.rejects) == "table" and core then
            -- a row table that comes back (a list of 200,000 made of a few) is asked once
            local a = type(row) == "table" and alone[row]
            if a then
                bad = a.v and reindex(a.v, a.i, i)
            else
                bad = row_alone(core, row, i, o)
                if type(row) == "table" then alone[row] = { v = bad, i = i } end
            end
        end
        local got = listed[i]
        if bad and got and (got.field ~= bad.field or got.message ~= bad.message) then
            -- a cycle through the list or the task: ask again in context (once per row
            -- table; a repeated row differs only in its index)
            local c = in_context[row]
            if not c then
                c = { v = row_in_context(core, task, i, o), i = i }
                in_context[row] = c
            end
            bad = c.v and reindex(c.v, c.i, i)
        end
        if bad then rejects[#rejects + 1] = { index = i, field = bad.field, message = bad.message,
                                               code = bad.code }
        else keep[#keep + 1] = i end
    end
    -- an empty list is a warning (the pages give only a maximum), also one whose every row
    -- was refused: an error with strict only
    if #keep == 0 and warn_strict then
        return false, "a list with no valid rows accepted"
    end
    if type(o.rejects) == "table" and core then
        if #rejects > (o.max_rejects or 1000) then return false, "more rejects than max_rejects accepted" end
        local sok, why = same(rejects, o.rejects, "opts.rejects", 1)
        if not sok then return false, why end
        if info.rejected ~= #rejects then return false, "info.rejected ~= #opts.rejects" end
    end
    if info.rows ~= #keep then return false, "info.rows ~= the rows written" end
    if split and (info.part ~= o.part or info.more ~= more) then
        return false, format("info.part %s, info.more %s", tostring(info.part), tostring(info.more))
    end
    if count(task) ~= count(doc) then
        return false, format("the task has %d fields, the JSON %d", count(task), count(doc))
    end
    for k, v in next, task do
        if k == "taskName" and split and (o.part > 1 or more) then
            if doc.taskName ~= v .. "-part-" .. o.part then return false, "taskName of a part" end
        elseif k ~= "numberInfoList" then
            local sok, why = same(v, doc[k], tostring(k), 1)
            if not sok then return false, why end
        end
    end
    local out = doc.numberInfoList
    if type(out) ~= "table" or #out ~= #keep then return false, "numberInfoList length changed" end
    local req = {}
    for _, k in ipairs(o.require_texts or {}) do req[k] = true end
    local truncate = o.truncate
    local truncated = 0
    local seen, seen_cut = {}, {}
    for j, i in ipairs(keep) do
        local row = rawget(rows, i)
        if seen[row] then -- the same row table again: the same output
            local sok, why = same(seen[row], out[j], "numberInfoList[" .. i .. "]", 1)
            if not sok then return false, why end
            truncated = truncated + seen_cut[row]
        else
            local cok, cut = check_row(row, out[j], i, req, truncate)
            if not cok then return false, cut end
            seen[row], seen_cut[row] = out[j], cut
            truncated = truncated + cut
        end
    end
    if info.truncated ~= truncated then
        return false, format("info.truncated is %s, %d texts were cut", tostring(info.truncated),
                             truncated)
    end
    return true
end

-- A failed encode: nil, "<field>: <reason>", field, -21 | -22.
function B.check_failure(msg, field, code)
    if type(msg) ~= "string" then return false, "message is not a string" end
    if field ~= nil and type(field) ~= "string" then return false, "field is not a string or nil" end
    if code ~= -21 and code ~= -22 then return false, "code is " .. tostring(code) end
    if field and msg:sub(1, #field + 2) ~= field .. ": " then
        return false, format("message %q does not start with the field %q", msg, field)
    end
    return true
end

---------------------------------------------------------------------------------------
-- one case, as fuzz/encode_fuzz.c runs it (for the spec)
---------------------------------------------------------------------------------------

local function pack(...) return { n = select("#", ...), ... } end

-- Builds the task from the bytes, runs core.encode and core.encode_body on it and checks
-- what encode_fuzz.c checks, in the same order. Returns true | false, why.
function B.run(core, bytes)
    local task, opts, opts_bad = B.build(bytes)
    local o1, o2 = B.call_opts(opts), B.call_opts(opts)
    local a = pack(pcall(core.encode, task, o1))
    if opts_bad then
        if a[1] then return false, "encode accepted malformed opts" end
        if not tostring(a[2]):find("opts", 1, true) then
            return false, "encode raised for malformed opts without naming them: " .. tostring(a[2])
        end
        if pcall(core.encode_body, task, o2) then return false, "encode_body accepted malformed opts" end
        return true
    end
    if not a[1] then return false, "encode raised: " .. tostring(a[2]) end
    local b = pack(pcall(core.encode_body, task, o2))
    if not b[1] then return false, "encode_body raised: " .. tostring(b[2]) end
    for _, r in ipairs({ a, b }) do
        if r[2] == nil then
            if r.n ~= 5 then return false, "a failure must return exactly nil, message, field, code" end
            local ok, why = B.check_failure(r[3], r[4], r[5])
            if not ok then return false, why end
        elseif r.n ~= 3 or type(r[3]) ~= "table" then
            return false, "a success must return exactly a result and an info table"
        end
    end
    if (a[2] == nil) ~= (b[2] == nil) then return false, "encode and encode_body disagree on success" end
    if a[2] == nil then
        if a[3] ~= b[3] or a[4] ~= b[4] or a[5] ~= b[5] then
            return false, "encode and encode_body fail differently"
        end
        return true
    end
    local json, body = a[2], b[2]
    if type(json) ~= "string" then return false, "encode: the result is not a string" end
    local okd, derr = pcall(cjson.decode, json)
    if not okd then return false, "cjson.decode rejects the JSON: " .. tostring(derr) end
    local ok, why = B.check_success(task, o1, json, a[3], core)
    if not ok then return false, "encode: " .. why end
    ok, why = B.same_rejects(o1, o2)
    if not ok then return false, "encode_body: " .. why end
    if type(body) ~= "userdata" then return false, "encode_body: the result is not a userdata" end
    if #body ~= #json then return false, "#body differs from #encode(...)" end
    if tostring(body) ~= json then return false, "tostring(body) differs from encode(...)" end
    if b[3].bytes ~= #json then return false, "encode_body: info.bytes differs from #body" end
    body:close()
    body:close()
    if #body ~= 0 then return false, "#body is not 0 after close" end
    return true
end

---------------------------------------------------------------------------------------
-- a canonical description of what build made (guards saved inputs against builder edits)
---------------------------------------------------------------------------------------

local NAMED = { [function_value] = "function_value", [print] = "print", [null] = "null",
                [TRAP_MT] = "TRAP_MT", [TRAP_MT_NO_INDEX] = "TRAP_MT_NO_INDEX" }
if io and io.stdout then NAMED[io.stdout] = "io.stdout" end

-- Lua-like text, keys sorted, each table numbered at its first appearance (a later
-- appearance, shared or cyclic, is "@n"); coroutines and light userdata by kind only.
-- Stable across runs of one Lua version; 5.4 and LuaJIT differ (integers).
function B.describe(task, opts)
    local seen, ntables, out = {}, 0, {}
    local function put(s) out[#out + 1] = s end
    local function num(v)
        if v ~= v then return "nan" end
        if v == huge then return "inf" end
        if v == -huge then return "-inf" end
        if mtype(v) == "integer" then return format("%d", v) end
        return format("%.17g", v)
    end
    local function key_order(a, b)
        local ta, tb = type(a), type(b)
        if ta ~= tb then return ta < tb end
        if ta == "number" or ta == "string" then return a < b end
        return false
    end
    local walk
    local function scalar(v)
        local t = type(v)
        if NAMED[v] then return NAMED[v] end
        if t == "string" and #v > 120 then -- long: its length and a checksum
            local h = 0
            for i = 1, #v do h = (h * 31 + v:byte(i)) % 2147483647 end
            return format("<string of %d bytes, sum %d, from %q>", #v, h, v:sub(1, 16))
        end
        if t == "string" then return (format("%q", v):gsub("\\\n", "\\n")) end
        if t == "number" then return num(v) end
        if t == "boolean" then return tostring(v) end
        if t == "table" then return nil end
        return "<" .. t .. ">"
    end
    function walk(v)
        local s = scalar(v)
        if s then put(s) return end
        if seen[v] then put("@" .. seen[v]) return end
        ntables = ntables + 1
        seen[v] = ntables
        put("#" .. ntables .. "{")
        local keys = {}
        for k in next, v do keys[#keys + 1] = k end
        table.sort(keys, key_order)
        local main
        for i, k in ipairs(keys) do
            if i == 65 then main, out = out, {} end -- past 64 entries: only a checksum
            put("[")
            walk(k)
            put("]=")
            walk(rawget(v, k))
            put(",")
        end
        if main then
            local rest = table.concat(out)
            out = main
            local h = 0
            for i = 1, #rest do h = (h * 31 + rest:byte(i)) % 2147483647 end
            put(format("<%d more entries, sum %d>", #keys - 64, h))
        end
        put("}")
        local mt = getmetatable(v)
        if mt ~= nil then
            put("<mt:")
            if type(mt) == "table" and not NAMED[mt] then
                local mk = {}
                for k in next, mt do mk[#mk + 1] = k end
                table.sort(mk, key_order)
                for _, k in ipairs(mk) do
                    local x = rawget(mt, k)
                    put(tostring(k) .. "=" .. (type(x) == "function" and "fn" or (scalar(x) or "table")) .. ";")
                end
            else
                put(NAMED[mt] or tostring(mt))
            end
            put(">")
        end
    end
    put("task=")
    walk(task)
    put("\nopts=")
    walk(opts)
    put("\n")
    return table.concat(out)
end

return B
