-- The laaffic.body userdata's body:sub(i [, j]): a piece of the encoded bytes as a Lua
-- string, the way string.sub takes its positions (negative from the end, clamped to the
-- body), without a copy of the whole body. The nginx transports send a 17 MB body with it
-- a piece at a time. A closed body and a position that is not an integer raise an error
-- naming what is wrong; nothing reads outside the bytes (in ASAN_SPECS).
local core = require("laaffic.core")
local unpack = table.unpack or unpack

local function body_of(n)
    local list = {}
    for i = 1, n do
        list[i] = { calleeNumber = string.format("9197%08d", i), text1 = "name " .. i }
    end
    return assert(core.encode_body({ appId = "app", taskName = "body-spec", agentId = 110,
                                     numberInfoList = list }))
end

-- The body inside an encoder (its uservalue on Lua 5.4, its environment on LuaJIT): empty
-- (no bytes allocated) before the first step, freed but not closed after a failed encode.
-- encode_body never hands out such a body; this is how a spec reaches one.
local function inner_body(enc)
    local uv = (debug.getuservalue or debug.getfenv)(enc)
    for _, v in pairs(uv) do
        if type(v) == "userdata" and getmetatable(v) == getmetatable(body_of(1)) then
            return v
        end
    end
    error("no body in the encoder")
end

describe("body:sub", function()
    local body, json

    setup(function()
        body = body_of(300)
        json = tostring(body)
        assert.is_true(#json > 10000)
    end)

    it("takes string.sub's positions: from the start, from the end, clamped, empty when i > j", function()
        local n = #json
        local cases = {
            { 1 }, { 1, -1 }, { 5 }, { 1, 10 }, { 10, 20 }, { -10 }, { -10, -3 }, { 0 }, { 0, 0 },
            { 0, 5 }, { n }, { n, n }, { n + 1 }, { n + 1, n + 5 }, { n + 100 }, { -n }, { -n - 1 },
            { -n - 1000, 3 }, { 20, 10 }, { 5, 4 }, { 3, -n - 1 }, { 1, n + 1 }, { 2, n + 1000 },
            { math.mininteger or -2147483648, 4 }, { 4, math.maxinteger or 2147483647 },
        }
        for _, c in ipairs(cases) do
            local want = json:sub(c[1], c[2])
            local got = body:sub(c[1], c[2])
            assert.is_true(got == want, ("body:sub(%s, %s): %d bytes, string.sub %d"):format(
                tostring(c[1]), tostring(c[2]), #got, #want))
        end
    end)

    it("clamps a huge j (math.huge, 2^70, 1e300) to the body, as it does a huge negative i", function()
        assert.is_true(body:sub(7, math.huge) == json:sub(7))
        assert.is_true(body:sub(1, 2 ^ 70) == json)
        assert.is_true(body:sub(-5, 1e300) == json:sub(-5))
        assert.is_true(body:sub(-math.huge, 3) == json:sub(1, 3))
        assert.are.equal("", body:sub(math.huge))
        assert.are.equal("", body:sub(1, -math.huge))
    end)

    it("joins back to the body's bytes from pieces of any size, the last one short", function()
        for _, size in ipairs({ 1, 7, 4096, #json - 1, #json, #json + 1 }) do
            local parts, i = {}, 1
            while i <= #json do
                parts[#parts + 1] = body:sub(i, i + size - 1)
                i = i + size
            end
            assert.is_true(table.concat(parts) == json, "pieces of " .. size)
        end
    end)

    it("takes numeric strings as string.sub does", function()
        assert.are.equal(json:sub(2, 9), body:sub("2", "9"))
    end)

    it("refuses a position that is not an integer, naming it (i or j)", function()
        local bad = {
            { { "x" }, "i: an integer expected, got string" },
            { { nil }, "i: an integer expected, got nil" },
            { { {} }, "i: an integer expected, got table" },
            { { 1.5 }, "i: an integer expected, got 1.5" },
            { { 1, "y" }, "j: an integer expected, got string" },
            { { 1, 2.25 }, "j: an integer expected, got 2.25" },
            { { 1, 0 / 0 }, "j: an integer expected, got" },
            { { 0 / 0 }, "i: an integer expected, got" },
        }
        for _, c in ipairs(bad) do
            local ok, err = pcall(body.sub, body, unpack(c[1], 1, 2))
            assert.is_false(ok)
            assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
        end
        local ok, err = pcall(body.sub, body)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("i: an integer expected, got no value", 1, true), tostring(err))
        -- called on something that is not a body
        ok, err = pcall(body.sub, "a string", 1, 2)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("laaffic.body expected", 1, true), tostring(err))
    end)

    it("raises on a closed body (the bytes are gone), never reads them", function()
        local b = body_of(50)
        assert.are.equal(tostring(b):sub(1, 4), b:sub(1, 4))
        b:close()
        for _, args in ipairs({ { 1 }, { 1, -1 }, { 0, 0 }, { 5, 2 } }) do
            local ok, err = pcall(b.sub, b, args[1], args[2])
            assert.is_false(ok)
            assert.truthy(tostring(err):find("the body was closed", 1, true), tostring(err))
        end
        b:close()  -- still idempotent
        assert.is_false((pcall(b.sub, b, 1)))
    end)

    it("raises on a body a finalizer sees after it was collected, never reads freed bytes", function()
        -- a finalizer made before the body runs after the body's own __gc on Lua 5.4
        -- (reverse order of marking): it then holds a body whose bytes are freed. LuaJIT
        -- (a newproxy: its tables have no __gc) may run them in either order.
        local seen
        do
            local held
            local holder
            local function finalizer()
                local ok, err = pcall(held.sub, held, 1, 100)
                seen = { ok = ok, err = tostring(err) }
            end
            if rawget(_G, "newproxy") then
                holder = newproxy(true)
                getmetatable(holder).__gc = finalizer
            else
                holder = setmetatable({}, { __gc = finalizer })
            end
            held = body_of(200)
            assert.is_not_nil(holder)  -- both are garbage once this block ends
        end
        collectgarbage()
        collectgarbage()
        assert.is_table(seen, "the finalizer did not run")
        if _VERSION ~= "Lua 5.1" then
            assert.is_false(seen.ok, "the body was read after its __gc")
        end
        if not seen.ok then
            assert.truthy(seen.err:find("the body was closed", 1, true), seen.err)
        end
    end)

    it("gives \"\" for any positions of an empty body (no bytes allocated, or freed)", function()
        local task = { appId = "app", taskName = "body-spec", agentId = 110,
                       numberInfoList = { { calleeNumber = "x" } } }
        local enc = core.encoder(task)
        local b = inner_body(enc)
        assert.are.equal(0, #b)
        for _, args in ipairs({ { 1 }, { 1, -1 }, { 0, 0 }, { -3, 7 }, { 1, math.huge }, { 2, 1 } }) do
            assert.are.equal("", b:sub(args[1], args[2]))
        end
        assert.is_nil((enc:step(10)))  -- the encode fails: its body is freed, not closed
        assert.are.equal(0, #b)
        assert.are.equal("", b:sub(1, -1))
        assert.are.equal("", b:sub(-100, 100))
    end)
end)
