-- core.sign(key, secret, timestamp): md5(key .. secret .. timestamp), 32 lowercase hex.
-- Every expected digest below was computed outside the code under test with
-- `printf '<key><secret><timestamp>' | md5sum` (or Python's hashlib for the long input).
local core = require("laaffic.core")
local cjson = require("cjson") -- luacheck: ignore (kept for uniformity of the specs)

local function is_hex32(s)
  return type(s) == "string" and #s == 32 and s:match("^[0-9a-f]+$") ~= nil
end

describe("core.sign", function()
  it("has a version string", function()
    assert.are.equal("string", type(core._VERSION))
    assert.is_true(#core._VERSION > 0)
  end)

  describe("the vendor's published vector", function()
    -- api-notes + seed 001: key bDqJFiq9, secret 7bz1lzh9, timestamp 1630468800.
    local expected = "05d7a50893e22a5c4bb3216ae3396c7c"

    it("with the timestamp as a number", function()
      assert.are.equal(expected, core.sign("bDqJFiq9", "7bz1lzh9", 1630468800))
    end)

    it("with the timestamp as a string", function()
      assert.are.equal(expected, core.sign("bDqJFiq9", "7bz1lzh9", "1630468800"))
    end)

    it("with the timestamp as an integral float (no '.0' is hashed)", function()
      assert.are.equal(expected, core.sign("bDqJFiq9", "7bz1lzh9", 1630468800.0))
      assert.are.equal(expected, core.sign("bDqJFiq9", "7bz1lzh9", 16304688e2))
    end)

    it("is deterministic", function()
      for _ = 1, 3 do
        assert.are.equal(expected, core.sign("bDqJFiq9", "7bz1lzh9", 1630468800))
      end
    end)
  end)

  describe("the seed 001 curl example's key", function()
    local key = "SQLHdsQFe0Gk8ckwJZqcwxfUYRm0Qu0o"
    -- The seed's secret is unknown, so its Sign header cannot be checked; any secret
    -- gives 32 lowercase hex digits, and a chosen one gives the md5sum digest.
    it("gives 32 lowercase hex digits", function()
      local s1 = core.sign(key, "whatever-the-secret-is", 1775014268)
      assert.is_true(is_hex32(s1), tostring(s1))
      assert.are.equal(s1, core.sign(key, "whatever-the-secret-is", "1775014268"))
    end)

    it("matches md5sum for a chosen secret", function()
      -- printf 'SQLHdsQFe0Gk8ckwJZqcwxfUYRm0Qu0osecret1775014268' | md5sum
      assert.are.equal("e8a356b290d532a50e3fb4a10689ac6e", core.sign(key, "secret", 1775014268))
      assert.are.equal("e8a356b290d532a50e3fb4a10689ac6e", core.sign(key, "secret", "1775014268"))
    end)
  end)

  describe("known md5 vectors", function()
    it('sign("a", "b", "1") == md5("ab1")', function()
      assert.are.equal("68b6a776378decbb4a79cda89087c4ce", core.sign("a", "b", "1"))
      assert.are.equal("68b6a776378decbb4a79cda89087c4ce", core.sign("a", "b", 1))
    end)

    it("timestamp 0", function()
      assert.are.equal("449f2a4c69b93a105441494833db68e5", core.sign("a", "b", 0))
      assert.are.equal("449f2a4c69b93a105441494833db68e5", core.sign("a", "b", "0"))
    end)

    it("empty key and secret", function()
      -- md5("0")
      assert.are.equal("cfcd208495d565ef66e7dff9f98764da", core.sign("", "", "0"))
      assert.are.equal("cfcd208495d565ef66e7dff9f98764da", core.sign("", "", 0))
    end)

    it("a digit string is hashed as given (leading zeros kept)", function()
      assert.are.equal("61b3abc33aa3dd24f054c53b0cdd4920", core.sign("a", "b", "0001"))
    end)

    it("a 20-digit string is accepted", function()
      assert.are.equal("95157b928aa40d9283e54fb7bc73613a",
        core.sign("a", "b", "12345678901234567890"))
      assert.are.equal("d6b05ff5f6e6c5397255044605bb639c",
        core.sign("a", "b", "18446744073709551615"))
    end)

    it("2^53 as a number", function()
      assert.are.equal("8df8dcaecc39fbd27c2850cf937e24d3", core.sign("a", "b", 2 ^ 53))
    end)

    it("10^18 as a number (19 digits, exact in a double and in a Lua 5.4 integer)", function()
      -- printf 'ab1000000000000000000' | md5sum
      assert.are.equal("c314fbcd20f7ec3e9822149aabf81c5d", core.sign("a", "b", 1000000000000000000))
      assert.are.equal("c314fbcd20f7ec3e9822149aabf81c5d", core.sign("a", "b", "1000000000000000000"))
    end)

    if math.type then
      it("math.maxinteger as a Lua 5.4 integer (a non-negative integer)", function()
        assert.are.equal("fef57cc8eb606d7bd0e91958275bb5ff",
          core.sign("a", "b", math.maxinteger))
      end)
    end

    it("an embedded NUL byte is hashed (no C-string truncation)", function()
      -- printf 'a\0bc1' | md5sum
      assert.are.equal("531a8abd867dc5700937f7b14f7e3fbc", core.sign("a\0b", "c", "1"))
    end)

    it("a long key and secret (no fixed-size buffer)", function()
      -- hashlib.md5(b'k'*100000 + b's'*70000 + b'1775014268')
      assert.are.equal("6d692300294a4c1773b71bc49250c64f",
        core.sign(string.rep("k", 100000), string.rep("s", 70000), 1775014268))
    end)

    it("always gives 32 lowercase hex digits", function()
      for i = 1, 50 do
        local s = core.sign("key" .. i, string.rep("x", i), i * 1000003)
        assert.is_true(is_hex32(s), tostring(s))
      end
    end)
  end)

  describe("misuse raises", function()
    local cases = {
      { "nil key", function() return core.sign(nil, "b", "1") end },
      { "table key", function() return core.sign({}, "b", "1") end },
      { "nil secret", function() return core.sign("a", nil, "1") end },
      { "table secret", function() return core.sign("a", {}, "1") end },
      { "boolean secret", function() return core.sign("a", true, "1") end },
      { "missing timestamp", function() return core.sign("a", "b") end },
      { "nil timestamp", function() return core.sign("a", "b", nil) end },
      { "boolean timestamp", function() return core.sign("a", "b", true) end },
      { "table timestamp", function() return core.sign("a", "b", {}) end },
      { "negative timestamp", function() return core.sign("a", "b", -1) end },
      { "fractional timestamp", function() return core.sign("a", "b", 1630468800.5) end },
      { "NaN timestamp", function() return core.sign("a", "b", 0 / 0) end },
      { "infinite timestamp", function() return core.sign("a", "b", math.huge) end },
      { "non-digit string", function() return core.sign("a", "b", "12a") end },
      { "empty string", function() return core.sign("a", "b", "") end },
      { "signed string", function() return core.sign("a", "b", "-1") end },
      { "plus-signed string", function() return core.sign("a", "b", "+1") end },
      { "decimal string", function() return core.sign("a", "b", "1.5") end },
      { "exponent string", function() return core.sign("a", "b", "1e3") end },
      { "hex string", function() return core.sign("a", "b", "0x10") end },
      { "space-padded string", function() return core.sign("a", "b", " 1630468800") end },
      { "trailing newline", function() return core.sign("a", "b", "1630468800\n") end },
      { "21-digit string", function() return core.sign("a", "b", "123456789012345678901") end },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        assert.has_error(c[2])
      end)
    end

    it("still works after misuse", function()
      pcall(core.sign, nil, nil, nil)
      assert.are.equal("05d7a50893e22a5c4bb3216ae3396c7c",
        core.sign("bDqJFiq9", "7bz1lzh9", 1630468800))
    end)
  end)
end)
