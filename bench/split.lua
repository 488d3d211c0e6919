-- bench/split.lua: 1,000,000 CSV rows split into tasks and sent to the sandbox.
--
--   make bench          (scripts/bench-split.sh starts a sandbox and runs this with its env)
--   lua5.4 bench/split.lua [rows]        with LAAFFIC_SANDBOX_* set
--
-- Each contender runs in a fresh child process: it resets the kernel's peak-RSS mark
-- (/proc/self/clear_refs), sends the whole list, and reports the time and how far its
-- peak RSS rose above where it started. The contenders:
--   laaffic CSV, 1 at a time   client:create_tasks over laaffic.csv.open, concurrency 1
--   laaffic CSV, 4 at a time   the same, concurrency 4 (the default)
--   Lua tables                 the path without laaffic.csv: io.lines and a pattern into
--                              one table of 1M rows, then client:create_tasks over it
-- The target: memory bounded by one part (its body), not by the file.
local laaffic = require("laaffic")
local core = require("laaffic.core")

local ROWS = tonumber(arg[1]) or 1000000
local MODE, PATH = arg[2], arg[3]

local mem = dofile((arg[0]:match("^(.*/)") or "./") .. "mem.lua")
local status_kb, reset_peak = mem.kb, mem.reset_peak

local function client()
    return laaffic.new{
        api_key = os.getenv("LAAFFIC_SANDBOX_KEY"), api_secret = os.getenv("LAAFFIC_SANDBOX_SECRET"),
        app_id = os.getenv("LAAFFIC_SANDBOX_APP_ID"), base_url = os.getenv("LAAFFIC_SANDBOX_HTTPS"),
        cafile = os.getenv("LAAFFIC_SANDBOX_CA"), timeout = 120,
    }
end

local function task(list, name)
    return { taskName = name, agentId = 110, maxCalls = 300, numberInfoList = list }
end

local contenders = {
    { name = "laaffic CSV, 1 part at a time", run = function(c, path, name)
        return c:create_tasks(task(assert(laaffic.csv.open(path)), name), { concurrency = 1 })
    end },
    { name = "laaffic CSV, 4 parts at a time", run = function(c, path, name)
        return c:create_tasks(task(assert(laaffic.csv.open(path)), name), { concurrency = 4 })
    end },
    { name = "Lua tables (io.lines + pattern)", run = function(c, path, name)
        local rows, n = {}, 0
        local lines = io.lines(path)
        lines()
        for line in lines do
            local a, b, d = line:match("^([^,]*),([^,]*),([^,\r]*)")
            n = n + 1
            rows[n] = { calleeNumber = a, text1 = b, text2 = d }
        end
        return c:create_tasks(task(rows, name), { concurrency = 4 })
    end },
}

if MODE == "--child" then
    local which = tonumber(arg[4])
    local c = client()
    collectgarbage("collect")
    if not reset_peak() then print("nil") return end
    local before = status_kb("VmRSS")
    local t0 = core.now()
    local result, err = contenders[which].run(c, PATH, ("bench-split-%d-%d"):format(os.time(), which))
    local dt = core.now() - t0
    local peak = status_kb("VmHWM")
    if err then io.stderr:write(tostring(err), "\n") os.exit(1) end
    print(string.format("%.3f %d %d %d", dt, (peak - before) * 1024, result.created, result.rows))
    return
end

-- the file: calleeNumber, text1, text2
local path = os.tmpname()
do
    local f = assert(io.open(path, "w"))
    f:write("calleeNumber,text1,text2\n")
    for i = 1, ROWS do
        f:write(string.format("91%010d,%s,%d\n", i, (i % 2 == 0) and "David" or "Oliver", 1000 + i % 9000))
    end
    f:close()
end
local f = assert(io.open(path))
local size = f:seek("end")
f:close()
-- one part's body, for scale
local part_bytes
do
    local src = assert(laaffic.csv.open(path))
    local body = assert(core.encode_body({ taskName = "bench-part", agentId = 110, appId = "a", maxCalls = 300,
                                           numberInfoList = src }))
    part_bytes = #body
    body:close()
    src:close()
end

print(string.format("== %d rows split and sent to the sandbox: file %.1f MB, one part's body %.1f MB, %s",
                    ROWS, size / 1e6, part_bytes / 1e6, jit and jit.version or _VERSION))
print(string.format("  %-34s %9s %7s %14s %10s", "contender", "seconds", "tasks", "peak RSS added",
                    "x one part"))
local lua = arg[-1] or "lua"
for i, c in ipairs(contenders) do
    local p = io.popen(string.format("%s %s %d --child %s %d", lua, arg[0], ROWS, path, i))
    local out = p:read("*l")
    p:close()
    local dt, peak, created, rows = (out or ""):match("^([%d.]+) (%d+) (%d+) (%d+)$")
    if dt then
        assert(tonumber(rows) == ROWS, "not every row was sent")
        print(string.format("  %-34s %9.2f %7d %11.1f MB %9.2fx", c.name, tonumber(dt), tonumber(created),
                            tonumber(peak) / 1e6, tonumber(peak) / part_bytes))
    else
        print(string.format("  %-34s failed: %s", c.name, tostring(out)))
    end
end
os.remove(path)
