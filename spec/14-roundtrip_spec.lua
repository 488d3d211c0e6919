-- Round trip of a full task (every known field + unknown pass-through fields), output key
-- order, number spelling, and encode / encode_body equivalence.
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local ARRAY_MT = { __jsontype = "array" }

local function full_task()
  return {
    appId = "2Xql9RBI",
    taskName = "Full round trip \230\181\139\232\175\149 \195\169",
    displayNum = "1008122211",
    maxCalls = 300,
    maxRingingTime = 60,
    agentId = 41,
    enableRecording = 1,
    sendTime = "2026-04-01 00:00:00",
    -- unknown top-level fields
    calloutRate = 1,
    zFlag = false,
    aFlag = true,
    nothing = cjson.null,
    meta = {
      nested = { deep = { 1, 2, { x = "y", n = -17 } } },
      list = { "a", "b", true, false, cjson.null },
      f = 0.1,
      third = 1 / 3,
      sum = 0.1 + 0.2,
      big = 1e300,
      tiny = 5e-324,
      neg = -2.5,
      int53 = 2 ^ 53,
      negint = -9007199254740991,
      empty_obj = {},
      empty_arr = setmetatable({}, ARRAY_MT),
      arr_mt = setmetatable({ 3, 2, 1 }, ARRAY_MT),
    },
    allowSendTime = {
      { strTime = "08:00", endTime = "12:00" },
      { strTime = "13:00", endTime = "18:30", note = "afternoon" },
    },
    numberInfoList = {
      { calleeNumber = "919777654321", text1 = "David", text2 = "5000", text3 = "2026-04-10",
        text10 = "ten", zz = { k = 1 }, aa = "first" },
      { calleeNumber = "919777654322", text1 = "Oliver", text2 = 1000, text3 = "2026-04-10",
        text4 = "", text5 = "5", text6 = "6", text7 = "7", text8 = "8", text9 = "9" },
    },
    recallFlow = {
      recallType = 3,
      recallInterval = 1,
      recallNum = 2,
      nodeList = { { agentId = "110" }, { agentId = 110, weight = 2 } },
      recallIntent = { "99998", "99999" },
      futureKnob = "x",
    },
  }
end

-- The same task as the server must read it: written out by hand from the contract
-- (text2 = 1000 becomes "1000"; empty tables are empty either way once decoded).
local function expected()
  return {
    appId = "2Xql9RBI",
    taskName = "Full round trip \230\181\139\232\175\149 \195\169",
    displayNum = "1008122211",
    maxCalls = 300,
    maxRingingTime = 60,
    agentId = 41,
    enableRecording = 1,
    sendTime = "2026-04-01 00:00:00",
    calloutRate = 1,
    zFlag = false,
    aFlag = true,
    nothing = cjson.null,
    meta = {
      nested = { deep = { 1, 2, { x = "y", n = -17 } } },
      list = { "a", "b", true, false, cjson.null },
      f = 0.1,
      third = 1 / 3,
      sum = 0.30000000000000004,
      big = 1e300,
      tiny = 5e-324,
      neg = -2.5,
      int53 = 9007199254740992,
      negint = -9007199254740991,
      empty_obj = {},
      empty_arr = {},
      arr_mt = { 3, 2, 1 },
    },
    allowSendTime = {
      { strTime = "08:00", endTime = "12:00" },
      { strTime = "13:00", endTime = "18:30", note = "afternoon" },
    },
    numberInfoList = {
      { calleeNumber = "919777654321", text1 = "David", text2 = "5000", text3 = "2026-04-10",
        text10 = "ten", zz = { k = 1 }, aa = "first" },
      { calleeNumber = "919777654322", text1 = "Oliver", text2 = "1000", text3 = "2026-04-10",
        text4 = "", text5 = "5", text6 = "6", text7 = "7", text8 = "8", text9 = "9" },
    },
    recallFlow = {
      recallType = 3,
      recallInterval = 1,
      recallNum = 2,
      nodeList = { { agentId = "110" }, { agentId = 110, weight = 2 } },
      recallIntent = { "99998", "99999" },
      futureKnob = "x",
    },
  }
end

