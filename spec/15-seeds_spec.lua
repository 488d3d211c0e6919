-- The vendor's two request examples (../shared/seeds/), extracted at run time, decoded
-- with cjson, encoded with core.encode and compared field by field with the vendor JSON.
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local SEEDS = H.shared .. "/seeds"

-- Finds the seed file whose name starts with `prefix` ("000_", "001_").
local function seed_path(prefix)
  local names = {}
  local ok, lfs = pcall(require, "lfs")
  if ok and lfs then
    for name in lfs.dir(SEEDS) do names[#names + 1] = name end
  else
    local p = io.popen('ls "' .. SEEDS .. '"')
    if p then
      for name in p:lines() do names[#names + 1] = name end
      p:close()
    end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    if name:sub(1, #prefix) == prefix and name:match("%.txt$") then
      return SEEDS .. "/" .. name
    end
  end
  error("no seed " .. prefix .. "* in " .. SEEDS)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- Removes // comments outside JSON strings.
local function strip_comments(s)
  local out, i, n, in_str = {}, 1, #s, false
  while i <= n do
    local c = s:sub(i, i)
    if in_str then
      out[#out + 1] = c
      if c == "\\" then
        out[#out + 1] = s:sub(i + 1, i + 1)
        i = i + 1
      elseif c == '"' then
        in_str = false
      end
      i = i + 1
    elseif c == '"' then
      in_str = true
      out[#out + 1] = c
      i = i + 1
    elseif s:sub(i, i + 1) == "//" then
      local nl = s:find("\n", i, true)
      i = nl or (n + 1)
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- The balanced {...} starting at the first "{" at or after `from`.
local function balanced_object(s, from)
  local start = s:find("{", from, true)
  assert(start, "no '{' after position " .. from)
  local depth, in_str, i = 0, false, start
  while i <= #s do
    local c = s:sub(i, i)
    if in_str then
      if c == "\\" then i = i + 1 elseif c == '"' then in_str = false end
    elseif c == '"' then
      in_str = true
    elseif c == "{" then
      depth = depth + 1
    elseif c == "}" then
      depth = depth - 1
      if depth == 0 then return s:sub(start, i) end
    end
    i = i + 1
  end
  error("unbalanced object")
end

local function seed000()
  local text = read(seed_path("000_"))
  local at = text:find("Request Body:", 1, true)
  assert(at, "no 'Request Body:' in seed 000")
  return cjson.decode(balanced_object(text, at)), text
end

local function seed001()
  local text = read(seed_path("001_"))
  local at = text:find("--data-raw '", 1, true)
  assert(at, "no --data-raw in seed 001")
  local rest = text:sub(at + #"--data-raw '")
  local close = rest:find("}'", 1, true)
  assert(close, "no closing }' in seed 001")
  local body = strip_comments(rest:sub(1, close))
  return cjson.decode(balanced_object(body, 1)), text
end

-- Every field of `vendor` must be in `ours` with the same value, and nothing else.
local function compare(vendor, ours)
  H.assert_same(vendor, ours, "vendor vs encoded")
end

local INT_FIELDS = { "maxCalls", "maxRingingTime", "agentId", "enableRecording", "calloutRate",
  "recallType", "recallInterval", "recallNum" }

-- Every number in the output is written as an integer.
local function assert_integers(json)
  local _, numbers = H.parse(json)
  assert.is_true(#numbers > 0)
  for _, n in ipairs(numbers) do
    assert.is_truthy(n:match("^%-?%d+$"), "number written as " .. n .. " in " .. json)
  end
end

describe("seeds", function()
  describe("seed 000 (the task creation page)", function()
    it("is found and decodes", function()
      local v = seed000()
      assert.are.equal("2Xql9RBI", v.appId)
      assert.are.equal(5, #v.recallFlow.nodeList)
    end)

    it("encodes to the same fields and values", function()
      local vendor = seed000()
      local json, info, d = H.encode_ok(core, (seed000()))
      compare(vendor, d)
      assert.are.equal(1, info.rows)
      assert.are.equal(0, info.truncated)
      -- field by field, spelled out
      assert.are.equal("2Xql9RBI", d.appId)
      assert.are.equal("I want to test Agent API-16", d.taskName)
      assert.are.equal("1008122211", d.displayNum)
      assert.are.equal(300, d.maxCalls)
      assert.are.equal(60, d.maxRingingTime)
      assert.are.equal(41, d.agentId)
      assert.are.equal(1, d.enableRecording)
      assert.are.equal(1, d.calloutRate)
      assert.are.same({ { strTime = "18:28", endTime = "19:28" } }, d.allowSendTime)
      assert.are.same({ { calleeNumber = "463200000007" } }, d.numberInfoList)
      assert.are.equal(3, d.recallFlow.recallType)
      assert.are.equal(1, d.recallFlow.recallInterval)
      assert.are.equal(5, d.recallFlow.recallNum)
      for i = 1, 5 do
        assert.are.equal("string", type(d.recallFlow.nodeList[i].agentId))
        assert.are.equal("41", d.recallFlow.nodeList[i].agentId)
      end
      assert.are.same({ "99998", "99999" }, d.recallFlow.recallIntent)
      assert.is_truthy(json:find('"nodeList":[{"agentId":"41"},{"agentId":"41"},{"agentId":"41"},'
        .. '{"agentId":"41"},{"agentId":"41"}]', 1, true), json)
    end)

    it("cjson's floats come out as integers", function()
      local v = seed000()
      local json = H.encode_ok(core, v)
      for _, name in ipairs(INT_FIELDS) do
        local want = name:match("^recall") and v.recallFlow[name] or v[name]
        H.assert_raw(json, name, string.format("%d", want))
      end
      assert_integers(json)
    end)

    it("uses the contract's key order", function()
      local p = H.parse((H.encode_ok(core, (seed000()))))
      assert.are.same({ "appId", "taskName", "displayNum", "maxCalls", "maxRingingTime",
        "agentId", "enableRecording", "calloutRate", "allowSendTime", "numberInfoList",
        "recallFlow" }, H.keys(p))
    end)

    it("its headers are signed with the published vector", function()
      local _, text = seed000()
      local sign = text:match("Sign:%s*(%x+)")
      local ts = text:match("Timestamp:%s*(%d+)")
      local key = text:match("Api%-Key:%s*(%S+)")
      local secret = read(seed_path("001_")):match("API Secret:%s*(%S+)")
      assert.are.equal("bDqJFiq9", key)
      assert.are.equal("7bz1lzh9", secret)
      assert.are.equal(sign, core.sign(key, secret, ts))
      assert.are.equal(sign, core.sign(key, secret, tonumber(ts)))
    end)
  end)

  describe("seed 001 (the quick start curl example, with // comments)", function()
    it("is found, its comments stripped, and decodes", function()
      local v = seed001()
      assert.are.equal("Jgd8oFei", v.appId)
      assert.are.equal(2, #v.numberInfoList)
      assert.are.equal("99999", v.recallFlow.recallIntent[1])
    end)

    it("encodes to the same fields and values", function()
      local vendor = seed001()
      local json, info, d = H.encode_ok(core, (seed001()))
      compare(vendor, d)
      assert.are.equal(2, info.rows)
      assert.are.equal(0, info.truncated)
      assert.are.equal("Jgd8oFei", d.appId)
      assert.are.equal("test", d.taskName)
      assert.are.equal("123456", d.displayNum)
      assert.are.equal(300, d.maxCalls)
      assert.are.equal(60, d.maxRingingTime)
      assert.are.equal(110, d.agentId)
      assert.are.equal(1, d.enableRecording)
      assert.are.equal("2026-04-01 00:00:00", d.sendTime)
      assert.are.equal(1, d.calloutRate)
      assert.are.same({
        { calleeNumber = "919777654321", text1 = "David", text2 = "5000", text3 = "2026-04-10" },
        { calleeNumber = "919777654321", text1 = "Oliver", text2 = "1000", text3 = "2026-04-10" },
      }, d.numberInfoList)
      assert.are.equal(3, d.recallFlow.recallType)
      assert.are.equal(1, d.recallFlow.recallInterval)
      assert.are.equal(2, d.recallFlow.recallNum)
      assert.are.same({ { agentId = "110" }, { agentId = "110" } }, d.recallFlow.nodeList)
      assert.are.same({ "99999" }, d.recallFlow.recallIntent)
      assert.is_truthy(json:find('{"calleeNumber":"919777654321","text1":"David","text2":"5000",'
        .. '"text3":"2026-04-10"}', 1, true), json)
    end)

    it("cjson's floats come out as integers", function()
      local v = seed001()
      local json = H.encode_ok(core, v)
      for _, name in ipairs(INT_FIELDS) do
        local want = name:match("^recall") and v.recallFlow[name] or v[name]
        H.assert_raw(json, name, string.format("%d", want))
      end
      assert_integers(json)
    end)

    it("uses the contract's key order", function()
      local p = H.parse((H.encode_ok(core, (seed001()))))
      assert.are.same({ "appId", "taskName", "displayNum", "maxCalls", "maxRingingTime",
        "agentId", "enableRecording", "sendTime", "calloutRate", "numberInfoList",
        "recallFlow" }, H.keys(p))
    end)

    it("passes require_texts = {1, 2, 3} (the debt collection scenario)", function()
      H.encode_ok(core, (seed001()), { require_texts = { 1, 2, 3 } })
    end)
  end)
end)
