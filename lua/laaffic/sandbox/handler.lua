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
--   GET  /_sandbox/requests  {"total":N,"max_in_flight":N,"status":{"0":N,"-1":N,...},
--                              "faults":{"drop":N,...}}  (max_in_flight: the most API
--                              requests handled at once since the last reset)
--   GET  /_sandbox/fault     the armed fault: {"mode":...,"count":N,"ms":N[,"bytes":N]
--                              [,"location":URL,"http_status":N]} or {"mode":"none"}
--   POST /_sandbox/fault     {"mode":M,"count":N,"ms":MS[,"bytes":B][,"location":URL]
--                            [,"http_status":S]} arms the next N (default 1) API requests;
--                            mode "none" disarms. Modes:
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
--                              reset             read `bytes` (default 64) of the body, then
--                                                reset the connection: a TCP RST (SO_LINGER 0)
--                                                over HTTP/1.x; over HTTP/2 the stream is reset
--                                                (RST_STREAM) before any of the body is read;
--                                                the task is not created
--                              short_body        create the task, send the headers with the
--                                                answer's true Content-Length and only `bytes`
--                                                (default 0: none) of the body, then close
--                              cut_json          create the task, answer HTTP 200 with the first
--                                                `bytes` (default: half) of the JSON, the
--                                                Content-Length honest (the cut length)
--                              slow_headers      create the task, then send the whole answer,
--                                                status line and headers included, one byte
--                                                every ms (default 500) over the raw socket
--                                                (over HTTP/2, where nginx sends the headers at
--                                                once, like slow_body)
--                              slow_body         create the task, send the headers, then the
--                                                body one byte every ms (default 500)
--                              data_exists       read the body, answer the API's -20 "Data
--                                                existing" (HTTP 200); the task is not created
--                              redirect          read the body, answer http_status (301, 302,
--                                                303, 307 or 308; default 307) with Location:
--                                                `location` (required, http:// or https://);
--                                                the task is not created
--   GET  /_sandbox/pushes    the push counters: {"records":N (reports made, one per number:
--                              unique voiceIds), "sent":N (records POSTed, duplicates
--                              included, retries not), "duplicates":N, "batches":N,
--                              "delivered_batches":N (answered 200), "failed_batches":N
--                              (still not 200 after the retries), "retries":N, "posts":N
--                              (HTTP attempts), "delivered_records":N, "jobs":N (tasks
--                              scheduled for pushing), "active":N (jobs running now),
--                              "last_error":"..." ("" when none)}
--   GET  /_sandbox/push-config  the push settings (below); url "" = no pushes
--   POST /_sandbox/push-config  {"url":..., "delay_ms":..., "duplicates":bool,
--                              "shape":"array"|"wrapped"|"mixed", "batch":N, "retry_s":S,
--                              "retries":N}: changes the given settings (for the tasks
--                              created from then on) and answers them all; 400 with
--                              {"error":...} for a bad or unknown one. url: only http://
--                              to 127.0.0.1 or localhost (the sandbox never sends traffic
--                              off the machine); "" or null turns pushing off. Defaults:
--                              url from bin/laaffic-sandbox --push-url (none), delay_ms 100,
--                              duplicates true, shape "mixed", batch 100, retry_s 1, retries 3
--   POST /_sandbox/reset     forget tasks, task names, faults, push counters and push
--                            settings made at run time (keyIds restart; the start's push
--                            URL stays); push jobs still running stop at their next step
--
-- Pushes: after a task is created, a timer (ngx.timer.at, delay_ms later) makes one call
-- report per number of its numberInfoList and POSTs them (HTTP/1.1 over a cosocket,
-- Content-Type application/json;charset=UTF-8, header X-Laaffic-Sandbox-Batch: keyId/n)
-- batch by batch: the body a bare JSON array or {"array":[...]} (alternating for
-- "mixed"); ~10% of the records re-sent unchanged at the head of the next batch (at least
-- one per task; the last ones in a batch of their own); about one batch in four held back
-- and sent after the next one; a batch not answered 200 (or whose connection failed) sent
-- again after retry_s, up to `retries` times. See record_json for a record's fields.
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
    ["-20"] = "Data existing",
    ["-41"] = "Task name already exists",
}

-- mode -> default ms; FAULT_NAMES: the modes in the order the error message lists them
local FAULTS = {
    delay = 1000, slow_read = 1000, drop = 0, drop_after_create = 0, status500 = 0,
    garbage = 0, hang = 60000, reset = 0, short_body = 0, cut_json = 0, slow_headers = 500,
    slow_body = 500, redirect = 0, data_exists = 0,
}
local FAULT_NAMES = { "delay", "slow_read", "drop", "drop_after_create", "status500", "garbage",
                      "hang", "reset", "short_body", "cut_json", "slow_headers", "slow_body",
                      "redirect", "data_exists" }
