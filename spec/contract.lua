-- spec/contract.lua - the Lua side of the differential run against doc/openapi.yaml
-- (scripts/contract.sh; scripts/contract-check.js is the ajv side).
--
--   C.record(out, source, task, opts, json, message, field)
--       writes one JSON line for an encode of `task`: the body laaffic sends when it
--       accepted, else the task as JSON. Encodes the contract cannot judge are left out
--       (see C.skip_reason).
--   C.generate(n, seed, each)  calls each(source, task) for the seeds' two examples and
--       n tasks made from them by changing one to three fields to values near each rule's
--       boundary, and beyond it.
-- spec/helpers.lua records every encode of the spec suite when LAAFFIC_CONTRACT_LOG names
-- a file; scripts/contract.sh runs the generator with the same recorder.
local cjson = require("cjson")

local C = {}

-- Refusals for rules JSON Schema cannot state (doc/openapi.yaml lists them under
-- x-laaffic-rules-outside-schema), or of tasks that have no JSON form of their own.
local OUTSIDE_SCHEMA = {
  "node%(s%) but recallNum is",  -- nodeList length = recallNum (page B, -22)
  "UTF%-8",                      -- bytes JSON text cannot carry
  "cycle", "nested too deeply", "shared", "cannot be encoded as JSON",
  -- Lua tables that are neither a JSON array nor an object (cjson writes them otherwise)
  "mixes list entries and named fields", "a hole", "neither a name nor a list index",
  "with named fields, got a", "is missing %(a hole%)", "it also has a",
}

-- nil when the encode is one the contract can judge, else why not.
function C.skip_reason(task, opts, message)
  for k, v in pairs(opts or {}) do
    if not (k == "strict" and v == false) then return "opts." .. tostring(k) end
  end
  local list = rawget(task, "numberInfoList")
  if type(list) ~= "table" and list ~= nil then return "a CSV source" end
  if type(list) == "table" and #list > 2000 then return "a long list" end
  for _, p in ipairs(OUTSIDE_SCHEMA) do
    if type(message) == "string" and message:find(p) then return "outside the schema: " .. p end
  end
  return nil
end

function C.record(out, source, task, opts, json, message, field)
  if type(task) ~= "table" or C.skip_reason(task, opts, message) then return false end
  local body = json
  if not body then
    local ok, text = pcall(cjson.encode, task)
    if not ok then return false end -- no JSON form (a function, NaN, a sparse list...)
    body = text
  end
  out:write(cjson.encode({ source = source, accepted = json ~= nil, body = body,
                           field = field, message = json == nil and message or nil }), "\n")
  return true
end

---------------------------------------------------------------------------------- generator
local null = cjson.null

local function seed_a()
  return {
    appId = "2Xql9RBI", taskName = "I want to test Agent API-16", displayNum = "1008122211",
    maxCalls = 300, maxRingingTime = 60, agentId = 41, enableRecording = 1, calloutRate = 1,
    allowSendTime = { { strTime = "18:28", endTime = "19:28" } },
    numberInfoList = { { calleeNumber = "463200000007" } },
    recallFlow = { recallType = 3, recallInterval = 1, recallNum = 5,
      nodeList = { { agentId = "41" }, { agentId = "41" }, { agentId = "41" },
                   { agentId = "41" }, { agentId = "41" } },
      recallIntent = { "99998", "99999" } },
  }
end

local function seed_b()
  return {
    appId = "Jgd8oFei", taskName = "test", displayNum = "123456", maxCalls = 300,
    maxRingingTime = 60, agentId = 110, enableRecording = 1, sendTime = "2026-04-01 00:00:00",
    calloutRate = 1,
    numberInfoList = {
      { calleeNumber = "919777654321", text1 = "David", text2 = "5000", text3 = "2026-04-10" },
      { calleeNumber = "919777654321", text1 = "Oliver", text2 = "1000", text3 = "2026-04-10" },
    },
    recallFlow = { recallType = 3, recallInterval = 1, recallNum = 2,
      nodeList = { { agentId = "110" }, { agentId = "110" } }, recallIntent = { "99999" } },
  }
end

local E = "\195\169" -- é: two bytes, one character
local function digits(n) return ("9"):rep(n) end
local function win(a, b) return { strTime = a, endTime = b } end
local function nodes(n, id)
  local t = {}
  for i = 1, n do t[i] = { agentId = id } end
  return t
end

