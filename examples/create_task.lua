-- examples/create_task.lua: create a task through laaffic and show what happened.
--
-- Run by `make demo` against the local sandbox. Credentials and the server come from the
-- environment (never from argv, which other users of the machine can read):
--   LAAFFIC_BASE_URL, LAAFFIC_API_KEY, LAAFFIC_API_SECRET, LAAFFIC_APP_ID, LAAFFIC_CAFILE
local laaffic = require("laaffic")

local function env(name)
  local v = os.getenv(name)
  if not v or v == "" then
    io.stderr:write("examples/create_task.lua: set ", name, "\n")
    os.exit(2)
  end
  return v
end

local client = laaffic.new{
  api_key = env("LAAFFIC_API_KEY"), api_secret = env("LAAFFIC_API_SECRET"),
  app_id = env("LAAFFIC_APP_ID"), base_url = env("LAAFFIC_BASE_URL"),
  cafile = os.getenv("LAAFFIC_CAFILE"),
  logger = function(ev)
    if ev.event == "request" then return end
    print(string.format("  [log] %s %s %s attempt=%d %s %.1f ms", ev.event, ev.method, ev.url,
      ev.attempt, ev.status and ("HTTP " .. ev.status) or (ev.kind or ""), (ev.elapsed or 0) * 1000))
  end,
}
print("client:", tostring(client))

-- the task of the vendor's quick-start page (seed 001), with a fresh name
local task = {
  taskName = "demo-" .. os.date("!%Y%m%d-%H%M%S"),
  displayNum = "123456", agentId = 110, maxCalls = 300, maxRingingTime = 60,
  enableRecording = 1, calloutRate = 1,
  numberInfoList = {
    { calleeNumber = "919777654321", text1 = "David", text2 = "5000", text3 = "2026-04-10" },
    { calleeNumber = "919777654322", text1 = "Oliver", text2 = "1000", text3 = "2026-04-10" },
    { calleeNumber = "919777654323", text1 = "Ananya", text2 = "2500", text3 = "2026-04-12" },
  },
  recallFlow = laaffic.recall.by_intent{ intents = { laaffic.recall.NOT_CONNECTED },
                                         interval = 1, rounds = 2, agent_id = 110 },
}

print("creating task " .. task.taskName .. " with " .. #task.numberInfoList .. " numbers")
local key_id, info = client:create_task(task, { require_texts = { 1, 2, 3 } })
if not key_id then
  print("failed: " .. tostring(info))
  os.exit(1)
end
print(string.format("created: keyId %s (%d attempt(s), %d bytes, %.1f ms)", tostring(key_id),
  info.attempts, info.bytes, info.time * 1000))

print("the same task again (the name is unique per account):")
local again, err = client:create_task(task)
print("  " .. tostring(again) .. ", " .. tostring(err))

print("a task with a bad number:")
task.numberInfoList[2].calleeNumber = "12345"
local bad, berr = client:create_task(task)
print("  " .. tostring(bad) .. ", " .. tostring(berr))
client:close()
