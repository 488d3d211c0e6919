-- bench/csv.lua: a 200,000-row CSV call list to a signed request body.
--
--   make bench                 (or: lua5.4 bench/csv.lua [rows] [reps])
--
-- laaffic: laaffic.csv.open + client:build_task (the C core reads the file, validates each
-- row and writes the body; then the Sign). The competitor is the path a Lua user would
-- write: io.lines, a string pattern splitting each line into a table per row, then
-- cjson.encode of the task, then the same Sign. It validates nothing and does not
-- understand quoted fields; the file it reads has none, so both produce the same JSON.
-- Both run in this process on the same file, interleaved, REPS times; the minimum counts.
local laaffic = require("laaffic")
local core = require("laaffic.core")
local cjson = require("cjson")

local ROWS = tonumber(arg[1]) or 200000
local REPS = tonumber(arg[2]) or 7
local clock = core.now

local path = os.tmpname()
do
    local f = assert(io.open(path, "w"))
    f:write("calleeNumber,text1,text2,text3\r\n")
    for i = 1, ROWS do
        -- like seed 001: calleeNumber plus text1..text3
        f:write(string.format("9197%08d,%s,%d,2026-04-10\r\n", i, (i % 2 == 0) and "David" or "Oliver",
                              1000 + (i * 37) % 9000))
    end
    f:close()
end
local size
do
    local f = assert(io.open(path))
    size = f:seek("end")
    f:close()
end

local client = laaffic.new{ api_key = "bDqJFiq9", api_secret = "7bz1lzh9", app_id = "Jgd8oFei",
                            transport = function() end }
local function base_task()
    return { taskName = "bench-csv", displayNum = "123456", agentId = 110, maxCalls = 300,
             maxRingingTime = 60, enableRecording = 1 }
end

local function laaffic_path()
    local t = base_task()
    t.numberInfoList = assert(laaffic.csv.open(path))
    local req = assert(client:build_task(t))
    local n = #req.body
    req.body:close()
    t.numberInfoList:close()
    return n
end

-- The Lua path at its best for this file: one string.match per line with a capture per
-- column (a general splitter with gmatch is about twice as slow again).
local function lua_path()
    local rows, n = {}, 0
    local lines = io.lines(path)
    local header = lines()
    local k1, k2, k3, k4 = header:match("^([^,]*),([^,]*),([^,]*),([^,\r]*)")
    for line in lines do
        local a, b, c, d = line:match("^([^,]*),([^,]*),([^,]*),([^,\r]*)")
        n = n + 1
        rows[n] = { [k1] = a, [k2] = b, [k3] = c, [k4] = d }
    end
    local t = base_task()
    t.appId = "Jgd8oFei"
    t.numberInfoList = rows
    local body = cjson.encode(t)
    local h = client:headers()
    assert(h.Sign)
    return #body
end

-- same JSON? (key order differs: compare decoded)
do
    local t = base_task()
    t.numberInfoList = assert(laaffic.csv.open(path))
    local a = cjson.decode(tostring(assert(client:build_task(t)).body))
    local rows = {}
    local lines = io.lines(path)
    lines()
    for line in lines do
        local c, t1, t2, t3 = line:match("^([^,]*),([^,]*),([^,]*),([^,\r]*)")
        rows[#rows + 1] = { calleeNumber = c, text1 = t1, text2 = t2, text3 = t3 }
    end
    assert(#a.numberInfoList == ROWS and a.numberInfoList[ROWS].calleeNumber == rows[ROWS].calleeNumber
           and a.numberInfoList[ROWS].text2 == rows[ROWS].text2, "the two paths disagree")
end

local best = { math.huge, math.huge }
local bytes = {}
for _ = 1, REPS do
    for i, fn in ipairs{ laaffic_path, lua_path } do
        collectgarbage()
        collectgarbage()
        local t0 = clock()
        bytes[i] = fn()
        local dt = clock() - t0
        if dt < best[i] then best[i] = dt end
    end
end
os.remove(path)

print(string.format("== CSV to a signed body: %d rows, %.1f MB file, %s, best of %d",
                    ROWS, size / 1e6, _VERSION .. (jit and (" / " .. jit.version) or ""), REPS))
print(string.format("  %-46s %9.1f ms %8.1f MB/s  body %.1f MB", "laaffic (csv.open + build_task)",
                    best[1] * 1e3, size / 1e6 / best[1], bytes[1] / 1e6))
print(string.format("  %-46s %9.1f ms %8.1f MB/s  body %.1f MB", "io.lines + patterns + cjson.encode",
                    best[2] * 1e3, size / 1e6 / best[2], bytes[2] / 1e6))
print(string.format("  ratio (Lua path / laaffic): %.1fx  (target >= 10x)", best[2] / best[1]))
