-- Warnings through the client: a rule the vendor's pages do not state is returned in
-- req.info.warnings / info.warnings / result.warnings and the request goes out; strict
-- (laaffic.new's option, or the call's opts) makes it an error and nothing goes out.
local laaffic = require("laaffic")
local cjson = require("cjson")

local function task(extra)
  local t = { appId = "2Xql9RBI", taskName = "spec25-task", agentId = 41,
              numberInfoList = { { calleeNumber = "919777654321" } } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- A client whose transport answers success and counts the requests it was given.
local function client(o)
  local sent = {}
  o = o or {}
  o.api_key, o.api_secret, o.retries = "k", "s", 0
  o.transport = function(req)
    sent[#sent + 1] = tostring(req.body)
    return { status = 200, headers = {}, body = '{"status":"0","reason":"success","data":7}' }
  end
  return laaffic.new(o), sent
end

describe("warnings through the client", function()
  it("build_task returns them in req.info.warnings and writes the field as given", function()
    local c = client()
    local req = assert(c:build_task(task({ sendTime = "2026-04-01T09:00:00" })))
    assert.are.equal(1, #req.info.warnings)
    assert.are.equal("sendTime", req.info.warnings[1].field)
    assert.are.equal(-21, req.info.warnings[1].code)
    assert.are.equal("2026-04-01T09:00:00", cjson.decode(tostring(req.body)).sendTime)
    req.body:close()
  end)

  it("create_task sends the task and returns the warnings in info", function()
    local c, sent = client()
    local key_id, info = c:create_task(task({ recallFlow = {} }))
    assert.are.equal(7, key_id)
    assert.are.equal(1, #sent)
    assert.are.equal("recallFlow", info.warnings[1].field)
  end)

  it("no warnings: an empty list", function()
    local c = client()
    local _, info = c:create_task(task())
    assert.are.same({}, info.warnings)
  end)

  it("laaffic.new{ strict = true } makes them errors; nothing is sent", function()
    local c, sent = client({ strict = true })
    local key_id, err = c:create_task(task({ sendTime = "2026-04-01T09:00:00" }))
    assert.is_nil(key_id)
    assert.are.same({ "invalid", "sendTime", -21 }, { err.kind, err.field, err.code })
    assert.are.equal(0, #sent)
  end)

  it("the call's opts.strict wins over the client's, both ways", function()
    local c = client({ strict = true })
    assert.truthy(c:create_task(task({ recallFlow = {} }), { strict = false }))
    local loose = client()
    local key_id, err = loose:create_task(task({ recallFlow = {} }), { strict = true })
    assert.is_nil(key_id)
    assert.are.equal("recallFlow", err.field)
  end)

  it("create_tasks returns the task's warnings once, not once per part", function()
    local c, sent = client()
    local rows = {}
    for i = 1, 5 do rows[i] = { calleeNumber = "91977765432" .. i } end
    local result, err = c:create_tasks(task({ numberInfoList = rows, maxCalls = 0 }),
                                       { max_rows = 2 })
    assert.is_nil(err)
    assert.are.equal(3, #sent)
    assert.are.equal(1, #result.warnings)
    assert.are.equal("maxCalls", result.warnings[1].field)
    local strict = client({ strict = true })
    result, err = strict:create_tasks(task({ numberInfoList = rows, maxCalls = 0 }), { max_rows = 2 })
    assert.are.equal("maxCalls", err.field)
    assert.are.equal(0, result.created)
  end)

  it("a strict that is not a boolean is refused by name", function()
    local ok, msg = pcall(laaffic.new, { api_key = "k", api_secret = "s", strict = "yes" })
    assert.is_false(ok)
    assert.truthy(msg:find("option 'strict' must be a boolean", 1, true), msg)
  end)
end)