describe("roundtrip", function()
  it("a full task decodes back to the same values", function()
    local json, info, d = H.encode_ok(core, full_task())
    H.assert_same(expected(), d, "cjson.decode")
    H.assert_same(expected(), (H.parse(json)), "strict parser")
    assert.are.equal(2, info.rows)
    assert.are.equal(0, info.truncated)
    assert.are.equal(#json, info.bytes)
  end)

  it("does not modify the input task", function()
    local t = full_task()
    H.encode_ok(core, t)
    H.assert_same(full_task(), t, "input after encode")
  end)

  it("top-level key order: known fields, unknown sorted, then the three lists", function()
    local json = H.encode_ok(core, full_task())
    local p = H.parse(json)
    assert.are.same({
      "appId", "taskName", "displayNum", "maxCalls", "maxRingingTime", "agentId",
      "enableRecording", "sendTime",
      "aFlag", "calloutRate", "meta", "nothing", "zFlag",
      "allowSendTime", "numberInfoList", "recallFlow",
    }, H.keys(p))
    assert.are.equal('{"appId":', json:sub(1, 9))
  end)

  it("row key order: calleeNumber, text1..text10 (numeric order), unknown keys sorted", function()
    local p = H.parse((H.encode_ok(core, full_task())))
    assert.are.same({ "calleeNumber", "text1", "text2", "text3", "text10", "aa", "zz" },
      H.keys(p.numberInfoList[1]))
    assert.are.same({ "calleeNumber", "text1", "text2", "text3", "text4", "text5", "text6",
      "text7", "text8", "text9" }, H.keys(p.numberInfoList[2]))
  end)

  it("row key order with every text and unknown keys, inserted in reverse", function()
    local row = { zeta = 1, text11 = "u", alpha = 2 }
    for i = 10, 1, -1 do row["text" .. i] = "v" .. i end
    row.calleeNumber = "123456"
    local t = H.base_task()
    t.numberInfoList = { row }
    local p = H.parse((H.encode_ok(core, t)))
    assert.are.same({ "calleeNumber", "text1", "text2", "text3", "text4", "text5", "text6",
      "text7", "text8", "text9", "text10", "alpha", "text11", "zeta" }, H.keys(p.numberInfoList[1]))
  end)

  it("unknown object keys are sorted bytewise at every level", function()
    local t = H.base_task()
    t.extra = { b = 1, a = 2, B = 3, _ = 4, Z = 5, ab = 6, ["a b"] = 7, c = { z = 1, y = 2, x = { q = 1, p = 2 } } }
    local json = H.encode_ok(core, t)
    assert.is_truthy(json:find('"extra":{"B":3,"Z":5,"_":4,"a":2,"a b":7,"ab":6,"b":1,'
      .. '"c":{"x":{"p":2,"q":1},"y":2,"z":1}}', 1, true), json)
  end)

  it("only the top-level known fields that are present are written", function()
    local json = H.encode_ok(core, H.base_task())
    local p = H.parse(json)
    assert.are.same({ "appId", "taskName", "agentId", "numberInfoList" }, H.keys(p))
  end)

  it("integers are written as integers (no '.0', no exponent)", function()
    local t = full_task()
    t.maxCalls = 300.0
    t.agentId = 41.0
    local json = H.encode_ok(core, t)
    H.assert_raw(json, "maxCalls", "300")
    H.assert_raw(json, "maxRingingTime", "60")
    H.assert_raw(json, "agentId", "41")
    H.assert_raw(json, "enableRecording", "1")
    H.assert_raw(json, "calloutRate", "1")
    H.assert_raw(json, "int53", "9007199254740992")
    H.assert_raw(json, "negint", "-9007199254740991")
    H.assert_raw(json, "recallType", "3")
    H.assert_raw(json, "recallNum", "2")
    H.assert_raw(json, "weight", "2")
    assert.is_truthy(json:find('"deep":[1,2,{"n":-17,"x":"y"}]', 1, true), json)
    assert.is_truthy(json:find('"arr_mt":[3,2,1]', 1, true), json)
  end)

  it("a fraction keeps its full precision", function()
    local json, _, d = H.encode_ok(core, full_task())
    assert.are.equal(0.1, d.meta.f)
    assert.are.equal(1 / 3, d.meta.third)
    assert.are.equal(0.1 + 0.2, d.meta.sum)
    assert.are.equal(1e300, d.meta.big)
    assert.are.equal(5e-324, d.meta.tiny)
    assert.are.equal(-2.5, d.meta.neg)
    local f = json:match('"f":([^,}]+)')
    assert.are.equal(0.1, tonumber(f))
  end)

  if H.has_int then
    it("Lua 5.4 integers outside the double range are exact", function()
      local t = H.base_task()
      t.imax = math.maxinteger
      t.imin = math.mininteger
      t.i53p1 = 9007199254740993
      local json = H.encode_ok(core, t)
      H.assert_raw(json, "imax", "9223372036854775807")
      H.assert_raw(json, "imin", "-9223372036854775808")
      H.assert_raw(json, "i53p1", "9007199254740993")
    end)
  end

  it("booleans and null pass through", function()
    local json = H.encode_ok(core, full_task())
    H.assert_raw(json, "aFlag", "true")
    H.assert_raw(json, "zFlag", "false")
    H.assert_raw(json, "nothing", "null")
    assert.is_truthy(json:find('"list":["a","b",true,false,null]', 1, true), json)
  end)

  it("empty tables: {} without metatable, [] with __jsontype = \"array\"", function()
    local json = H.encode_ok(core, full_task())
    H.assert_raw(json, "empty_obj", "{}")
    H.assert_raw(json, "empty_arr", "[]")
    local t = H.base_task()
    t.e1 = setmetatable({}, { __jsontype = "array" })
    t.e2 = {}
    t.e3 = setmetatable({}, { __jsontype = "object" })
    json = H.encode_ok(core, t)
    H.assert_raw(json, "e1", "[]")
    H.assert_raw(json, "e2", "{}")
    H.assert_raw(json, "e3", "{}")
  end)

  it("unknown fields inside known objects pass through", function()
    local _, _, d = H.encode_ok(core, full_task())
    assert.are.equal("afternoon", d.allowSendTime[2].note)
    assert.are.equal("x", d.recallFlow.futureKnob)
    assert.are.equal(2, d.recallFlow.nodeList[2].weight)
    assert.are.equal("first", d.numberInfoList[1].aa)
  end)

  describe("encode and encode_body", function()
    it("give identical bytes and info", function()
      local task = full_task()
      local json, info = core.encode(task)
      local body, binfo = core.encode_body(task)
      assert.are.equal("string", type(json))
      assert.are.equal("userdata", type(body))
      assert.are.equal(json, tostring(body))
      assert.are.equal(json, body:tostring())
      assert.are.equal(#json, #body)
      assert.are.equal(#json, body:len())
      assert.are.equal(#json, info.bytes)
      assert.are.equal(#json, binfo.bytes)
      assert.are.same(info, binfo)
      assert.are.same({ rows = 2, truncated = 0, bytes = #json, warnings = {} }, info)
    end)

    it("body:close() may be called twice; the GC frees other bodies", function()
      local body = core.encode_body(H.base_task())
      body:close()
      assert.has_no.errors(function() body:close() end)
      for _ = 1, 50 do core.encode_body(full_task()) end
      collectgarbage()
      collectgarbage()
      H.assert_healthy(core)
    end)

    it("the same task encodes to the same bytes every time", function()
      local a = core.encode(full_task())
      for _ = 1, 5 do assert.are.equal(a, (core.encode(full_task()))) end
    end)

    it("info.truncated and info.rows agree for a truncating task", function()
      local t = H.base_task()
      t.numberInfoList = { { calleeNumber = "123456", text1 = string.rep("x", 31) },
        { calleeNumber = "123457", text1 = string.rep("y", 31) }, { calleeNumber = "123458" } }
      local json, info = core.encode(t)
      local body, binfo = core.encode_body(t)
      assert.are.equal(json, tostring(body))
      assert.are.same({ rows = 3, truncated = 2, bytes = #json, warnings = {} }, info)
      assert.are.same(info, binfo)
    end)
  end)
end)
