-- examples/openresty/app.lua: the Lua of examples/openresty/nginx.conf (read its header
-- for how to run it). Loaded once per nginx by init_by_lua; the handlers run in requests
-- and timers. laaffic.new picks the transport from the phase: the subrequest in a content
-- handler, cosockets (or lua-resty-http) in a timer; neither blocks the worker.
local laaffic = require("laaffic")
local push = require("laaffic.push")

local app = {}

-- One client config for every request. The credentials come from the environment
-- (nginx.conf's `env` lines), never from the config file or a URL.
local function client()
  local resolve = os.getenv("LAAFFIC_RESOLVE")
  return laaffic.new{
    api_key = os.getenv("LAAFFIC_API_KEY"), api_secret = os.getenv("LAAFFIC_API_SECRET"),
    app_id = os.getenv("LAAFFIC_APP_ID"), base_url = os.getenv("LAAFFIC_BASE_URL"),
    resolve = resolve and resolve ~= "" and { resolve } or nil,
  }
end

-- The task: a real app would read its list from a database; this one calls three numbers.
local function task(name)
  return {
    taskName = name, agentId = 110, maxCalls = 300,
    numberInfoList = {
      { calleeNumber = "919777654321", text1 = "David" },
      { calleeNumber = "919777654322", text1 = "Oliver" },
      { calleeNumber = "919777654323", text1 = "Ananya" },
    },
  }
end

local function task_name()
  local name = ngx.var.arg_name
  if not name or name == "" then
    ngx.status = 400
    ngx.say("?name=<taskName> is needed")
    return ngx.exit(400)
  end
  return ngx.unescape_uri(name)
end

-- What a create_task outcome means for the caller (see examples/campaign.lua too).
local function outcome(key_id, err)
  if key_id then return "created keyId " .. tostring(key_id) end
  if err.kind == "already_exists" then return "already exists: " .. tostring(err) end
  if err.kind == "ambiguous" then
    return "ambiguous (may exist: re-send under the same name): " .. tostring(err)
  end
  return "failed: " .. tostring(err)
end

-- content handler: sends through the subrequest (nginx/laaffic.conf) and answers the keyId
function app.start_now()
  local name = task_name()
  local key_id, err = client():create_task(task(name))
  ngx.log(ngx.NOTICE, "campaign ", name, ": ", outcome(key_id, err))
  if not key_id then
    ngx.status = err.kind == "already_exists" and 409 or 502
  end
  ngx.say(outcome(key_id, err))
end

-- A timer: subrequests are not allowed there, so laaffic sends with cosockets. Its result
-- goes to the error log and the shared dict (GET /campaigns/last shows it).
local function send_in_timer(premature, name)
  if premature then return end
  local key_id, err = client():create_task(task(name))
  local text = outcome(key_id, err)
  ngx.log(ngx.NOTICE, "campaign ", name, " (timer): ", text)
  ngx.shared.app:set("last", name .. ": " .. text)
end

function app.start_in_timer()
  local name = task_name()
  local ok, err = ngx.timer.at(0, send_in_timer, name)
  if not ok then
    ngx.status = 503
    return ngx.say("no timer: ", err)
  end
  ngx.status = 202
  ngx.say("scheduled ", name)
end

function app.last()
  ngx.say(ngx.shared.app:get("last") or "nothing yet")
end

-- Pushes: one line per call report, appended to logs/pushes.log under nginx's prefix.
-- on_record runs once per voiceId (the dict drops the platform's re-sends); raising (as a
-- failed write does) answers an error, so the platform sends the push again.
local PUSHES = ngx.config.prefix() .. "logs/pushes.log"

local function save_report(rec)
  local f = assert(io.open(PUSHES, "a"))
  local outcome_text = rec.terminationCode == 0 and "answered"
    or (rec.intent == "99999" and "not connected" or "failed")
  assert(f:write(string.format("%s %s %s intent=%s billPeriod=%s callTime=%s\n", rec.voiceId,
    tostring(rec.callee), outcome_text, tostring(rec.intent), tostring(rec.billPeriod),
    tostring(rec.callTime))))
  f:close()
end

-- built once, here at load time (init_by_lua); LAAFFIC_PUSH_TOKEN is the URL's secret
app.receive = push.handler{
  token = os.getenv("LAAFFIC_PUSH_TOKEN"), dict = "laaffic_push", on_record = save_report,
}

return app
