-- A second, independent server that reads the contract: Prism (`prism mock
-- doc/openapi.yaml`) validates every request it receives against doc/openapi.yaml and
-- answers the contract's example (keyId 123123) or a 422 naming what is wrong. laaffic's
-- real requests (create_task through libcurl, the CLI's send) must pass; a deliberately
-- invalid one must not. Needs node and the npm packages (make deps); Lua 5.4 suite only.
local laaffic = require("laaffic")
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local S = dofile(H.root .. "/spec/shell.lua")
local Nginx = dofile(H.root .. "/spec/nginx.lua")
local q = S.q

local ROOT = S.sh("cd " .. q(H.root) .. " && pwd"):match("^([^\n]+)")
local PRISM = ROOT .. "/node_modules/.bin/prism"
local have_prism = S.sh("test -x " .. q(PRISM) .. " && command -v node >/dev/null && echo yes")
                    :find("yes") ~= nil

local C = dofile(H.root .. "/spec/contract.lua")
local seed_b = C.seed_b

describe("Prism, serving doc/openapi.yaml", function()
  if H.is_luajit or not have_prism or os.getenv("LAAFFIC_VALGRIND") then
    pending("runs in the Lua 5.4 suite when node and the npm packages are installed")
    return
  end
  local dir, port, pid, base

  setup(function()
    dir = S.sh("mktemp -d /tmp/laaffic-spec91.XXXXXX"):match("^(%S+)")
    port = Nginx.free_ports(1)[1]
    base = "http://127.0.0.1:" .. port
    -- ends by itself after 120 s if the teardown never runs
    pid = S.sh("cd " .. q(ROOT) .. " && NO_UPDATE_NOTIFIER=1 timeout 120 " .. q(PRISM) ..
               " mock -h 127.0.0.1 -p " .. port .. " doc/openapi.yaml > " .. q(dir .. "/prism.log") ..
               " 2>&1 & echo $!"):match("(%d+)")
    for _ = 1, 300 do
      if (S.read(dir .. "/prism.log") or ""):find("Prism is listening", 1, true) then return end
      S.sh("sleep 0.1")
    end
    error("prism did not start: " .. tostring(S.read(dir .. "/prism.log")))
  end)
  teardown(function()
    if pid then S.sh("kill " .. pid .. " 2>/dev/null; pkill -P " .. pid .. " 2>/dev/null") end
    if dir then S.sh("rm -rf " .. q(dir)) end
  end)

  local function client(o)
    o = o or {}
    o.api_key, o.api_secret, o.base_url = "bDqJFiq9", "7bz1lzh9", base
    o.retries = 0
    return laaffic.new(o)
  end

  it("accepts create_task's request for the seed's task (libcurl transport)", function()
    local key_id, info = client():create_task(seed_b())
    assert.are.equal(123123, key_id, tostring(info))
  end)

  it("accepts it at the Quick Start's path without /v3", function()
    local key_id, err = client({ path = "/voice/group/call/send/agent" }):create_task(seed_b())
    assert.are.equal(123123, key_id, tostring(err))
  end)

  it("accepts a task whose only findings are warnings", function()
    local t = seed_b()
    t.sendTime = "2026-04-01T00:00:00"
    t.recallFlow.recallIntent = nil
    t.allowSendTime = { { strTime = "09:00" } }
    local key_id, info = client():create_task(t)
    assert.are.equal(123123, key_id, tostring(info))
  end)

  it("refuses a request that breaks a rule of the pages, naming the field", function()
    local body = cjson.encode({ appId = "a", taskName = "ab", agentId = 41, maxCalls = 1000,
                                numberInfoList = { { calleeNumber = "123456" } } })
    local h = core.http({ timeout = 10 })
    local c = client()
    local headers = c:headers()
    headers["Content-Type"] = "application/json;charset=UTF-8"
    local res = assert(h:request("POST", base .. "/v3/voice/group/call/send/agent", headers, body))
    h:close()
    assert.are.equal(422, res.status)
    assert.truthy(res.body:find("maxCalls", 1, true), res.body)
  end)

  it("refuses a request without the signature headers", function()
    local h = core.http({ timeout = 10 })
    local res = assert(h:request("POST", base .. "/v3/voice/group/call/send/agent",
      { ["Content-Type"] = "application/json;charset=UTF-8" }, cjson.encode(seed_b())))
    h:close()
    assert.are.equal(401, res.status)
  end)

  it("accepts the CLI's send", function()
    local task = dir .. "/task.json"
    S.write(task, cjson.encode(seed_b()))
    local out, rc = S.sh_all("cd /tmp && LAAFFIC_API_KEY=bDqJFiq9 LAAFFIC_API_SECRET=7bz1lzh9 " ..
      "LAAFFIC_BASE_URL=" .. q(base) .. " LUA_PATH=" .. q(ROOT .. "/lua/?.lua;" .. ROOT ..
      "/lua/?/init.lua;;") .. " LUA_CPATH=" .. q(ROOT .. "/build/lua5.4/?.so;;") ..
      " lua5.4 " .. q(ROOT .. "/bin/laaffic") .. " send --json --task " .. q(task))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("123123", 1, true), out)
  end)
end)
