-- laaffic_sandbox.api: the API emulator, the nginx side of the local LAAFFIC sandbox
-- (sandbox/laaffic-sandbox writes the nginx.conf that calls init, init_worker, api and
-- api_done). The endpoint checks what the vendor's pages say the server checks, in their
-- order: Api-Key, Timestamp and Sign (-1, -16), a JSON object body (-18), the appId (-1),
-- the field rules (-21/-22: laaffic.core.encode_body, the client's own C rule table) and
-- a unique taskName (-41); then it records a summary of the task (never the body) and
-- hands it to the push simulator. README.md ("The sandbox") is the manual.
local ngx = ngx
local type = type
local tostring = tostring
local tonumber = tonumber
local ipairs = ipairs
local pcall = pcall
local floor = math.floor
local abs = math.abs
local concat = table.concat
local format = string.format

local cjson = require "cjson.safe"
local core = require "laaffic.core"
local ngx_body = require "laaffic.ngx_body"
local common = require "laaffic_sandbox.common"
local faults = require "laaffic_sandbox.faults"
local push = require "laaffic_sandbox.push"
local push_config = require "laaffic_sandbox.push_config"

local REASON = common.REASON
local dict, count, send_json = common.dict, common.count, common.send_json

local _M = { _VERSION = core._VERSION }

-- The push settings init() starts with: the defaults, and the push URL if given.
local function start_push_config(url)
    local push_conf, err = push_config.merge(push_config.DEFAULTS, {})
    if url ~= nil and url ~= "" then
        push_conf, err = push_config.merge(push_conf, { url = url })
    end
    if not push_conf then
        error("laaffic.sandbox: config 'push_url': " .. err, 3)
    end
    return push_conf
end

-- init(c): c = { key =, secret =, app_ids = { "id", ... }, window = <seconds>,
--                ttl = <seconds, 0 = none>, pid_file = <path>,
--                push_url = <http://127.0.0.1... or nil: no pushes> }
-- Runs in init_by_lua (the master), from the owner-only file the start command writes.
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
    common.conf = {
        key = c.key, secret = c.secret, app_ids = app_ids, window = window,
        ttl = tonumber(c.ttl) or 0, pid_file = c.pid_file, push = start_push_config(c.push_url),
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
    local f = common.conf.pid_file and io.open(common.conf.pid_file, "r")
    if f then
        local pid = tonumber(f:read("*l"))
        f:close()
        return pid
    end
    return nil
end

local function ttl_reached(premature)
    if premature then
        return
    end
    local pid = master_pid()
    ngx.log(ngx.NOTICE, "laaffic sandbox: ttl of ", common.conf.ttl, " s reached, stopping master ",
            tostring(pid))
    if pid then
        local ffi = require "ffi"
        pcall(ffi.cdef, "int kill(int pid, int sig);")
        ffi.C.kill(pid, 15)
    end
end

-- A safety net for test runs that die before they stop the sandbox: after conf.ttl
-- seconds the worker asks the master to shut down (SIGTERM: fast, even with a hung request).
function _M.init_worker()
    -- voiceId suffixes, which records are duplicated, which batches are held back
    math.randomseed(floor(ngx.now() * 1000) % 2147483647 + ngx.worker.pid())
    local conf = common.conf
    if not conf or conf.ttl <= 0 then
        return
    end
    local ok, err = ngx.timer.at(conf.ttl, ttl_reached)
    if not ok then
        ngx.log(ngx.ERR, "laaffic sandbox: cannot arm the ttl timer: ", err)
    end
end

-- {"status":"<code>","reason":"..."[,"data":keyId]}, fields in the vendor's order (cjson
-- would not keep it).
local function api_body(status, reason, data)
    local parts = { '{"status":', cjson.encode(status), ',"reason":', cjson.encode(reason) }
    if data ~= nil then
        parts[#parts + 1] = format(',"data":%d', data)
    end
    parts[#parts + 1] = "}"
    return concat(parts)
end

-- True when s has a `//` outside JSON strings (a comment, which JSON does not allow).
local function has_comment(s)
    local pos = 1
    while true do
        local i = s:find('["/]', pos)
        if not i then
            return false
        end
        if s:byte(i) == 34 then                   -- '"': skip the whole string
            local j = i + 1
            repeat
                local k = s:find('["\\]', j)
                if not k then
                    return false
                end
                j = k + (s:byte(k) == 92 and 2 or 0)
            until s:byte(k) == 34
            pos = j + 1
        elseif s:byte(i + 1) == 47 then
            return true
        else
            pos = i + 1
        end
    end
end
_M.has_comment = has_comment

-- A header's single value, or nil when it is absent or repeated.
local function header(h, name)
    local v = h[name]
    if type(v) ~= "string" then
        return nil
    end
    return v
end

-- The Api-Key, Timestamp and Sign headers. -> nil when fine | status, reason, detail
local function check_auth()
    local conf = common.conf
    local h = ngx.req.get_headers(100)
    local key, ts, sign = header(h, "api-key"), header(h, "timestamp"), header(h, "sign")
    if not key or not ts or not sign then
        return "-1", REASON["-1"], "missing or repeated Api-Key, Timestamp or Sign header"
    end
    if key ~= conf.key then
        return "-1", REASON["-1"], "unknown Api-Key"
    end
    ts = ts:match("^%s*(.-)%s*$")
    if #ts > 20 or not ts:match("^%d+$") then
        return "-16", REASON["-16"], "Timestamp is not 1 to 20 digits"
    end
    if sign:match("^%s*(.-)%s*$"):lower() ~= core.sign(conf.key, conf.secret, ts) then
        return "-1", REASON["-1"], "Sign is not md5(key .. secret .. Timestamp)"
    end
    local skew = ngx.time() - tonumber(ts)
    if abs(skew) > conf.window then
        return "-16", REASON["-16"],
               format("Timestamp is %d s off the server clock (window %d s)", skew, conf.window)
    end
    return nil
end

-- The body as a task. Page B: -18 "Check whether the request body is in json format."
-- Its own curl example carries // comments: JSON has none, so that body is answered -18
-- too. -> task | nil, status, reason, detail
local function decode_task(body)
    local not_json = REASON["-18"] .. ": check whether the request body is in json format ("
    if body == "" then
        return nil, "-18", not_json .. "it is empty)", "empty body"
    end
    if not body:match("^%s*{") then
        return nil, "-18", not_json .. "it is not a JSON object)", "the body is not a JSON object"
    end
    local task, jerr = cjson.decode(body)
    if type(task) ~= "table" then
        local comment = has_comment(body)
        return nil, "-18", not_json .. (comment and "// comments are not JSON)" or "it is not JSON)"),
               "the body is not JSON: " .. tostring(jerr)
    end
    return task
end

-- Records a valid task under a new keyId (its name claimed first: -41 if used before).
-- -> status, reason, keyId|nil, detail|nil
local function create(task, info, body, spooled)
    local d = dict()
    local added, aerr = d:safe_add("name:" .. task.taskName, 0)
    if not added then
        if aerr == "exists" then
            return "-41", REASON["-41"], nil, "taskName used before in this sandbox"
        end
        return "-18", REASON["-18"], nil, "shared dict: " .. tostring(aerr)
    end
    local key_id = d:incr("keyid", 1, common.KEYS_FROM - 1)
    d:set("name:" .. task.taskName, key_id)
    local summary = cjson.encode({
        keyId = key_id, taskName = task.taskName, appId = task.appId, rows = info.rows,
        truncated = info.truncated, bytes = #body, md5 = ngx.md5(body), received_at = ngx.now(),
        path = ngx.var.uri, spooled = spooled == true, user_agent = ngx.var.http_user_agent,
        http_version = ngx.req.http_version(),
    })
    local stored, serr = d:safe_set("task:" .. key_id, summary)
    if not stored then
        ngx.log(ngx.ERR, "laaffic sandbox: task ", key_id, " not recorded: ", serr)
    end
    push.schedule(task, key_id)
    return "0", REASON["0"], key_id, nil
end

-- Checks and records one request. Returns status, reason, keyId|nil, detail|nil.
local function process(body, spooled)
    local status, reason, detail = check_auth()
    if status then
        return status, reason, nil, detail
    end
    local task
    task, status, reason, detail = decode_task(body)
    if not task then
        return status, reason, nil, detail
    end
    if type(task.appId) == "string" and not common.conf.app_ids[task.appId] then
        return "-1", REASON["-1"], nil, "appId is not one of the configured ids"
    end
    -- The shared rule table: the same C validation the client runs before sending.
    local ok, out, info, field, code = pcall(core.encode_body, task)
    if not ok then
        return "-18", REASON["-18"], nil, "laaffic.core.encode_body raised: " .. tostring(out)
    end
    if not out then
        return tostring(code), info, nil, "field " .. tostring(field)
    end
    out:close()
    return create(task, info, body, spooled)
end

-- Counts the request in, and in max_inflight (api_done counts it out).
local function count_in()
    count("total")
    local d = dict()
    local n = d:incr("inflight", 1, 0)
    ngx.ctx.laaffic_inflight = true
    if n > (d:get("max_inflight") or 0) then
        d:set("max_inflight", n)
    end
end

-- content phase of the API locations
function _M.api()
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Allow"] = "POST"
        return send_json(405, '{"error":"method not allowed: use POST"}')
    end
    count_in()
    local mode, ms, extra = faults.take()
    if mode then
        ngx.log(ngx.NOTICE, "laaffic sandbox: fault ", mode, " (", ms, " ms)")
        if faults.before_body(mode, ms, extra) then
            return
        end
    end
    local body, spooled = ngx_body.read(nil)       -- spooled: the reason when body is nil
    if mode and faults.instead_of_answer(mode, ms, extra) then
        return
    end
    local status, reason, key_id, detail
    if not body then
        status, reason, detail = "-18", REASON["-18"], spooled
    elseif mode == "status" then        -- the answer asked for; no task is created
        status, reason, detail = extra.status, REASON[extra.status], "fault mode status"
    else
        status, reason, key_id, detail = process(body, spooled)
    end
    count("status:" .. status)
    if detail then
        ngx.header["X-Laaffic-Sandbox-Detail"] = detail
        ngx.log(ngx.NOTICE, "laaffic sandbox: status ", status, ": ", detail)
    end
    return faults.answer(mode, ms, extra, api_body(status, reason, key_id))
end

-- log phase of the API locations: the request is over, whatever way it ended
function _M.api_done()
    if ngx.ctx.laaffic_inflight then
        dict():incr("inflight", -1, 1)
    end
end

return _M
