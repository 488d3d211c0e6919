-- laaffic.sandbox.handler: the nginx side of the local LAAFFIC sandbox.
--
-- A real nginx with the lua module (LuaJIT) runs this file; bin/laaffic-sandbox writes the
-- nginx.conf that loads it and the owner-only config file that init() gets:
--
--   init_by_lua_block        { require("laaffic.sandbox.handler").init(dofile(".../sandbox.conf.lua")) }
--   init_worker_by_lua_block { require("laaffic.sandbox.handler").init_worker() }
--   location = /v3/voice/group/call/send/agent { content_by_lua_block { ....api() } }
--   location = /voice/group/call/send/agent    { content_by_lua_block { ....api() } }
--   location /_sandbox/                        { content_by_lua_block { ....control() } }
--
-- The API endpoint checks what the vendor's pages say the server checks, in this order:
-- the Api-Key, Timestamp and Sign headers (-1; a Timestamp that is not 1-20 digits or lies
-- outside the window: -16), that the body is a JSON object (-18; `//` line comments
-- outside strings are removed first, as the vendor's own curl example carries them), the
-- appId (-1), every field rule (-21/-22: laaffic.core.encode_body, the same C rule table
-- the client validates with), and the unique taskName (-41). Success answers
-- {"status":"0","reason":"success","data":<keyId>}. Every API answer is HTTP 200 with a
-- JSON body; `reason` is the vendor's text for the code (the core's message, which names
-- the field, for -21/-22), and the sandbox's own detail goes to the
-- X-Laaffic-Sandbox-Detail header and the error log.
--
-- Control endpoints (127.0.0.1 only):
--   GET  /_sandbox/ping      {"ok":true,"pid":<worker pid>}
--   GET  /_sandbox/tasks     [{keyId, taskName, appId, rows, truncated, bytes, md5,
--                              received_at, path, spooled, user_agent, http_version},
--                              ...] in keyId order; spooled:
--                              nginx had written the body to a temp file
--   GET  /_sandbox/requests  {"total":N,"status":{"0":N,"-1":N,...},"faults":{"drop":N,...}}
--   GET  /_sandbox/fault     the armed fault: {"mode":...,"count":N,"ms":N} or {"mode":"none"}
--   POST /_sandbox/fault     {"mode":M,"count":N,"ms":MS} arms the next N (default 1) API
--                            requests; mode "none" disarms. Modes:
--                              delay             answer normally, ms (default 1000) late
--                              slow_read         wait ms (default 1000) before reading the body
--                              drop              read the body, close without an answer
--                              drop_after_create create the task, then close without an answer
--                              status500         read the body, answer nginx's HTTP 500 page
--                              garbage           read the body, answer HTTP 200 "<html>oops"
--                                                labelled application/json
--                              hang              read the body, answer nothing for ms (default
--                                                60000), then close; a client that gives up
--                                                earlier ends it (lua_check_client_abort)
--   POST /_sandbox/reset     forget tasks, task names, faults and counters (keyIds restart)
--
-- State lives in the shared dict "laaffic_sandbox", as small summaries only: the bodies
-- themselves are never kept.

local ngx = ngx
local type = type
local tostring = tostring
local tonumber = tonumber
local pcall = pcall
local floor = math.floor
local abs = math.abs
local concat = table.concat
local format = string.format

local cjson = require "cjson.safe"
local core = require "laaffic.core"

local _M = { _VERSION = core._VERSION }

local DICT_NAME = "laaffic_sandbox"
local CONTENT_TYPE = "application/json;charset=UTF-8"
local KEYS_FROM = 100001

-- The vendor's reason texts (the status table of seed 000) for the codes this server sends.
local REASON = {
    ["0"] = "success",
    ["-1"] = "Authentication error",
    ["-16"] = "Timestamp expires",
    ["-18"] = "Port program unusual",
    ["-41"] = "Task name already exists",
}

local FAULTS = {
    delay = 1000, slow_read = 1000, drop = 0, drop_after_create = 0, status500 = 0,
    garbage = 0, hang = 60000,
}

-- Set by init() in the master process before the workers fork.
local conf

-- init(c): c = { key =, secret =, app_ids = { "id", ... }, window = <seconds>,
--                ttl = <seconds, 0 = none>, pid_file = <path> }
function _M.init(c)
    if type(c) ~= "table" then
        error("laaffic.sandbox: config table expected, got " .. type(c), 2)
    end
    for _, name in ipairs({ "key", "secret" }) do
        if type(c[name]) ~= "string" or c[name] == "" then
            error("laaffic.sandbox: config '" .. name .. "' must be a non-empty string", 2)
        end
    end
    if type(c.app_ids) ~= "table" or #c.app_ids == 0 then
        error("laaffic.sandbox: config 'app_ids' must be a non-empty list", 2)
    end
    local app_ids = {}
    for _, id in ipairs(c.app_ids) do
        app_ids[id] = true
    end
    local window = tonumber(c.window) or 300
    if window < 0 then
        error("laaffic.sandbox: config 'window' must be >= 0 seconds", 2)
    end
    conf = {
        key = c.key, secret = c.secret, app_ids = app_ids, window = window,
        ttl = tonumber(c.ttl) or 0, pid_file = c.pid_file,
    }
    -- Fail at start rather than on the first request.
    assert(core.sign(c.key, c.secret, 0))