local FAULT_BYTES = { reset = 64, short_body = 0 }      -- default `bytes` (cut_json: half)
local REDIRECTS = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

---------------------------------------------------------------------------------------
-- Push configuration (pure functions: also loaded outside nginx by the specs)
---------------------------------------------------------------------------------------

-- The defaults of every push setting; url nil = no pushes.
local PUSH_DEFAULTS = {
    delay_ms = 100,         -- from task creation to the first POST
    duplicates = true,      -- re-send ~10% of the records in a later batch
    shape = "mixed",        -- "array" (bare JSON array), "wrapped" ({"array":[...]}), "mixed"
    batch = 100,            -- records per POST
    retry_s = 1,            -- wait before re-sending a batch that was not answered 200
    retries = 3,            -- re-sends of one batch before it counts as failed
}
local PUSH_SHAPES = { array = true, wrapped = true, mixed = true }

-- Parses a push URL: only http:// to 127.0.0.1 or localhost (the sandbox must never send
-- anything off this machine). Returns { url, host, port, path } or nil, reason.
local function parse_push_url(url)
    if type(url) ~= "string" then
        return nil, "url must be a string"
    end
    if #url > 2048 or url:find("[%c%s]") then
        return nil, "url must be at most 2048 characters, without spaces or control characters"
    end
    local rest = url:match("^[Hh][Tt][Tt][Pp]://(.*)$")
    if not rest then
        return nil, "only http:// URLs are accepted"
    end
    local authority, path = rest:match("^([^/?#]*)(.*)$")
    if authority:find("@", 1, true) then
        return nil, "user information in the URL is not accepted"
    end
    local host, port = authority:match("^([^:]*):(%d+)$")
    if not host then
        host, port = authority, "80"
    end
    host = host:lower()
    if host ~= "127.0.0.1" and host ~= "localhost" then
        return nil, "the push URL's host must be 127.0.0.1 or localhost: the sandbox never " ..
                    "sends traffic off this machine"
    end
    port = tonumber(port)
    if #authority > #host + 6 or port < 1 or port > 65535 then
        return nil, "the port must be 1 to 65535"
    end
    path = path:gsub("#.*$", "")
    if path == "" then
        path = "/"
    elseif path:sub(1, 1) == "?" then
        path = "/" .. path
    end
    return { url = url, host = host, port = port, path = path }
end
_M.parse_push_url = parse_push_url

-- Applies the settings of t over base (a full config) and returns the new config, or nil
-- and the reason. t.url = "" or cjson.null turns pushing off.
local function merge_push_config(base, t)
    if type(t) ~= "table" then
        return nil, "the body must be a JSON object"
    end
    local c = {}
    for k, v in pairs(base) do
        c[k] = v
    end
    for k, v in pairs(t) do
        if k == "url" then
            if v == "" or v == cjson.null or v == false then
                c.url = nil
            else
                local ok, err = parse_push_url(v)
                if not ok then
                    return nil, "url: " .. err
                end
                c.url = v
            end
        elseif k == "delay_ms" then
            if type(v) ~= "number" or v ~= v or v < 0 or v > 600000 then
                return nil, "delay_ms must be a number from 0 to 600000"
            end
            c.delay_ms = v
        elseif k == "duplicates" then
            if type(v) ~= "boolean" then
                return nil, "duplicates must be true or false"
            end
            c.duplicates = v
        elseif k == "shape" then
            if not PUSH_SHAPES[v] then
                return nil, 'shape must be "array", "wrapped" or "mixed"'
            end
            c.shape = v
        elseif k == "batch" then
            if type(v) ~= "number" or v ~= floor(v) or v < 1 or v > 10000 then
                return nil, "batch must be an integer from 1 to 10000"
            end
            c.batch = v
        elseif k == "retry_s" then
            if type(v) ~= "number" or v ~= v or v < 0 or v > 3600 then
                return nil, "retry_s must be a number from 0 to 3600"
            end
            c.retry_s = v
        elseif k == "retries" then
            if type(v) ~= "number" or v ~= floor(v) or v < 0 or v > 10 then
                return nil, "retries must be an integer from 0 to 10"
            end
            c.retries = v
        else
            return nil, "unknown setting " .. tostring(k) ..
                        " (url, delay_ms, duplicates, shape, batch, retry_s, retries)"
        end
    end
    return c
end
_M.merge_push_config = merge_push_config

-- Set by init() in the master process before the workers fork.
local conf

