-- UTF-8: text truncation at 30 characters on a character boundary, info.truncated, and
-- rejection of invalid UTF-8 anywhere (doc/core-contract.md).
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local E2 = "\195\169"             -- é  (2 bytes)
local E3 = "\226\130\172"         -- €  (3 bytes)
local E4 = "\240\159\152\128"     -- 😀 (4 bytes)
local CJK = "\230\181\139"        -- 测 (3 bytes)

local function row_task(row)
  local t = H.base_task()
  row.calleeNumber = row.calleeNumber or "919777654321"
  t.numberInfoList = { row }
  return t
end

-- Encodes a one-row task with text1 = s; returns the decoded text1 and info.
local function text1_of(s, opts)
  local _, info, d = H.encode_ok(core, row_task({ text1 = s }), opts)
  return d.numberInfoList[1].text1, info
end

-- the first 30 characters of a valid UTF-8 string
local function uprefix30(s)
  local n, i = 0, 1
  while i <= #s and n < 30 do
    local c = s:byte(i)
    i = i + (c < 0x80 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4)
    n = n + 1
  end
  return s:sub(1, i - 1)
end

local function assert_cut(input, expected)
  local got, info = text1_of(input)
  assert.is_true(H.utf8_valid(got), "result is not valid UTF-8")
  assert.are.equal(30, H.ulen(got))
  assert.are.equal(expected, got)
  assert.are.equal(1, info.truncated)
end

