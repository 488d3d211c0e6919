-- laaffic_sandbox.control: the control endpoints under /_sandbox/ (127.0.0.1 only, by
-- nginx's allow/deny): what the sandbox received, its counters, the fault to arm, the
-- push settings, and a reset. README.md ("The sandbox") lists them with their answers.
local ngx = ngx
local ipairs = ipairs
local concat = table.concat
local format = string.format

local cjson = require "cjson.safe"
local common = require "laaffic_sandbox.common"
local faults = require "laaffic_sandbox.faults"
local push = require "laaffic_sandbox.push"
local push_config = require "laaffic_sandbox.push_config"

local dict, send_json = common.dict, common.send_json

local _M = {}

-- GET /_sandbox/tasks: the summaries (JSON texts already) in keyId order
local function tasks_json()
    local d = dict()
    local last = d:get("keyid") or (common.KEYS_FROM - 1)
    local items = {}
    for id = common.KEYS_FROM, last do
        local s = d:get("task:" .. id)
        if s then
            items[#items + 1] = s
        end
    end
    return "[" .. concat(items, ",") .. "]"
end

-- GET /_sandbox/requests
local function requests_json()
    local d = dict()
    local by_status, by_fault = {}, {}
    local n_status, n_faults = 0, 0
    for _, k in ipairs(d:get_keys(0)) do
        local code = k:match("^status:(.+)$")
        local mode = k:match("^faults:(.+)$")
        if code then
            by_status[code] = d:get(k)
            n_status = n_status + 1
        elseif mode then
            by_fault[mode] = d:get(k)
            n_faults = n_faults + 1
        end
    end
    -- an empty table would encode as {} anyway; the counts only keep the intent readable
    return format('{"total":%d,"max_in_flight":%d,"status":%s,"faults":%s}', d:get("total") or 0,
                  d:get("max_inflight") or 0,
                  n_status > 0 and cjson.encode(by_status) or "{}",
                  n_faults > 0 and cjson.encode(by_fault) or "{}")
end

-- POST /_sandbox/reset: running push jobs stop at their next step (a new epoch)
local function reset()
    local d = dict()
    local epoch = (d:get("push:epoch") or 0) + 1
    d:flush_all()
    d:flush_expired()
    d:set("push:epoch", epoch)
    return send_json(200, '{"ok":true}')
end

-- A POST's JSON body handed to set (faults.arm, push_config.set); answers json() after.
local function change(set, json)
    local ok, err = set(common.json_request())
    if not ok then
        return send_json(400, cjson.encode({ error = err }))
    end
    return send_json(200, json())
end

local GET = {
    ["/_sandbox/ping"] = function()
        return send_json(200, format('{"ok":true,"pid":%d}', ngx.worker.pid()))
    end,
    ["/_sandbox/tasks"] = function() return send_json(200, tasks_json()) end,
    ["/_sandbox/requests"] = function() return send_json(200, requests_json()) end,
    ["/_sandbox/fault"] = function() return send_json(200, faults.json()) end,
    ["/_sandbox/pushes"] = function() return send_json(200, push.counters_json()) end,
    ["/_sandbox/push-config"] = function() return send_json(200, push_config.json()) end,
}

local POST = {
    ["/_sandbox/fault"] = function() return change(faults.arm, faults.json) end,
    ["/_sandbox/push-config"] = function() return change(push_config.set, push_config.json) end,
    ["/_sandbox/reset"] = reset,
}

-- content phase of location /_sandbox/
function _M.control()
    local method = ngx.req.get_method()
    local handler = (method == "GET" and GET or method == "POST" and POST or {})[ngx.var.uri]
    if handler then
        return handler()
    end
    return send_json(404, '{"error":"no such sandbox endpoint"}')
end

return _M