-- init(c): c = { key =, secret =, app_ids = { "id", ... }, window = <seconds>,
--                ttl = <seconds, 0 = none>, pid_file = <path>,
--                push_url = <http://127.0.0.1... or nil: no pushes> }
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
    local push, perr = merge_push_config(PUSH_DEFAULTS, {})
    if c.push_url ~= nil and c.push_url ~= "" then
        push, perr = merge_push_config(push, { url = c.push_url })
    end
    if not push then
        error("laaffic.sandbox: config 'push_url': " .. perr, 2)
    end
    conf = {
        key = c.key, secret = c.secret, app_ids = app_ids, window = window,
        ttl = tonumber(c.ttl) or 0, pid_file = c.pid_file, push = push,
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
    -- voiceId suffixes, which records are duplicated, which batches are held back
    math.randomseed(floor(ngx.now() * 1000) % 2147483647 + ngx.worker.pid())
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

local function dict()
    return ngx.shared[DICT_NAME]
end

local function count(key)
    dict():incr(key, 1, 0)
end

---------------------------------------------------------------------------------------
-- Status report pushes
---------------------------------------------------------------------------------------
-- After a task is created, a background job (ngx.timer.at) makes one call report per
-- number and POSTs them, batch by batch, to the configured push URL. Only the callee
-- numbers are kept (one string); records are made, sent and dropped one batch at a time.

local PUSH_UA = "laaffic-sandbox-push/" .. tostring(core._VERSION)
local RESPONSE_MAX = 65536          -- bytes of a receiver's answer read (and discarded)
local COUNTERS = { "records", "sent", "duplicates", "batches", "delivered_batches",
                   "failed_batches", "retries", "posts", "delivered_records", "jobs", "active" }

-- Outcome of the record of number i, by (i - 1) % 10: 6 answered, 2 not connected, 2
-- failed; the first three numbers of a task cover all three.
local OUTCOME = { "answered", "not_connected", "failed", "answered", "answered",
                  "not_connected", "answered", "answered", "failed", "answered" }
local ANSWER_INTENTS = { "10001", "10002", "10003" }

-- The record's fields, in the order of the vendor's page, then the sandbox's extras.
local FIELDS = {
    "voiceId", "type", "callee", "displayNum", "submitTime", "callTime", "ringingTime",
    "answerTime", "hangupTime", "billPeriod", "code", "recordingFileId", "ringDuration",
    "currency", "quoteExchange", "chargedDuration", "rate", "cost", "settleRate", "settlePay",
    "aiAgentChargedDuration", "aiAgentBillPeriod", "aiAgentRate", "aiAgentFee",
    "aiAgentQuoteRate", "aiAgentQuoteFee", "terminationCode", "terminationReason", "sipCode",
    "calledInfo", "scriptId", "intent", "keyId", "taskName",
}
local KEYS = {}
for i, name in ipairs(FIELDS) do
    KEYS[i] = (i == 1 and '{"' or ',"') .. name .. '":'
end

local function push_config()
    local s = dict():get("push:config")
    local c = s and cjson.decode(s)
    if type(c) == "table" then
        return c
    end
    return conf.push
end

local function push_epoch()
    return dict():get("push:epoch") or 0
end

local function push_error(msg)
    ngx.log(ngx.WARN, "laaffic sandbox push: ", msg)
    dict():set("push:last_error", msg)
end

local function add(name, n)
    if n ~= 0 then
        dict():incr("push:" .. name, n, 0)
    end
end

-- The same for a job: nothing is counted once a reset has started a new epoch.
local function jadd(job, name, n)
    if push_epoch() == job.epoch then
        add(name, n)
    end
end

local function jerror(job, msg)
    if push_epoch() == job.epoch then
        push_error(msg)
    end
end

-- JSON values. Every string passed to js is made here from digits and fixed ASCII text
-- (taskName and displayNum are encoded by cjson once per job).
local function js(s)
    return '"' .. s .. '"'
end

local function jint(n)
    return format("%d", n)
end

local function jtext(n)
    return format('"%d"', n)
end

local function jmoney(x)
    return format('"%.4f"', x)
end

-- A time as "YYYY-MM-DD HH:MM:SS" (UTC), or as a millisecond timestamp (older pushes).
local function jtime(t, ms)
    if not t then
        return '""'
    elseif ms then
        return format("%d", floor(t * 1000))
    end
    return os.date('!"%Y-%m-%d %H:%M:%S"', floor(t))
end

-- The JSON text of the report of the task's i-th number, fields in the order of FIELDS.
-- Outcome by (i - 1) % 10 (OUTCOME): answered (terminationCode 0, sipCode 200, billPeriod
-- > 0, intent "10001".."10003"), not connected (intent "99999", sipCode 480 "no answer" or
-- 486 "user busy", terminationCode 2 or 3, billPeriod 0), failed (intent "99998", sipCode
-- 503 or 404, terminationCode 5 or 4, billPeriod 0). JSON types:
--   always numbers: type (1), aiAgentChargedDuration, aiAgentBillPeriod, keyId
--   numbers, but strings of digits ("12") when i % 3 == 0: billPeriod, ringDuration,
--     chargedDuration, terminationCode, sipCode
--   times: "YYYY-MM-DD HH:MM:SS" (UTC), but millisecond numbers when i % 4 == 0; ""
--     when there is none (answerTime unless answered, ringingTime of a failed call)
--   strings: voiceId ("<keyId>-<i>-<12 hex, per job>"), callee, displayNum, code (the
--     terminationCode's digits), recordingFileId ("" unless answered and recorded),
--     currency ("USD"), quoteExchange, rate, cost, settleRate, settlePay, aiAgentRate,
--     aiAgentFee, aiAgentQuoteRate, aiAgentQuoteFee (decimals, "0.0120"),
--     terminationReason, calledInfo (""), scriptId (the agentId), intent, taskName
local function record_json(job, i, callee)
    local outcome = OUTCOME[(i - 1) % 10 + 1]
    local as_text = i % 3 == 0      -- some numeric fields as JSON strings ("12")
    local ms = i % 4 == 0           -- times as millisecond numbers
    local num = as_text and jtext or jint
    local call_t = job.submit + 1 + (i - 1) % 600
    local ring_t, answer_t, hangup_t
    local sip, tcode, reason, intent, ring, bill
    if outcome == "answered" then
        sip, tcode, reason = 200, 0, "normal hangup"
        intent = ANSWER_INTENTS[i % 3 + 1]
        ring = 3 + i % 12
        bill = 8 + (i * 7) % 113
        ring_t = call_t + 1
        answer_t = ring_t + ring
        hangup_t = answer_t + bill
    elseif outcome == "not_connected" then
        if floor(i / 4) % 2 == 0 then
            sip, tcode, reason, ring = 480, 2, "no answer", 20 + i % 40
        else
            sip, tcode, reason, ring = 486, 3, "user busy", 1 + i % 3
        end
        intent, bill = "99999", 0
        ring_t = call_t + 1
        hangup_t = ring_t + ring
    else
        if floor(i / 6) % 2 == 0 then
            sip, tcode, reason = 503, 5, "service unavailable"
        else
            sip, tcode, reason = 404, 4, "number does not exist"
        end
        intent, bill, ring = "99998", 0, 0
        hangup_t = call_t + 1
    end
    local charged = bill > 0 and math.ceil(bill / 60) * 60 or 0
    local minutes = charged / 60
    local v = {
        js(format("%d-%d-%s", job.key_id, i, job.token)),                   -- voiceId
        "1",                                                                -- type
        js(callee),
        job.display_json,
        jtime(job.submit, ms), jtime(call_t, ms), jtime(ring_t, ms), jtime(answer_t, ms),
        jtime(hangup_t, ms),
        num(bill),                                                          -- billPeriod
        js(tostring(tcode)),                                                -- code
        js((outcome == "answered" and job.recording) and format("rec%d%07d", job.key_id, i)
           or ""),
        num(ring),                                                          -- ringDuration
        '"USD"', '"1.0000"',                                                -- currency, quoteExchange
        num(charged),                                                       -- chargedDuration
        '"0.0120"', jmoney(minutes * 0.012),                                -- rate, cost
        '"0.0100"', jmoney(minutes * 0.01),                                 -- settleRate, settlePay
        jint(charged), jint(bill),                                          -- aiAgentChargedDuration, BillPeriod
        '"0.0300"', jmoney(minutes * 0.03),                                 -- aiAgentRate, aiAgentFee
        '"0.0300"', jmoney(minutes * 0.03),                                 -- aiAgentQuoteRate, QuoteFee
        num(tcode), js(reason), num(sip),                                   -- terminationCode, Reason, sipCode
        '""',                                                               -- calledInfo
        job.script_json,                                                    -- scriptId
        js(intent),
        jint(job.key_id), job.name_json,                                    -- keyId, taskName
    }
    local parts = {}
    for f = 1, #KEYS do
        parts[#parts + 1] = KEYS[f]
        parts[#parts + 1] = v[f]
    end
    parts[#parts + 1] = "}"
    return concat(parts)
end
_M.record_json = record_json

-- POSTs body to target (a parse_push_url result) over a cosocket, always to 127.0.0.1.
-- Returns the HTTP status, or nil and what went wrong. At most RESPONSE_MAX bytes of the
-- answer are read, then the connection is closed.
local function http_post(target, body, batch_tag)
    local sock = ngx.socket.tcp()
    sock:settimeouts(2000, 5000, 5000)
    local ok, err = sock:connect("127.0.0.1", target.port)
    if not ok then
        return nil, "connect to 127.0.0.1:" .. target.port .. ": " .. tostring(err)
    end
    local head = concat({
        "POST ", target.path, " HTTP/1.1\r\n",
        "Host: ", target.host, ":", target.port, "\r\n",
        "Content-Type: ", CONTENT_TYPE, "\r\n",
        "Content-Length: ", #body, "\r\n",
        "User-Agent: ", PUSH_UA, "\r\n",
        "X-Laaffic-Sandbox-Batch: ", batch_tag, "\r\n",
        "Connection: close\r\n\r\n",
    })
    ok, err = sock:send({ head, body })
    if not ok then
        sock:close()
        return nil, "send: " .. tostring(err)
    end
    local line
    line, err = sock:receive("*l")
    if not line then
        sock:close()
        return nil, "no answer: " .. tostring(err)
    end
    local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
    if not status then
        sock:close()
        return nil, "not an HTTP status line: " .. line:sub(1, 80)
    end
    -- headers, then the body, discarded (bounded)
    local length, chunked
    for _ = 1, 100 do
        local h = sock:receive("*l")
        if not h or h == "" then
            break
        end
        local name, value = h:match("^([^:]+):%s*(.-)%s*$")
        name = name and name:lower()
        if name == "content-length" then
            length = tonumber(value)
        elseif name == "transfer-encoding" and value:lower():find("chunked", 1, true) then
            chunked = true
        end
    end
    local left = RESPONSE_MAX
    if chunked then
        while left > 0 do
            local size = tonumber((sock:receive("*l") or ""):match("^%x+") or "", 16)
            if not size or size == 0 or size > left or not sock:receive(size + 2) then
                break
            end
            left = left - size
        end
    elseif length then
        if length > 0 and length <= left then
            sock:receive(length)
        end
    else
        while left > 0 do
            local data = sock:receive(left < 8192 and left or 8192)
            if not data then
                break
            end
            left = left - #data
        end
    end
    sock:close()
    return status
end

-- Sends batch number seq (a list of record JSON texts, the first n_dups of them re-sent
-- duplicates), re-sending it up to cfg.retries times while it is not answered 200.
local function deliver(job, b)
    local recs, n_dups, seq = b[1], b[2], b[3]
    local shape = job.cfg.shape
    if shape == "mixed" then
        shape = seq % 2 == 1 and "array" or "wrapped"
    end
    local list = concat(recs, ",")
    local body = shape == "array" and "[" .. list .. "]" or '{"array":[' .. list .. "]}"
    jadd(job, "batches", 1)
    jadd(job, "sent", #recs)
    jadd(job, "duplicates", n_dups)
    local tag = job.key_id .. "/" .. seq
    for attempt = 0, job.cfg.retries do
        if attempt > 0 then
            jadd(job, "retries", 1)
            if not nap(job.cfg.retry_s * 1000) then
                return
            end
        end
        if push_epoch() ~= job.epoch or ngx.worker.exiting() then
            return
        end
        local status, err = http_post(job.target, body, tag)
        jadd(job, "posts", 1)
        if status == 200 then
            jadd(job, "delivered_batches", 1)
            jadd(job, "delivered_records", #recs)
            return
        end
        jerror(job, format("task %d batch %d (attempt %d): %s", job.key_id, seq,
                          attempt + 1, status and ("HTTP " .. status) or err))
    end
    jadd(job, "failed_batches", 1)
end

-- The job: records batch by batch; ~10% of each batch re-sent at the head of a later one
-- (the last ones in a batch of their own); now and then a batch held back and sent after
-- the next one (out of order).
local function run_job(job)
    local cfg = job.cfg
    local callees, pos, i = job.callees, 1, 0
    local recs, carry, picked, held = {}, {}, {}, nil
    local any_dup, last = false, nil

    local function emit(batch, n_dups)
        job.seq = job.seq + 1
        local b = { batch, n_dups, job.seq }
        if held then
            deliver(job, b)
            deliver(job, held)
            held = nil
        elseif math.random() < 0.25 then
            held = b
        else
            deliver(job, b)
        end
    end

    local function flush()
        local batch = carry
        local n_dups = #carry
        for k = 1, #recs do
            batch[#batch + 1] = recs[k]
        end
        carry, picked, recs = picked, {}, {}
        jadd(job, "records", #batch - n_dups)
        emit(batch, n_dups)
    end

    while pos <= #callees do
        if push_epoch() ~= job.epoch or ngx.worker.exiting() then
            return
        end
        local stop = callees:find(",", pos, true) or (#callees + 1)
        i = i + 1
        local rec = record_json(job, i, callees:sub(pos, stop - 1))
        pos = stop + 1
        recs[#recs + 1] = rec
        last = rec
        if cfg.duplicates and math.random() < 0.1 then
            picked[#picked + 1] = rec
            any_dup = true
        end
        if #recs >= cfg.batch then
            flush()
        end
    end
    if #recs > 0 then
        flush()
    end
    if cfg.duplicates and not any_dup and last then
        carry[#carry + 1] = last            -- at least one duplicate per task
    end
    if #carry > 0 and push_epoch() == job.epoch then
        emit(carry, #carry)
    end
    if held and push_epoch() == job.epoch then
        deliver(job, held)
    end
end

local function push_job(premature, job)
    if premature or push_epoch() ~= job.epoch then
        return
    end
    add("active", 1)
    local ok, err = pcall(run_job, job)
    if push_epoch() == job.epoch then       -- a reset since then flushed the counters
        add("active", -1)
        if not ok then
            push_error("task " .. job.key_id .. ": " .. tostring(err))
        end
    end
end

-- Called when a task was created: arms the job if a push URL is configured.
local function schedule_push(task, key_id)
    local cfg = push_config()
    if not cfg.url then
        return
    end
    local target = parse_push_url(cfg.url)
    if not target then
        return
    end
    local numbers = {}
    for k, entry in ipairs(task.numberInfoList) do
        numbers[k] = entry.calleeNumber
    end
    local job = {
        cfg = cfg, target = target, key_id = key_id, epoch = push_epoch(), seq = 0,
        -- keyIds restart after a reset and in every sandbox: the token keeps voiceIds unique
        token = format("%06x%06x", math.random(0, 0xffffff), math.random(0, 0xffffff)),
        callees = concat(numbers, ","), submit = ngx.now(),
        display_json = cjson.encode(type(task.displayNum) == "string" and task.displayNum or ""),
        script_json = cjson.encode(tostring(task.agentId)),
        name_json = cjson.encode(task.taskName),
        recording = task.enableRecording ~= 0,
    }
    numbers = nil -- luacheck: ignore 311
    add("jobs", 1)
    local ok, err = ngx.timer.at(cfg.delay_ms / 1000, push_job, job)
    if not ok then
        push_error("task " .. key_id .. ": cannot arm the push timer: " .. tostring(err))
    end
end

local function pushes_json()
    local d = dict()
    local out = {}
    for _, name in ipairs(COUNTERS) do
        out[#out + 1] = format('"%s":%d', name, d:get("push:" .. name) or 0)
    end
    out[#out + 1] = '"last_error":' .. cjson.encode(d:get("push:last_error") or "")
    return "{" .. concat(out, ",") .. "}"
end

local function push_config_json()
    local c = push_config()
    return cjson.encode({
        url = c.url or "", delay_ms = c.delay_ms, duplicates = c.duplicates, shape = c.shape,
        batch = c.batch, retry_s = c.retry_s, retries = c.retries,
    })
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
    schedule_push(task, key_id)
    return "0", REASON["0"], key_id, nil
end

-- The armed fault for this request, if any: mode, ms, { bytes =, location =, http_status = }.
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
    local extra = { bytes = d:get("fault:bytes"), location = d:get("fault:location"),
                    http_status = d:get("fault:http_status") }
    if left == 0 then
        d:delete("fault:mode")
        d:delete("fault:count")
    end
    d:incr("faults:" .. mode, 1, 0)
    return mode, ms, extra
end

---------------------------------------------------------------------------------------
-- Broken answers (the fault modes that misbehave on the wire)
---------------------------------------------------------------------------------------

-- The fd of this request's connection, found by its ports (getpeername/getsockname over
-- the worker's descriptors: nginx does not hand the fd to Lua). nil if not found.
local ffi_ready
local function connection_fd()
    local ok, ffi = pcall(require, "ffi")
    if not ok then
        return nil
    end
    if not ffi_ready then
        pcall(ffi.cdef, [[
            int getpeername(int fd, void *addr, unsigned int *len);
            int getsockname(int fd, void *addr, unsigned int *len);
            int setsockopt(int fd, int level, int name, const void *val, unsigned int len);
        ]])
        ffi_ready = true
    end
    local rport, lport = tonumber(ngx.var.remote_port), tonumber(ngx.var.server_port)
    if not rport or not lport then
        return nil, ffi
    end
    local addr = ffi.new("uint8_t[128]")        -- a sockaddr_storage
    local len = ffi.new("unsigned int[1]")
    -- sockaddr_in and sockaddr_in6 both keep the port, big-endian, at offset 2
    local function port_of(getter, fd)
        len[0] = 128
        if getter(fd, addr, len) ~= 0 then
            return nil
        end
        return addr[2] * 256 + addr[3]
    end
    for fd = 0, 65535 do
        if port_of(ffi.C.getpeername, fd) == rport and port_of(ffi.C.getsockname, fd) == lport then
            return fd, ffi
        end
    end
    return nil, ffi
end

-- reset: reads `bytes` of the body, then resets the connection. Over HTTP/1.x the socket
-- gets SO_LINGER {on, 0}, so nginx's close() sends a TCP RST instead of a FIN; over HTTP/2
-- (one connection, many streams; no request socket to read part of the body with) no body
-- is read and 444 makes nginx reset the stream (RST_STREAM).
local function reset_connection(bytes)
    local length = tonumber(ngx.var.http_content_length)
    if length and bytes > length then
        bytes = length          -- never wait for bytes that are not coming
    end
    local h2 = ngx.req.http_version() >= 2
    if bytes > 0 and not h2 then          -- (no request socket over HTTP/2 in lua-nginx 0.10)
        local sock = ngx.req.socket()
        if sock then
            sock:settimeout(10000)
            local got, err, partial = sock:receive(bytes)
            ngx.log(ngx.NOTICE, "laaffic sandbox: reset after ", #(got or partial or ""),
                    " body bytes", err and (" (" .. err .. ")") or "")
        end
    end
    if not h2 then
        local fd, ffi = connection_fd()
        if fd then
            -- SOL_SOCKET 1, SO_LINGER 13 (Linux); struct linger { int l_onoff, l_linger; }
            local linger = ffi.new("int[2]", 1, 0)
            if ffi.C.setsockopt(fd, 1, 13, linger, 8) ~= 0 then
                ngx.log(ngx.WARN, "laaffic sandbox: reset: setsockopt(SO_LINGER) failed")
            end
        else
            ngx.log(ngx.WARN, "laaffic sandbox: reset: connection fd not found, closing with FIN")
        end
    end
    return ngx.exit(444)
end

-- The status line and headers of a 200 answer of `answer`'s true length, sent now.
local function send_head(answer)
    ngx.status = 200
    ngx.header["Content-Type"] = CONTENT_TYPE
    ngx.header["Content-Length"] = #answer
    ngx.send_headers()
end

-- short_body: the headers with the answer's true Content-Length, the first `bytes` of
-- the body, then the connection closes.
local function send_short(answer, bytes)
    send_head(answer)
    if bytes > 0 then
        ngx.print(answer:sub(1, math.min(bytes, #answer - 1)))
    end
    ngx.flush(true)
    return ngx.exit(444)
end

-- slow_body: the headers at once, then the body one byte every ms, flushed each time.
-- A client that gives up ends the request (lua_check_client_abort); a stop does too.
local function send_slow_body(answer, ms)
    send_head(answer)
    ngx.flush(true)
    for i = 1, #answer do
        if not nap(ms) then
            return ngx.exit(444)
        end
        ngx.print(answer:sub(i, i))
        local ok = ngx.flush(true)
        if not ok then
            return ngx.exit(444)
        end
    end
    return ngx.exit(ngx.HTTP_OK)
end

-- slow_headers: the whole answer (status line, headers, body) one byte every ms, written
-- to the raw downstream socket (HTTP/1.x only: over HTTP/2 this is slow_body).
local function send_slow_headers(answer, ms)
    if ngx.req.http_version() >= 2 then
        return send_slow_body(answer, ms)
    end
    local sock, err = ngx.req.socket(true)
    if not sock then
        ngx.log(ngx.ERR, "laaffic sandbox: slow_headers: no raw socket: ", err)
        return ngx.exit(444)
    end
    local raw = concat({
        "HTTP/1.1 200 OK\r\n",
        "Content-Type: ", CONTENT_TYPE, "\r\n",
        "Content-Length: ", tostring(#answer), "\r\n",
        "Connection: close\r\n\r\n",
        answer,
    })
    for i = 1, #raw do
        local ok = sock:send(raw:sub(i, i))
        if not ok or (i < #raw and not nap(ms)) then
            break
        end
    end
    return ngx.exit(444)
end

function _M.api()
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Allow"] = "POST"
        return send_json(405, '{"error":"method not allowed: use POST"}')
    end
    count("total")
    do -- requests being handled at once (api_done, in the log phase, counts them out)
        local d = dict()
        local n = d:incr("inflight", 1, 0)
        ngx.ctx.laaffic_inflight = true
        if n > (d:get("max_inflight") or 0) then
            d:set("max_inflight", n)
        end
    end
    local mode, ms, extra = take_fault()
    if mode then
        ngx.log(ngx.NOTICE, "laaffic sandbox: fault ", mode, " (", ms, " ms)")
    end
    if mode == "slow_read" then
        nap(ms)
    elseif mode == "reset" then
        return reset_connection(extra.bytes or FAULT_BYTES.reset)
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
    elseif mode == "redirect" then
        ngx.header["Location"] = extra.location
        return send_json(extra.http_status or 307, '{"error":"moved"}')
    elseif mode == "data_exists" then
        count("status:-20")
        return send_json(200, api_body("-20", REASON["-20"]))
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

    local answer = api_body(status, reason, key_id)
    if mode == "drop_after_create" then
        return ngx.exit(444)
    elseif mode == "delay" then
        nap(ms)
    elseif mode == "short_body" then
        return send_short(answer, extra.bytes or FAULT_BYTES.short_body)
    elseif mode == "cut_json" then
        local n = extra.bytes or floor(#answer / 2)
        return send_json(200, answer:sub(1, math.min(n, #answer - 1)))
    elseif mode == "slow_headers" then
        return send_slow_headers(answer, ms)
    elseif mode == "slow_body" then
        return send_slow_body(answer, ms)
    end
    return send_json(200, answer)
end

-- log phase of the API locations: the request is over, whatever way it ended
function _M.api_done()
    if ngx.ctx.laaffic_inflight then
        dict():incr("inflight", -1, 1)
    end
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
    return format('{"total":%d,"max_in_flight":%d,"status":%s,"faults":%s}', d:get("total") or 0,
                  d:get("max_inflight") or 0,
                  n_status > 0 and cjson.encode(by_status) or "{}",
                  n_faults > 0 and cjson.encode(faults) or "{}")
end

local function fault_json()
    local d = dict()
    local mode = d:get("fault:mode")
    if not mode then
        return '{"mode":"none","count":0}'
    end
    return cjson.encode({ mode = mode, count = d:get("fault:count"), ms = d:get("fault:ms"),
                          bytes = d:get("fault:bytes"), location = d:get("fault:location"),
                          http_status = d:get("fault:http_status") })
end

local FAULT_EXTRAS = { "fault:bytes", "fault:location", "fault:http_status" }

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
        for _, k in ipairs(FAULT_EXTRAS) do
            d:delete(k)
        end
        return send_json(200, fault_json())
    end
    if type(mode) ~= "string" or not FAULTS[mode] then
        return send_json(400, '{"error":"mode must be one of ' .. concat(FAULT_NAMES, ", ") ..
                              ', none"}')
    end
    local bytes, location, http_status = f.bytes, f.location, f.http_status
    if bytes ~= nil and (type(bytes) ~= "number" or bytes < 0 or bytes > 1e9 or
                         bytes ~= floor(bytes)) then
        return send_json(400, '{"error":"bytes must be an integer from 0 to 1000000000"}')
    end
    if mode == "redirect" then
        if type(location) ~= "string" or #location > 2048 or location:find("[%c%s]") or
           not location:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/]") then
            return send_json(400, '{"error":"redirect needs a location: an http:// or ' ..
                                  'https:// URL of at most 2048 characters"}')
        end
        if http_status ~= nil and not REDIRECTS[http_status] then
            return send_json(400, '{"error":"http_status must be 301, 302, 303, 307 or 308"}')
        end
    elseif location ~= nil or http_status ~= nil then
        return send_json(400, '{"error":"location and http_status are for mode redirect only"}')
    end
    local n = f.count == nil and 1 or f.count
    local ms = f.ms == nil and FAULTS[mode] or f.ms
    if type(n) ~= "number" or n < 1 or n ~= floor(n) then
        return send_json(400, '{"error":"count must be an integer >= 1"}')
    end
    if type(ms) ~= "number" or ms < 0 or ms > 3600000 then
        return send_json(400, '{"error":"ms must be a number from 0 to 3600000"}')
    end
    for _, k in ipairs(FAULT_EXTRAS) do
        d:delete(k)
    end
    if bytes ~= nil then d:set("fault:bytes", bytes) end
    if location ~= nil then d:set("fault:location", location) end
    if http_status ~= nil then d:set("fault:http_status", http_status) end
    d:set("fault:mode", mode)
    d:set("fault:count", n)
    d:set("fault:ms", ms)
    return send_json(200, fault_json())
end

local function set_push_config()
    ngx.req.read_body()
    local body = ngx.req.get_body_data() or ""
    local t = cjson.decode(body ~= "" and body or "{}")
    local c, err = merge_push_config(push_config(), t)
    if not c then
        return send_json(400, cjson.encode({ error = err }))
    end
    dict():set("push:config", cjson.encode(c))
    return send_json(200, push_config_json())
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
    elseif uri == "/_sandbox/pushes" and method == "GET" then
        return send_json(200, pushes_json())
    elseif uri == "/_sandbox/push-config" and method == "GET" then
        return send_json(200, push_config_json())
    elseif uri == "/_sandbox/push-config" and method == "POST" then
        return set_push_config()
    elseif uri == "/_sandbox/reset" and method == "POST" then
        local d = dict()
        local epoch = (d:get("push:epoch") or 0) + 1
        d:flush_all()
        d:flush_expired()
        d:set("push:epoch", epoch)          -- running push jobs stop at their next step
        return send_json(200, '{"ok":true}')
    end
    return send_json(404, '{"error":"no such sandbox endpoint"}')
end

return _M