describe("utf8: text truncation", function()
  it("30 ASCII characters are kept", function()
    local s = string.rep("abcde", 6)
    local got, info = text1_of(s)
    assert.are.equal(s, got)
    assert.are.equal(0, info.truncated)
  end)

  it("31 ASCII characters are cut to 30, info.truncated == 1", function()
    local s = "0123456789012345678901234567890" -- 31
    assert.are.equal(31, #s)
    assert_cut(s, s:sub(1, 30))
  end)

  it("30 multi-byte characters are kept (characters, not bytes)", function()
    for _, ch in ipairs({ E2, E3, E4, CJK }) do
      local s = string.rep(ch, 30)
      local got, info = text1_of(s)
      assert.are.equal(s, got)
      assert.are.equal(0, info.truncated)
    end
  end)

  it("31 two-byte characters: cut to 30 (60 bytes)", function()
    assert_cut(string.rep(E2, 31), string.rep(E2, 30))
  end)

  it("31 three-byte characters: cut to 30 (90 bytes)", function()
    assert_cut(string.rep(E3, 31), string.rep(E3, 30))
  end)

  it("31 four-byte characters: cut to 30 (120 bytes)", function()
    assert_cut(string.rep(E4, 31), string.rep(E4, 30))
  end)

  it("a cut that a byte count would put mid-sequence", function()
    -- 29 ASCII + € + €: 31 characters, byte 30 is the first byte of the first €.
    assert_cut(string.rep("a", 29) .. E3 .. E3, string.rep("a", 29) .. E3)
    -- 28 ASCII + 3 emoji.
    assert_cut(string.rep("a", 28) .. E4 .. E4 .. E4, string.rep("a", 28) .. E4 .. E4)
    -- mixed widths.
    local mixed = string.rep(E2 .. E3 .. E4 .. "x", 10) -- 40 characters
    assert_cut(mixed, string.rep(E2 .. E3 .. E4 .. "x", 7) .. E2 .. E3)
  end)

  it("control characters count as one character each (before escaping)", function()
    local got, info = text1_of(string.rep("\n", 30))
    assert.are.equal(string.rep("\n", 30), got)
    assert.are.equal(0, info.truncated)
    got, info = text1_of(string.rep("\1", 31))
    assert.are.equal(string.rep("\1", 30), got)
    assert.are.equal(1, info.truncated)
    got, info = text1_of(string.rep('"', 31))
    assert.are.equal(string.rep('"', 30), got)
    assert.are.equal(1, info.truncated)
  end)

  it("every one of text1..text10 is truncated", function()
    local row = {}
    for i = 1, 10 do row["text" .. i] = string.rep(string.char(64 + i), 35) end
    local _, info, d = H.encode_ok(core, row_task(row))
    for i = 1, 10 do
      assert.are.equal(string.rep(string.char(64 + i), 30), d.numberInfoList[1]["text" .. i])
    end
    assert.are.equal(10, info.truncated)
  end)

  it("info.truncated counts values across rows", function()
    local list = {}
    for i = 1, 5 do
      list[i] = { calleeNumber = "91977765432" .. i, text1 = string.rep("a", 30 + (i % 2)),
        text2 = string.rep(E3, 40), text3 = "short" }
    end
    -- text1 too long in rows 1, 3, 5; text2 too long in all 5 rows.
    local t = H.base_task()
    t.numberInfoList = list
    local _, info, d = H.encode_ok(core, t)
    assert.are.equal(5, info.rows)
    assert.are.equal(8, info.truncated)
    for i = 1, 5 do
      assert.are.equal(string.rep("a", 30), d.numberInfoList[i].text1)
      assert.are.equal(string.rep(E3, 30), d.numberInfoList[i].text2)
      assert.are.equal("short", d.numberInfoList[i].text3)
    end
  end)

  it("a number text is written as its decimal string, not truncated", function()
    local got, info = text1_of(1234567890)
    assert.are.equal("1234567890", got)
    assert.are.equal(0, info.truncated)
  end)

  it("unknown row keys (text11, note) are not texts: never truncated", function()
    local long = string.rep("n", 40)
    local _, info, d = H.encode_ok(core, row_task({ text11 = long, note = long }))
    assert.are.equal(long, d.numberInfoList[1].text11)
    assert.are.equal(long, d.numberInfoList[1].note)
    assert.are.equal(0, info.truncated)
  end)

  it("taskName and other strings are never truncated", function()
    local t = H.base_task()
    t.taskName = string.rep("t", 64)
    t.extra = string.rep("u", 100)
    local _, info, d = H.encode_ok(core, t)
    assert.are.equal(string.rep("t", 64), d.taskName)
    assert.are.equal(string.rep("u", 100), d.extra)
    assert.are.equal(0, info.truncated)
  end)
end)

describe("utf8: valid edge code points are accepted and written raw", function()
  local valid = {
    { "U+007F", "\127" },
    { "U+0080", "\194\128" },
    { "U+07FF", "\223\191" },
    { "U+0800", "\224\160\128" },
    { "U+D7FF", "\237\159\191" },
    { "U+E000", "\238\128\128" },
    { "U+FFFF", "\239\191\191" },
    { "U+10000", "\240\144\128\128" },
    { "U+10FFFF", "\244\143\191\191" },
  }
  for _, c in ipairs(valid) do
    it(c[1], function()
      local s = "<" .. c[2] .. ">"
      local t = row_task({ text1 = s })
      t.extra = s
      t.taskName = "name " .. s
      local json, _, d = H.encode_ok(core, t)
      assert.are.equal(s, d.numberInfoList[1].text1)
      assert.are.equal(s, d.extra)
      assert.are.equal("name " .. s, d.taskName)
      assert.is_truthy(json:find('"extra":"' .. s .. '"', 1, true), "not written raw")
    end)
  end
end)

describe("utf8: invalid UTF-8 is rejected", function()
  local invalid = {
    { "a lone continuation byte", "ab\128cd" },
    { "a lone 0xBF", "\191" },
    { "overlong '/' (C0 AF)", "\192\175" },
    { "overlong C1 BF", "\193\191" },
    { "overlong 3-byte (E0 80 AF)", "\224\128\175" },
    { "overlong 4-byte (F0 80 80 AF)", "\240\128\128\175" },
    { "a UTF-16 surrogate (ED A0 80)", "\237\160\128" },
    { "a low surrogate (ED BF BF)", "\237\191\191" },
    { "above U+10FFFF (F4 90 80 80)", "\244\144\128\128" },
    { "F5 lead byte", "\245\128\128\128" },
    { "0xFF", "x\255y" },
    { "0xFE", "\254" },
    { "a truncated sequence at the end", "abc\226\130" },
    { "a truncated 4-byte sequence at the end", "abc\240\159\152" },
    { "a lead byte followed by ASCII", "\226\130a" },
    { "two lead bytes", "\195\195\169" },
  }

  for _, c in ipairs(invalid) do
    local bad = c[2]
    describe(c[1], function()
      it("in text1", function()
        H.fail(core, row_task({ text1 = "ok" .. bad }), nil, "numberInfoList[1].text1")
      end)
      it("in text3 of row 2", function()
        local t = H.base_task()
        t.numberInfoList = { { calleeNumber = "123456" }, { calleeNumber = "123457", text3 = bad } }
        H.fail(core, t, nil, "numberInfoList[2].text3")
      end)
      it("in taskName", function()
        local t = H.base_task()
        t.taskName = "task " .. bad
        H.fail(core, t, nil, "taskName")
      end)
      it("in appId", function()
        local t = H.base_task()
        t.appId = "app" .. bad
        H.fail(core, t, nil, "appId")
      end)
      it("in an unknown top-level string", function()
        local t = H.base_task()
        t.note = "note " .. bad
        H.fail(core, t, nil, "note")
      end)
      it("in a nested unknown string", function()
        local t = H.base_task()
        t.someUnknown = { deep = { 1, 2, { key = bad } } }
        H.fail(core, t, nil, "someUnknown.deep[3].key")
      end)
      it("in an unknown row field", function()
        H.fail(core, row_task({ memo = bad }), nil, "numberInfoList[1].memo")
      end)
      it("in a recallIntent entry", function()
        local t = H.recall_task()
        t.recallFlow.recallIntent = { "99999", bad }
        H.fail(core, t, nil, "recallFlow.recallIntent[2]")
      end)
      it("in an unknown field's KEY (nested object)", function()
        local t = H.base_task()
        t.extra = { fine = 1, ["k" .. bad] = 2 }
        H.fail(core, t, nil, { prefix = "extra" })
      end)
      it("in an unknown top-level KEY", function()
        local t = H.base_task()
        t["k" .. bad] = 1
        local _, field = H.fail(core, t, nil, { prefix = "" })
        assert.is_true(field == "task" or field:sub(1, 1) == "k", "field: " .. field)
      end)
      it("in an unknown row KEY", function()
        H.fail(core, row_task({ ["k" .. bad] = "v" }), nil, { prefix = "numberInfoList[1]" })
      end)
    end)
  end

  -- What follows the 30th character is not sent, so it is not read either: the vendor's
  -- pages ask for UTF-8 in the body and for texts of at most 30 characters "otherwise
  -- truncated"; bytes that never reach the body are not theirs to forbid. (Reading them
  -- cost a 200,000-row task with a 16 KiB text1 seconds: issue 11.)
  it("beyond the truncation point of a long text: not sent, not refused", function()
    for _, tail in ipairs({ "\255", "\128", "\192\175", "\237\160\128", "\226\130" }) do
      for _, head in ipairs({ string.rep("a", 30), string.rep("a", 40), string.rep(E3, 30) }) do
        local got, info = text1_of(head .. tail)
        assert.are.equal(uprefix30(head), got)
        assert.are.equal(1, info.truncated)
      end
    end
  end)

  it("beyond the truncation point, with truncate = false: too long, not invalid", function()
    local msg = select(2, core.encode(row_task({ text1 = string.rep("a", 40) .. "\255" }),
                                      { truncate = false }))
    assert.are.equal("numberInfoList[1].text1: must be at most 30 characters, got more (41 bytes)", msg)
  end)

  it("a sequence cut right at the 30-character boundary", function()
    H.fail(core, row_task({ text1 = string.rep("a", 29) .. "\226\130" }), nil, "numberInfoList[1].text1")
  end)

  it("with truncate = false too", function()
    H.fail(core, row_task({ text2 = "\192\175" }), { truncate = false }, "numberInfoList[1].text2")
  end)

  it("error messages and fields are themselves valid UTF-8 (robustness, not in the contract)", function()
    local t = H.base_task()
    t.taskName = "bad \255\254 name"
    local _, msg, field = core.encode(t)
    assert.are.equal("taskName", field)
    assert.is_true(H.utf8_valid(msg), "message is not valid UTF-8: " .. ("%q"):format(msg))
  end)

  it("cjson.null is not affected", function()
    local t = H.base_task()
    t.extra = cjson.null
    local json = H.encode_ok(core, t)
    H.assert_raw(json, "extra", "null")
  end)
end)
