-- laaffic.cli.send: the send command: check the whole list first (nothing is sent when
-- a row is bad), then create the parts with client:create_tasks, and report each part
-- with the exit code of the most urgent outcome.

local laaffic = require "laaffic"
local util = require "laaffic.cli.util"
local args = require "laaffic.cli.args"
local config = require "laaffic.cli.config"
local tasks = require "laaffic.cli.task"
local numbers = require "laaffic.cli.numbers"
local output = require "laaffic.cli.output"
local validate = require "laaffic.cli.validate"

local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local setmetatable = setmetatable
local format = string.format
local concat = table.concat
local floor = math.floor

local core = laaffic.core
local csv = laaffic.csv
local EXIT, die, worse = util.EXIT, util.die, util.worse
local int, grouped, plural = util.int, util.grouped, util.plural
local array, error_json = output.array, output.error_json

local _M = {}

local KIND_EXIT = { ambiguous = EXIT.AMBIGUOUS, transport = EXIT.TRANSPORT,
                    invalid = EXIT.INVALID, io = EXIT.INVALID, status = EXIT.FAILED,
                    already_exists = EXIT.FAILED, protocol = EXIT.FAILED,
                    internal = EXIT.FAILED }

-- "part 2", "parts 2 to 4", "parts 1, 3 to 5"
local function part_list(nums)
    local out, i = {}, 1
    while i <= #nums do
        local j = i
        while nums[j + 1] == nums[j] + 1 do j = j + 1 end
        out[#out + 1] = i == j and tostring(nums[i]) or format("%d to %d", nums[i], nums[j])
        i = j + 1
    end
    return (#nums == 1 and "part " or "parts ") .. concat(out, ", ")
end

-- One entry per part of the check (the counts a send reports are the check's): a part
-- the send never read, or read and refused to send (the file changed, a bad row), is
-- "not_sent". Returns parts, the exit code, how many were not sent, and the error.
local function send_parts(result, err, report, existing_ok)
    local code, parts, sent, unsent = EXIT.OK, array(), {}, {}
    for k = 1, math.max(#result.parts, #report.parts) do
        local e, c = result.parts[k] or {}, report.parts[k] or {}
        local entry = { part = k, task_name = e.task_name or c.task_name, rows = e.rows or c.rows }
        local kind = e.error and e.error.kind
        if e.key_id then
            entry.key_id, entry.status = e.key_id, "created"
        elseif e.exists then
            entry.status, entry.error = "exists", error_json(e.error)
            if not existing_ok then code = worse(code, EXIT.FAILED) end
        elseif e.error then
            entry.status, entry.error = "failed", error_json(e.error)
            -- after the check, a bad row or an unreadable file is a failure, not exit 3
            code = worse(code, (kind == "io" or kind == "invalid") and EXIT.FAILED or
                               KIND_EXIT[kind] or EXIT.FAILED)
        else
            entry.status = "not_sent"
        end
        local is_sent = e.key_id or e.exists or (e.error and kind ~= "io" and kind ~= "invalid")
        local list = is_sent and sent or unsent
        list[#list + 1] = k
        parts[#parts + 1] = entry
    end
    if err and code == EXIT.OK then
        code = worse(code, KIND_EXIT[err.kind] or EXIT.FAILED)
    end
    if not err and (result.rows ~= report.rows or #result.parts ~= #report.parts) then
        code = worse(code, EXIT.FAILED)
        err = { kind = "io", message = format("the send read %s in %s, the check %s in %s: " ..
            "the list changed", plural(result.rows, "row"), plural(#result.parts, "part"),
            plural(report.rows, "row"), plural(#report.parts, "part")) }
    end
    if err and #unsent > 0 then
        -- why the first part not sent was not: the summary of create_tasks adds nothing
        local first = (result.parts[unsent[1]] or {}).error or err
        local msg = (#sent > 0 and (part_list(sent) .. (#sent == 1 and " was" or " were") ..
            " sent, ") or "no part was sent, ") .. part_list(unsent) ..
            (#unsent == 1 and " was" or " were") .. " not: " .. tostring(first.message)
        err = { kind = err.kind, code = err.code, field = err.field, file = err.file,
                line = err.line, column = err.column, message = msg, text = "laaffic: " .. msg }
        setmetatable(err, { __tostring = function(x) return x.text end })
    end
    return parts, code, #unsent, err
end

-- Prints what a send did: o = { parts, code, not_sent, err, result, rows (the check's),
-- rejects, rejects_written, elapsed }. Returns the exit code.
local function send_output(ctx, opts, task, o)
    local parts, code, result = o.parts, o.code, o.result
    if opts.json then
        ctx.stdout:write(output.json({
            ok = code == EXIT.OK, exit_code = code, parts = parts, created = result.created,
            existing = result.existing, failed = result.failed, not_sent = o.not_sent,
            rows = o.rows, rejected = result.rejected, duplicates = result.duplicates,
            time = floor(o.elapsed * 1000 + 0.5) / 1000, rejects_file = o.rejects_written,
            error = o.err and error_json(o.err) or nil, warnings = output.problems_json(o.warnings),
        }), "\n")
        return code
    end
    output.print_problems(ctx.stderr, o.warnings)
    local split = #parts > 1 or (parts[1] and parts[1].task_name ~= task.taskName)
    for _, e in ipairs(parts) do
        local head = (split and format("part %d ", e.part) or "") .. format("%q", tostring(
            e.task_name or task.taskName)) .. (e.rows and format(" (%s)", plural(e.rows, "row"))
            or "")
        local line
        if e.status == "created" then
            line = head .. ": created, keyId " .. tostring(int(e.key_id))
        elseif e.status == "exists" then
            line = head .. ": already exists (" .. (opts.existing_ok and "counted as done" or
                "not created again; --existing-ok counts it as done") .. ")"
        elseif e.status == "not_sent" then
            line = head .. ": not sent"
        else
            line = head .. ": FAILED: " .. tostring(e.error and e.error.text)
        end
        if e.status == "created" or e.status == "exists" then
            if not opts.quiet then ctx.stdout:write(line, "\n") end
        else
            (opts.quiet and ctx.stderr or ctx.stdout):write(line, "\n")
        end
    end
    if not opts.quiet then
        local extra = {}
        if result.rejected > 0 or o.rejects then
            extra[#extra + 1] = grouped(result.rejected) .. " rejected" ..
                (o.rejects_written and (" (listed in " .. o.rejects_written .. ")") or "")
        end
        if result.duplicates > 0 then
            extra[#extra + 1] = plural(result.duplicates, "duplicate") .. " dropped"
        end
        ctx.stdout:write(format("%s: %d created, %d already existed, %d failed, of %s%s; %s%s; " ..
            "%.2f s\n", code == EXIT.OK and "done" or "FAILED", result.created, result.existing,
            result.failed, plural(#parts, "part"), o.not_sent > 0 and
            format(" (%d not sent)", o.not_sent) or "", plural(o.rows, "row"),
            #extra > 0 and (", " .. concat(extra, ", ")) or "", o.elapsed))
    end
    if o.err and o.not_sent > 0 then
        ctx.stderr:write("laaffic: ", tostring(o.err.message), "\n")
    end
    if code == EXIT.AMBIGUOUS then
        ctx.stderr:write("laaffic: the outcome of a part is unknown: it may have been created. " ..
            "Run the same command again: a part that exists answers \"already exists\" and is " ..
            "not created twice (add --existing-ok to count it as done)\n")
    end
    return code
end

local function cmd_send(ctx, opts)
    local started = core.now()
    local concurrency = args.int_option(opts, "concurrency", 1, 64, 4)
    local enc = args.encoder_opts(opts, "send")
    local cfg = config.load_settings(opts, ctx.env)
    cfg = config.apply_sandbox(cfg, opts, ctx.env)
    -- the input first (a missing task file is the first thing to say), then the
    -- credentials, before the check of a long list
    local task, taskname = tasks.load(opts)
    local make_list, listname = numbers.source(opts, task, taskname)
    numbers.check_rejects_path(opts, cfg)
    config.require_credentials(cfg)

    -- check the whole list first: an invalid task sends nothing
    local bar = output.progress_bar(ctx.stderr, ctx.progress, "checking")
    local report = validate.check(task, taskname, make_list, listname, enc, cfg.app_id,
                         opts.numbers ~= nil, bar)
    local blocking = array()
    for _, group in ipairs({ report.field_problems, opts.rejects and {} or report.row_problems,
                             report.part_problems }) do
        for _, p in ipairs(group) do blocking[#blocking + 1] = p end
    end
    if #blocking > 0 then
        bar.clear()
        local hint = not opts.rejects and #report.row_problems > 0 and
            "; --rejects FILE skips bad rows and sends the rest" or ""
        die(EXIT.INVALID, format("%s: nothing was sent%s", plural(#blocking, "problem"), hint),
            { problems = blocking })
    end

    local client = config.make_client(cfg, opts.verbose and output.make_logger(ctx.stderr, bar) or nil,
                               enc.strict)
    local t = {}
    for k, v in pairs(task) do t[k] = v end
    t.numberInfoList = make_list()
    if csv.is(t.numberInfoList) and t.numberInfoList:info().identity ~= report.identity then
        t.numberInfoList:close()
        die(EXIT.INVALID, listname .. " changed after it was checked: nothing was sent; run " ..
            "the command again once the file stays as it is")
    end
    local total = #report.parts
    bar.label = "sending"
    local rejects = opts.rejects and {} or nil
    local result, err = client:create_tasks(t, {
        concurrency = concurrency, max_rows = enc.max_rows, require_texts = enc.require_texts,
        truncate = enc.truncate, rejects = rejects, max_rejects = enc.max_rejects,
        on_progress = function(p)
            p.total = total
            bar.update(p)
        end,
    })
    bar.clear()
    client:close()
    if csv.is(t.numberInfoList) then t.numberInfoList:close() end

    local parts, code, not_sent, err2 = send_parts(result, err, report, opts.existing_ok)
    err = err2
    local rejects_written
    if rejects then
        local w, werr = numbers.write_rejects(opts.rejects, rejects)
        if not w then
            ctx.stderr:write("laaffic: --rejects: ", tostring(werr), "\n")
            code = worse(code, EXIT.FAILED)
        else
            rejects_written = opts.rejects
        end
    end
    local elapsed = core.now() - started
    return send_output(ctx, opts, task, { parts = parts, code = code, not_sent = not_sent,
        err = err, result = result, rows = report.rows, rejects = rejects,
        rejects_written = rejects_written, elapsed = elapsed, warnings = report.warnings })
end

_M.command = cmd_send

return _M
