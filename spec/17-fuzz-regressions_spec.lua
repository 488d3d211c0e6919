-- Inputs the fuzzers (fuzz/*_fuzz.c) found a broken promise with, kept as regressions:
-- each file in fuzz/regressions/<harness>/ goes through the same public API and the same
-- checks as in its harness, so a spec here fails while the bug is there.
--
--   encode  fuzz/builder.lua turns the bytes into a task (the harness runs the same file in
--           the same Lua 5.4), then builder.run: core.encode and core.encode_body, checked
--           as encode_fuzz.c checks them. <input>.built.txt is the table the input built
--           when it was saved: on Lua 5.4 the spec first checks that the builder still
--           builds exactly that (an edit of builder.lua must not quietly turn a saved input
--           into another test). On LuaJIT the builder makes doubles where 5.4 has integers,
--           so there the input is a related table: it still must not break a promise.
--           An input named timeout-* must also finish both calls within 2 s of CPU time.
--   push    the bytes are the body: push.parse(body) and push.parse(body, small opts), the
--           two calls push_fuzz.c makes, checked by fuzz/push_check.lua.
--   encode_gc  fuzz/encode_gc.lua's run(core, bytes): finalizers that change the task run
--           while it is encoded (the timing is Lua 5.4's; on LuaJIT a looser test);
--           timeout-* inputs get the same CPU-time budget.
--   csv     fuzz/csv_check.lua's run(core, bytes): the whole case csv_fuzz.c runs (the
--           file reader here reads 256 KiB blocks, the harness's 64 bytes: an input
--           about a refill fails in make fuzz-regressions, not necessarily here).
--
-- See fuzz/README.md for how an input gets here.
local core = require("laaffic.core")
local push = require("laaffic.push")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local FUZZ = H.root .. "/fuzz"
local B = dofile(FUZZ .. "/builder.lua")
local P = dofile(FUZZ .. "/push_check.lua")
local C = dofile(FUZZ .. "/csv_check.lua")
local G = dofile(FUZZ .. "/encode_gc.lua")

-- the options of push_fuzz.c's second call (with a fresh invalid list each time)
local SMALL_OPTS = { max_bytes = 4096, max_records = 3, max_depth = 4, utc_offset = 28800 }
local TIMEOUT_BUDGET = 2.0

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

-- the input files of fuzz/regressions/<name>/ (not the .built.txt companions), sorted
local function inputs(name)
    local dir = FUZZ .. "/regressions/" .. name
    local p = assert(io.popen("ls -1 '" .. dir .. "' 2>/dev/null"))
    local out = {}
    for f in p:lines() do
        if not f:find("%.built%.txt$") and f ~= "README.md" then out[#out + 1] = f end
    end
    p:close()
    table.sort(out)
    return dir, out
end

describe("fuzz regressions", function()
    it("has the regression directories", function()
        for _, name in ipairs({ "encode", "encode_gc", "push", "csv" }) do
            local p = io.popen("test -d '" .. FUZZ .. "/regressions/" .. name .. "' && echo yes")
            local yes = p:read("*l")
            p:close()
            assert.equal("yes", yes, "fuzz/regressions/" .. name .. " is missing")
        end
    end)

    describe("encode", function()
        local dir, files = inputs("encode")
        for _, f in ipairs(files) do
            local slow = f:find("^timeout%-") ~= nil
            it(f .. (slow and " #slow" or ""), function()
                local bytes = read(dir .. "/" .. f)
                if not H.is_luajit then
                    local saved = io.open(dir .. "/" .. f .. ".built.txt", "rb")
                    assert.truthy(saved, f .. ".built.txt is missing (lua5.4 fuzz/dump.lua --save " .. f .. ")")
                    local want = saved:read("*a")
                    saved:close()
                    assert.equal(want, B.describe(B.build(bytes)),
                                 "fuzz/builder.lua no longer builds the table this input was saved with")
                end
                local t0 = os.clock()
                local ok, why = B.run(core, bytes)
                local spent = os.clock() - t0
                assert.is_true(ok, why)
                if slow then
                    assert.is_true(spent < TIMEOUT_BUDGET,
                                   ("encode and encode_body took %.1f s of CPU time (budget %.1f s)"):format(
                                       spent, TIMEOUT_BUDGET))
                end
            end)
        end
    end)

    describe("push", function()
        local dir, files = inputs("push")
        for _, f in ipairs(files) do
            it(f, function()
                local body = read(dir .. "/" .. f)
                for _, opts in ipairs({ false, SMALL_OPTS }) do
                    if opts then opts.invalid = {} end -- as push_fuzz.c: a fresh one each time
                    local ok, records, err = pcall(push.parse, body, opts or nil)
                    assert.is_true(ok, "push.parse raised: " .. tostring(records))
                    local good, why = P.check(body, opts or nil, records, err)
                    assert.is_true(good, why)
                end
            end)
        end
    end)

    describe("encode_gc", function()
        local dir, files = inputs("encode_gc")
        for _, f in ipairs(files) do
            local slow = f:find("^timeout%-") ~= nil
            it(f .. (slow and " #slow" or ""), function()
                local t0 = os.clock()
                local ok, why = G.run(core, read(dir .. "/" .. f))
                local spent = os.clock() - t0
                assert.is_true(ok, why)
                if slow then
                    assert.is_true(spent < TIMEOUT_BUDGET, ("took %.1f s of CPU time (budget %.1f s)"):format(
                                       spent, TIMEOUT_BUDGET))
                end
            end)
        end
    end)

    describe("csv", function()
        local dir, files = inputs("csv")
        teardown(function() if C.path then os.remove(C.path) end end)
        for _, f in ipairs(files) do
            it(f, function()
                local ok, why = C.run(core, read(dir .. "/" .. f))
                assert.is_true(ok, why)
            end)
        end
    end)

    -- Found by fuzz/http_fuzz.c (op "a finalizer that acts during a wait"): a __gc that
    -- adds a handle to the multi again while m:wait() is reporting that handle. The wait
    -- dropped the handle's anchor after building the entry, so it dropped the new one:
    -- the handle ran unanchored, and its completion read a nil anchor (SEGV in
    -- lua_rawgeti). The same finalizer timed at each of the wait's first GC steps.
    describe("http: a finalizer during m:wait", function()
        local SB = dofile(H.root .. "/spec/sandbox.lua")
        local dir, l

        setup(function()
            dir = io.popen("mktemp -d /tmp/laaffic-spec17.XXXXXX"):read("*l")
            l = SB.listener(dir, 60)
        end)
        teardown(function()
            if l then l.stop() end
            if dir then os.execute("rm -rf '" .. dir .. "'") end
        end)

        -- a finalizer f, pending so that the wait's (delay + 1)th GC step runs it (Lua 5.4:
        -- the way fuzz/encode_gc.lua arms its finalizers; LuaJIT: whenever it runs)
        local function arm(f, delay)
            local armed = false
            collectgarbage("stop")
            setmetatable({}, { __gc = f })
            for _ = 1, delay * 10 + 9 do setmetatable({}, { __gc = function() end }) end
            setmetatable({}, { __gc = function() armed = true end })
            if _VERSION ~= "Lua 5.4" then collectgarbage("restart") return end
            collectgarbage("incremental", 1, 1020, 1)
            for _ = 1, 1000000 do
                collectgarbage("step", 0)
                if armed then break end
            end
            collectgarbage("incremental", 1, 40, 1)
            collectgarbage("restart")
        end

        it("that adds the handle again: it runs anchored, and is reported", function()
            local url = "http://127.0.0.1:" .. l.port .. "/"
            for delay = 0, 7 do
                local m, h = core.multi(), core.http({ timeout = 5 })
                m:add(h, "POST", url, nil, "{}")
                local again = false
                arm(function() again = pcall(m.add, m, h, "POST", url, nil, "{}") end, delay)
                local reported = 0
                for _ = 1, 200 do
                    for _, e in ipairs(m:wait(0.05)) do
                        assert.equal(h, e.handle)
                        reported = reported + 1
                    end
                    if m:running() == 0 then break end
                end
                if _VERSION == "Lua 5.4" then collectgarbage("incremental", 200, 100, 13) end
                collectgarbage()
                assert.equal(0, m:running())
                assert.equal(again and 2 or 1, reported)
                m:close()
                h:close()
            end
        end)
    end)
end)
