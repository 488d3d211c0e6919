-- fuzz/csv_check.lua - one CSV fuzz case, from bytes to verdict, against any laaffic.core.
--
-- Shared by the libFuzzer harness fuzz/csv_fuzz.c (which passes its instrumented core) and
-- by spec/17-fuzz-regressions_spec.lua (which passes the built one, for the saved inputs
-- of fuzz/regressions/csv/). Pure Lua, for Lua 5.4 and LuaJIT.
--
--   local C = dofile("fuzz/csv_check.lua")
--   local ok, why = C.run(core, bytes)
--
-- Input: byte 1 and byte 2 choose the options (see C.options), then (when byte 1 asks for
-- them) one byte for opts.columns and one for the encode options; the rest is the CSV text.
--
-- C.run reads the text with core.csv_string, and from a file (C.path, written with the
-- text) with core.csv_file, and encodes part after part of it with core.encode (the
-- string) and core.encode_body (the file) in lockstep until a part says more = false.
-- The fuzz build reads files in blocks of 64 bytes (LF_CSV_BLOCK in fuzz/fuzz.mk), so
-- records, blank lines and part starts meet refills as a 256 KiB block meets them in a
-- real file. Neither may raise (unless the options are malformed on
-- purpose, and then csv_string must), both must agree byte for byte, and everything is
-- compared with an independent reading:
--   * a reference RFC 4180 parser here (the rules csv.c documents: BOM, CR/LF/CRLF, quotes,
--     "text after a closing quote" skips the record, an unclosed quote ends the file,
--     blank lines are skipped, 4096 columns at most) and the header mapping of start();
--   * each record's row encoded alone through the TABLE path of the same core
--     (core.encode with numberInfoList = { row }), which says whether it is valid, what
--     JSON it makes, how many texts it cuts, and with what message it fails;
--   * normalize, dedupe, rejects, max_rejects and max_rows parts applied by a simulation.
-- So every part's rows, rejects (line, column, field, message, code), duplicates,
-- truncated count, part number, more flag and task name are predicted and checked, and a
-- failure must be one the simulation predicts.
local cjson = require("cjson")

local C = {}

local null = cjson.null
local format = string.format
local KEYS = { "calleeNumber", "text1", "text2", "text3", "text4", "text5", "text6", "text7",
               "text8", "text9", "text10" }
local BAD_MSG = 'text after a closing quote (a quote inside a quoted field is written twice: "")'
local OPEN_MSG = "a quoted field is never closed (its quote opens here)"
local MANY_MSG = "more than 4096 columns"
local MAX_COLUMNS = 4096
local TASK_NAME = "fz"
local MAX_PARTS = 64

local strict = cjson.new()
strict.decode_invalid_numbers(false)

---------------------------------------------------------------------------------------
-- input -> options and text
---------------------------------------------------------------------------------------

local DELIMS = { ",", ";", "\t", "|" }
local MAX_ROWS = { false, 1, 2, 3, 5, 1, 2, false }
local MAX_REJECTS = { false, 0, 1, 3 }
local COLUMNS = {
    { calleeNumber = "phone" }, { calleeNumber = 2 }, { text1 = false },
    { calleeNumber = "Phone", text1 = 3 }, { text2 = "name" },
    { calleeNumber = 1, text1 = 2, text2 = 3 }, { calleeNumber = false }, { text10 = 1 },
}
local ENC_OPTS = { { require_texts = { 1 } }, { truncate = false },
                   { require_texts = { 1, 2 }, truncate = false }, { require_texts = { 10 } } }

local function copy(t)
    local o = {}
    for k, v in pairs(t) do o[k] = type(v) == "table" and copy(v) or v end
    return o
end

