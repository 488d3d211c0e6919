-- bench/send.lua: the transport against the local HTTPS sandbox.
--
--   make bench       (or: lua5.4 bench/send.lua [calls])
--
-- 1. CALLS sequential create_task calls (default 2,000) through one client that reuses its
--    TLS connection, and through one that opens a fresh connection per call
--    (reuse = false), in the same run: the two alternate in blocks of 100 calls so
--    machine noise falls on both. Prints the time per call of each and the ratio.
-- 2. A 200,000-number task sent once, in a fresh child process: how far the process's
--    peak RSS rises during the send, over the already-encoded body. For comparison, the
--    same send with the body first made into a Lua string.
local laaffic = require("laaffic")
local core = require("laaffic.core")

local CALLS = tonumber(arg[1]) or 2000
local MODE = arg[2]

local mem = dofile((arg[0]:match("^(.*/)") or "./") .. "mem.lua")
local status_kb, reset_peak = mem.kb, mem.reset_peak

local function client_from_env(extra)
  local o = {
    api_key = os.getenv("LAAFFIC_SANDBOX_KEY"), api_secret = os.getenv("LAAFFIC_SANDBOX_SECRET"),
    app_id = os.getenv("LAAFFIC_SANDBOX_APP_ID"), base_url = os.getenv("LAAFFIC_SANDBOX_HTTPS"),
    cafile = os.getenv("LAAFFIC_SANDBOX_CA"), timeout = 120,
  }
  for k, v in pairs(extra or {}) do o[k] = v end
  return laaffic.new(o)
end

local seq = 0
local function small_task(label)
  seq = seq + 1
  return {
    taskName = ("bench-%s-%d-%d"):format(label, os.time(), seq), agentId = 110,
    numberInfoList = { { calleeNumber = "919777654321", text1 = "David", text2 = "5000" } },
  }
end

local function big_task()
  local rows = {}
  for i = 1, 200000 do
    rows[i] = { calleeNumber = ("9197%08d"):format(i), text1 = (i % 2 == 0) and "David" or "Oliver",
                text2 = tostring(1000 + (i * 37) % 9000), text3 = "2026-04-10" }
  end
  seq = seq + 1
  return { taskName = ("bench-200k-%d-%d-%s"):format(os.time(), seq, MODE or ""), agentId = 110,
           numberInfoList = rows }
end

-- child: one 200k send, report the peak rise over the encoded body
if MODE == "--mem-body" or MODE == "--mem-string" then
  local c = client_from_env()
  local t = big_task()
  local req = assert(c:build_task(t))
  if MODE == "--mem-string" then
    -- what a transport that wants a Lua string body costs
    local inner = c.transport
    c.transport = function(r) r.body = tostring(r.body); return inner(r) end
  end
  local bytes = #req.body
  req = nil -- luacheck: ignore
  collectgarbage("collect"); collectgarbage("collect")
  -- encode once more inside the measured process state, then measure only the send
  local body_req = assert(c:build_task(t))
  collectgarbage("collect"); collectgarbage("stop")
  if not reset_peak() then print("nil"); return end
  local before = status_kb("VmRSS")
  local res, msg = c.transport(body_req)
  local peak = status_kb("VmHWM")
  assert(res and res.status == 200, tostring(msg))
  print(string.format("%d %d", (peak - before) * 1024, bytes))
  return
end

-- 1. connection reuse
local reuse = client_from_env()
local fresh = client_from_env({ reuse = false })
local t_reuse, t_fresh, done = 0, 0, 0
local BLOCK = 100
while done < CALLS do
  local n = math.min(BLOCK, CALLS - done)
  local t0 = core.now()
  for _ = 1, n do assert(reuse:create_task(small_task("r"))) end
  local t1 = core.now()
  for _ = 1, n do assert(fresh:create_task(small_task("f"))) end
  local t2 = core.now()
  t_reuse, t_fresh, done = t_reuse + (t1 - t0), t_fresh + (t2 - t1), done + n
end
local interp = jit and jit.version or _VERSION
print(string.format("send benchmark: %d sequential create_task calls over HTTPS to the sandbox, %s", CALLS, interp))
print(string.format("  %-40s %10s %10s %9s", "client", "total s", "ms/call", "ratio"))
print(string.format("  %-40s %10.2f %10.3f %8.2fx", "one connection, reused (default)", t_reuse,
  t_reuse / CALLS * 1e3, t_fresh / t_reuse))
print(string.format("  %-40s %10.2f %10.3f %8.2fx", "fresh connection per call (reuse=false)", t_fresh,
  t_fresh / CALLS * 1e3, 1))

-- 2. memory of a 200k send, one fresh process each
local lua = arg[-1] or "lua"
print(string.format("  %-40s %10s %10s", "200,000-number send: peak added", "MB", "x body"))
for _, m in ipairs({ { "--mem-body", "body from C (the default path)" },
                     { "--mem-string", "body as a Lua string first" } }) do
  local p = io.popen(string.format("%s %s 1 %s", lua, arg[0], m[1]))
  local out = p:read("*l")
  p:close()
  local peak, bytes = (out or ""):match("^(%d+) (%d+)$")
  if peak then
    print(string.format("  %-40s %10.1f %9.2fx", m[2], tonumber(peak) / 1e6, tonumber(peak) / tonumber(bytes)))
  else
    print(string.format("  %-40s %10s", m[2], "n/a: " .. tostring(out)))
  end
end
