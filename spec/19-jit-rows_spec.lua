-- The LuaJIT row walker (lua/laaffic/jit_rows.lua): on LuaJIT, numberInfoList rows are
-- read by compiled Lua and written by the C encoder through the FFI. It must change
-- nothing but speed: every output, error, field path, code, reject list and info is the
-- same with the walker on and off. On Lua 5.4 there is no walker.
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local pack = table.pack or function(...) return { n = select("#", ...), ... } end

-- every result of one call, rejects included, as comparable data
local function run(fn, task, opts)
  local o
  if opts then
    o = {}
    for k, v in pairs(opts) do o[k] = v end
    if opts.rejects then o.rejects = {} end
  end
  local r = pack(pcall(fn, task, o))
  if r[1] and type(r[2]) == "userdata" then r[2] = tostring(r[2]) end
  return { r = r, rejects = o and o.rejects }
end

local function both(fn, task, opts)
  core.jit_rows(false)
  local off = run(fn, task, opts)
  core.jit_rows(true)
  local on = run(fn, task, opts)
  return off, on
end

local function assert_same_both(task, opts, label)
  for _, name in ipairs({ "encode", "encode_body" }) do
    local off, on = both(core[name], task, opts)
    H.assert_same(off, on, name .. " " .. label)
  end
end

-- a small seeded generator (the same cases on every run and runtime)
local seed = 12345
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n + 1
end

local CALLEES = { "919777654321", "12345", "1234567890123456789", "91977765432a", "",
                  "123456", "123456789012345678" }
local TEXTS = { "David", "", "5000", ("x"):rep(30), ("y"):rep(31), "caf\195\169 \226\130\172",
                "quote\" back\\ ctl\1\31", "\255 bad utf8", ("\228\189\160"):rep(31) }