end

-- The master's pid, for the ttl timer: ngx.process when resty.core has it, else the pid file.
local function master_pid()
    local ok, process = pcall(require, "ngx.process")
    if ok and type(process) == "table" and process.get_master_pid then
        local pid = process.get_master_pid()
        if pid then
            return pid
        end
    end
    local f = conf.pid_file and io.open(conf.pid_file, "r")
    if f then
        local pid = tonumber(f:read("*l"))
        f:close()
        return pid
    end
    return nil
end

-- A safety net for test runs that die before they stop the sandbox: after conf.ttl
-- seconds the worker asks the master to shut down (SIGTERM: fast, even with a hung request).
function _M.init_worker()
    if not conf or conf.ttl <= 0 then
        return
    end
    local ok, err = ngx.timer.at(conf.ttl, function(premature)
        if premature then
            return
        end
        local pid = master_pid()
        ngx.log(ngx.NOTICE, "laaffic sandbox: ttl of ", conf.ttl, " s reached, stopping master ",
                tostring(pid))
        if pid then
            local ffi = require "ffi"
            pcall(ffi.cdef, "int kill(int pid, int sig);")
            ffi.C.kill(pid, 15)
        end
    end)
    if not ok then
        ngx.log(ngx.ERR, "laaffic sandbox: cannot arm the ttl timer: ", err)
    end
end

-- ngx.sleep(ms / 1000) in slices, cut short when the worker shuts down (nginx -s quit
-- waits for running requests: a hung one must not hold the stop up). True if it slept
-- the whole time.
local function nap(ms)
    local left = ms / 1000
    while left > 0 do
        if ngx.worker.exiting() then
            return false
        end
        local step = left < 0.1 and left or 0.1
        ngx.sleep(step)
        left = left - step
    end
    return true
end

local function dict()
    return ngx.shared[DICT_NAME]
end

local function count(key)
    dict():incr(key, 1, 0)
end

---------------------------------------------------------------------------------------
-- Answers
---------------------------------------------------------------------------------------

local function send_json(http_status, body)
    ngx.status = http_status
    ngx.header["Content-Type"] = CONTENT_TYPE
    ngx.header["Content-Length"] = #body
    ngx.print(body)
    return ngx.exit(ngx.HTTP_OK)
end

