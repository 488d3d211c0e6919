-- Validation rules of core.encode / core.encode_body (doc/core-contract.md "Rules"),
-- each accepted and rejected exactly at its boundary, with the field path and code.
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local NAN, INF = 0 / 0, math.huge
local E_ACUTE = "\195\169"              -- é, 2 bytes
local CJK2 = "\230\181\139\232\175\149" -- 测试, 2 characters, 6 bytes
local EMOJI = "\240\159\152\128"        -- 😀, 4 bytes

local base, recall = H.base_task, H.recall_task

local function with(fields, maker)
  local t = (maker or base)()
  for k, v in pairs(fields) do t[k] = v end
  return t
end

local function row_task(row)
  local t = base()
  t.numberInfoList = { row }
  return t
end

local function ok(task, opts) return H.encode_ok(core, task, opts) end
local function fail(task, field, code, opts) return H.fail(core, task, opts, field, code) end
local function warns(task, field, code, opts) return H.warns(core, task, opts, field, code) end

describe("rules", function()
  it("the minimal task encodes to the exact compact JSON", function()
    local json, info = ok(base())
    assert.are.equal('{"appId":"2Xql9RBI","taskName":"spec task","agentId":41,'
      .. '"numberInfoList":[{"calleeNumber":"463200000007"}]}', json)
    assert.are.equal(1, info.rows)
    assert.are.equal(0, info.truncated)
  end)

  describe("required fields", function()
    for _, name in ipairs({ "appId", "taskName", "agentId", "numberInfoList" }) do
      it("missing " .. name .. " -> -22 at " .. name, function()
        local t = base()
        t[name] = nil
        fail(t, name, -22)
      end)
      it(name .. " = cjson.null counts as missing (-22)", function()
        local t = base()
        t[name] = cjson.null
        fail(t, name, -22)
      end)
    end

    for _, name in ipairs({ "recallType", "recallInterval", "recallNum", "nodeList" }) do
      it("missing recallFlow." .. name .. " -> -22", function()
        local t = recall()
        t.recallFlow[name] = nil
        fail(t, "recallFlow." .. name, -22)
      end)
      it("recallFlow." .. name .. " = cjson.null counts as missing (-22)", function()
        local t = recall()
        t.recallFlow[name] = cjson.null
        fail(t, "recallFlow." .. name, -22)
      end)
    end

    it("missing calleeNumber -> -22 at numberInfoList[k].calleeNumber", function()
      local t = base()
      t.numberInfoList = { { calleeNumber = "123456" }, { calleeNumber = "123457" }, { text1 = "x" } }
      fail(t, "numberInfoList[3].calleeNumber", -22)
    end)

    it("calleeNumber = cjson.null counts as missing (-22)", function()
      local t = base()
      t.numberInfoList = { { calleeNumber = "123456" }, { calleeNumber = cjson.null } }
      fail(t, "numberInfoList[2].calleeNumber", -22)
    end)

    it("a numberInfoList row that is cjson.null (-22)", function()
      local t = base()
      t.numberInfoList = { { calleeNumber = "123456" }, cjson.null }
      fail(t, "numberInfoList[2]", -22)
    end)

    it("missing nodeList[k].agentId -> -22", function()
      local t = recall()
      t.recallFlow.nodeList[2] = {}
      fail(t, "recallFlow.nodeList[2].agentId", -22)
    end)
  end)

  describe("appId", function()
    it("non-empty string accepted, written as given", function()
      local _, _, d = ok(with({ appId = "x" }))
      assert.are.equal("x", d.appId)
    end)
    it("empty string: a warning (-21 when strict), written as given", function()
      H.assert_raw((warns(with({ appId = "" }), "appId", -21)), "appId", '""')
    end)
    it("number rejected (-22)", function() fail(with({ appId = 12345 }), "appId", -22) end)
    it("boolean rejected (-22)", function() fail(with({ appId = true }), "appId", -22) end)
    it("table rejected (-22)", function() fail(with({ appId = {} }), "appId", -22) end)
  end)

  describe("taskName: 2-64 UTF-8 characters", function()
    local accepted = {
      { "2 ASCII", "ab" },
      { "64 ASCII", string.rep("a", 64) },
      { "64 x e-acute (128 bytes)", string.rep(E_ACUTE, 64) },
      { "2 CJK characters (6 bytes)", CJK2 },
      { "64 emoji (256 bytes)", string.rep(EMOJI, 64) },
      { "1 ASCII + 1 emoji", "a" .. EMOJI },
    }
    for _, c in ipairs(accepted) do
      it("accepts " .. c[1], function()
        local _, _, d = ok(with({ taskName = c[2] }))
        assert.are.equal(c[2], d.taskName)
      end)
    end
    local rejected = {
      { "empty", "" },
      { "1 ASCII", "a" },
      { "1 CJK character (3 bytes)", "\230\181\139" },
      { "1 emoji (4 bytes)", EMOJI },
      { "65 ASCII", string.rep("a", 65) },
      { "65 x e-acute", string.rep(E_ACUTE, 65) },
      { "65 emoji", string.rep(EMOJI, 65) },
    }
    for _, c in ipairs(rejected) do
      it("rejects " .. c[1] .. " (-21)", function()
        fail(with({ taskName = c[2] }), "taskName", -21)
      end)
    end
    it("number rejected (-22)", function() fail(with({ taskName = 1234 }), "taskName", -22) end)
    it("boolean rejected (-22)", function() fail(with({ taskName = false }), "taskName", -22) end)
  end)

  describe("numberInfoList[k].calleeNumber: 6-18 ASCII digits", function()
    for _, n in ipairs({ 6, 18 }) do
      it("accepts " .. n .. " digits", function()
        local num = string.rep("9", n)
        local _, _, d = ok(row_task({ calleeNumber = num }))
        assert.are.equal(num, d.numberInfoList[1].calleeNumber)
      end)
    end
    for _, n in ipairs({ 5, 19 }) do
      it("rejects " .. n .. " digits (-21)", function()
        fail(row_task({ calleeNumber = string.rep("9", n) }), "numberInfoList[1].calleeNumber", -21)
      end)
    end
    local bad = {
      { "a letter", "12345a" },
      { "a '+' prefix", "+463200000007" },
      { "a space", "4632 00000007" },
      { "a leading space", " 463200000007" },
      { "a dash", "463-200000007" },
      { "empty", "" },
      { "fullwidth digits", string.rep("\239\188\145", 6) },
    }
    for _, c in ipairs(bad) do
      it("rejects " .. c[1] .. " (-21)", function()
        fail(row_task({ calleeNumber = c[2] }), "numberInfoList[1].calleeNumber", -21)
      end)
    end
    it("rejects a number (-22)", function()
      fail(row_task({ calleeNumber = 463200000007 }), "numberInfoList[1].calleeNumber", -22)
    end)
    it("names the 1-based row: numberInfoList[1234].calleeNumber", function()
      local list = {}
      for i = 1, 1300 do list[i] = { calleeNumber = "9197776" .. string.format("%05d", i) } end
      list[1234] = { calleeNumber = "12345" }
      fail(with({ numberInfoList = list }), "numberInfoList[1234].calleeNumber", -21)
    end)
  end)

  describe("displayNum: 0-20 ASCII digits", function()
    it('accepts ""', function()
      local json = ok(with({ displayNum = "" }))
      H.assert_raw(json, "displayNum", '""')
    end)
    it("accepts 20 digits", function()
      local _, _, d = ok(with({ displayNum = string.rep("1", 20) }))
      assert.are.equal(string.rep("1", 20), d.displayNum)
    end)
    it("rejects 21 digits (-21)", function()
      fail(with({ displayNum = string.rep("1", 21) }), "displayNum", -21)
    end)
    it("rejects non-digits (-21)", function() fail(with({ displayNum = "12a" }), "displayNum", -21) end)
    it("rejects '+' (-21)", function() fail(with({ displayNum = "+1008122211" }), "displayNum", -21) end)
    it("rejects a number (-22)", function() fail(with({ displayNum = 1008122211 }), "displayNum", -22) end)
    it("cjson.null is written as null", function()
      local json = ok(with({ displayNum = cjson.null }))
      H.assert_raw(json, "displayNum", "null")
    end)
  end)

  describe("numberInfoList: 1..200000 objects", function()
    local big -- built once: 200001 references to one row
    local function big_list()
      if not big then
        big = {}
        local row = { calleeNumber = "919777654321" }
        for i = 1, 200001 do big[i] = row end
      end
      return big
    end

    it("0 entries: a warning (-21 when strict); the pages give only a maximum", function()
      local json, _, d = warns(with({ numberInfoList = {} }), "numberInfoList", -21)
      assert.are.same({}, d.numberInfoList)
      H.assert_raw(json, "numberInfoList", "[]")
    end)
    it("accepts 1 entry", function()
      local _, info = ok(base())
      assert.are.equal(1, info.rows)
    end)
    it("accepts one row table used twice (shared, not cyclic)", function()
      local row = { calleeNumber = "123456" }
      local _, info, d = ok(with({ numberInfoList = { row, row } }))
      assert.are.equal(2, info.rows)
      assert.are.equal("123456", d.numberInfoList[2].calleeNumber)
    end)
    it("accepts 200000 entries #slow", function()
      local list = big_list()
      list[200001] = nil
      local json, info = core.encode(with({ numberInfoList = list }))
      list[200001] = list[1]
      assert.are.equal("string", type(json), tostring(info))
      assert.are.equal(200000, info.rows)
      assert.are.equal(#json, info.bytes)
      local _, n = json:gsub('{"calleeNumber":"919777654321"}', "")
      assert.are.equal(200000, n)
    end)
    it("rejects 200001 entries (-21) #slow", function()
      local list = big_list()
      assert.are.equal(200001, #list)
      fail(with({ numberInfoList = list }), "numberInfoList", -21)
    end)
    it("rejects a string (-22)", function()
      fail(with({ numberInfoList = "463200000007" }), "numberInfoList", -22)
    end)
    it("rejects an object instead of a list (-22)", function()
      fail(with({ numberInfoList = { a = { calleeNumber = "463200000007" } } }), "numberInfoList", -22)
    end)
    it("rejects a row that is not a table (-22)", function()
      fail(with({ numberInfoList = { "463200000007" } }), "numberInfoList[1]", -22)
    end)
    it("rejects a row that is a number (-22)", function()
      fail(with({ numberInfoList = { { calleeNumber = "463200000007" }, 7 } }), "numberInfoList[2]", -22)
    end)
  end)

  -- Integer fields with their inclusive bounds.
  -- soft: the lower bound is ours (the pages state none): below it is a warning, and the
  -- 32-bit range of the pages' "Integer" is the hard bound.
  local int_fields = {
    { "maxCalls", 1, 999, soft = true },
    { "maxRingingTime", 10, 120 },
    { "enableRecording", 0, 1 },
    { "agentId", 1, 2147483647, soft = true },
  }
  for _, f in ipairs(int_fields) do
    local name, lo, hi = f[1], f[2], f[3]
    describe(name .. ": integer " .. lo .. ".." .. hi, function()
      for _, v in ipairs({ lo, hi }) do
        it("accepts " .. v .. ", written as an integer", function()
          local json = ok(with({ [name] = v }))
          H.assert_raw(json, name, string.format("%d", v))
        end)
      end
      for _, v in ipairs({ lo - 1, hi + 1 }) do
        if v < lo and f.soft then
          it(string.format("%d: a warning (-21 when strict), written as given", v), function()
            H.assert_raw((warns(with({ [name] = v }), name, -21)), name, string.format("%d", v))
          end)
          it(string.format("%d (below 32 bits) rejected (-21)", -2147483649), function()
            fail(with({ [name] = -2147483649 }), name, -21)
          end)
        else
          it("rejects " .. string.format("%d", v) .. " (-21)", function()
            fail(with({ [name] = v }), name, -21)
          end)
        end
      end
      it("accepts an integral float, written without a fraction", function()
        local json = ok(with({ [name] = hi + 0.0 }))
        H.assert_raw(json, name, string.format("%d", hi))
      end)
      it("rejects a fraction", function() fail(with({ [name] = lo + 0.5 }), name) end)
      it("rejects NaN", function() fail(with({ [name] = NAN }), name) end)
      it("rejects inf", function() fail(with({ [name] = INF }), name) end)
      it("rejects -inf", function() fail(with({ [name] = -INF }), name) end)
      it("rejects a string (-22)", function() fail(with({ [name] = tostring(lo) }), name, -22) end)
      it("rejects a boolean (-22)", function() fail(with({ [name] = true }), name, -22) end)
      it("rejects a table (-22)", function() fail(with({ [name] = {} }), name, -22) end)
    end)
  end

  describe("agentId specifics", function()
    it("rejects 2147483648 (-21)", function() fail(with({ agentId = 2147483648 }), "agentId", -21) end)
    it("-1: a warning (-21 when strict)", function() warns(with({ agentId = -1 }), "agentId", -21) end)
    it("41.0 is accepted and written as 41", function()
      local json = ok(with({ agentId = 41.0 }))
      H.assert_raw(json, "agentId", "41")
    end)
    it("41.5 is rejected", function() fail(with({ agentId = 41.5 }), "agentId") end)
    it('the string "41" is rejected at the top level (-22)', function()
      fail(with({ agentId = "41" }), "agentId", -22)
    end)
  end)

  describe("enableRecording", function()
    it("rejects -1 and 2 (-21)", function()
      fail(with({ enableRecording = -1 }), "enableRecording", -21)
      fail(with({ enableRecording = 2 }), "enableRecording", -21)
    end)
    it("accepts 0 and 1", function()
      H.assert_raw((ok(with({ enableRecording = 0 }))), "enableRecording", "0")
      H.assert_raw((ok(with({ enableRecording = 1 }))), "enableRecording", "1")
    end)
  end)

  describe("optional integers may be cjson.null", function()
    for _, name in ipairs({ "maxCalls", "maxRingingTime", "enableRecording" }) do
      it(name .. " = cjson.null is written as null", function()
        H.assert_raw((ok(with({ [name] = cjson.null }))), name, "null")
      end)
    end
  end)

  describe("allowSendTime: at most 3 windows of HH:MM", function()
    local function win(s, e) return { strTime = s, endTime = e } end
    it("0 windows accepted, written as []", function()
      local json = ok(with({ allowSendTime = {} }))
      H.assert_raw(json, "allowSendTime", "[]")
    end)
    for n = 1, 3 do
      it(n .. " window(s) accepted", function()
        local list = {}
        for i = 1, n do list[i] = win(string.format("%02d:00", i), string.format("%02d:30", i + 10)) end
        local _, _, d = ok(with({ allowSendTime = list }))
        assert.are.equal(n, #d.allowSendTime)
        for i = 1, n do
          assert.are.equal(list[i].strTime, d.allowSendTime[i].strTime)
          assert.are.equal(list[i].endTime, d.allowSendTime[i].endTime)
        end
      end)
    end
    it("4 windows rejected (-21)", function()
      fail(with({ allowSendTime = { win("01:00", "02:00"), win("03:00", "04:00"),
        win("05:00", "06:00"), win("07:00", "08:00") } }), "allowSendTime", -21)
    end)
    it('"00:00" and "23:59" accepted', function()
      local _, _, d = ok(with({ allowSendTime = { win("00:00", "23:59") } }))
      assert.are.equal("00:00", d.allowSendTime[1].strTime)
      assert.are.equal("23:59", d.allowSendTime[1].endTime)
    end)
    local bad = { "24:00", "9:00", "23:60", "12:00:00", "1200", "12-00", "", "aa:bb", " 9:00", "09:5" }
    for _, v in ipairs(bad) do
      it(("strTime %q rejected (-21)"):format(v), function()
        fail(with({ allowSendTime = { win(v, "23:00") } }), "allowSendTime[1].strTime", -21)
      end)
    end
    it('endTime "24:00" in window 2 rejected at allowSendTime[2].endTime (-21)', function()
      fail(with({ allowSendTime = { win("08:00", "09:00"), win("10:00", "24:00") } }),
        "allowSendTime[2].endTime", -21)
    end)
    it("missing strTime: a warning (-22 when strict); the pages say No", function()
      local _, _, d = warns(with({ allowSendTime = { { endTime = "09:00" } } }),
        "allowSendTime[1].strTime", -22)
      assert.are.same({ { endTime = "09:00" } }, d.allowSendTime)
    end)
    it("missing endTime: a warning (-22 when strict); the pages say No", function()
      warns(with({ allowSendTime = { { strTime = "09:00" } } }), "allowSendTime[1].endTime", -22)
    end)
    it("a window missing both: two warnings", function()
      local _, info = ok(with({ allowSendTime = { win("08:00", "09:00"), {} } }))
      assert.are.same({ "allowSendTime[2].strTime", "allowSendTime[2].endTime" },
        { info.warnings[1].field, info.warnings[2].field })
    end)
    it("numeric strTime -> -22", function()
      fail(with({ allowSendTime = { win(900, "10:00") } }), "allowSendTime[1].strTime", -22)
    end)
    it("a window that is not a table -> -22", function()
      fail(with({ allowSendTime = { "09:00-10:00" } }), "allowSendTime[1]", -22)
    end)
    it("a string instead of a list -> -22", function()
      fail(with({ allowSendTime = "09:00" }), "allowSendTime", -22)
    end)
    it("cjson.null is written as null", function()
      H.assert_raw((ok(with({ allowSendTime = cjson.null }))), "allowSendTime", "null")
    end)
  end)

  describe("sendTime: YYYY-MM-DD HH:MM:SS, a real date and time", function()
    local accepted = {
      "2026-04-01 00:00:00", "2028-02-29 00:00:00", "2000-02-29 12:30:45",
      "2026-12-31 23:59:59", "2026-01-31 00:00:00",
    }
    for _, v in ipairs(accepted) do
      it(("accepts %q, written as given"):format(v), function()
        local json = ok(with({ sendTime = v }))
        H.assert_raw(json, "sendTime", '"' .. v .. '"')
      end)
    end
    -- The pages give the type (LocalDateTime) and one example: another shape is a warning.
    local other = {
      "2026-02-29 00:00:00", -- 2026 is not a leap year
      "2100-02-29 00:00:00", -- century, not a leap year
      "2026-04-31 00:00:00", "2026-13-01 00:00:00", "2026-00-10 00:00:00",
      "2026-01-00 00:00:00", "2026-04-01T00:00:00", "2026-04-01 24:00:00",
      "2026-04-01 23:60:00", "2026-04-01 23:59:60", "2026-04-01 00:00",
      "2026-04-01", "2026-4-1 00:00:00", "2026-04-01 00:00:00 ", " 2026-04-01 00:00:00",
      "2026/04/01 00:00:00", "",
    }
    for _, v in ipairs(other) do
      it(("%q: a warning (-21 when strict), written as given"):format(v), function()
        local json, w = warns(with({ sendTime = v }), "sendTime", -21)
        H.assert_raw(json, "sendTime", '"' .. v .. '"')
        if v:find("T", 1, true) then assert.is_truthy(w.message:find('not "T"', 1, true)) end
      end)
    end
    it("a string that is not UTF-8 is an error", function()
      fail(with({ sendTime = "2026-04-01\255" }), "sendTime")
    end)
    it("rejects a number (-22)", function() fail(with({ sendTime = 1775014268 }), "sendTime", -22) end)
    it("cjson.null is accepted and written as null", function()
      local json = ok(with({ sendTime = cjson.null }))
      H.assert_raw(json, "sendTime", "null")
    end)
  end)

  describe("recallFlow", function()
    it("a valid type-3 flow encodes; string and integer nodeList agentIds as given", function()
      local json, _, d = ok(recall())
      assert.is_truthy(json:find('"nodeList":[{"agentId":"41"},{"agentId":41}]', 1, true), json)
      assert.is_truthy(json:find('"recallIntent":["99998","99999"]', 1, true), json)
      assert.are.equal(3, d.recallFlow.recallType)
    end)

    for _, v in ipairs({ 0, 1, 3 }) do
      it("recallType " .. v .. " accepted", function()
        local t = recall()
        t.recallFlow.recallType = v
        local json = ok(t)
        H.assert_raw(json, "recallType", tostring(v))
      end)
    end
    for _, v in ipairs({ 2, 4, -1 }) do
      it("recallType " .. v .. " rejected (-21)", function()
        local t = recall()
        t.recallFlow.recallType = v
        fail(t, "recallFlow.recallType", -21)
      end)
    end
    it("recallType as a string rejected (-22)", function()
      local t = recall()
      t.recallFlow.recallType = "3"
      fail(t, "recallFlow.recallType", -22)
    end)
    it("types 0 and 1 need no recallIntent", function()
      for _, v in ipairs({ 0, 1 }) do
        local t = recall()
        t.recallFlow.recallType = v
        t.recallFlow.recallIntent = nil
        local json = ok(t)
        assert.is_nil(json:find("recallIntent", 1, true))
      end
    end)

    it("recallInterval 0 a warning (-21 when strict), 1 and a large value accepted", function()
      local t = recall()
      t.recallFlow.recallInterval = 0
      warns(t, "recallFlow.recallInterval", -21)
      t.recallFlow.recallInterval = 1
      ok(t)
      t.recallFlow.recallInterval = 100000 -- contract: >= 1, no upper bound
      H.assert_raw((ok(t)), "recallInterval", "100000")
    end)

    it("recallNum 0 with no node: a warning (-21 when strict)", function()
      local t = recall()
      t.recallFlow.recallNum = 0
      t.recallFlow.nodeList = {}
      warns(t, "recallFlow.recallNum", -21)
    end)

    it("recallNum 1 with one node, 12 with twelve nodes accepted", function()
      for _, n in ipairs({ 1, 12 }) do
        local t = recall()
        t.recallFlow.recallNum = n
        local nodes = {}
        for i = 1, n do nodes[i] = { agentId = tostring(100 + i) } end
        t.recallFlow.nodeList = nodes
        local _, _, d = ok(t)
        assert.are.equal(n, #d.recallFlow.nodeList)
        assert.are.equal(tostring(100 + n), d.recallFlow.nodeList[n].agentId)
      end
    end)

    it("nodeList shorter than recallNum -> -22", function()
      local t = recall()
      t.recallFlow.recallNum = 3
      fail(t, "recallFlow.nodeList", -22)
    end)
    it("nodeList longer than recallNum -> -22", function()
      local t = recall()
      t.recallFlow.recallNum = 1
      fail(t, "recallFlow.nodeList", -22)
    end)

    describe("nodeList[k].agentId: integer 1..2147483647 or string of 1-10 digits", function()
      local function node2(v)
        local t = recall()
        t.recallFlow.nodeList[2] = { agentId = v }
        return t
      end
      it('"1" and "1234567890" accepted as strings', function()
        local json = ok(node2("1"))
        assert.is_truthy(json:find('{"agentId":"1"}', 1, true), json)
        json = ok(node2("1234567890"))
        assert.is_truthy(json:find('{"agentId":"1234567890"}', 1, true), json)
      end)
      it("2147483647 accepted, 41.0 written as 41", function()
        assert.is_truthy(ok(node2(2147483647)):find('{"agentId":2147483647}', 1, true))
        assert.is_truthy(ok(node2(41.0)):find('{"agentId":41}', 1, true))
      end)
      local bad_strings = { "", "12345678901", "4a", "+41", " 41", "41.0" }
      for _, v in ipairs(bad_strings) do
        it(("string %q rejected (-21)"):format(v), function()
          fail(node2(v), "recallFlow.nodeList[2].agentId", -21)
        end)
      end
      for _, v in ipairs({ 0, -1 }) do
        it(string.format("%d", v) .. ": a warning (-21 when strict)", function()
          warns(node2(v), "recallFlow.nodeList[2].agentId", -21)
        end)
      end
      it("2147483648 rejected (-21)", function()
        fail(node2(2147483648), "recallFlow.nodeList[2].agentId", -21)
      end)
      it("41.5, NaN, inf rejected", function()
        fail(node2(41.5), "recallFlow.nodeList[2].agentId")
        fail(node2(NAN), "recallFlow.nodeList[2].agentId")
        fail(node2(INF), "recallFlow.nodeList[2].agentId")
      end)
      it("a boolean rejected (-22)", function()
        fail(node2(true), "recallFlow.nodeList[2].agentId", -22)
      end)
      it("a node that is not a table (-22)", function()
        local t = recall()
        t.recallFlow.nodeList[1] = "41"
        fail(t, "recallFlow.nodeList[1]", -22)
      end)
      it("a nodeList that is not a list (-22)", function()
        local t = recall()
        t.recallFlow.nodeList = "41,41"
        fail(t, "recallFlow.nodeList", -22)
      end)
    end)

    describe("recallIntent", function()
      it("missing for type 3: a warning (-22 when strict); the pages say No", function()
        local t = recall()
        t.recallFlow.recallIntent = nil
        local json = warns(t, "recallFlow.recallIntent", -22)
        assert.is_nil(json:find("recallIntent", 1, true))
      end)
      it("an empty list for type 3: a warning (-21 when strict)", function()
        local t = recall()
        t.recallFlow.recallIntent = setmetatable({}, { __jsontype = "array" })
        local json = warns(t, "recallFlow.recallIntent", -21)
        assert.is_truthy(json:find('"recallIntent":[]', 1, true), json)
      end)
      it("numbers rejected (-22)", function()
        local t = recall()
        t.recallFlow.recallIntent = { 99999 }
        fail(t, "recallFlow.recallIntent[1]", -22)
        t.recallFlow.recallIntent = { "99998", 99999 }
        fail(t, "recallFlow.recallIntent[2]", -22)
      end)
      it("an empty string: a warning (-21 when strict), written as given", function()
        local t = recall()
        t.recallFlow.recallIntent = { "99999", "" }
        local json = warns(t, "recallFlow.recallIntent[2]", -21)
        assert.is_truthy(json:find('"recallIntent":["99999",""]', 1, true), json)
      end)
      it("a string instead of a list rejected (-22)", function()
        local t = recall()
        t.recallFlow.recallIntent = "99999"
        fail(t, "recallFlow.recallIntent", -22)
      end)
      it("strings accepted and written as strings", function()
        local t = recall()
        t.recallFlow.recallIntent = { "99999" }
        local json = ok(t)
        assert.is_truthy(json:find('"recallIntent":["99999"]', 1, true), json)
      end)
    end)

    it("recallFlow that is not a table (-22)", function()
      fail(with({ recallFlow = "none" }), "recallFlow", -22)
    end)
    it("recallFlow = cjson.null is written as null", function()
      H.assert_raw((ok(with({ recallFlow = cjson.null }))), "recallFlow", "null")
    end)
    it("recallFlow = {}: a warning (-22 when strict), written as {}", function()
      local json, w = warns(with({ recallFlow = {} }), "recallFlow", -22)
      H.assert_raw(json, "recallFlow", "{}")
      assert.is_truthy(w.message:find("leave recallFlow out", 1, true))
    end)
    it("no warning for a task that follows the examples", function()
      local _, info = ok(recall())
      assert.are.same({}, info.warnings)
    end)
  end)

  describe("text1..text10 values", function()
    it("a number is written as its decimal string", function()
      local json, _, d = ok(row_task({ calleeNumber = "123456", text2 = 5000, text3 = 12.5 }))
      assert.are.equal("5000", d.numberInfoList[1].text2)
      assert.are.equal("12.5", d.numberInfoList[1].text3)
      assert.is_truthy(json:find('"text2":"5000"', 1, true), json)
    end)
    it("an integral float is written without a fraction", function()
      local _, _, d = ok(row_task({ calleeNumber = "123456", text2 = 5000.0 }))
      assert.are.equal("5000", d.numberInfoList[1].text2)
    end)
    it("a boolean is rejected (-22)", function()
      fail(row_task({ calleeNumber = "123456", text1 = true }), "numberInfoList[1].text1", -22)
    end)
    it("a table is rejected (-22)", function()
      fail(row_task({ calleeNumber = "123456", text4 = {} }), "numberInfoList[1].text4", -22)
    end)
    it("NaN and inf are rejected", function()
      fail(row_task({ calleeNumber = "123456", text5 = NAN }), "numberInfoList[1].text5")
      fail(row_task({ calleeNumber = "123456", text5 = INF }), "numberInfoList[1].text5")
    end)
    it("cjson.null is written as null", function()
      local json = ok(row_task({ calleeNumber = "123456", text1 = cjson.null }))
      H.assert_raw(json, "text1", "null")
    end)
  end)

  describe("opts.require_texts = {1, 2, 3}", function()
    local opts = { require_texts = { 1, 2, 3 } }
    local function rows(k, entry)
      local list = {}
      for i = 1, 4 do
        list[i] = { calleeNumber = "91977765432" .. i, text1 = "A" .. i, text2 = "B" .. i, text3 = "C" .. i }
      end
      if k then list[k] = entry end
      return with({ numberInfoList = list })
    end
    it("present values pass (numbers too)", function()
      local t = rows(2, { calleeNumber = "919777654322", text1 = "x", text2 = 1000, text3 = "2026-04-10" })
      local _, info = ok(t, opts)
      assert.are.equal(4, info.rows)
    end)
    it("an entry missing text2 fails at numberInfoList[k].text2 (-22)", function()
      fail(rows(3, { calleeNumber = "919777654323", text1 = "x", text3 = "z" }), "numberInfoList[3].text2", -22, opts)
    end)
    it("an empty text fails", function()
      fail(rows(4, { calleeNumber = "919777654324", text1 = "x", text2 = "y", text3 = "" }),
        "numberInfoList[4].text3", nil, opts)
    end)
    it("a null text counts as missing (-22, like a missing one)", function()
      -- contract: JSON null "for a required field ... counts as missing"; missing is -22
      fail(rows(1, { calleeNumber = "919777654321", text1 = cjson.null, text2 = "y", text3 = "z" }),
        "numberInfoList[1].text1", -22, opts)
    end)
    it("the same task passes without the option", function()
      ok(rows(3, { calleeNumber = "919777654323", text1 = "x", text3 = "z" }))
    end)
    it("require_texts = {10} checks text10", function()
      fail(base(), "numberInfoList[1].text10", -22, { require_texts = { 10 } })
      ok(row_task({ calleeNumber = "123456", text10 = "v" }), { require_texts = { 10 } })
    end)
  end)

  describe("opts.truncate = false", function()
    local opts = { truncate = false }
    it("a 30-character text passes unchanged", function()
      local _, info, d = ok(row_task({ calleeNumber = "123456", text1 = string.rep("x", 30) }), opts)
      assert.are.equal(string.rep("x", 30), d.numberInfoList[1].text1)
      assert.are.equal(0, info.truncated)
    end)
    it("30 two-byte characters (60 bytes) pass", function()
      ok(row_task({ calleeNumber = "123456", text7 = string.rep(E_ACUTE, 30) }), opts)
    end)
    it("a 31-character text is an error", function()
      fail(row_task({ calleeNumber = "123456", text1 = string.rep("x", 31) }), "numberInfoList[1].text1", -21, opts)
    end)
    it("31 two-byte characters are an error", function()
      fail(row_task({ calleeNumber = "123456", text9 = string.rep(E_ACUTE, 31) }), "numberInfoList[1].text9", -21, opts)
    end)
    it("truncate = true (explicit) cuts", function()
      local _, info, d = ok(row_task({ calleeNumber = "123456", text1 = string.rep("x", 31) }), { truncate = true })
      assert.are.equal(string.rep("x", 30), d.numberInfoList[1].text1)
      assert.are.equal(1, info.truncated)
    end)
  end)

  describe("NaN and infinities", function()
    local t_nested = {
      { "recallFlow.recallNum", function(t) t.recallFlow.recallNum = NAN end },
      { "recallFlow.recallInterval", function(t) t.recallFlow.recallInterval = INF end },
      { "recallFlow.recallType", function(t) t.recallFlow.recallType = -INF end },
      { "recallFlow.nodeList[1].agentId", function(t) t.recallFlow.nodeList[1].agentId = NAN end },
    }
    for _, c in ipairs(t_nested) do
      it("in " .. c[1], function()
        local t = recall()
        c[2](t)
        fail(t, c[1])
      end)
    end
    for _, v in ipairs({ NAN, INF, -INF }) do
      it("in an unknown top-level field (" .. tostring(v) .. ")", function()
        fail(with({ calloutRate = v }), "calloutRate")
      end)
      it("in a nested unknown field (" .. tostring(v) .. ")", function()
        fail(with({ extra = { x = { 1, v } } }), "extra.x[2]")
      end)
      it("in an unknown row field (" .. tostring(v) .. ")", function()
        fail(row_task({ calleeNumber = "123456", weight = v }), "numberInfoList[1].weight")
      end)
    end
  end)
end)

describe("opts.problems: every bad top-level field in one pass", function()
  it("lists each bad field once, in the order written, and answers with the first", function()
    local problems = {}
    local t = H.base_task()
    t.taskName, t.agentId, t.maxCalls, t.hook = "x", "41", 1000, print
    t.numberInfoList = { { calleeNumber = "12" }, { calleeNumber = "34" } }
    t.recallFlow = { recallType = 2, recallInterval = 1, recallNum = 0 }
    local json, msg, field, code = core.encode(t, { problems = problems })
    assert.is_nil(json)
    local got = {}
    for i, p in ipairs(problems) do got[i] = p.field end
    assert.are.same({ "taskName", "maxCalls", "agentId", "hook",
                      "numberInfoList[1].calleeNumber", "recallFlow.recallType" }, got)
    assert.are.same({ "taskName", -21 }, { field, code })
    assert.are.equal("taskName: " .. problems[1].message, msg)
    assert.are.equal(-22, problems[3].code)
    -- each entry is what the field alone would give
    local alone = H.base_task()
    alone.agentId = "41"
    local _, amsg, afield, acode = core.encode(alone)
    assert.are.same({ afield, acode, amsg }, { problems[3].field, problems[3].code,
                                               problems[3].field .. ": " .. problems[3].message })
    H.assert_healthy(core)
  end)
  it("stays empty for a valid task, and warnings still come back", function()
    local problems = {}
    local t = H.base_task()
    t.maxCalls = 0
    local json, info = core.encode(t, { problems = problems })
    assert.is_string(json)
    assert.are.same({}, problems)
    assert.are.equal("maxCalls", info.warnings[1].field)
  end)
  it("lists a part's taskName and a strict warning too", function()
    local problems = {}
    local t = H.base_task()
    t.taskName, t.sendTime = "a", "2026-04-01T00:00:00"
    t.numberInfoList = { { calleeNumber = "123456" }, { calleeNumber = "123457" } }
    assert.is_nil((core.encode(t, { problems = problems, strict = true, part = 1, max_rows = 1 })))
    local got = {}
    for i, p in ipairs(problems) do got[i] = p.field end
    assert.are.same({ "sendTime", "taskName" }, got)
  end)
  it("refuses a problems option that is not a table", function()
    assert.has_error(function() core.encode(H.base_task(), { problems = true }) end)
  end)
end)
