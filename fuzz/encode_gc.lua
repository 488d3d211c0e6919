-- fuzz/encode_gc.lua - the encode harness's finalizer mode: __gc metamethods that change
-- the task run while core.encode and core.encode_body read it.
--
-- Shared by fuzz/encode_gc_fuzz.c (Lua 5.4, the instrumented core, ASan) and by
-- spec/17-fuzz-regressions_spec.lua (fuzz/regressions/encode_gc/).
--
--   local G = dofile("fuzz/encode_gc.lua")
--   local ok, why = G.run(core, bytes)
--
-- Input: a plan, then the bytes fuzz/builder.lua turns into the task:
--   byte 1: bits 0-3 how many actions (1..16), bits 4-7 how many finalizers (16..256);
--   byte 2: bits 0-1 the collector's step multiplier (40, 100, 300, 1020: how many
--   finalizers an allocation of the encoder runs), bits 2-3 its step size (2 bytes,
--   or 1 KiB or 1 MiB: then everything at once and on into the next cycle, so that
--   what a finalizer dropped is freed too), bits 4-7 how many finalizers do nothing
--   first (0..300); then 3 bytes per action: what it does (ACTIONS; 2 in 12 nothing),
--   to which table of the task (in a fixed, sorted walk of it), and a parameter.
--   The finalizers take the actions in turn.
--
-- How they come to run inside the encoder (Lua 5.4.4's collector, lgc.c): they are
-- created dead while the collector is stopped (so they die in the same cycle), then the
-- collector runs one unit of work at a time until the newest batch (a sentinel and 9
-- no-ops) has run: a step in the phase that calls finalizers runs 10, newest first.
-- With pause 0 every allocation of the encoder is then a GC step, which calls the next
-- ones. On LuaJIT (the spec) they are userdata proxies and run when its collector runs
-- them: still a valid, if different, test.
--
-- The task changes under the encoder, so its output is not compared with the task: the
-- promise is memory safety (the sanitizers, and LeakSanitizer at exit), and results of the
-- documented shapes (a raise is allowed: a table changed during a traversal can make
-- `next` fail); a success is JSON that a strict cjson decodes, and a body whose length,
-- text and info.bytes agree.
local cjson = require("cjson")

local G = {}

local B = dofile(((debug.getinfo(1, "S").source:match("^@(.*)[/\\]")) or "fuzz") .. "/builder.lua")
G.B = B

local strict = cjson.new()
strict.decode_invalid_numbers(false)
strict.decode_max_depth(1000)

local is54 = _VERSION == "Lua 5.4"
local rawlen = rawlen or function(t) return #t end -- LuaJIT: # ignores __len on tables
local floor = math.floor
local MAX_TABLES = 48
local serial = 0

---------------------------------------------------------------------------------------
-- the tables of the task, in an order that does not depend on string hashing
---------------------------------------------------------------------------------------

-- A dead object whose finalizer is mt.__gc (LuaJIT finalizes userdata only: a proxy there).
local newproxy = newproxy -- luacheck: ignore (LuaJIT)
local function finalizable(mt)
    if is54 or not newproxy then return setmetatable({}, mt) end
    local u = newproxy(true)
    getmetatable(u).__gc = mt.__gc
    return u
end

local function key_order(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return false
end

-- Breadth first from the task; of a long list only its first 8 and last 2 entries.
local function tables_of(task)
    local out, seen, queue, head = {}, {}, { task }, 1
    seen[task] = true
    while head <= #queue and #out < MAX_TABLES do
        local t = queue[head]
        head = head + 1
        out[#out + 1] = t
        local keys, n = {}, rawlen(t)
        for k in next, t do
            if not (type(k) == "number" and k == floor(k) and k > 8 and k < n - 1) then
                keys[#keys + 1] = k
            end
        end
        table.sort(keys, key_order)
        for _, k in ipairs(keys) do
            local v = rawget(t, k)
            if type(v) == "table" and not seen[v] then
                seen[v] = true
                queue[#queue + 1] = v
            end
        end
    end
    return out
end

---------------------------------------------------------------------------------------
-- what a finalizer does
---------------------------------------------------------------------------------------

local function raising() error("laaffic fuzz: a metamethod was called", 0) end
local TRAP = { __index = raising, __newindex = raising, __len = raising, __pairs = raising }

local function fresh_string(p)
    serial = serial + 1
    if p % 4 == 0 then return "s" .. serial end                           -- short
    if p % 4 == 1 then return tostring(91977765000 + serial) end            -- digits
    if p % 4 == 2 then return string.rep("\195\169", 20 + p % 16) .. serial end -- past 30
    return string.rep("x", 100 + p) .. serial                              -- long
end

local function fresh_value(p)
    local k = p % 6
    if k == 0 then return fresh_string(p) end
    if k == 1 then return p - 128 end
    if k == 2 then return { calleeNumber = fresh_string(1), text1 = fresh_string(p + 2) } end
    if k == 3 then return { fresh_string(p), { fresh_string(p + 1) } } end
    if k == 4 then return cjson.null end
    return p % 2 == 0
end

local function sorted_keys(t)
    local keys = {}
    for k in next, t do keys[#keys + 1] = k end
    table.sort(keys, key_order)
    return keys
end

-- ACTIONS[a](t, p, ctx): t is the target table, p a byte, ctx { core, task, opts }
local ACTIONS = {
    function(t, p) -- add keys (a second pass over a table's keys must stay in bounds)
        for i = 1, p % 4 + 1 do
            serial = serial + 1
            rawset(t, "gc" .. serial .. "_" .. i, fresh_value(p + i))
        end
    end,
    function(t, p) -- append entries to the list part
        local n = rawlen(t)
        for i = 1, p % 4 + 1 do rawset(t, n + i, fresh_value(p + 2)) end
    end,
    function(t, p) -- remove the first key, or the last entry
        if p % 2 == 0 then
            local k = sorted_keys(t)[1]
            if k ~= nil then rawset(t, k, nil) end
        else
            local n = rawlen(t)
            if n > 0 then rawset(t, n, nil) end
        end
    end,
    function(t, p) -- replace every string value with a fresh one (the old may be freed)
        for _, k in ipairs(sorted_keys(t)) do
            if type(rawget(t, k)) == "string" then rawset(t, k, fresh_string(p)) end
        end
    end,
    function(t, p) -- replace every table value with a fresh one
        for _, k in ipairs(sorted_keys(t)) do
            if type(rawget(t, k)) == "table" then rawset(t, k, fresh_value(p % 2 == 0 and 2 or 3)) end
        end
    end,
    function(t) -- a metatable whose methods raise (the encoder reads raw)
        pcall(setmetatable, t, TRAP)
    end,
    function(_, p, ctx) -- an encode inside the encode (the first few times: it costs)
        ctx.nested = (ctx.nested or 0) + 1
        if ctx.nested > 4 then return end
        local o = { truncate = p % 2 == 0 }
        pcall(ctx.core.encode, ctx.task, o)
        local ok, body = pcall(ctx.core.encode_body, ctx.task, o)
        if ok and body then pcall(body.close, body) end
    end,
    function(t) -- empty the table
        for _, k in ipairs(sorted_keys(t)) do rawset(t, k, nil) end
    end,
    function(t, p) -- change the texts and numbers of the rows of a list
        for i = 1, math.min(rawlen(t), 8) do
            local row = rawget(t, i)
            if type(row) == "table" then
                rawset(row, "text" .. (p % 10 + 1), fresh_string(p + i))
                rawset(row, "calleeNumber", fresh_string(1))
            end
        end
    end,
    function(t, p) -- a key the task keeps, whose value is dropped again
        rawset(t, "numberInfoList", fresh_value(p % 2 == 0 and 3 or 0))
        rawset(t, "taskName", fresh_string(p))
    end,
}
G.NACTIONS = #ACTIONS
G.stats = { during = 0, after = 0 } -- finalizers of the plan run during / after a call

-- Creates the plan's finalizers (dead at once) and steps the collector until the first
-- batch, a sentinel and 9 no-ops, has run: the next GC step the encoder's allocations
-- make runs the next ones. Every call of a plan finalizer does the plan's next action.
local function arm(plan, tables, ctx)
    local acts, j = {}, 0
    for i, f in ipairs(plan.fins) do
        local t = tables[f.target % #tables + 1]
        local act = ACTIONS[f.action % (#ACTIONS + 2) + 1] -- 2 in 12: nothing
        acts[i] = function()
            if act then act(t, f.param, ctx) end
        end
    end
    local PLAN = { __gc = function()
        j = j + 1
        if j > plan.delay then
            local k = ctx.inside and "during" or "after"
            G.stats[k] = G.stats[k] + 1
            acts[(j - 1) % #acts + 1]()
        end
    end }
    local armed = false
    local NOOP = { __gc = function() end }
    collectgarbage("stop") -- so that every object below dies in the same cycle
    for _ = 1, plan.count + plan.delay do finalizable(PLAN) end
    for _ = 1, 9 do finalizable(NOOP) end
    finalizable({ __gc = function() armed = true end }) -- the newest: runs first
    if not is54 then -- LuaJIT: a collector that never pauses; they run when it gets there
        collectgarbage("setpause", 1)
        collectgarbage("setstepmul", plan.stepmul)
        collectgarbage("restart")
        return
    end
    -- pause 0 (a new cycle at once), steps of 2 bytes: ("step", 0) is one unit of work;
    -- in the phase that calls finalizers, a unit is 10 of them, newest first
    collectgarbage("incremental", 1, 1020, 1)
    for _ = 1, 10000000 do
        collectgarbage("step", 0)
        if armed then break end
    end
    -- then the plan's pace: the work a step does per byte the encoder allocates, and
    -- the step size (large ones run every finalizer at once and go on into the next
    -- cycle, so that what a finalizer dropped is freed within the same call)
    collectgarbage("incremental", 1, plan.stepmul, plan.stepsize)
    collectgarbage("restart")
end

local function restore()
    if is54 then
        collectgarbage("incremental", 200, 100, 13)
    else
        collectgarbage("setpause", 200)
        collectgarbage("setstepmul", 200)
    end
    collectgarbage()
end

---------------------------------------------------------------------------------------
-- one case
---------------------------------------------------------------------------------------

function G.plan(bytes)
    local b1, b2 = bytes:byte(1) or 0, bytes:byte(2) or 0
    local plan = { count = (floor(b1 / 16) + 1) * 16, stepmul = ({ 40, 100, 300, 1020 })[b2 % 4 + 1],
                   stepsize = ({ 1, 1, 10, 20 })[floor(b2 / 4) % 4 + 1], delay = floor(b2 / 16) * 20,
                   fins = {} }
    local pos = 3
    for i = 1, b1 % 16 + 1 do
        local a, t, p = bytes:byte(pos, pos + 2)
        plan.fins[i] = { action = a or 0, target = t or 0, param = p or 0 }
        pos = pos + 3
    end
    return plan, bytes:sub(pos)
end

local function pack(...) return { n = select("#", ...), ... } end

-- nil, message, field, code  |  json or body, info
local function shape(r, what, body)
    if not r[1] then return true end -- raised: allowed here (see the top)
    if r[2] == nil then
        if r.n ~= 5 then return false, what .. ": a failure is not nil, message, field, code" end
        return B.check_failure(r[3], r[4], r[5])
    end
    if r.n ~= 3 or type(r[3]) ~= "table" then return false, what .. ": not result, info" end
    local json = r[2]
    if body then
        if type(json) ~= "userdata" then return false, what .. ": not a body" end
        local s = tostring(json)
        if #json ~= #s or r[3].bytes ~= #s then return false, what .. ": #body, text and info.bytes differ" end
        json:close()
        if #json ~= 0 then return false, what .. ": #body is not 0 after close" end
        json = s
    elseif type(json) ~= "string" or r[3].bytes ~= #json then
        return false, what .. ": not a string of info.bytes"
    end
    if not B.utf8_valid(json) then return false, what .. ": the JSON is not valid UTF-8" end
    local ok, doc = pcall(strict.decode, json)
    if not ok or type(doc) ~= "table" then return false, what .. ": the JSON does not decode" end
    return true
end

-- A list is not what this harness tests, and a collector that never pauses walks the
-- list again in every cycle: a 200,001-row list took minutes. Lists keep 256 entries.
local MAX_LIST = 256
local function shorten(task)
    local l = type(task) == "table" and rawget(task, "numberInfoList")
    if type(l) ~= "table" then return end
    for k in next, l do -- (a hole can hide a long list from rawlen)
        if type(k) == "number" and k > MAX_LIST then rawset(l, k, nil) end
    end
end

-- Returns true | false, why.
function G.run(core, bytes)
    local plan, rest = G.plan(bytes)
    local ok, why
    for _, fn in ipairs({ "encode", "encode_body" }) do
        local task, opts = B.build(rest)
        shorten(task)
        local o = B.call_opts(opts)
        local ctx = { core = core, task = task, opts = o }
        arm(plan, tables_of(task), ctx)
        ctx.inside = true
        local r = pack(pcall(core[fn], task, o))
        ctx.inside = false
        restore()
        ok, why = shape(r, fn, fn == "encode_body")
        if not ok then return false, why end
    end
    return true
end

return G