-- {"status":"<code>","reason":"..."[,"data":keyId]}, fields in the vendor's order.
local function api_body(status, reason, data)
    local parts = { '{"status":', cjson.encode(status), ',"reason":', cjson.encode(reason) }
    if data ~= nil then
        parts[#parts + 1] = format(',"data":%d', data)
    end
    parts[#parts + 1] = "}"
    return concat(parts)
end

---------------------------------------------------------------------------------------
-- The request body
---------------------------------------------------------------------------------------

-- The raw body: from memory, or from the file nginx spooled it to. nil, err if unreadable.
local function read_body()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body then
        return body
    end
    local path = ngx.req.get_body_file()
    if not path then
        return ""           -- no body at all
    end
    local f, err = io.open(path, "rb")
    if not f then
        return nil, "cannot open the spooled body: " .. tostring(err)
    end
    body = f:read("*a")
    f:close()
    return body, nil, true
end

-- s without `//` comments (to the end of the line) outside JSON strings.
local function strip_comments(s)
    if not s:find("//", 1, true) then
        return s
    end
    local out, pos, n = {}, 1, #s
    while pos <= n do
        local i = s:find('["/]', pos)
        if not i then
            out[#out + 1] = s:sub(pos)
            break
        end
        if s:byte(i) == 34 then                   -- '"': copy the whole string
            local j = i + 1
            while true do
                local k = s:find('["\\]', j)
                if not k then
                    j = n
                    break
                end
                if s:byte(k) == 92 then           -- backslash: skip the escaped byte
                    j = k + 2
                else
                    j = k
                    break
                end
            end
            out[#out + 1] = s:sub(pos, j)
            pos = j + 1
        elseif s:byte(i + 1) == 47 then           -- "//": drop up to the newline
            out[#out + 1] = s:sub(pos, i - 1)
            local nl = s:find("\n", i, true)
            pos = nl or (n + 1)
        else
            out[#out + 1] = s:sub(pos, i)
            pos = i + 1
        end
    end
    return concat(out)
end
_M.strip_comments = strip_comments

---------------------------------------------------------------------------------------
-- The API endpoint
---------------------------------------------------------------------------------------

-- A header's single value, or nil when it is absent or repeated.
local function header(h, name)
    local v = h[name]
    if type(v) ~= "string" then
        return nil
    end
    return v
end

-- Checks and records one request. Returns status, reason, keyId|nil, detail|nil.
local function process(body, spooled)
    local h = ngx.req.get_headers(100)
    local key, ts, sign = header(h, "api-key"), header(h, "timestamp"), header(h, "sign")
    if not key or not ts or not sign then
        return "-1", REASON["-1"], nil, "missing or repeated Api-Key, Timestamp or Sign header"
    end
    if key ~= conf.key then
        return "-1", REASON["-1"], nil, "unknown Api-Key"
    end
    ts = ts:match("^%s*(.-)%s*$")
    if #ts > 20 or not ts:match("^%d+$") then
        return "-16", REASON["-16"], nil, "Timestamp is not 1 to 20 digits"
    end
    if sign:match("^%s*(.-)%s*$"):lower() ~= core.sign(conf.key, conf.secret, ts) then
        return "-1", REASON["-1"], nil, "Sign is not md5(key .. secret .. Timestamp)"
    end
    local skew = ngx.time() - tonumber(ts)
    if abs(skew) > conf.window then
        return "-16", REASON["-16"], nil,
               format("Timestamp is %d s off the server clock (window %d s)", skew, conf.window)
    end

    if body == "" then
        return "-18", REASON["-18"], nil, "empty body"
    end
    local text = strip_comments(body)
    if not text:match("^%s*{") then
        return "-18", REASON["-18"], nil, "the body is not a JSON object"
    end
    local task, jerr = cjson.decode(text)
    if type(task) ~= "table" then
        return "-18", REASON["-18"], nil, "the body is not JSON: " .. tostring(jerr)
    end

    if type(task.appId) == "string" and not conf.app_ids[task.appId] then
        return "-1", REASON["-1"], nil, "appId is not one of the configured ids"
    end

    -- The shared rule table: the same C validation the client runs before sending.
    local ok, out, info, field, code = pcall(core.encode_body, task)
    if not ok then
        return "-18", REASON["-18"], nil, "laaffic.core.encode_body raised: " .. tostring(out)
    end
    if not out then
        local message = info
        return tostring(code), message, nil, "field " .. tostring(field)
    end
    out:close()

    local d = dict()
    local added, aerr = d:safe_add("name:" .. task.taskName, 0)
    if not added then
        if aerr == "exists" then
            return "-41", REASON["-41"], nil, "taskName used before in this sandbox"
        end
        return "-18", REASON["-18"], nil, "shared dict: " .. tostring(aerr)
    end
    local key_id = d:incr("keyid", 1, KEYS_FROM - 1)
    d:set("name:" .. task.taskName, key_id)
    local summary = cjson.encode({
        keyId = key_id,
        taskName = task.taskName,
        appId = task.appId,
        rows = info.rows,
        truncated = info.truncated,
        bytes = #body,
        md5 = ngx.md5(body),
        received_at = ngx.now(),
        path = ngx.var.uri,
        spooled = spooled == true,
        user_agent = ngx.var.http_user_agent,
        http_version = ngx.req.http_version(),
    })
    local stored, serr = d:safe_set("task:" .. key_id, summary)
    if not stored then
        ngx.log(ngx.ERR, "laaffic sandbox: task ", key_id, " not recorded: ", serr)
    end
    return "0", REASON["0"], key_id, nil
end

-- The armed fault for this request, if any: mode, ms.
local function take_fault()
    local d = dict()
    local mode = d:get("fault:mode")
    if not mode then
        return nil
    end
    local left = d:incr("fault:count", -1, 0)
    if not left or left < 0 then
        d:delete("fault:mode")
        d:delete("fault:count")
        return nil
    end
    local ms = d:get("fault:ms") or FAULTS[mode] or 0
    if left == 0 then
        d:delete("fault:mode")
        d:delete("fault:count")
    end
    d:incr("faults:" .. mode, 1, 0)
    return mode, ms
end

function _M.api()
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Allow"] = "POST"
        return send_json(405, '{"error":"method not allowed: use POST"}')
    end
    count("total")
    local mode, ms = take_fault()
    if mode then
        ngx.log(ngx.NOTICE, "laaffic sandbox: fault ", mode, " (", ms, " ms)")
    end
    if mode == "slow_read" then
        nap(ms)
    end

    local body, berr, spooled = read_body()

    if mode == "drop" then
        return ngx.exit(444)            -- close without an answer
    elseif mode == "hang" then
        nap(ms)
        return ngx.exit(444)
    elseif mode == "status500" then
        return ngx.exit(500)            -- nginx's own HTML error page
    elseif mode == "garbage" then
        ngx.status = 200
        ngx.header["Content-Type"] = CONTENT_TYPE
        ngx.print("<html>oops")
        return ngx.exit(ngx.HTTP_OK)
    end

    local status, reason, key_id, detail
    if not body then
        status, reason, detail = "-18", REASON["-18"], berr
    else
        status, reason, key_id, detail = process(body, spooled)
    end
    count("status:" .. status)
    if detail then
        ngx.header["X-Laaffic-Sandbox-Detail"] = detail
        ngx.log(ngx.NOTICE, "laaffic sandbox: status ", status, ": ", detail)
    end

    if mode == "drop_after_create" then
        return ngx.exit(444)
    elseif mode == "delay" then
        nap(ms)
    end
    return send_json(200, api_body(status, reason, key_id))
end

---------------------------------------------------------------------------------------
-- Control endpoints
---------------------------------------------------------------------------------------

local function tasks_json()
    local d = dict()
    local last = d:get("keyid") or (KEYS_FROM - 1)
    local items = {}
    for id = KEYS_FROM, last do
        local s = d:get("task:" .. id)
        if s then
            items[#items + 1] = s
        end
    end
    return "[" .. concat(items, ",") .. "]"
end

local function requests_json()
    local d = dict()
    local by_status, faults = {}, {}
    local n_status, n_faults = 0, 0
    for _, k in ipairs(d:get_keys(0)) do
        local code = k:match("^status:(.+)$")
        local mode = k:match("^faults:(.+)$")
        if code then
            by_status[code] = d:get(k)
            n_status = n_status + 1
        elseif mode then
            faults[mode] = d:get(k)
            n_faults = n_faults + 1
        end
    end
    -- empty tables would encode as {} anyway; the counts only keep the intent readable
    return format('{"total":%d,"status":%s,"faults":%s}', d:get("total") or 0,
                  n_status > 0 and cjson.encode(by_status) or "{}",
                  n_faults > 0 and cjson.encode(faults) or "{}")
end

local function fault_json()
    local d = dict()
    local mode = d:get("fault:mode")
    if not mode then
        return '{"mode":"none","count":0}'
    end
    return cjson.encode({ mode = mode, count = d:get("fault:count"), ms = d:get("fault:ms") })
end

local function arm_fault()
    ngx.req.read_body()
    local body = ngx.req.get_body_data() or ""
    local f = cjson.decode(body ~= "" and body or "{}")
    if type(f) ~= "table" then
        return send_json(400, '{"error":"the body must be a JSON object"}')
    end
    local mode = f.mode
    local d = dict()
    if mode == "none" or mode == cjson.null then
        d:delete("fault:mode")
        d:delete("fault:count")
        d:delete("fault:ms")
        return send_json(200, fault_json())
    end
    if type(mode) ~= "string" or not FAULTS[mode] then
        return send_json(400, '{"error":"mode must be one of delay, slow_read, drop, ' ..
                              'drop_after_create, status500, garbage, hang, none"}')
    end
    local n = f.count == nil and 1 or f.count
    local ms = f.ms == nil and FAULTS[mode] or f.ms
    if type(n) ~= "number" or n < 1 or n ~= floor(n) then
        return send_json(400, '{"error":"count must be an integer >= 1"}')
    end
    if type(ms) ~= "number" or ms < 0 or ms > 3600000 then
        return send_json(400, '{"error":"ms must be a number from 0 to 3600000"}')
    end
    d:set("fault:mode", mode)
    d:set("fault:count", n)
    d:set("fault:ms", ms)
    return send_json(200, fault_json())
end

function _M.control()
    local uri = ngx.var.uri
    local method = ngx.req.get_method()
    if uri == "/_sandbox/ping" and method == "GET" then
        return send_json(200, format('{"ok":true,"pid":%d}', ngx.worker.pid()))
    elseif uri == "/_sandbox/tasks" and method == "GET" then
        return send_json(200, tasks_json())
    elseif uri == "/_sandbox/requests" and method == "GET" then
        return send_json(200, requests_json())
    elseif uri == "/_sandbox/fault" and method == "GET" then
        return send_json(200, fault_json())
    elseif uri == "/_sandbox/fault" and method == "POST" then
        return arm_fault()
    elseif uri == "/_sandbox/reset" and method == "POST" then
        dict():flush_all()
        dict():flush_expired()
        return send_json(200, '{"ok":true}')
    end
    return send_json(404, '{"error":"no such sandbox endpoint"}')
end

return _M
