-- String escaping: `"`, `\` and every byte below 0x20 are escaped; everything else is
-- written raw (doc/core-contract.md). Checked by a round trip through cjson.decode and
-- by an independent strict parser (spec/helpers.lua).
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local function row_task(row)
  local t = H.base_task()
  row.calleeNumber = "919777654321"
  t.numberInfoList = { row }
  return t
end

-- All 32 control bytes, the quote and the backslash.
local specials = {}
for b = 0, 31 do specials[#specials + 1] = string.char(b) end
specials[#specials + 1] = '"'
specials[#specials + 1] = "\\"
local ALL = table.concat(specials)

local function check_clean(json)
  assert.is_false(H.has_control(json), "raw byte < 0x20 in output")
  -- the independent parser also rejects raw control bytes inside strings
  local ok, err = pcall(H.parse, json)
  assert.is_true(ok, tostring(err))
end

describe("escape", function()
  for b = 0, 31 do
    it(("byte 0x%02X in a text value round-trips"):format(b), function()
      local s = "a" .. string.char(b) .. "z"
      local json, _, d = H.encode_ok(core, row_task({ text1 = s }))
      check_clean(json)
      assert.are.equal(s, d.numberInfoList[1].text1)
      local p = H.parse(json)
      assert.are.equal(s, p.numberInfoList[1].text1)
    end)
  end

  it('`"` and `\\` in a text value round-trip', function()
    for _, s in ipairs({ 'say "hi"', "back\\slash", '\\"', '"\\', '\\u0041', '\\\\' }) do
      local json, _, d = H.encode_ok(core, row_task({ text2 = s }))
      check_clean(json)
      assert.are.equal(s, d.numberInfoList[1].text2)
      assert.are.equal(s, H.parse(json).numberInfoList[1].text2)
    end
  end)

  it("all 34 special bytes at once, spread over text1..text2 (<= 30 characters each)", function()
    local s1, s2 = ALL:sub(1, 17), ALL:sub(18)
    local json, info, d = H.encode_ok(core, row_task({ text1 = s1, text2 = s2 }))
    check_clean(json)
    assert.are.equal(s1, d.numberInfoList[1].text1)
    assert.are.equal(s2, d.numberInfoList[1].text2)
    assert.are.equal(0, info.truncated)
  end)

  it("all special bytes in an unknown string field round-trip", function()
    local t = H.base_task()
    t.blob = ALL .. ALL:reverse() .. "end"
    local json, _, d = H.encode_ok(core, t)
    check_clean(json)
    assert.are.equal(t.blob, d.blob)
    assert.are.equal(t.blob, H.parse(json).blob)
  end)

  it("special bytes in an unknown field's key round-trip", function()
    local t = H.base_task()
    local key = 'k"\\\n\0\31'
    t.extra = { [key] = ALL }
    local json, _, d = H.encode_ok(core, t)
    check_clean(json)
    assert.are.equal(ALL, d.extra[key])
  end)

  it("special bytes in taskName, appId and a nested unknown array round-trip", function()
    local t = H.base_task()
    t.taskName = "tab\there \"q\" \\ nl\n"
    t.appId = "id\0x"
    t.extra = { list = { "\b\f", { deeper = "\r\t\27" } } }
    local json, _, d = H.encode_ok(core, t)
    check_clean(json)
    assert.are.equal(t.taskName, d.taskName)
    assert.are.equal(t.appId, d.appId)
    assert.are.equal("\b\f", d.extra.list[1])
    assert.are.equal("\r\t\27", d.extra.list[2].deeper)
  end)

  it("the escapes are JSON escapes (\\n, \\\", \\\\, \\uXXXX), not raw bytes", function()
    local t = H.base_task()
    t.e = "\n"
    t.q = '"'
    t.s = "\\"
    t.z = "\0"
    local json = H.encode_ok(core, t)
    H.assert_raw(json, "e", '"\\n"')
    H.assert_raw(json, "q", '"\\""')
    H.assert_raw(json, "s", '"\\\\"')
    local zero = json:match('"z":"(\\u00[0-9a-fA-F][0-9a-fA-F])"')
    assert.are.equal("\\u0000", zero and zero:lower())
  end)

  describe("everything else is written raw", function()
    local raw = {
      { "slash", "a/b</script>" },
      { "DEL 0x7F", "x\127y" },
      { "e-acute", "caf\195\169" },
      { "CJK", "\230\181\139\232\175\149" },
      { "emoji", "\240\159\152\128" },
      { "U+2028 / U+2029", "a\226\128\168b\226\128\169c" },
      { "single quote and angle brackets", "'<>&" },
    }
    for _, c in ipairs(raw) do
      it(c[1] .. " in a text value and an unknown field", function()
        local t = row_task({ text1 = c[2] })
        t.other = c[2]
        local json, _, d = H.encode_ok(core, t)
        check_clean(json)
        assert.are.equal(c[2], d.numberInfoList[1].text1)
        assert.are.equal(c[2], d.other)
        H.assert_raw(json, "text1", '"' .. c[2] .. '"')
        H.assert_raw(json, "other", '"' .. c[2] .. '"')
      end)
    end
  end)

  it("output is compact (no whitespace outside strings)", function()
    local t = H.recall_task()
    t.extra = { a = { 1, 2 }, b = { c = true } }
    local json = H.encode_ok(core, t)
    local ok, err = pcall(H.parse, json) -- the strict parser refuses whitespace
    assert.is_true(ok, tostring(err))
    assert.are.equal(cjson.null, H.parse('{"x":null}').x) -- the parser itself works
  end)
end)
