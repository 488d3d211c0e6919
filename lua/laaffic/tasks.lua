-- laaffic.tasks: client:create_tasks' run over the parts of a long list.
--
-- Builds one part at a time (a CSV source is read as it goes, so memory holds the parts
-- being sent, not the file), sends up to `concurrency` at once through the transport's
-- parallel when it has one, counts the result and reports progress. The client gives it
-- two functions: build(enc, k) -> req | nil, err (part k, signed) and send(req, task_name,
-- transport, sleep) -> key_id, info | nil, err (the retry policy of create_task).

local type = type
local tostring = tostring
local pcall = pcall
local format = string.format

local core = require "laaffic.core"
local lerror = require "laaffic.error"
local csv = require "laaffic.csv"

local clock_now = core.now

local _M = {}

local DEFAULT_CONCURRENCY = 4

-- The state of one create_tasks call: the result being filled, the progress shown to
-- on_progress, the part reached (k) and whether the list has more.
local function new_run(task, opts, enc, build, send)
    local list = task.numberInfoList
    return {
        build = build, send = send, task = task, enc = enc, on_progress = opts.on_progress,
        src = csv.is(list) and list or nil, started = clock_now(),
        result = { parts = {}, created = 0, existing = 0, failed = 0, rows = 0,
                   rejected = 0, duplicates = 0, warnings = {} },
        first_err = nil,
        in_flight = 0,          -- parts being sent
        progress = { parts = 0, done = 0, created = 0, failed = 0, rows = 0 },
        progress_error = nil,   -- what on_progress raised: it is not called again
        more = true, k = 0,
    }
end

local function report(run, finished)
    if not run.on_progress or run.progress_error then return end
    local result, progress = run.result, run.progress
    progress.parts, progress.created = #result.parts, result.created + result.existing
    progress.failed, progress.rows = result.failed, result.rows
    progress.in_flight = run.in_flight
    if run.src then
        local si = run.src:info()
        progress.bytes, progress.size = si.bytes, si.size
    end
    progress.finished = finished or nil
    -- a raise must not stop the parts under way (their keyIds would be lost)
    local ok, perr = pcall(run.on_progress, progress)
    if not ok then
        run.progress_error = tostring(perr)
    end
end

-- A part is done: send() gave key_id or err.
local function record(run, entry, key_id, err)
    local result = run.result
    if key_id then
        entry.key_id = key_id
        result.created = result.created + 1
    elseif err.kind == "already_exists" then
        entry.exists, entry.error = true, err
        result.existing = result.existing + 1
    else
        entry.error = err
        err.part, err.task_name = entry.part, entry.task_name
        result.failed = result.failed + 1
        run.first_err = run.first_err or err
    end
    run.progress.done = run.progress.done + 1
    run.in_flight = run.in_flight - 1
    report(run)
end

-- A CSV file that changes while it is read would mix two versions or lose rows: after
-- reading each part, before sending it, the file must still be the one opened. Returns
-- nil, or the error (and closes req's body).
local function changed(run, req)
    local src, k = run.src, run.k
    local ok, why = src:check()
    if ok then return nil end
    if req then req.body:close() end
    return lerror.new{ kind = "io", file = src:info().name, part = k,
        message = format("%s changed while it was being sent (%s): part %d and the " ..
            "parts after it were not sent%s", src:info().name, tostring(why), k,
            k > 1 and "; the parts before it went out (see their results)" or "") }
end

-- Builds the next part: req, entry; or nil when the list is done, reading it failed, or
-- a part failed (no new part is started then).
local function build_part(run)
    if not run.more or run.first_err then
        return nil
    end
    local result = run.result
    run.k = run.k + 1
    local k = run.k
    local req, err = run.build(run.enc, k)
    local cerr = run.src and changed(run, req)
    if cerr then req, err = nil, cerr end
    local entry = { part = k }
    result.parts[k] = entry
    if not req then
        run.more = false
        entry.error = err
        result.failed = result.failed + 1
        run.first_err = run.first_err or err
        report(run)
        return nil
    end
    local info = req.info
    if k == 1 then          -- the task's fields, the same in every part
        result.warnings = info.warnings
    end
    run.more = info.more and true or false
    entry.task_name, entry.rows = info.task_name or run.task.taskName, info.rows
    result.rows = result.rows + info.rows
    result.rejected = result.rejected + (info.rejected or 0)
    result.duplicates = result.duplicates + (info.duplicates or 0)
    run.in_flight = run.in_flight + 1
    report(run)
    return req, entry
end

-- Sends the parts, starting with the one already built (req, entry): up to concurrency
-- at once when the transport can run requests in parallel (transport:parallel, as
-- laaffic.transport.curl's), else one at a time through the transport.
local function send_parts(run, transport, sleep, req, entry, concurrency)
    local function next_req()
        if req then
            local r, e = req, entry
            req, entry = nil, nil
            return r, e
        end
        return build_part(run)
    end
    local t = transport
    if concurrency > 1 and type(t) == "table" and t.parallel then
        t:parallel(concurrency, function()
            local r, e = next_req()
            if not r then return nil end
            return function(send_fn, sleep_fn)
                return run.send(r, e.task_name, send_fn, sleep_fn)
            end, { req = r, entry = e }
        end, function(job, key_id, err)
            job.req.body:close()
            record(run, job.entry, key_id, err)
        end)
        return
    end
    while true do
        local r, e = next_req()
        if not r then break end
        local key_id, err = run.send(r, e.task_name, t, sleep)
        r.body:close()
        record(run, e, key_id, err)
    end
end

-- create_tasks' answer once every part is done: result, and the first failure (or what
-- on_progress raised) as one error.
local function run_result(run)
    local result, first_err = run.result, run.first_err
    result.time = clock_now() - run.started
    report(run, true)
    result.progress_error = run.progress_error
    if first_err then
        return result, lerror.new{ kind = first_err.kind, code = first_err.code,
            field = first_err.field, reason = first_err.reason,
            http_status = first_err.http_status, file = first_err.file,
            line = first_err.line, column = first_err.column, part = first_err.part,
            task_name = first_err.task_name,
            message = format("%d of %d part(s) failed; part %d%s: %s", result.failed,
                             #result.parts, first_err.part or 0,
                             first_err.task_name and format(" (%q)", first_err.task_name) or "",
                             tostring(first_err.message)) }
    end
    if run.progress_error then
        return result, lerror.new{ kind = "internal", message = "opts.on_progress raised, " ..
            "and was not called again (every part was sent as usual: see the result): " ..
            run.progress_error }
    end
    return result
end

-- tasks.run(task, opts, enc, build, send, transport, sleep) -> result, err. opts is
-- checked (concurrency, on_progress); enc holds the encoder options build passes on. The
-- first part is built before anything is sent: a malformed encoder option raises there.
function _M.run(task, opts, enc, build, send, transport, sleep)
    local run = new_run(task, opts, enc, build, send)
    local req, entry = build_part(run)
    send_parts(run, transport, sleep, req, entry, opts.concurrency or DEFAULT_CONCURRENCY)
    local result, err = run_result(run)
    return result, err
end

return _M
