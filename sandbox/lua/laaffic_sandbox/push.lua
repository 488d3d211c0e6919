-- laaffic_sandbox.push: the push simulator. After a task is created, a background job
-- (ngx.timer.at, delay_ms later) makes one call report per number (laaffic_sandbox.records)
-- and POSTs them to the push URL over a cosocket, batch by batch, with what a real
-- platform does to a receiver: duplicates, batches out of order, retries. Its counters
-- answer GET /_sandbox/pushes; README.md ("The sandbox") describes them.
local ngx = ngx
local type = type
local tostring = tostring
local ipairs = ipairs
local pcall = pcall
local concat = table.concat
local format = string.format

local cjson = require "cjson.safe"
local core = require "laaffic.core"
local http1 = require "laaffic.http1"
local common = require "laaffic_sandbox.common"
local push_config = require "laaffic_sandbox.push_config"
local records = require "laaffic_sandbox.records"

local dict, nap = common.dict, common.nap

local _M = {}

local PUSH_UA = "laaffic-sandbox-push/" .. tostring(core._VERSION)
local RESPONSE_MAX = 65536          -- bytes of a receiver's answer read (and discarded)
local COUNTERS = { "records", "sent", "duplicates", "batches", "delivered_batches",
                   "failed_batches", "retries", "posts", "delivered_records", "jobs", "active" }

-- A reset (POST /_sandbox/reset) starts a new epoch: jobs of an older one stop.
local function epoch()
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
    if epoch() == job.epoch then
        add(name, n)
    end
end

local function jerror(job, msg)
    if epoch() == job.epoch then
        push_error(msg)
    end
end

-- POSTs body to target (a push_config.parse_url result) over a cosocket, always to
-- 127.0.0.1. Returns the HTTP status, or nil and what went wrong. At most RESPONSE_MAX
-- bytes of the answer are read (and discarded), then the connection is closed.
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
        "Content-Type: ", common.CONTENT_TYPE, "\r\n",
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
    local status, line
    status, err, line = http1.receive_status(sock)
    if not status then
        sock:close()
        if err == "not_http" then
            return nil, "not an HTTP status line: " .. line:sub(1, 80)
        end
        return nil, "no answer: " .. tostring(err)
    end
    -- the headers (at most 100 lines) and the body, discarded: only the status counts
    local headers = http1.receive_headers(sock, 100)
    if headers then
        http1.receive_body(sock, headers, RESPONSE_MAX)
    end
    sock:close()
    return status
end

-- Sends batch b = { records (JSON texts), n_dups (the first ones, re-sent duplicates),
-- seq }, re-sending it up to cfg.retries times while it is not answered 200.
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
        if epoch() ~= job.epoch or ngx.worker.exiting() then
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

-- Hands a full batch on: about one in four is held back and sent after the next one
-- (out of order). st: the job's batching state (seq, held).
local function emit(job, st, batch, n_dups)
    job.seq = job.seq + 1
    local b = { batch, n_dups, job.seq }
    if st.held then
        deliver(job, b)
        deliver(job, st.held)
        st.held = nil
    elseif math.random() < 0.25 then
        st.held = b
    else
        deliver(job, b)
    end
end

-- The batch of st.recs, led by the duplicates picked in the batch before (st.carry).
local function flush(job, st)
    local batch = st.carry
    local n_dups = #batch
    for k = 1, #st.recs do
        batch[#batch + 1] = st.recs[k]
    end
    st.carry, st.picked, st.recs = st.picked, {}, {}
    jadd(job, "records", #batch - n_dups)
    emit(job, st, batch, n_dups)
end

-- The job: records batch by batch; ~10% of each batch re-sent at the head of the next
-- (the last ones in a batch of their own, at least one per task).
local function run_job(job)
    local cfg = job.cfg
    local callees, pos, i = job.callees, 1, 0
    local st = { recs = {}, carry = {}, picked = {}, held = nil }
    local any_dup, last = false, nil
    while pos <= #callees do
        if epoch() ~= job.epoch or ngx.worker.exiting() then
            return
        end
        local stop = callees:find(",", pos, true) or (#callees + 1)
        i = i + 1
        local rec = records.record_json(job, i, callees:sub(pos, stop - 1))
        pos = stop + 1
        st.recs[#st.recs + 1] = rec
        last = rec
        if cfg.duplicates and math.random() < 0.1 then
            st.picked[#st.picked + 1] = rec
            any_dup = true
        end
        if #st.recs >= cfg.batch then
            flush(job, st)
        end
    end
    if #st.recs > 0 then
        flush(job, st)
    end
    if cfg.duplicates and not any_dup and last then
        st.carry[#st.carry + 1] = last
    end
    if #st.carry > 0 and epoch() == job.epoch then
        emit(job, st, st.carry, #st.carry)
    end
    if st.held and epoch() == job.epoch then
        deliver(job, st.held)
    end
end

local function push_job(premature, job)
    if premature or epoch() ~= job.epoch then
        return
    end
    add("active", 1)
    local ok, err = pcall(run_job, job)
    if epoch() == job.epoch then       -- a reset since then flushed the counters
        add("active", -1)
        if not ok then
            push_error("task " .. job.key_id .. ": " .. tostring(err))
        end
    end
end

-- Called when a task was created: arms the job if a push URL is configured. Only the
-- callee numbers are kept (one string); records are made, sent and dropped a batch at
-- a time.
function _M.schedule(task, key_id)
    local cfg = push_config.current()
    if not cfg.url then
        return
    end
    local target = push_config.parse_url(cfg.url)
    if not target then
        return
    end
    local numbers = {}
    for k, entry in ipairs(task.numberInfoList) do
        numbers[k] = entry.calleeNumber
    end
    local job = {
        cfg = cfg, target = target, key_id = key_id, epoch = epoch(), seq = 0,
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

-- GET /_sandbox/pushes
function _M.counters_json()
    local d = dict()
    local out = {}
    for _, name in ipairs(COUNTERS) do
        out[#out + 1] = format('"%s":%d', name, d:get("push:" .. name) or 0)
    end
    out[#out + 1] = '"last_error":' .. cjson.encode(d:get("push:last_error") or "")
    return "{" .. concat(out, ",") .. "}"
end

return _M
