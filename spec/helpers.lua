-- spec/helpers.lua - shared helpers of the laaffic.core specs (not a spec itself).
-- Loaded with dofile() from the spec files; Lua 5.4 and LuaJIT compatible.
--
-- Nothing here calls the code under test to compute an expectation: the helpers only
-- build inputs, parse outputs independently, and check failures against the contract
-- (nil, "<path>: <reason>", path, code).
local luassert = require("luassert")
local cjson = require("cjson")

local H = {}

H.unpack = table.unpack or unpack
H.is_luajit = type(jit) == "table"
H.has_int = math.type ~= nil -- Lua 5.3+: real integer subtype

-- Directory of this file (…/spec/), the repo root and the shared directory.
do
  local src = debug.getinfo(1, "S").source
  local path = src:sub(1, 1) == "@" and src:sub(2) or src
  local dir = path:match("^(.*)[/\\]") or "."
  H.spec_dir = dir
  H.root = dir .. "/.."
  H.shared = dir .. "/../../shared"
end

-- UTF-8 helpers, independent of the core (LuaJIT has no utf8 library).
function H.ulen(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

-- A strict UTF-8 validator (RFC 3629), shared with fuzz/builder.lua.
H.utf8_valid = dofile(H.spec_dir .. "/utf8_valid.lua")

local function utf8_char(cp)
  local floor = math.floor
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then
    return string.char(0xC0 + floor(cp / 64), 0x80 + cp % 64)
  end
  if cp < 0x10000 then
    return string.char(0xE0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64,
    0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end
H.utf8_char = utf8_char

-- True when s contains a raw byte below 0x20.
function H.has_control(s)
  return s:find("[%z\1-\31]") ~= nil
end

---------------------------------------------------------------------------------------
-- A strict, order-preserving parser for COMPACT JSON (no whitespace outside strings).
-- Returns value, numbers where objects are tables whose key order is H.keys(obj),
-- arrays are tables with H.is_array(t) true, null is cjson.null, and `numbers` lists
-- the raw text of every number token in document order.
---------------------------------------------------------------------------------------
local key_order = setmetatable({}, { __mode = "k" })
local array_mark = setmetatable({}, { __mode = "k" })

function H.keys(obj) return key_order[obj] end
function H.is_array(t) return array_mark[t] == true end

function H.parse(s)
  local pos = 1
  local numbers = {}
  local function fail(m)
    error(("compact JSON parse error at byte %d: %s (near %q)"):format(pos, m,
      s:sub(pos, pos + 20)), 0)
  end
  local parse_value

  local escapes = { ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f',
    n = '\n', r = '\r', t = '\t' }

  local function parse_string()
    pos = pos + 1 -- opening quote
    local buf = {}
    while true do
      local j = s:find('[%z\1-\31"\\]', pos)
      if not j then fail("unterminated string") end
      if j > pos then buf[#buf + 1] = s:sub(pos, j - 1) end
      pos = j
      local c = s:sub(j, j)
      if c == '"' then
        pos = j + 1
        break
      elseif c == "\\" then
        local e = s:sub(j + 1, j + 1)
        if escapes[e] then
          buf[#buf + 1] = escapes[e]
          pos = j + 2
        elseif e == "u" then
          local hex = s:sub(j + 2, j + 5)
          if not hex:match("^%x%x%x%x$") then fail("bad \\u escape") end
          local cp = tonumber(hex, 16)
          pos = j + 6
          if cp >= 0xD800 and cp <= 0xDBFF then
            local hex2 = s:match("^\\u(%x%x%x%x)", pos)
            local lo = hex2 and tonumber(hex2, 16)
            if not lo or lo < 0xDC00 or lo > 0xDFFF then fail("lone high surrogate") end
            cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
            pos = pos + 6
          elseif cp >= 0xDC00 and cp <= 0xDFFF then
            fail("lone low surrogate")
          end
          buf[#buf + 1] = utf8_char(cp)
        else
          fail("bad escape")
        end
      else
        fail("raw control byte inside a string")
      end
    end
    return table.concat(buf)
  end

  local function parse_number()
    local a, b = s:find("^%-?%d+", pos)
    if not a then fail("bad number") end
    local int = s:sub(a, b)
    if int:match("^%-?0%d") then fail("leading zero") end
    local e = b
    local a2, b2 = s:find("^%.%d+", e + 1)
    if a2 then e = b2 end
    local a3, b3 = s:find("^[eE][%+%-]?%d+", e + 1)
    if a3 then e = b3 end
    local text = s:sub(pos, e)
    numbers[#numbers + 1] = text
    pos = e + 1
    return tonumber(text)
  end

  function parse_value()
    local c = s:sub(pos, pos)
    if c == "{" then
      local obj, order = {}, {}
      key_order[obj] = order
      pos = pos + 1
      if s:sub(pos, pos) == "}" then
        pos = pos + 1
        return obj
      end
      while true do
        if s:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = parse_string()
        if obj[k] ~= nil then fail("duplicate key " .. k) end
        if s:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        obj[k] = parse_value()
        order[#order + 1] = k
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then pos = pos - 1; fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local arr = {}
      array_mark[arr] = true
      pos = pos + 1
      if s:sub(pos, pos) == "]" then
        pos = pos + 1
        return arr
      end
      while true do
        arr[#arr + 1] = parse_value()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then pos = pos - 1; fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return parse_string()
    elseif c == "t" and s:sub(pos, pos + 3) == "true" then
      pos = pos + 4
      return true
    elseif c == "f" and s:sub(pos, pos + 4) == "false" then
      pos = pos + 5
      return false
    elseif c == "n" and s:sub(pos, pos + 3) == "null" then
      pos = pos + 4
      return cjson.null
    elseif c:match("[%-%d]") then
      return parse_number()
    end
    fail("unexpected character")
  end

  local v = parse_value()
  if pos ~= #s + 1 then fail("trailing bytes") end
  return v, numbers
end

---------------------------------------------------------------------------------------
-- Deep comparison. Numbers compare by value (cjson 2.1 decodes every number as a float
-- on Lua 5.4, so 41 and 41.0 are the same value here; the integer spelling is checked
-- on the raw JSON text instead). Returns true or false, "<path>: <difference>".
---------------------------------------------------------------------------------------
local function describe(v)
  if type(v) == "string" then
    if #v > 60 then return ("string(%d bytes) %q..."):format(#v, v:sub(1, 40)) end
    return ("%q"):format(v)
  end
  if v == cjson.null then return "null" end
  return tostring(v)
end

function H.same(a, b, path)
  path = path or "$"
  if a == cjson.null or b == cjson.null then
    if a == b then return true end
    return false, path .. ": " .. describe(a) .. " ~= " .. describe(b)
  end
  if type(a) ~= type(b) then
    return false, ("%s: type %s (%s) ~= type %s (%s)"):format(path, type(a), describe(a),
      type(b), describe(b))
  end
  if type(a) ~= "table" then
    if a == b then return true end
    return false, path .. ": " .. describe(a) .. " ~= " .. describe(b)
  end
  for k, v in pairs(a) do
    if b[k] == nil then
      return false, path .. "." .. tostring(k) .. ": missing on the right"
    end
    local ok, why = H.same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false, path .. "." .. tostring(k) .. ": missing on the left"
    end
  end
  return true
end

function H.assert_same(expected, got, label)
  local ok, why = H.same(expected, got)
  luassert(ok, (label and (label .. ": ") or "") .. tostring(why))
end

---------------------------------------------------------------------------------------
-- Tasks.
---------------------------------------------------------------------------------------
function H.base_task()
  return {
    appId = "2Xql9RBI",
    taskName = "spec task",
    agentId = 41,
    numberInfoList = { { calleeNumber = "463200000007" } },
  }
end

-- A task with a valid recallFlow of type 3.
function H.recall_task()
  local t = H.base_task()
  t.recallFlow = {
    recallType = 3,
    recallInterval = 1,
    recallNum = 2,
    nodeList = { { agentId = "41" }, { agentId = 41 } },
    recallIntent = { "99998", "99999" },
  }
  return t
end

-- Encodes a known-good task: the module must still be healthy.
function H.assert_healthy(core)
  local json, info = core.encode(H.base_task())
  luassert(type(json) == "string", "a good task no longer encodes: " .. tostring(info))
  luassert.are.equal('{"appId":"2Xql9RBI","taskName":"spec task","agentId":41,'
    .. '"numberInfoList":[{"calleeNumber":"463200000007"}]}', json)
end

-- LAAFFIC_CONTRACT_LOG=file: every encode the helpers check is recorded for the
-- differential run against doc/openapi.yaml (scripts/contract.sh).
local contract_log
do
  local file = os.getenv("LAAFFIC_CONTRACT_LOG")
  if file and file ~= "" then
    local C = dofile(H.spec_dir .. "/contract.lua")
    local out = assert(io.open(file, "a"))
    contract_log = function(task, opts, json, msg, field)
      local src = debug.getinfo(3, "Sl")
      C.record(out, src.short_src .. ":" .. src.currentline, task, opts, json, msg, field)
      out:flush()
    end
  end
end

-- Encodes `task` with core.encode and core.encode_body; both must succeed with the same
-- bytes. Returns json, info, decoded (cjson).
function H.encode_ok(core, task, opts)
  local json, info, field, code = core.encode(task, opts)
  if contract_log then contract_log(task, opts, json, info, field) end
  luassert(type(json) == "string", ("expected success, got nil, %s, %s, %s")
    :format(tostring(info), tostring(field), tostring(code)))
  luassert.are.equal("table", type(info))
  luassert.are.equal(#json, info.bytes)
  local body, binfo = core.encode_body(task, opts)
  luassert(body ~= nil, "encode_body failed where encode succeeded: " .. tostring(binfo))
  luassert.are.equal(json, tostring(body))
  luassert.are.equal(#json, #body)
  luassert.are.equal(info.rows, binfo.rows)
  luassert.are.equal(info.truncated, binfo.truncated)
  luassert.are.equal(info.bytes, binfo.bytes)
  body:close()
  local ok, decoded = pcall(cjson.decode, json)
  luassert(ok, "output is not valid JSON: " .. tostring(decoded))
  return json, info, decoded
end

-- Checks a failure: nil, "<field>: <reason>", field, code, from both encode and
-- encode_body, then checks that the module still works.
--   field: the exact path, or { prefix = "..." } when only the start is fixed.
--   code: -21, -22, a list of allowed codes, or nil (any of -21/-22).
function H.fail(core, task, opts, field, code)
  local results = {}
  for _, fname in ipairs({ "encode", "encode_body" }) do
    local r1, msg, got_field, got_code = core[fname](task, opts)
    if contract_log and fname == "encode" then contract_log(task, opts, r1, msg, got_field) end
    luassert(r1 == nil, ("%s: expected failure at %s, got success"):format(fname,
      type(field) == "table" and (field.prefix .. "...") or tostring(field)))
    luassert.are.equal("string", type(msg))
    luassert.are.equal("string", type(got_field))
    if type(field) == "table" then
      luassert(got_field:sub(1, #field.prefix) == field.prefix,
        ("%s: field %q does not start with %q (message: %s)"):format(fname, got_field,
          field.prefix, msg))
    else
      luassert.are.equal(field, got_field)
    end
    luassert.are.equal(got_field .. ": ", msg:sub(1, #got_field + 2))
    luassert(#msg > #got_field + 2, "message has no reason: " .. msg)
    local allowed = code
    if allowed == nil then allowed = { -21, -22 } end
    if type(allowed) ~= "table" then allowed = { allowed } end
    local hit = false
    for _, c in ipairs(allowed) do
      if got_code == c then hit = true end
    end
    luassert(hit, ("%s: code %s not in {%s} (message: %s)"):format(fname,
      tostring(got_code), table.concat(allowed, ","), msg))
    results[#results + 1] = { msg, got_field, got_code }
  end
  luassert.are.same(results[1], results[2])
  H.assert_healthy(core)
  return results[1][1], results[1][2], results[1][3]
end

-- Checks a rule the vendor's pages do not state (a warning): the task is written as
-- given, info.warnings names `field` once with `code`; with opts.strict it fails there
-- like a stated rule. Returns the JSON, the warning and the decoded body.
function H.warns(core, task, opts, field, code)
  local json, info, decoded = H.encode_ok(core, task, opts)
  local hit
  for _, w in ipairs(info.warnings) do
    if w.field == field then
      luassert(hit == nil, "two warnings at " .. field)
      hit = w
    end
  end
  luassert(hit, ("no warning at %s (warnings: %d)"):format(field, #info.warnings))
  luassert.are.equal("string", type(hit.message))
  luassert.are.equal(code, hit.code)
  local strict = {}
  for k, v in pairs(opts or {}) do strict[k] = v end
  strict.strict = true
  local msg = H.fail(core, task, strict, field, code)
  luassert.are.equal(field .. ": " .. hit.message, msg)
  return json, hit, decoded
end

-- Raw-JSON check that `key` is written as exactly `text` (e.g. "41" or "null").
function H.assert_raw(json, key, text)
  local needle = '"' .. key .. '":' .. text
  local a, b = json:find(needle, 1, true)
  luassert(a ~= nil, ("%s not found in %s"):format(needle,
    #json > 400 and (json:sub(1, 400) .. "...") or json))
  local nxt = json:sub(b + 1, b + 1)
  luassert(nxt == "," or nxt == "}" or nxt == "]",
    ("%s is followed by %q in %s"):format(needle, nxt, json))
end

return H