local function random_row()
  local k = rnd(20)
  if k == 1 then return "not a row" end
  if k == 2 then return {} end
  local row = { calleeNumber = CALLEES[rnd(#CALLEES)] }
  if k == 3 then row.calleeNumber = 919777654321 end
  for t = 1, 10 do
    if rnd(3) == 1 then
      local v = TEXTS[rnd(#TEXTS)]
      local c = rnd(12)
      if c == 1 then v = 5000 elseif c == 2 then v = 0.5 elseif c == 3 then v = cjson.null
      elseif c == 4 then v = true elseif c == 5 then v = {} end
      row["text" .. t] = v
    end
  end
  if k == 4 then row.extra = "passed through" end
  if k == 5 then row[1] = "an index key" end
  if k == 6 then row.text11 = "not a template text" end
  return row
end

local function plain_rows(n)
  local rows = {}
  for i = 1, n do
    rows[i] = { calleeNumber = tostring(919777000000 + i), text1 = "David " .. i, text2 = "5000",
                text3 = "2026-04-01" }
  end
  return rows
end

local function task_of(rows)
  local t = H.base_task()
  t.numberInfoList = rows
  return t
end

describe("jit_rows", function()
  after_each(function() core.jit_rows(true) end)

  it("is in use on LuaJIT and absent on Lua 5.x", function()
    assert.equal(H.is_luajit, core.jit_rows())
    assert.is_false(core.jit_rows(false))
    assert.equal(H.is_luajit, core.jit_rows(true))
  end)

  it("is called, and writes the plain rows itself (LuaJIT)", function()
    if not H.is_luajit then
      assert.not_equal("function", type(require("laaffic.jit_rows")))
      return
    end
    local real = require("laaffic.jit_rows")
    local calls, spans = 0, {}
    package.loaded["laaffic.jit_rows"] = function(list, i, last, e, api, cdef)
      calls = calls + 1
      local stop = real(list, i, last, e, api, cdef)
      spans[#spans + 1] = { i, stop }
      return stop
    end
    core.jit_rows(true) -- found again through package.loaded
    local rows = plain_rows(100)
    rows[40] = { calleeNumber = "919777000040", text1 = cjson.null } -- null: not plain
    local ok, json = pcall(core.encode, task_of(rows))
    package.loaded["laaffic.jit_rows"] = real
    core.jit_rows(true)
    assert.is_true(ok)
    assert.truthy(json)
    -- rows 1..39 by the walker, 40 by the C path, 41..100 by the walker
    assert.same({ { 1, 40 }, { 41, 101 } }, spans)
    assert.equal(2, calls)
    assert.truthy(json:find('"text1":null', 1, true))
  end)

  it("is not called for every row of a list whose rows are seldom plain (LuaJIT)", function()
    if not H.is_luajit then return end
    local real = require("laaffic.jit_rows")
    local calls = 0
    package.loaded["laaffic.jit_rows"] = function(...)
      calls = calls + 1
      return real(...)
    end
    core.jit_rows(true)
    local rows = plain_rows(1000)
    for i = 1, 1000 do rows[i].text2 = cjson.null end -- every row goes to the C path
    local json = core.encode(task_of(rows))
    package.loaded["laaffic.jit_rows"] = real
    core.jit_rows(true)
    assert.truthy(json)
    assert.truthy(calls >= 1 and calls <= 1000 / 64 + 1, calls .. " walker calls")
  end)

  it("gives the same JSON for a 20,000-row plain list", function()
    assert_same_both(task_of(plain_rows(20000)), nil, "plain")
  end)

  it("writes number texts as the C path does, and refuses a number calleeNumber", function()
    local rows = plain_rows(30)
    local nums = { 5000, 0, -1, 0.5, 1 / 3, 1e15, 1e16, 2 ^ 53, -0.0, 123456789012345 }
    for i, v in ipairs(nums) do rows[i].text2 = v end
    rows[20].text3 = 0 / 0
    rows[25].calleeNumber = 919777654321
    assert_same_both(task_of(rows), { rejects = {} }, "numbers")
    local _, on = both(core.encode, task_of(rows), { rejects = {} })
    local got = {}
    for _, r in ipairs(on.rejects) do got[#got + 1] = r.field end
    assert.same({ "numberInfoList[20].text3", "numberInfoList[25].calleeNumber" }, got)
    assert.truthy(on.r[2]:find('"text2":"5000"', 1, true))
  end)

  it("gives the same result for 300 random mixed lists, with every list option", function()
    for case = 1, 300 do
      local rows = {}
      for i = 1, rnd(40) do rows[i] = random_row() end
      local opts
      local o = rnd(6)
      if o == 2 then opts = { rejects = true, max_rejects = rnd(5) - 1 }
      elseif o == 3 then opts = { truncate = false, rejects = true }
      elseif o == 4 then opts = { require_texts = { 1, 2 }, rejects = true }
      elseif o == 5 then opts = { max_rows = rnd(5), part = rnd(3), rejects = true }
      elseif o == 6 then opts = { max_rows = rnd(8), part = 1 } end
      if opts and opts.rejects then opts.rejects = {} end
      assert_same_both(task_of(rows), opts, "case " .. case)
    end
  end)

  it("names the same field for an error in the last of 200,000 rows", function()
    local rows = plain_rows(200000)
    rows[200000].text2 = ("z"):rep(31)
    local off, on = both(core.encode_body, task_of(rows), { truncate = false })
    H.assert_same(off, on, "row 200000")
    assert.equal("numberInfoList[200000].text2", on.r[4])
    assert.is_true(H.assert_healthy(core) ~= false)
  end)

  it("leaves no trace of a row the C side refuses (truncation count, commas)", function()
    local rows = plain_rows(5)
    rows[3].text1 = ("a"):rep(40)           -- cut (truncate on): counted once
    rows[4].text1 = ("b"):rep(40)           -- cut, and then
    rows[4].text2 = "\255"                  -- refused: rejected, its cut not counted
    local opts = { rejects = {} }
    local off, on = both(core.encode, task_of(rows), opts)
    H.assert_same(off, on, "refused row")
    local json, info = on.r[2], on.r[3]
    assert.equal(1, info.truncated)
    assert.equal(4, #cjson.decode(json).numberInfoList)
    assert.equal(4, on.rejects[1].index)
  end)

  it("falls back to the C path when the walker misbehaves (LuaJIT)", function()
    if not H.is_luajit then return end
    local real = require("laaffic.jit_rows")
    local task = task_of(plain_rows(50))
    core.jit_rows(false)
    local want = core.encode(task)
    local bad = {
      function() error("walker failed") end,
      function() return "a string" end,
      function(_, i) return i - 1 end,          -- before the start
      function(_, _, last) return last + 2 end, -- past the end
      function() return 0 / 0 end,
      function(list, i, last, e, api, cdef) real(list, i, last, e, api, cdef); error("after writing") end,
      function(list, i, last, e, api, cdef) real(list, i, last, e, api, cdef); return i end,
      function(list, i, _, e, api, cdef) return real(list, i, i + 9, e, api, cdef) end, -- stops early
    }
    for n, w in ipairs(bad) do
      package.loaded["laaffic.jit_rows"] = w
      core.jit_rows(true)
      local json, err = core.encode(task)
      assert.equal(want, json, "walker " .. n .. ": " .. tostring(err))
    end
    package.loaded["laaffic.jit_rows"] = real
    core.jit_rows(true)
  end)
end)