-- Returns text, csv_opts, enc_opts (without rejects), cfg.
--   byte 1: bit 0 header = false, bit 1 normalize, bit 2 dedupe, bit 3 opts.rejects,
--           bits 4-5 delimiter (, ; tab |), bit 6 opts.columns (one more byte),
--           bit 7 encode options (one more byte)
--   byte 2: bits 0-2 max_rows (default, 1, 2, 3, 5, 1, 2, default), bits 3-4 max_rejects
--           (default, 0, 1, 3), bit 5 opts.name = "list.csv", bit 7 (without bit 5) the
--           string reader's opts answer `name` through __index with a string no one else
--           holds, while every allocation runs a whole GC cycle: options are read raw
--           (doc/core-contract.md), so the reader must be named "<string>" as the file
--           reader is; reading through __index shows as a name that differs, or, when
--           the string is not anchored until it is copied, as a use after free
function C.options(bytes)
    local b1, b2 = bytes:byte(1) or 0, bytes:byte(2) or 0
    local pos = 3
    local function bit(b, n) return math.floor(b / 2 ^ n) % 2 == 1 end
    local copts, eopts, cfg = {}, {}, {}
    if bit(b1, 0) then copts.header = false end
    if bit(b1, 1) then copts.normalize = true end
    if bit(b1, 2) then copts.dedupe = true end
    cfg.rejects = bit(b1, 3)
    local d = DELIMS[math.floor(b1 / 16) % 4 + 1]
    if d ~= "," then copts.delimiter = d end
    if bit(b1, 6) then
        copts.columns = copy(COLUMNS[(bytes:byte(pos) or 0) % #COLUMNS + 1])
        pos = pos + 1
    end
    if bit(b1, 7) then
        eopts = copy(ENC_OPTS[(bytes:byte(pos) or 0) % #ENC_OPTS + 1])
        pos = pos + 1
    end
    local mr = MAX_ROWS[b2 % 8 + 1]
    if mr then eopts.max_rows = mr end
    local mj = MAX_REJECTS[math.floor(b2 / 8) % 4 + 1]
    if mj then eopts.max_rejects = mj end
    if bit(b2, 5) then copts.name = "list.csv" end
    cfg.proxy = bit(b2, 7) and copts.name == nil
    -- malformed on purpose: string column names without a header row
    if copts.header == false and copts.columns then
        for _, v in pairs(copts.columns) do
            if type(v) == "string" then cfg.expect_raise = true end
        end
    end
    return bytes:sub(pos), copts, eopts, cfg
end

---------------------------------------------------------------------------------------
-- the reference reader
---------------------------------------------------------------------------------------

local function count_nl(s, a, b)
    local n = 0
    local i = s:find("\n", a, true)
    while i and i <= b do
        n = n + 1
        i = s:find("\n", i + 1, true)
    end
    return n
end

-- All records of the text: { fields = { { s, quoted, line } }, line, status, err }, where
-- status is nil, "bad" (skipped, err) or "fatal" (the last one, err). Blank lines are
-- left out, as lf_csv_next does.
local function records_of(text, delim)
    local d = delim:byte()
    local len = #text
    local i, line = 1, 1
    local recs = {}
    if text:sub(1, 3) == "\239\187\191" then i = 4 end
    while i <= len do
        local fields, rec = {}, { line = line }
        rec.fields = fields
        while true do
            if #fields == MAX_COLUMNS then
                rec.status, rec.err = "fatal", { line = line, col = #fields, msg = MANY_MSG }
                break
            end
            local f = { line = line, s = "" }
            fields[#fields + 1] = f
            if i <= len and text:byte(i) == 34 then
                i = i + 1
                local seg, qline, parts = i, line, {}
                f.quoted = true
                while true do
                    local q = text:find('"', i, true)
                    if not q then
                        rec.status, rec.err = "fatal", { line = qline, col = #fields, msg = OPEN_MSG }
                        break
                    end
                    line = line + count_nl(text, i, q - 1)
                    i = q
                    if i + 1 <= len and text:byte(i + 1) == 34 then
                        parts[#parts + 1] = text:sub(seg, i)
                        i = i + 2
                        seg = i
                    else
                        parts[#parts + 1] = text:sub(seg, i - 1)
                        i = i + 1
                        break
                    end
                end
                if rec.status then break end
                f.s = table.concat(parts)
                local c = text:byte(i)
                if c and c ~= d and c ~= 13 and c ~= 10 then
                    local nl = text:find("\n", i, true)
                    rec.status, rec.err = "bad", { line = line, col = #fields, msg = BAD_MSG }
                    i = nl and nl + 1 or len + 1
                    line = line + 1
                    break
                end
            else
                local j = i
                while j <= len do
                    local c = text:byte(j)
                    if c == d or c == 10 or c == 13 then break end
                    j = j + 1
                end
                f.s = text:sub(i, j - 1)
                i = j
            end
            if i > len then break end
            local c = text:byte(i)
            if c == d then
                i = i + 1
            else
                if c == 13 and text:byte(i + 1) == 10 then i = i + 2 else i = i + 1 end
                line = line + 1
                break
            end
        end
        local blank = not rec.status and #fields == 1 and fields[1].s == "" and not fields[1].quoted
        if not blank then recs[#recs + 1] = rec end
        if rec.status == "fatal" then break end
    end
    return recs
end

local function trim(s) return (s:gsub("^[ \t]+", ""):gsub("[ \t]+$", "")) end

-- The reference's opening: map (0-based columns, -1: none) and the data records, or
-- nil, why.
local function reference_open(text, copts)
    local b1, b2 = text:byte(1), text:byte(2)
    if b1 and b2 and (b1 == 0xFF or b1 == 0xFE) and (b2 == 0xFE or b2 == 0xFF) then
        return nil, "UTF-16"
    end
    local recs = records_of(text, copts.delimiter or ",")
    local cols = copts.columns or {}
    local mcol, mapped, any = {}, {}, false
    for k = 1, #KEYS do
        local v = cols[KEYS[k]]
        mcol[k] = 0
        if v ~= nil then any = true end
        if type(v) == "number" then mcol[k] = v
        elseif type(v) == "string" then mapped[k] = v
        elseif v == false then mcol[k] = -1 end
    end
    local map = {}
    if copts.header == false then
        for k = 1, #KEYS do
            map[k] = mcol[k] > 0 and mcol[k] - 1 or ((mcol[k] < 0 or any) and -1 or k - 1)
        end
        if map[1] < 0 then return nil, "calleeNumber must not be false" end
        return map, recs
    end
    local head = table.remove(recs, 1)
    if not head then return nil, "empty" end
    if head.status then return nil, head.err.msg end
    for k = 1, #KEYS do
        map[k] = -1
        if mcol[k] > 0 then
            map[k] = mcol[k] - 1
        elseif mcol[k] == 0 then
            for col, f in ipairs(head.fields) do
                local name = trim(f.s)
                local hit
                if mapped[k] then hit = name == mapped[k] else hit = name:lower() == KEYS[k]:lower() end
                if hit then
                    if map[k] >= 0 then return nil, "duplicate column " .. KEYS[k] end
                    map[k] = col - 1
                end
            end
            if mapped[k] and map[k] < 0 then return nil, "no column " .. mapped[k] end
        end
    end
    if map[1] < 0 then return nil, "no calleeNumber column" end
    return map, recs
end

---------------------------------------------------------------------------------------
-- the simulation
---------------------------------------------------------------------------------------

local function all_digits(s)
    return #s >= 6 and #s <= 18 and not s:find("[^0-9]")
end

local function normalize(s)
    local n = s:gsub("[ \t+-]", "")
    if #n > 32 then return s end
    return n
end

local function task_of(list)
    return { appId = "app", taskName = TASK_NAME, agentId = 110, numberInfoList = list }
end

-- One record's row alone through the table path: { json_row, truncated } | { fail }.
local function row_verdict(core, row, eopts)
    local o = { require_texts = eopts.require_texts, truncate = eopts.truncate }
    local json, info, field, code = core.encode(task_of({ row }), o)
    if json then
        local doc = strict.decode(json)
        return { row = doc.numberInfoList[1], truncated = info.truncated }
    end
    local prefix = "numberInfoList[1]."
    if type(field) ~= "string" or field:sub(1, #prefix) ~= prefix then
        return { fail = true, key = nil, message = info, code = code, raw_field = field }
    end
    local key = field:sub(#prefix + 1)
    return { fail = true, key = key, message = info:sub(#field + 3), code = code }
end

-- The expected parts: { { rows = {json rows}, rejects = {...}, duplicates, truncated } },
-- and the expected failure { part, kind, message } or nil.
local function simulate(core, map, recs, copts, eopts, cfg)
    local max_rows = eopts.max_rows or 200000
    local max_rejects = eopts.max_rejects or 1000
    local parts = { { rows = {}, rejects = {}, duplicates = 0, truncated = 0 } }
    local seen = {}
    local function part() return parts[#parts] end
    local function reject(r)
        if not cfg.rejects then return { part = #parts, kind = "row", message = r.message } end
        local p = part()
        if #p.rejects >= max_rejects then
            return { part = #parts, kind = "max_rejects" }
        end
        p.rejects[#p.rejects + 1] = r
    end
    for _, rec in ipairs(recs) do
        if rec.status == "fatal" then
            return parts, { part = #parts, kind = "fatal", message = rec.err.msg }
        end
        if rec.status == "bad" then
            local f = reject({ line = rec.err.line, column = rec.err.col, field = "record",
                               message = BAD_MSG, code = -21 })
            if f then return parts, f end
        else
            local row = {}
            local nf = #rec.fields
            for k = 1, #KEYS do
                local col = map[k]
                if col >= 0 and col < nf then
                    local f = rec.fields[col + 1]
                    if f.s ~= "" or (k == 1 and f.quoted) then row[KEYS[k]] = f.s end
                end
            end
            if row.calleeNumber and copts.normalize then row.calleeNumber = normalize(row.calleeNumber) end
            if row.calleeNumber and copts.dedupe and all_digits(row.calleeNumber)
                and seen[row.calleeNumber] then
                part().duplicates = part().duplicates + 1
            else
                local v = row_verdict(core, row, eopts)
                if v.fail then
                    local k
                    for j = 1, #KEYS do if KEYS[j] == v.key then k = j end end
                    local col = k and map[k] or -1
                    local line = (col >= 0 and col < nf) and rec.fields[col + 1].line or rec.line
                    -- no column to blame (a required text that is not mapped): none given
                    local f = reject({ line = line, column = col >= 0 and col + 1 or nil,
                                       field = k and v.key or "record",
                                       message = v.message, code = v.code })
                    if f then return parts, f end
                else
                    if #part().rows == max_rows then
                        parts[#parts + 1] = { rows = {}, rejects = {}, duplicates = 0, truncated = 0 }
                    end
                    local p = part()
                    p.rows[#p.rows + 1] = v.row
                    p.truncated = p.truncated + v.truncated
                    if copts.dedupe then seen[row.calleeNumber] = true end
                end
            end
        end
    end
    -- no rows at all: an empty list, a warning (the pages give only a maximum)
    return parts, nil
end

---------------------------------------------------------------------------------------
-- comparing
---------------------------------------------------------------------------------------

local function same(a, b)
    if a == b then return true end
    if type(a) ~= "table" or type(b) ~= "table" then return false end
    for k, v in pairs(a) do if not same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
end

local function show(v)
    if type(v) ~= "table" then return format("%q", tostring(v)) end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local out = {}
    for _, k in ipairs(keys) do
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        out[#out + 1] = k .. "=" .. show(x)
    end
    return "{" .. table.concat(out, ",") .. "}"
end

local function pack(...) return { n = select("#", ...), ... } end

-- checks a failure's shape: nil, message, field, code [, where]
local function failure_shape(r, what)
    if r[2] ~= nil then return false, what .. ": not a failure" end
    if type(r[3]) ~= "string" then return false, what .. ": the message is not a string" end
    if r[4] ~= nil and type(r[4]) ~= "string" then return false, what .. ": field is not a string" end
    if r[5] ~= -21 and r[5] ~= -22 then return false, what .. ": code is " .. tostring(r[5]) end
    if r.n == 6 then
        -- { file, line [, column] } (column is left out when no CSV column is to blame)
        local w = r[6]
        if type(w) ~= "table" or type(w.file) ~= "string" or type(w.line) ~= "number"
            or (w.column ~= nil and type(w.column) ~= "number") then
            return false, what .. ": the location table is malformed"
        end
        local at = w.file .. ":" .. w.line .. ":" .. (w.column and (w.column .. ":") or "")
        if r[3]:sub(1, #at) ~= at then
            return false, format("%s: the message %q does not start with %q", what, r[3], at)
        end
    elseif r.n ~= 5 then
        return false, what .. ": " .. (r.n - 1) .. " results"
    end
    return true
end

-- The scratch file csv_file reads (the harness sets C.path; else a temporary name).
local function write_scratch(text)
    C.path = C.path or os.tmpname()
    local f = assert(io.open(C.path, "wb"))
    assert(f:write(text))
    f:close()
    return C.path
end

-- The text as a file, named as the string reader names it (so messages compare equal).
local function open_file(core, text, copts)
    local o = copy(copts)
    -- (built, not a constant: a constant would keep the proxy's name string alive)
    if o.name == nil then o.name = table.concat({ "<str", "ing>" }) end
    return pack(pcall(core.csv_file, write_scratch(text), o))
end

-- Returns true | false, why.
function C.run(core, bytes)
    local text, copts, eopts, cfg = C.options(bytes)
    local r2 = open_file(core, text, copts)
    if cfg.proxy then
        C.serial = (C.serial or 0) + 1
        local fresh = "<proxy " .. C.serial .. ">" -- a string no one else holds
        setmetatable(copts, { __index = function(_, k)
            if k == "name" then
                local s = fresh
                fresh = nil
                return s
            end
        end })
        if _VERSION == "Lua 5.4" then
            collectgarbage("incremental", 1, 1020, 20)
            collectgarbage("step", 0) -- a cycle now, so that the next allocation starts one
        end
    end
    local r1 = pack(pcall(core.csv_string, text, copts))
    if cfg.proxy then
        if _VERSION == "Lua 5.4" then collectgarbage("incremental", 200, 100, 13) end
        setmetatable(copts, nil)
    end
    if cfg.expect_raise then
        if r1[1] then return false, "csv_string accepted malformed options" end
        if r2[1] then return false, "csv_file accepted malformed options" end
        return true
    end
    if not r1[1] then return false, "csv_string raised: " .. tostring(r1[2]) end
    if not r2[1] then return false, "csv_file raised: " .. tostring(r2[2]) end
    local map, recs = reference_open(text, copts)
    if r1[2] == nil then
        if type(r1[3]) ~= "string" or r1[4] ~= "invalid" or type(r1[5]) ~= "number" then
            return false, "csv_string: a refusal is not nil, message, \"invalid\", line"
        end
        if map then return false, "csv_string refused what the reference opens: " .. r1[3] end
        if r2[2] ~= nil or r2[3] ~= r1[3] or r2[4] ~= r1[4] or r2[5] ~= r1[5] then
            return false, format("csv_file refused differently: %s / %s", tostring(r2[3]), r1[3])
        end
        return true
    end
    if not map then
        return false, "csv_string opened what the reference refuses (" .. tostring(recs) .. ")"
    end
    local src1, src2 = r1[2], r2[2]
    if not core.is_csv(src1) then return false, "csv_string did not return a reader" end
    if not core.is_csv(src2) then return false, "csv_file refused: " .. tostring(r2[3]) end

    local parts, failure = simulate(core, map, recs, copts, eopts, cfg)

    local p = 0
    while true do
        p = p + 1
        if p > MAX_PARTS then
            -- a long text in parts of 1 or 2 rows: the first MAX_PARTS parts are checked
            if #parts >= MAX_PARTS then return true end
            return false, "more than " .. MAX_PARTS .. " parts, " .. #parts .. " predicted"
        end
        local o1, o2 = copy(eopts), copy(eopts)
        if cfg.rejects then o1.rejects, o2.rejects = {}, {} end
        local a = pack(pcall(core.encode, task_of(src1), o1))
        local b = pack(pcall(core.encode_body, task_of(src2), o2))
        if not a[1] then return false, "encode raised: " .. tostring(a[2]) end
        if not b[1] then return false, "encode_body raised: " .. tostring(b[2]) end
        local want = parts[p]
        if a[2] == nil then
            local ok, why = failure_shape(a, "encode part " .. p)
            if not ok then return false, why end
            ok, why = failure_shape(b, "encode_body part " .. p)
            if not ok then return false, why end
            for i = 3, 5 do
                if a[i] ~= b[i] then return false, "encode and encode_body fail differently" end
            end
            if not same(a[6], b[6]) then return false, "encode and encode_body locate differently" end
            if not failure or failure.part ~= p then
                return false, format("part %d failed, not predicted: %s", p, a[3])
            end
            if failure.message and not a[3]:find(failure.message, 1, true) then
                return false, format("part %d failed with %q, expected %q", p, a[3], failure.message)
            end
            if failure.kind == "max_rejects" and not a[3]:find("opts.max_rejects", 1, true) then
                return false, format("part %d failed with %q, expected max_rejects", p, a[3])
            end
            return true
        end
        if b[2] == nil then return false, "encode succeeded, encode_body failed: " .. tostring(b[3]) end
        if failure and failure.part == p then
            return false, format("part %d succeeded; predicted: %s %s", p, failure.kind,
                                 tostring(failure.message))
        end
        if not want then return false, format("part %d succeeded; only %d predicted", p, #parts) end
        local json, info, body = a[2], a[3], b[2]
        if type(json) ~= "string" or type(info) ~= "table" then return false, "encode: bad results" end
        if tostring(body) ~= json or #body ~= #json then return false, "encode_body differs from encode" end
        if not same(info, b[3]) then return false, "encode and encode_body infos differ" end
        local okd, doc = pcall(strict.decode, json)
        if not okd then return false, "the JSON does not decode: " .. tostring(doc) end
        local more = p < #parts
        local name = (#parts > 1) and (TASK_NAME .. "-part-" .. p) or TASK_NAME
        if doc.taskName ~= name then return false, format("part %d: taskName %q", p, tostring(doc.taskName)) end
        if info.part ~= p or info.more ~= more then
            return false, format("part %d: info.part %s, info.more %s (expected %s)", p,
                                 tostring(info.part), tostring(info.more), tostring(more))
        end
        if not same(doc.numberInfoList, want.rows) then
            return false, format("part %d: rows %s, expected %s", p, show(doc.numberInfoList), show(want.rows))
        end
        if info.rows ~= #want.rows or info.truncated ~= want.truncated
            or info.duplicates ~= want.duplicates or info.bytes ~= #json then
            return false, format("part %d: info %s, expected rows %d truncated %d duplicates %d", p,
                                 show(info), #want.rows, want.truncated, want.duplicates)
        end
        if cfg.rejects then
            if not same(o1.rejects, want.rejects) then
                return false, format("part %d: rejects %s, expected %s", p, show(o1.rejects), show(want.rejects))
            end
            if not same(o2.rejects, o1.rejects) then return false, "encode_body rejects differ" end
        end
        if (info.rejected or 0) ~= #want.rejects then
            return false, format("part %d: info.rejected %s, expected %d", p, tostring(info.rejected), #want.rejects)
        end
        if doc.appId ~= "app" or doc.agentId ~= 110 then return false, "the task's fields changed" end
        if not more then break end
    end
    if failure then return false, "the parts ended; predicted: " .. failure.kind end
    return true
end

C.null = null
return C
