-- examples/campaign.lua: send a CSV call list as one campaign with client:create_tasks.
--
--   lua5.4 examples/campaign.lua CALLS.csv TASK_NAME [MAX_ROWS]
--
-- CALLS.csv has a header naming calleeNumber and any of text1..text10. A list longer than
-- MAX_ROWS (default 200,000, the API's limit) goes out as parts TASK_NAME-part-1, -2, ...
-- Credentials and the server come from the environment (never argv, which other users of
-- the machine can read): LAAFFIC_API_KEY, LAAFFIC_API_SECRET, LAAFFIC_APP_ID, and
-- optionally LAAFFIC_BASE_URL and LAAFFIC_CAFILE. Against the local sandbox:
--
--   eval "$(sandbox/laaffic-sandbox start)"
--   export LAAFFIC_BASE_URL=$LAAFFIC_SANDBOX_HTTPS LAAFFIC_CAFILE=$LAAFFIC_SANDBOX_CA \
--     LAAFFIC_API_KEY=$LAAFFIC_SANDBOX_KEY LAAFFIC_API_SECRET=$LAAFFIC_SANDBOX_SECRET \
--     LAAFFIC_APP_ID=$LAAFFIC_SANDBOX_APP_ID
--   lua5.4 examples/campaign.lua calls.csv april-campaign 200
--   sandbox/laaffic-sandbox stop
--
-- (from a checkout, without an installed rock: LUA_PATH="lua/?.lua;lua/?/init.lua;;"
-- LUA_CPATH="build/lua5.4/?.so;;"). Every part ends in one of three outcomes:
--   created         the part's keyId; the part is done.
--   already exists  an earlier run created it (the part names depend only on the list and
--                   MAX_ROWS): done too. Re-running the whole command is always safe.
--   ambiguous       the request may have reached the API (a timeout after sending): never
--                   send it under another name; run the same command again, and the part
--                   comes back as created or as already exists.
-- Exit status: 0 every part is done, 6 some part is ambiguous (run again), 1 another
-- failure (a bad row, a refused part: see the message), 2 usage.
local laaffic = require("laaffic")

local path, task_name, max_rows = arg[1], arg[2], tonumber(arg[3] or "200000")
if not path or not task_name or not max_rows then
  io.stderr:write("usage: campaign.lua CALLS.csv TASK_NAME [MAX_ROWS]\n")
  os.exit(2)
end

local function env(name)
  local v = os.getenv(name)
  if not v or v == "" then
    io.stderr:write("campaign.lua: set ", name, "\n")
    os.exit(2)
  end
  return v
end

local client = laaffic.new{
  api_key = env("LAAFFIC_API_KEY"), api_secret = env("LAAFFIC_API_SECRET"),
  app_id = env("LAAFFIC_APP_ID"), base_url = os.getenv("LAAFFIC_BASE_URL"),
  cafile = os.getenv("LAAFFIC_CAFILE"),
}

-- the file is read one part at a time: memory holds the parts being sent, not the file
local src, oerr = laaffic.csv.open(path, { normalize = true, dedupe = true })
if not src then
  io.stderr:write(tostring(oerr), "\n")
  os.exit(1)
end

local result, err = client:create_tasks(
  { taskName = task_name, agentId = 110, maxCalls = 300, numberInfoList = src },
  { max_rows = max_rows, concurrency = 4, on_progress = function(p)
      io.stderr:write(string.format("\rparts %d/%d  created or existing %d  failed %d  %d/%d bytes",
        p.done, p.parts, p.created, p.failed, p.bytes or 0, p.size or 0))
      if p.finished then io.stderr:write("\n") end
    end })
src:close()
client:close()

local ambiguous = false
for _, part in ipairs(result.parts) do
  local outcome
  if part.key_id then
    outcome = "created keyId " .. tostring(part.key_id)
  elseif part.exists then
    outcome = "already exists (an earlier run created it)"
  elseif part.error and part.error.kind == "ambiguous" then
    ambiguous = true
    outcome = "ambiguous: may exist; run the same command again (" .. tostring(part.error) .. ")"
  else
    outcome = "failed: " .. tostring(part.error or "not sent")
  end
  print(string.format("%s  %d numbers  %s", part.task_name, part.rows or 0, outcome))
end
print(string.format("%d created, %d already existing, %d failed; %d numbers, %d duplicates dropped",
  result.created, result.existing, result.failed, result.rows, result.duplicates or 0))
if err then
  io.stderr:write(tostring(err), "\n")
  os.exit((ambiguous or err.kind == "ambiguous") and 6 or 1)
end