-- Values near each field's boundary and beyond it; `false` removes the field.
local TOP = {
  appId = { "x", "", 12345, true, false, null, { "a" } },
  taskName = { "a", "ab", ("a"):rep(64), ("a"):rep(65), E:rep(2), E:rep(64), E:rep(65), 42,
               false, null, "" },
  displayNum = { "", "1", digits(20), digits(21), "12a", 123, null, false },
  agentId = { 0, 1, -1, 2147483647, 2147483648, -2147483648, -2147483649, 41.0, 41.5, "41",
              true, false, null },
  maxCalls = { 0, 1, 999, 1000, -5, 300.0, "300", null, false, 2147483648 },
  maxRingingTime = { 9, 10, 120, 121, "60", 60.5, null, false },
  enableRecording = { -1, 0, 1, 2, "1", true, null },
  sendTime = { "2026-04-01 00:00:00", "2026-04-01T00:00:00", "2026-02-30 00:00:00", "",
               "now", 1775014268, null, true, false, "2028-02-29 23:59:59" },
  allowSendTime = { {}, { win("00:00", "23:59") }, { win("08:00", "09:00"), win("10:00", "11:00"),
                    win("12:00", "13:00") }, { win("01:00", "02:00"), win("03:00", "04:00"),
                    win("05:00", "06:00"), win("07:00", "08:00") }, { win("24:00", "23:00") },
                    { win("9:00", "10:00") }, { { endTime = "10:00" } }, { { strTime = "10:00" } },
                    { {} }, { win(900, "10:00") }, "09:00", null, false, { "09:00-10:00" } },
  calloutRate = { 1, "fast", { a = 1 }, false },
  futureField = { "x", 1, { nested = { true } } },
}

local ROW = {
  calleeNumber = { digits(5), digits(6), digits(18), digits(19), "12a4567", 919777654321, "",
                   false, null, " 9197776543" },
  text1 = { ("x"):rep(30), ("x"):rep(31), E:rep(31), "", 5, true, null, { "a" } },
  text10 = { "v", ("y"):rep(100) },
  extra = { "x", 7 },
}

local RECALL = {
  recallType = { 0, 1, 2, 3, 4, -1, "3", false, null },
  recallInterval = { 0, 1, -1, 100000, "1", false, 1.5 },
  recallIntent = { {}, { "99999" }, { 99999 }, { "" }, "99999", false, null },
}

local function pick(rnd, list) return list[rnd(#list)] end

local function keys_of(t)
  local k = {}
  for name in pairs(t) do k[#k + 1] = name end
  table.sort(k)
  return k
end

local function set(t, k, v)
  if v == false then t[k] = nil else t[k] = v end
end

local function mutate(rnd, task)
  local what = rnd(10)
  if what <= 5 then
    local k = pick(rnd, keys_of(TOP))
    set(task, k, pick(rnd, TOP[k]))
  elseif what <= 7 then
    local rows = task.numberInfoList
    if type(rows) == "table" and #rows > 0 then
      local k = pick(rnd, keys_of(ROW))
      set(rows[rnd(#rows)], k, pick(rnd, ROW[k]))
      if rnd(20) == 1 then task.numberInfoList = {} end
    end
  else
    local r = rnd(6)
    if r == 1 then
      set(task, "recallFlow", pick(rnd, { false, null, {}, "none" }))
    elseif type(task.recallFlow) == "table" then
      local f = task.recallFlow
      if r == 2 then -- recallNum and nodeList together: equal, or not, or odd agentIds
        local n = pick(rnd, { 0, 1, 2, 3, -1 })
        f.recallNum = n
        f.nodeList = nodes(math.max(n, 0) + (rnd(4) == 1 and 1 or 0),
          pick(rnd, { "41", 41, "", "12345678901", "0", 0, -3, 2147483648, "4a" }))
      else
        local k = pick(rnd, keys_of(RECALL))
        set(f, k, pick(rnd, RECALL[k]))
      end
    end
  end
end

-- The seeds' two request examples (page B's without its comments), as Lua tables.
C.seed_a, C.seed_b = seed_a, seed_b

function C.generate(n, seed, each)
  math.randomseed(seed)
  local rnd = math.random
  each("seed page A", seed_a())
  each("seed page B", seed_b())
  for i = 1, n do
    local task = (rnd(2) == 1 and seed_a or seed_b)()
    for _ = 1, rnd(3) do mutate(rnd, task) end
    each("generated #" .. i, task)
  end
end

return C
