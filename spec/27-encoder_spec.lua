-- core.encoder: a task encoded in steps of n rows (enc:step(n)) ends exactly as
-- core.encode_body(task, opts) does: the same bytes, every info field, the warnings in
-- their order, the rejects, opts.problems, and the same failure (message, field, code,
-- where), whatever the step size. On LuaJIT the rows go through the walker
-- (laaffic.jit_rows), which a slice must stop and start again.
local core = require("laaffic.core")

local STEPS = { 1, 7, 10000, math.huge }

local function pack(...) return { n = select("#", ...), ... } end

-- rows i..j of a plain list: calleeNumber, text1, text2
local function rows(n, f)
    local t = {}
    for i = 1, n do
        t[i] = { calleeNumber = string.format("9197%08d", i), text1 = "name " .. i,
                 text2 = tostring(1000 + i) }
        if f then f(i, t[i]) end
    end
    return t
end

local RECALL = { recallType = 0, recallInterval = 5, recallNum = 1, nodeList = { { agentId = 9 } } }

local function task(list, extra)
    local t = { appId = "app", taskName = "enc-spec", agentId = 110, maxCalls = 10,
                numberInfoList = list, recallFlow = RECALL }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
end

-- What an encode returns, with the body as its bytes and the opts tables it filled.
local function outcome(r, opts)
    if r[1] ~= nil then r[1] = tostring(r[1]) end
    return { r = r, rejects = opts and opts.rejects, problems = opts and opts.problems }
end

-- make() -> task, opts: fresh each time (a CSV reader is read once; rejects fill up).
local function one_call(make)
    local t, opts = make()
    return outcome(pack(core.encode_body(t, opts)), opts)
end

local function stepped(make, n)
    local t, opts = make()
    local e = core.encoder(t, opts)
    t = nil -- luacheck: ignore (the encoder must keep the task alive)
    local r
    local steps = 0
    repeat
        r = pack(e:step(n))
        steps = steps + 1
        if steps % 5000 == 0 then collectgarbage() end
    until r[1] ~= true
    return outcome(r, opts), steps
end

local function same_as_one_call(make)
    local want = one_call(make)
    for _, n in ipairs(STEPS) do
        local got = stepped(make, n)
        assert.are.same(want, got, "step " .. n)
    end
    return want
end

local function csv(text, copts)
    return function() return assert(core.csv_string(text, copts)) end
end

