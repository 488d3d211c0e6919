-- Any Lua value anywhere gives a clear error (nil, "<path>: <reason>", path, code) or
-- valid JSON, never a crash; misuse (non-table task, bad opts) raises; the module keeps
-- working after every error.
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local function fail(task, field, code, opts) return H.fail(core, task, opts, field, code) end
local function prefix(p) return { prefix = p } end

local function with(k, v)
  local t = H.base_task()
  t[k] = v
  return t
end

local function row_task(row)
  local t = H.base_task()
  t.numberInfoList = { row }
  return t
end

local function nested(depth, as_array)
  local root = {}
  local cur = root
  for _ = 1, depth do
    local nxt = {}
    if as_array then cur[1] = nxt else cur.a = nxt end
    cur = nxt
  end
  return root
end

describe("bad input", function()
  describe("values that have no JSON form", function()
    local values = {
      { "a function", function() end },
      { "a C function", print },
      { "a coroutine", coroutine.create(function() end) },
      { "a full userdata (io.stdout)", io.stdout },
    }
    if H.is_luajit then
      local ffi = require("ffi")
      values[#values + 1] = { "an FFI cdata", ffi.new("int[1]") }
      values[#values + 1] = { "an FFI pointer", ffi.cast("void *", 1) }
    end
    for _, c in ipairs(values) do
      describe(c[1], function()
        it("as an unknown top-level field", function()
          fail(with("extra", c[2]), "extra")
        end)
        it("nested in an unknown field", function()
          fail(with("extra", { list = { 1, { deep = c[2] } } }), "extra.list[2].deep")
        end)
        it("as an unknown row field", function()
          fail(row_task({ calleeNumber = "123456", cb = c[2] }), "numberInfoList[1].cb")
        end)
        it("as a known field (taskName, text1, agentId, recallFlow)", function()
          fail(with("taskName", c[2]), "taskName", -22)
          fail(row_task({ calleeNumber = "123456", text1 = c[2] }), "numberInfoList[1].text1", -22)
          fail(with("agentId", c[2]), "agentId", -22)
          fail(with("recallFlow", c[2]), "recallFlow", -22)
        end)
        it("as a numberInfoList row", function()
          fail(with("numberInfoList", { { calleeNumber = "123456" }, c[2] }), "numberInfoList[2]", -22)
        end)
        it("as the numberInfoList itself", function()
          fail(with("numberInfoList", c[2]), "numberInfoList", -22)
        end)
      end)
    end

    it("a laaffic.body userdata as a value", function()
      local body = core.encode_body(H.base_task())
      fail(with("extra", body), "extra")
      body:close()
    end)
  end)

  describe("tables that have no JSON form", function()
    it("a cyclic table in an unknown field", function()
      local t = {}
      t.self = t
      fail(with("extra", t), prefix("extra"))
    end)
    it("a cyclic array in an unknown field", function()
      local t = {}
      t[1] = t
      fail(with("extra", t), prefix("extra"))
    end)
    it("a cycle through two tables", function()
      local a, b = {}, {}
      a.b, b.a = b, a
      fail(with("extra", { a = a }), prefix("extra"))
    end)
    it("a cyclic numberInfoList row", function()
      local row = { calleeNumber = "123456" }
      row.me = row
      fail(row_task(row), prefix("numberInfoList[1]"))
    end)
    it("a numberInfoList containing itself", function()
      local list = { { calleeNumber = "123456" } }
      list[2] = list
      fail(with("numberInfoList", list), prefix("numberInfoList[2]"))
    end)
    it("a task containing itself in an unknown field", function()
      local t = H.base_task()
      t.me = t
      fail(t, prefix("me"))
    end)
    it("a cycle is named as one, at the first repeat, not after 64 levels", function()
      local t = {}
      t.self = t
      local body, msg = core.encode(with("extra", t))
      assert.is_nil(body)
      assert.equal("extra.self: contains itself (a reference cycle)", msg)
      local a = { list = {} }
      a.list[1] = { back = a }
      body, msg = core.encode(with("extra", a))
      assert.is_nil(body)
      assert.equal("extra.list[1].back: contains itself (a reference cycle)", msg)
    end)
    it("a table shared many times over is refused before its output explodes", function()
      -- 2^40 leaves if written out; refused after a million tables
      local t = { 1 }
      for _ = 1, 40 do t = { a = t, b = t } end
      local body, msg = core.encode(with("extra", t))
      assert.is_nil(body)
      assert.truthy(msg:find("more than 1000000 tables", 1, true), msg)
    end)
    it("the same table shared (not a cycle) is written each time", function()
      local shared = { k = 1 }
      local json = assert(core.encode(with("extra", { a = shared, b = { shared, shared } })))
      assert.truthy(json:find('"extra":{"a":{"k":1},"b":[{"k":1},{"k":1}]}', 1, true), json)
    end)
    it("an __index that raises on the task or opts is never called", function()
      local t = setmetatable(H.base_task(), { __index = function() error("trap") end })
      local opts = setmetatable({}, { __index = function() error("trap") end })
      assert.is_string((core.encode(t, opts)))
    end)
    it("a recallFlow node containing the recallFlow", function()
      local t = H.recall_task()
      t.recallFlow.nodeList[1].back = t.recallFlow
      fail(t, prefix("recallFlow.nodeList[1]"))
    end)

    it("a sparse numberInfoList {[1]=row, [3]=row}", function()
      local row = { calleeNumber = "123456" }
      fail(with("numberInfoList", { [1] = row, [3] = row }), prefix("numberInfoList"))
    end)
    it("a sparse numberInfoList {[1], [2], [4]}", function()
      local row = { calleeNumber = "123456" }
      fail(with("numberInfoList", { row, row, nil, row }), prefix("numberInfoList"))
    end)
    it("a numberInfoList starting at 0", function()
      local row = { calleeNumber = "123456" }
      fail(with("numberInfoList", { [0] = row, row }), prefix("numberInfoList"))
    end)
    it("a numberInfoList with only a huge index (no huge allocation)", function()
      fail(with("numberInfoList", { [200000] = { calleeNumber = "123456" } }), prefix("numberInfoList"))
      fail(with("numberInfoList", { [2 ^ 40] = { calleeNumber = "123456" } }), prefix("numberInfoList"))
    end)
    it("a mixed numberInfoList (an extra string key)", function()
      local row = { calleeNumber = "123456" }
      fail(with("numberInfoList", { row, row, note = "x" }), prefix("numberInfoList"))
    end)
    it("a mixed table in an unknown field", function()
      fail(with("extra", { 1, 2, x = 3 }), prefix("extra"))
    end)
    it("a sparse table in an unknown field", function()
      fail(with("extra", { [1] = 1, [3] = 3 }), prefix("extra"))
      fail(with("extra", { [1e9] = true }), prefix("extra"))
      fail(with("extra", { [-1] = true }), prefix("extra"))
      fail(with("extra", { [0] = true }), prefix("extra"))
    end)
    it("a sparse allowSendTime / nodeList / recallIntent", function()
      local t = H.recall_task()
      t.recallFlow.recallIntent = { [1] = "99999", [3] = "99998" }
      fail(t, prefix("recallFlow.recallIntent"))
      t = H.recall_task()
      t.recallFlow.nodeList = { [1] = { agentId = 1 }, [3] = { agentId = 1 } }
      fail(t, prefix("recallFlow.nodeList"))
      t = H.base_task()
      t.allowSendTime = { [2] = { strTime = "08:00", endTime = "09:00" } }
      fail(t, prefix("allowSendTime"))
    end)
    it("a table as a key", function()
      fail(with("extra", { [{}] = 1 }), prefix("extra"))
    end)
    it("a boolean key", function()
      fail(with("extra", { [true] = 1 }), prefix("extra"))
      fail(row_task({ calleeNumber = "123456", [false] = 1 }), prefix("numberInfoList[1]"))
    end)
    it("a float key", function()
      fail(with("extra", { [1.5] = 1 }), prefix("extra"))
      fail(with("extra", { a = 1, [2.5] = 1 }), prefix("extra"))
    end)
    it("a function key", function()
      fail(with("extra", { [print] = 1 }), prefix("extra"))
    end)
    it("a non-string key at the top level of the task", function()
      local t = H.base_task()
      t[1] = "x"
      fail(t, "task")
      t = H.base_task()
      t[true] = "x"
      fail(t, "task")
    end)
    it("a non-string key in a row", function()
      fail(row_task({ calleeNumber = "123456", [7] = "x" }), prefix("numberInfoList[1]"))
    end)
    it("integer keys written as a float are still a sequence", function()
      local json = H.encode_ok(core, with("extra", { [1.0] = "a", [2.0] = "b" }))
      H.assert_raw(json, "extra", '["a","b"]')
    end)
  end)

  describe("size and depth", function()
    it("a 10 MB text1 is truncated to 30 characters #slow", function()
      local _, info, d = H.encode_ok(core, row_task({ calleeNumber = "123456",
        text1 = string.rep("abcdefghij", 1024 * 1024) }))
      assert.are.equal("abcdefghijabcdefghijabcdefghij", d.numberInfoList[1].text1)
      assert.are.equal(1, info.truncated)
      assert.is_true(info.bytes < 200)
    end)
    it("a 10 MB multi-byte text1 is truncated on a character boundary #slow", function()
      local _, info, d = H.encode_ok(core, row_task({ calleeNumber = "123456",
        text1 = string.rep("\226\130\172", 3500000) }))
      assert.are.equal(string.rep("\226\130\172", 30), d.numberInfoList[1].text1)
      assert.are.equal(1, info.truncated)
    end)
    it("a 10 MB unknown string encodes #slow", function()
      local big = string.rep("0123456789", 1024 * 1024)
      local json, info, d = H.encode_ok(core, with("blob", big))
      assert.are.equal(big, d.blob)
      assert.is_true(info.bytes > #big)
      assert.are.equal(#json, info.bytes)
    end)
    it("nesting 50 deep in an unknown field is fine", function()
      local _, _, d = H.encode_ok(core, with("extra", nested(50)))
      local cur, n = d.extra, 0
      while cur.a do cur, n = cur.a, n + 1 end
      assert.are.equal(50, n)
      H.encode_ok(core, with("extra", nested(50, true)))
    end)
    it("nesting 1000 deep in an unknown field is an error naming the field", function()
      fail(with("extra", nested(1000)), prefix("extra"))
      fail(with("extra", nested(1000, true)), prefix("extra"))
    end)
    it("nesting 1000 deep in a row is an error naming the row", function()
      fail(row_task({ calleeNumber = "123456", x = nested(1000) }), prefix("numberInfoList[1]"))
    end)
    it("nesting 100000 deep (no C stack overflow)", function()
      fail(with("extra", nested(100000)), prefix("extra"))
    end)
  end)

  describe("misuse raises", function()
    local non_tables = { nil, "task", 42, true, print, io.stdout }
    for i = 1, 6 do
      local v = non_tables[i]
      it("task = " .. tostring(v):gsub("0x%x+", "…") .. " (" .. type(v) .. ")", function()
        assert.has_error(function() core.encode(v) end)
        assert.has_error(function() core.encode_body(v) end)
        H.assert_healthy(core)
      end)
    end
    it("task = cjson.null", function()
      assert.has_error(function() core.encode(cjson.null) end)
      assert.has_error(function() core.encode_body(cjson.null) end)
    end)
    it("no argument at all", function()
      assert.has_error(function() core.encode() end)
      assert.has_error(function() core.encode_body() end)
    end)

    local bad_opts = {
      { "a number", 42 },
      { "a string", "truncate" },
      { "a boolean", true },
      { "require_texts as a string", { require_texts = "1,2,3" } },
      { "require_texts as a number", { require_texts = 1 } },
      { "require_texts = {0}", { require_texts = { 0 } } },
      { "require_texts = {11}", { require_texts = { 11 } } },
      { "require_texts = {1.5}", { require_texts = { 1.5 } } },
      { 'require_texts = {"1"}', { require_texts = { "1" } } },
      { "truncate as a string", { truncate = "no" } },
      { "truncate as a number", { truncate = 0 } },
    }
    for _, c in ipairs(bad_opts) do
      it("opts = " .. c[1], function()
        assert.has_error(function() core.encode(H.base_task(), c[2]) end)
        assert.has_error(function() core.encode_body(H.base_task(), c[2]) end)
        H.assert_healthy(core)
      end)
    end
    it("opts = nil and opts = {} are fine", function()
      H.encode_ok(core, H.base_task(), nil)
      H.encode_ok(core, H.base_task(), {})
      H.encode_ok(core, H.base_task(), { require_texts = {} })
    end)
  end)

  describe("metatables", function()
    it("a task whose __index raises: an error or a result, never a crash", function()
      local t = setmetatable(H.base_task(), { __index = function() error("boom") end })
      local ok, r1, msg = pcall(core.encode, t)
      if ok and r1 == nil then assert.are.equal("string", type(msg)) end
      if ok and r1 ~= nil then assert.is_truthy(pcall(cjson.decode, r1)) end
      H.assert_healthy(core)
    end)
    it("a row with a __pairs / __index metatable: no crash", function()
      local row = setmetatable({ calleeNumber = "123456" }, {
        __index = function(_, k) return "from-index-" .. tostring(k) end,
        __pairs = function() error("pairs boom") end,
      })
      local ok, r1 = pcall(core.encode, row_task(row))
      if ok and r1 ~= nil then
        local d = cjson.decode(r1)
        assert.are.equal("123456", d.numberInfoList[1].calleeNumber)
      end
      H.assert_healthy(core)
    end)
  end)

  describe("an error half-way through a 200k-row encode", function()
    it("names numberInfoList[150000], frees its buffer (no Lua memory growth) #memory", function()
      local good = { calleeNumber = "919777654321", text1 = "David", text2 = "5000" }
      local list = {}
      for i = 1, 200000 do list[i] = good end
      list[150000] = { calleeNumber = "12345" }
      local t = H.base_task()
      t.numberInfoList = list
      local baseline
      for round = 1, 4 do
        local r, msg, field, code = core.encode(t)
        assert.is_nil(r)
        assert.are.equal("numberInfoList[150000].calleeNumber", field)
        assert.are.equal("numberInfoList[150000].calleeNumber: ", msg:sub(1, #field + 2))
        assert.are.equal(-21, code)
        local b, _, bfield, bcode = core.encode_body(t)
        assert.is_nil(b)
        assert.are.equal("numberInfoList[150000].calleeNumber", bfield)
        assert.are.equal(-21, bcode)
        collectgarbage()
        collectgarbage()
        if round == 1 then baseline = collectgarbage("count") end
      end
      local growth = collectgarbage("count") - baseline
      assert.is_true(growth < 256, ("Lua heap grew by %.1f KB"):format(growth))
      H.assert_healthy(core)
    end)

    it("the same list with the bad row fixed encodes #slow", function()
      local good = { calleeNumber = "919777654321" }
      local list = {}
      for i = 1, 200000 do list[i] = good end
      local t = H.base_task()
      t.numberInfoList = list
      local json, info = core.encode(t)
      assert.are.equal("string", type(json), tostring(info))
      assert.are.equal(200000, info.rows)
    end)
  end)
end)
