-- bench/encode.lua: validate+encode a 200,000-row task with laaffic.core vs cjson.encode.
--
--   make bench                      (or: lua5.4 bench/encode.lua [rows] [reps])
--
-- Timing: every contender runs on the same table in this process, interleaved, REPS
-- times; the minimum is reported because these machines are noisy and a minimum is the
-- run least disturbed by other work. The ratio is cjson time / laaffic time.
-- Memory: each contender runs again in a fresh child process that builds the same table,
-- resets the kernel's peak-RSS mark (/proc/self/clear_refs) and reports how far the peak
-- rose during the one call. A fresh process per contender keeps memory freed by one
-- contender from hiding the next one's allocations.
--
-- On LuaJIT the rows are read by compiled Lua (laaffic.jit_rows, the default); the line
-- "jit_rows off" is the same encoder reading them through the C API, as on Lua 5.4. The
-- floor line walks the rows through the C API (lua_next) and writes nothing: no encoder
-- that reads the table through the C API can beat it, which is why Lua 5.4 cannot.
local core = require("laaffic.core")
local cjson = require("cjson")
local ok_floor, floor = pcall(require, "floor")

local ROWS = tonumber(arg[1]) or 200000
local REPS = tonumber(arg[2]) or 9
local MODE = arg[3]

local function build_task(n)
  local rows = {}
  for i = 1, n do
    -- like seed 001: calleeNumber plus text1..text3
    rows[i] = {
      calleeNumber = string.format("9197%08d", i),
      text1 = (i % 2 == 0) and "David" or "Oliver",
      text2 = tostring(1000 + (i * 37) % 9000),
      text3 = "2026-04-10",
    }
  end
  return {
    appId = "Jgd8oFei", taskName = "bench-200k", displayNum = "123456", agentId = 110,
    maxCalls = 300, maxRingingTime = 60, enableRecording = 1, calloutRate = 1,
    sendTime = "2026-04-01 00:00:00", numberInfoList = rows,
    recallFlow = { recallType = 3, recallInterval = 1, recallNum = 2,
                   nodeList = { { agentId = "110" }, { agentId = "110" } },
                   recallIntent = { "99999" } },
  }
end

local mem = dofile((arg[0]:match("^(.*/)") or "./") .. "mem.lua")
local status_kb, reset_peak = mem.kb, mem.reset_peak

local contenders = {
  { name = "laaffic encode_body (C buffer)",
    fn = function(t) local b = core.encode_body(t); local n = #b; b:close(); return n end },
  { name = "laaffic encode (Lua string)", fn = function(t) return #core.encode(t) end },
  { name = "cjson.encode (no validation)", fn = function(t) return #cjson.encode(t) end },
}
local CJSON = 3
if core.jit_rows() then
  contenders[#contenders + 1] = {
    name = "laaffic encode_body, jit_rows off",
    fn = function(t)
      core.jit_rows(false)
      local b = core.encode_body(t)
      core.jit_rows(true)
      local n = #b; b:close(); return n
    end }
end

-- child mode: one contender, one call, report the peak RSS rise in kB
if MODE == "--mem" then
  local which = tonumber(arg[4])
  local t = build_task(ROWS)
  collectgarbage("collect"); collectgarbage("collect"); collectgarbage("stop")
  if not reset_peak() then print("nil"); return end
  local before = status_kb("VmRSS")
  local bytes = contenders[which].fn(t)
  local peak = status_kb("VmHWM")
  print(string.format("%d %d", (peak - before) * 1024, bytes))
  return
end

local t = build_task(ROWS)
local body = assert(core.encode(t))
local mb = #body / 1e6
local best = {}
collectgarbage("collect")
for _ = 1, REPS do
  for i, c in ipairs(contenders) do
    collectgarbage("collect"); collectgarbage("stop")
    local t0 = os.clock()
    c.fn(t)
    local dt = os.clock() - t0
    collectgarbage("restart")
    if not best[i] or dt < best[i] then best[i] = dt end
  end
  if ok_floor then
    local t0 = os.clock()
    floor.walk(t.numberInfoList)
    local dt = os.clock() - t0
    if not best.floor or dt < best.floor then best.floor = dt end
  end
end

local interp = jit and jit.version or _VERSION
print(string.format("encode benchmark: %d rows, body %.1f MB, %s, best of %d", ROWS, mb, interp, REPS))
print(string.format("  %-34s %9s %9s %8s", "contender", "ms", "MB/s", "vs cjson"))
local cj = best[CJSON]
for i, c in ipairs(contenders) do
  print(string.format("  %-34s %9.1f %9.0f %7.2fx", c.name, best[i] * 1e3, mb / best[i], cj / best[i]))
end
if best.floor then
  print(string.format("  %-34s %9.1f %9s %7.2fx", "floor: C-API walk, write nothing",
    best.floor * 1e3, "-", cj / best.floor))
end

-- memory, one fresh process per contender
local self = arg[0]
local lua = arg[-1] or "lua"
print(string.format("  %-34s %9s %12s", "peak memory added by one call", "MB", "x body"))
for i, c in ipairs(contenders) do
  local cmd = string.format("%s %s %d 1 --mem %d", lua, self, ROWS, i)
  local p = io.popen(cmd)
  local out = p:read("*l")
  p:close()
  local peak, bytes = (out or ""):match("^(%d+) (%d+)$")
  if peak then
    print(string.format("  %-34s %9.1f %11.2fx", c.name, tonumber(peak) / 1e6, tonumber(peak) / tonumber(bytes)))
  else
    print(string.format("  %-34s %9s", c.name, "n/a (no /proc/self/clear_refs)"))
  end
end