local function csv_text(n, bad)
    local out = { "calleeNumber,text1,text2" }
    for i = 1, n do
        out[#out + 1] = string.format("9197%08d,name %d,%d", bad and bad[i] and 123 or i, i, i)
    end
    return table.concat(out, "\n") .. "\n"
end

describe("core.encoder", function()
    it("ends with the bytes and info of encode_body, for any step size", function()
        local want = same_as_one_call(function() return task(rows(25)) end)
        assert.are.equal(25, want.r[2].rows)
        -- and the rows were really written over several steps
        local _, steps = stepped(function() return task(rows(25)) end, 7)
        assert.are.equal(4, steps)
    end)

    it("fails on a bad row early or late in the list as encode_body does", function()
        for _, at in ipairs{ 1, 2, 8, 24, 25 } do
            local want = same_as_one_call(function()
                return task(rows(25, function(i, r) if i == at then r.calleeNumber = "12" end end))
            end)
            assert.are.equal("numberInfoList[" .. at .. "].calleeNumber", want.r[3])
        end
    end)

    it("fails on a bad field before or after numberInfoList", function()
        same_as_one_call(function() return task(rows(20), { taskName = "x" }) end)
        local want = same_as_one_call(function()
            return task(rows(20), { recallFlow = { recallType = 0, recallInterval = 5,
                                                   recallNum = 2, nodeList = { { agentId = 9 } } } })
        end)
        assert.are.equal("recallFlow.nodeList", want.r[3])
        same_as_one_call(function()
            return task(rows(20), { recallFlow = { recallType = 7 } })
        end)
    end)

    it("lists every bad field in opts.problems, rows and recallFlow included", function()
        local function make(extra, at)
            return function()
                local t = task(rows(30, function(i, r)
                    if i == at then r.text1 = 5 < 0 end -- a boolean text
                end), extra)
                return t, { problems = {} }
            end
        end
        local bad_recall = { recallType = 3, recallInterval = 0, recallNum = 1, nodeList = {} }
        local want = same_as_one_call(make({ taskName = "x", recallFlow = bad_recall, zzz = {} }, 29))
        assert.are.equal(3, #want.problems)
        assert.are.same({ "taskName", "numberInfoList[29].text1", "recallFlow.nodeList" },
                        { want.problems[1].field, want.problems[2].field, want.problems[3].field })
        same_as_one_call(make({ recallFlow = bad_recall }, 1))
        same_as_one_call(make({}, 30))
        same_as_one_call(make({ numberInfoList = "nope" }))
    end)

    it("puts bad rows in opts.rejects, up to max_rejects, and counts them", function()
        local function bad(i, r)
            if i % 9 == 0 then r.calleeNumber = "1" end
            if i % 13 == 0 then r.text3 = {} end
        end
        local want = same_as_one_call(function() return task(rows(60, bad)), { rejects = {} } end)
        assert.are.equal(10, want.r[2].rejected)
        same_as_one_call(function() return task(rows(60, bad)), { rejects = {}, max_rejects = 3 } end)
        same_as_one_call(function()
            return task(rows(10, function(_, r) r.calleeNumber = "1" end)), { rejects = {} }
        end)
    end)

    it("keeps the warnings in their order, and strict makes the first an error", function()
        local function make(strict)
            return function()
                local t = task(rows(30), { appId = "", maxCalls = 0,
                    recallFlow = { recallType = 3, recallInterval = 5, recallNum = 1,
                                   nodeList = { { agentId = 9 } } } })
                return t, { strict = strict }
            end
        end
        local want = same_as_one_call(make(false))
        assert.are.same({ "appId", "maxCalls", "recallFlow.recallIntent" },
                        { want.r[2].warnings[1].field, want.r[2].warnings[2].field,
                          want.r[2].warnings[3].field })
        same_as_one_call(make(true))
        same_as_one_call(function() return task({}), { strict = true } end)
    end)

    it("truncates or refuses long texts, and checks require_texts", function()
        local long = string.rep("é", 40)
        local function make(opts)
            return function()
                return task(rows(40, function(i, r) if i % 3 == 0 then r.text2 = long end end)), opts
            end
        end
        assert.are.equal(13, same_as_one_call(make(nil)).r[2].truncated)
        same_as_one_call(make({ truncate = false }))
        same_as_one_call(make({ require_texts = { 1, 3 } }))
        same_as_one_call(make({ require_texts = { 1, 3 }, rejects = {} }))
    end)

    it("writes a part of a longer list (part, max_rows) and the split name last", function()
        for _, part in ipairs{ 1, 2, 3, 4 } do
            same_as_one_call(function() return task(rows(25)), { max_rows = 10, part = part } end)
        end
        same_as_one_call(function() return task(rows(25)), { max_rows = 10 } end)
        same_as_one_call(function()
            return task(rows(25), { taskName = string.rep("n", 60) }), { max_rows = 10, part = 2 }
        end)
    end)

    it("handles an empty, a missing, a null or a strange list", function()
        same_as_one_call(function() return task({}) end)
        same_as_one_call(function() return task(nil) end)
        same_as_one_call(function() return task({ [1] = { calleeNumber = "919777654321" }, [3] = {} }) end)
        same_as_one_call(function()
            -- rows the walker leaves to C: unknown keys, null, a number text, a bad row
            return task(rows(30, function(i, r)
                if i % 4 == 0 then r.extra = { a = i } end
                if i % 5 == 0 then r.text3 = 7.5 end
                if i % 7 == 0 then r.text4 = "\"quoted\"\n" end
            end)), { rejects = {} }
        end)
    end)

    it("reads CSV sources: good, a bad line, rejects, duplicates, more than max_rows", function()
        same_as_one_call(function() return task(csv(csv_text(25))()) end)
        same_as_one_call(function() return task(csv(csv_text(25, { [3] = true }))()) end)
        same_as_one_call(function()
            return task(csv(csv_text(25, { [3] = true, [20] = true }))()), { rejects = {} }
        end)
        local dup = csv_text(20) .. csv_text(20):gsub("^[^\n]*\n", "")
        local want = same_as_one_call(function()
            return task(csv(dup, { dedupe = true })())
        end)
        assert.are.equal(20, want.r[2].duplicates)
        want = same_as_one_call(function()
            return task(csv(csv_text(25))()), { max_rows = 10 }
        end)
        assert.is_true(want.r[2].more)
        same_as_one_call(function() return task(csv('calleeNumber\n"919777654321\n')()) end)
        same_as_one_call(function()
            return task(csv(csv_text(10, { [4] = true }))(), { taskName = "x" }), { problems = {} }
        end)
    end)

    it("reads every part of a CSV source in turn as encode_body does", function()
        local text = csv_text(35, { [12] = true })
        local function parts(n)
            local src = assert(core.csv_string(text))
            local out = {}
            repeat
                local t, opts = task(src), { max_rows = 10, rejects = {} }
                local r
                if n then
                    local e = core.encoder(t, opts)
                    repeat r = pack(e:step(n)) until r[1] ~= true
                else
                    r = pack(core.encode_body(t, opts))
                end
                out[#out + 1] = outcome(r, opts)
            until not (r[2] and r[2].more)
            return out
        end
        local want = parts()
        assert.are.equal(4, #want)
        for _, n in ipairs(STEPS) do assert.are.same(want, parts(n)) end
    end)

    it("encodes a 200,000-row list and a 200,000-row CSV as one call does", function()
        local big = rows(200000, function(i, r) if i == 150001 then r.text5 = {} end end)
        local function make() return task(big), { rejects = {} } end
        local want = one_call(make)
        assert.are.equal(199999, want.r[2].rows)
        for _, n in ipairs{ 7, 10000, math.huge } do assert.are.same(want, stepped(make, n)) end
        local text = csv_text(200000)
        want = one_call(function() return task(csv(text)()) end)
        assert.are.equal(200000, want.r[2].rows)
        assert.are.same(want, stepped(function() return task(csv(text)()) end, 10000))
        -- a bad row late in the list, without rejects: the error names it
        big[150001].text5 = nil
        big[150001].calleeNumber = "1"
        want = one_call(function() return task(big) end)
        assert.are.equal("numberInfoList[150001].calleeNumber", want.r[3])
        assert.are.same(want, stepped(function() return task(big) end, 10000))
    end)

    it("keeps encoders apart: two interleaved, each stepped from another coroutine", function()
        local a, b = task(rows(50)), task(rows(40), { taskName = "other" })
        local ea, eb = core.encoder(a), core.encoder(b)
        local ra, rb
        while not ra or not rb do
            if not ra then
                local r = pack(coroutine.wrap(function() return ea:step(3) end)())
                if r[1] ~= true then ra = outcome(r) end
            end
            if not rb then
                local r = pack(eb:step(4))
                if r[1] ~= true then rb = outcome(r) end
            end
        end
        assert.are.same(outcome(pack(core.encode_body(a))), ra)
        assert.are.same(outcome(pack(core.encode_body(b))), rb)
    end)

    it("checks its arguments as encode_body does", function()
        for _, args in ipairs{ { nil }, { "x" }, { {}, 5 }, { {}, { max_rows = 0 } },
                                { {}, { rejects = 1 } }, { {}, { truncate = "no" } } } do
            local ok1, e1 = pcall(core.encode_body, args[1], args[2])
            local ok2, e2 = pcall(core.encoder, args[1], args[2])
            assert.is_false(ok1)
            assert.is_false(ok2)
            assert.are.equal((e1:gsub("encode_body'", "encoder'")), e2)
        end
        local e = core.encoder(task(rows(3)))
        for _, n in ipairs{ 0, -1, 1.5, "x" } do
            assert.has_error(function() e:step(n) end)
        end
        assert.has_error(function() e.step({}, 1) end)
    end)
end)

describe("core.encoder's lifetime", function()
    it("keeps what it needs when the caller lets go between steps", function()
        local want = one_call(function() return task(rows(40)), { rejects = {}, problems = {} } end)
        local t, opts = task(rows(40)), { rejects = {}, problems = {} }
        local e = core.encoder(t, opts)
        assert.is_true(e:step(3))
        t.numberInfoList = nil -- the encoder reads the list it started with
        t, opts = nil, nil -- luacheck: ignore
        local r
        repeat
            collectgarbage()
            collectgarbage()
            r = pack(e:step(3))
        until r[1] ~= true
        want.rejects, want.problems = nil, nil
        assert.are.same(want, outcome(r))
        -- a CSV reader only the encoder still holds
        local text = csv_text(30)
        want = one_call(function() return task(csv(text)()) end)
        e = core.encoder(task(csv(text)()))
        repeat
            collectgarbage()
            r = pack(e:step(4))
        until r[1] ~= true
        assert.are.same(want, outcome(r))
    end)

    it("frees an encoder dropped half way, and leaves the body it returned alone", function()
        for _, make in ipairs{
            function() return task(rows(50)), { rejects = {} } end,
            function() return task(rows(50, function(i, r) if i == 40 then r.calleeNumber = "1" end end)) end,
            function() return task(csv(csv_text(50))()) end,
        } do
            local e = core.encoder(make())
            assert.is_true(e:step(10))
            e = nil -- luacheck: ignore
            collectgarbage()
            collectgarbage()
        end
        local e = core.encoder(task(rows(20)))
        local body = e:step(100)
        e = nil -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        assert.are.equal(core.encode(task(rows(20))), tostring(body))
    end)

    it("leaves a CSV reader dropped half way usable, and fails cleanly on one closed", function()
        local src = assert(core.csv_string(csv_text(30)))
        local e = core.encoder(task(src))
        assert.is_true(e:step(5))
        e = nil -- luacheck: ignore
        collectgarbage()
        local body, info = core.encode_body(task(src))
        assert.is_not_nil(body, info)
        assert.are.equal(25, info.rows) -- the rows the dropped encoder did not read
        src = assert(core.csv_string(csv_text(30), { name = "list.csv" }))
        e = core.encoder(task(src))
        assert.is_true(e:step(5))
        src:close()
        local r = pack(e:step(5))
        assert.is_nil(r[1])
        assert.matches("^list%.csv:%d+: the CSV source is closed", r[2])
        assert.are.equal(-21, r[4])
    end)

    it("survives a task changed between steps (memory-safe; the result is then undefined)", function()
        local function list(t) return type(t.numberInfoList) == "table" and t.numberInfoList or {} end
        local changes = {
            function(t) for i = #list(t), 5, -1 do list(t)[i] = nil end end,
            function(t) list(t)[30] = "not a row" end,
            function(t) list(t)[31] = { calleeNumber = {}, zz = { 1, 2 } } end,
            function(t) for i = 1, 40 do list(t)[i] = nil end end,
            function(t) t.recallFlow = { recallType = 3 } end,
            function(t) t.taskName, t.extra = nil, { nested = { t } } end,
            function(t) t.numberInfoList = nil end,
        }
        math.randomseed(27)
        for round = 1, 60 do
            local t = task(rows(60), { more = { a = 1 } })
            local e = core.encoder(t, round % 2 == 0 and { rejects = {}, problems = {} } or nil)
            local r
            repeat
                r = pack(e:step(1 + round % 7))
                changes[math.random(#changes)](t)
                collectgarbage("step", 10)
            until r[1] ~= true
            assert.is_true(r[1] == nil or #r[1] == r[2].bytes)
            assert.is_true(r[1] ~= nil or type(r[2]) == "string")
        end
    end)

    it("refuses a step inside a running step (a finalizer's), never writes past the end", function()
        -- A finalizer that runs while a step starts (the GC runs on the stack growth of a
        -- fresh coroutine) steps the same encoder to its end: that nested step must raise,
        -- or the outer one goes on writing rows after a body already handed out. Whether a
        -- finalizer lands in that window depends on the collector's phase, so the rounds
        -- run in a fresh interpreter, whose small heap makes them land the same way each
        -- run (this process's heap depends on the specs that ran before).
        local script = os.tmpname()
        local f = assert(io.open(script, "w"))
        f:write([=[
local core = require("laaffic.core")
local function pack(...) return { n = select("#", ...), ... } end
local function task()
    local list = {}
    for i = 1, 5 do list[i] = { calleeNumber = string.format("9197%08d", i) } end
    return { appId = "app", taskName = "enc-spec", agentId = 110, numberInfoList = list }
end
local function finalized(mt)
    if _VERSION == "Lua 5.1" then getmetatable(newproxy(true)).__gc = mt.__gc
    else setmetatable({}, mt) end
end
local function gc_params(pause, mul, size)
    if _VERSION == "Lua 5.1" then
        collectgarbage("setpause", pause); collectgarbage("setstepmul", mul)
    else collectgarbage("incremental", pause, mul, size) end
end
local inside, good = 0, core.encode(task())
for round = 1, 60 do
    local e = core.encoder(task())
    assert(e:step(1) == true)
    local co, armed, nested
    local mt = { __gc = function()
        if armed and not nested and coroutine.running() == co then
            nested = pack(pcall(e.step, e, 1e9))
        end
    end }
    co = coroutine.create(function() return pcall(e.step, e, 1) end)
    for _ = 1, round % 50 + 1 do finalized(mt) end
    gc_params(round % 3 * 50, 100 + round % 7 * 100, round % 5)
    for _ = 1, round % 13 do collectgarbage("step", 0) end
    armed = true
    local ok = pack(coroutine.resume(co))
    armed = false
    gc_params(200, _VERSION == "Lua 5.1" and 200 or 100, 13)
    if nested then
        inside = inside + 1
        if nested[1] or not tostring(nested[2]):find("a step is running", 1, true) then
            io.write("nested step: ", tostring(nested[1]), " ", tostring(nested[2]), "\n")
        end
    end
    if not (ok[1] and ok[2] and ok[3]) then io.write("outer step: ", tostring(ok[3]), "\n") end
    local r = pack(e:step(1e9))
    while r[1] == true do r = pack(e:step(1e9)) end
    if tostring(r[1]) ~= good then io.write("body: ", tostring(r[1]), "\n") end
end
io.write("inside ", inside, "\n")
]=])
        f:close()
        local lua = type(rawget(_G, "jit")) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
        local p = assert(io.popen("LUA_PATH='" .. package.path .. "' LUA_CPATH='" .. package.cpath ..
                                  "' " .. lua .. " " .. script .. " 2>&1"))
        local out = p:read("a")
        p:close()
        os.remove(script)
        local inside = tonumber(out:match("inside (%d+)\n$"))
        assert(inside, out)
        assert.are.equal("inside " .. inside .. "\n", out) -- nothing else went wrong
        -- Lua 5.4 reaches the window in many rounds; LuaJIT's collector seldom does
        assert.is_true(inside > 0 or _VERSION == "Lua 5.1", "no finalizer ran inside a step")
    end)

    it("raises on a step after the end, after a failure, or with a bad row count", function()
        local e = core.encoder(task(rows(3)))
        assert.is_not_nil((e:step(3)))
        assert.has_error(function() e:step(1) end,
                         "laaffic.encoder: step after the end (the encode has returned its result)")
        e = core.encoder(task(rows(3), { taskName = "x" }))
        assert.is_nil((e:step(2)))
        assert.has_error(function() e:step(1) end)
        e = core.encoder(task(rows(30)))
        assert.is_true(e:step(10))
        assert.has_error(function() e:step(0) end)
        assert.is_true(e:step(10)) -- a refused count changes nothing
        assert.are.equal(core.encode(task(rows(30))), tostring((e:step(10))))
    end)
end)
