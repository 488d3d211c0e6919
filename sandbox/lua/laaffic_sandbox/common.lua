-- laaffic_sandbox.common: what the sandbox's parts share inside nginx: the shared dict of
-- counters and summaries, the configuration init() was given, the vendor's reason texts,
-- JSON answers and an interruptible sleep. Loads outside nginx too (the specs use the
-- pure parts of the sandbox).
local _M = {}

_M.DICT_NAME = "laaffic_sandbox"
_M.CONTENT_TYPE = "application/json;charset=UTF-8"
_M.KEYS_FROM = 100001           -- the first keyId; keyIds restart after a reset

-- Set by laaffic_sandbox.api.init() in the master process before the workers fork.
_M.conf = nil

-- The vendor's reason texts: the status table of page A, and -67 from page B's table
-- (the same error as -68 under another number). Fault mode "status" answers any of them.
_M.REASON = {
    ["0"] = "success",
    ["-1"] = "Authentication error",
    ["-2"] = "Restricted IP access",
    ["-16"] = "Timestamp expires",
    ["-18"] = "Port program unusual",
    ["-20"] = "Data existing",
    ["-21"] = "Data validation exception",
    ["-22"] = "Parameter exception",
    ["-23"] = "Data caps",
    ["-24"] = "Data unexisting",
    ["-26"] = "Getting fee faily",
    ["-34"] = "There is no callable number when the task was ended last time. Please start " ..
              "the group call task again.",
    ["-37"] = "The group call task you submitted exceeds the maximum concurrent task limit. " ..
              "Please complete the task before submitting again!",
    ["-38"] = "Conversion text and language type are required",
    ["-39"] = "Failed to obtain the text language type",
    ["-41"] = "Task name already exists",
    ["-42"] = "Recall is allowed only when the task is canceled or completed",
    ["-60"] = "The AI speech template does not exist",
    ["-67"] = "The AI agent industry's intent does not match the callback intent",
    ["-68"] = "AI Agent industry intent does not match recall intent",
}

function _M.dict()
    return ngx.shared[_M.DICT_NAME]
end

function _M.count(key)
    _M.dict():incr(key, 1, 0)
end

-- ngx.sleep(ms / 1000) in slices, cut short when the worker shuts down (nginx -s quit
-- waits for running requests: a hung one must not hold the stop up). True if it slept
-- the whole time.
function _M.nap(ms)
    local left = ms / 1000
    while left > 0.0005 do      -- (not > 0: a float remainder would make an ngx.sleep(0))
        if ngx.worker.exiting() then
            return false
        end
        local step = left < 0.1 and left or 0.1
        ngx.sleep(step)
        left = left - step
    end
    return true
end

function _M.send_json(http_status, body)
    ngx.status = http_status
    ngx.header["Content-Type"] = _M.CONTENT_TYPE
    ngx.header["Content-Length"] = #body
    ngx.print(body)
    return ngx.exit(ngx.HTTP_OK)
end

-- A JSON object's body from a POST to a control endpoint ({} when empty): t | nil
function _M.json_request()
    ngx.req.read_body()
    local body = ngx.req.get_body_data() or ""
    return require("cjson.safe").decode(body ~= "" and body or "{}")
end

return _M
