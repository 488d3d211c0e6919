-- laaffic.cli.validate: the check of a task and its whole list, part by part as a send
-- would build them (validate prints it; send runs it first and sends nothing when it
-- finds a problem), and the validate command.

local laaffic = require "laaffic"
local util = require "laaffic.cli.util"
local args = require "laaffic.cli.args"
local config = require "laaffic.cli.config"
local tasks = require "laaffic.cli.task"
local numbers = require "laaffic.cli.numbers"
local output = require "laaffic.cli.output"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local pcall = pcall
local format = string.format
local sort = table.sort
local floor = math.floor

local core = laaffic.core
local csv = laaffic.csv
local EXIT, die, int, grouped, plural = util.EXIT, util.die, util.int, util.grouped, util.plural
local array = output.array

local _M = {}

local BASE_NAME = "laaffic-validate"
local REQUIRED = { "appId", "taskName", "agentId" }

local function base_task()
    return { appId = "validate", taskName = BASE_NAME, agentId = 1,
             numberInfoList = { { calleeNumber = "100000000" } } }
end

-- The key of t that the encoder's field path names ("recallFlow.x[2]" -> recallFlow),
-- or nil ("task": a key that is not a name).
local function key_of(t, field)
    if field == nil or t[field] ~= nil then return field end
    local best
    for k in pairs(t) do
        if type(k) == "string" and (field:sub(1, #k + 1) == k .. "." or
                                    field:sub(1, #k + 1) == k .. "[") and
           (not best or #k > #best) then
            best = k
        end
    end
    return best
end

-- Drops the keys of t that are not names ("task: must be an object with named fields");
-- returns whether there was one.
local function drop_unnamed(t)
    local dropped = false
    for k in pairs(t) do
        if type(k) ~= "string" then
            t[k] = nil
            dropped = true
        end
    end
    return dropped
end

-- The task's own fields, encoded once with a one-row list and opts.problems, which lists
-- every bad top-level field (a missing required one takes a valid stand-in: the caller
-- reports it with a hint). Returns the problems ({ key, field, message, code }), the
-- warnings, and the set of bad keys (nil when the encoder stopped at a problem no key is
-- to blame for). Keys that are not names (a Lua task) are reported once and dropped.
local function encode_fields(task, app_id, strict)
    local base, t, found, bad = base_task(), {}, {}, {}
    for k, v in pairs(task) do t[k] = v end
    t.appId = t.appId or app_id
    for _, k in ipairs(REQUIRED) do
        if t[k] == nil then t[k] = base[k] end
    end
    t.numberInfoList = base.numberInfoList
    for _ = 1, 2 do
        local problems = {}
        local ok, json, msg, field, code = pcall(core.encode, t, { strict = strict,
                                                                  problems = problems })
        if ok and json then return found, msg.warnings, bad end
        if not ok or #problems == 0 then  -- not a field's: a raise, or keys that are no names
            found[#found + 1] = { i = #found + 1, key = "", field = ok and field or "",
                                  message = tostring(ok and msg or json), code = ok and code or -22 }
            if not (ok and field == "task" and drop_unnamed(t)) then return found, {}, nil end
        else
            for _, p in ipairs(problems) do
                local key = key_of(t, p.field)
                found[#found + 1] = { i = #found + 1, key = tostring(key or ""), field = p.field,
                                      message = p.field .. ": " .. p.message, code = p.code }
                if key then bad[key] = true end
            end
            return found, {}, bad
        end
    end
    return found, {}, nil
end

-- The task's name when it is valid, else BASE_NAME.
local function valid_name(task, bad)
    local n = task.taskName
    if type(n) ~= "string" then return BASE_NAME end
    if bad then return not bad.taskName and n or BASE_NAME end
    local t = base_task()
    t.taskName = n
    local ok, json = pcall(core.encode, t)
    return ok and json and n or BASE_NAME
end

-- The encoder's warnings (info.warnings) as report entries of file.
local function add_warnings(out, file, warned)
    for _, w in ipairs(warned) do
        out[#out + 1] = { file = file, field = w.field, code = w.code,
            message = w.field .. ": " .. w.message,
            text = file .. ": warning: " .. w.field .. ": " .. w.message }
    end
end

-- Every problem with the task's own fields (one per field: a bad field does not hide
-- another), the warnings (rules the vendor's pages do not state; problems when strict),
-- and the task name the parts take (BASE_NAME when the task's is not valid).
local function field_problems(task, taskname, app_id, has_numbers, strict)
    local problems, warnings = {}, array()
    local function add(field, message, code)
        problems[#problems + 1] = { file = taskname, field = field, message = message,
            code = code, text = taskname .. ": " .. message }
    end
    local required = { "appId", "taskName", "agentId" }
    if not has_numbers then required[#required + 1] = "numberInfoList" end
    for _, k in ipairs(required) do
        if task[k] == nil and not (k == "appId" and app_id) then
            add(k, k .. ": is required" .. (k == "appId" and
                " (or set app_id in the config file, or LAAFFIC_APP_ID)" or
                k == "numberInfoList" and " (or give --numbers FILE.csv)" or ""), -22)
        end
    end
    local found, warned, bad = encode_fields(task, app_id, strict)
    sort(found, function(a, b) return a.key < b.key or a.key == b.key and a.i < b.i end)
    for _, p in ipairs(found) do add(p.field, p.message, p.code) end
    add_warnings(warnings, taskname, warned)
    return problems, warnings, valid_name(task, bad)
end

-- The counts of a CSV list read to its end, and its identity (the send's source must
-- have the same); closes it. Returns whether it is still the file that was opened.
local function csv_done(report, list)
    local si = list:info()
    report.rows, report.duplicates = floor(si.rows), floor(si.duplicates)
    report.identity = si.identity
    local same, why = list:check()
    list:close()
    return same, why
end

-- A problem of part k of the list (the encoder's message, where it names the file).
local function part_problem(report, listname, k, msg, where, field, code)
    local text
    if where and where.line or msg:find(listname, 1, true) then
        text = msg          -- the encoder's message names the file (file:line:column)
    else
        text = listname .. ": " .. (k > 1 and ("part " .. k .. ": ") or "") .. msg
    end
    report.part_problems[#report.part_problems + 1] = { file = where and where.file or
        listname, line = where and where.line, column = where and where.column,
        field = field, message = msg, code = code, part = k, text = text }
end

-- Encodes part k of the list; returns whether another part follows, and the name the
-- next parts take.
local function check_part(report, c, k, name)
    local list, is_csv = c.list, c.is_csv
    -- an empty list is no part of anything: encoded whole, the encoder warns (or, strict,
    -- refuses) as for any task
    if not is_csv then c.o.part = c.n ~= 0 and k or nil end
    local before = is_csv and list:info().bytes
    local t = { appId = "validate", taskName = name, agentId = 1, numberInfoList = list }
    local ok, body, info, field, code, where = pcall(core.encode_body, t, c.o)
    if not ok then
        part_problem(report, c.listname, k, tostring(body), nil, "numberInfoList", -22)
        return false, name
    end
    if body then
        body:close()
        -- the list's own warnings (an empty one); the stand-in task's fields make none
        if k == 1 then add_warnings(report.warnings, c.listname, info.warnings) end
        report.parts[#report.parts + 1] = { part = k, rows = info.rows,
            task_name = info.task_name or name }
        report.truncated = report.truncated + (info.truncated or 0)
        if not is_csv then report.rows = report.rows + info.rows end
        return info.more and true or false, name
    end
    part_problem(report, c.listname, k, tostring(info), where, field, code)
    if field == "taskName" and name ~= BASE_NAME then
        name = BASE_NAME     -- report the name once, go on checking the rows
    end
    if is_csv then
        -- only a part's name can fail and leave the rest of the file readable
        local si = list:info()
        return field == "taskName" and not si.done and si.bytes > before, name
    end
    return c.n ~= nil and k < c.total, name
end

-- Checks every part of a list that has rows; c = { list, is_csv, n, o, listname, max_rows }.
-- The core says how a list of n rows splits (core.parts), as create_tasks splits it.
local function check_parts(report, c, name, bar)
    local total = c.n and core.parts(c.n, c.max_rows) or nil
    c.total = total
    local k, more = 0, true
    while more do
        k = k + 1
        more, name = check_part(report, c, k, name)
        if bar then
            local si = c.is_csv and c.list:info()
            bar.update({ parts = k, done = k, total = total, rows = c.is_csv and si.rows or
                         report.rows, bytes = si and si.bytes, size = si and si.size })
        end
    end
    local same, why = true, nil
    if c.is_csv then same, why = csv_done(report, c.list) end
    if not same then
        part_problem(report, c.listname, k, "the file changed while it was being checked (" ..
                     tostring(why) .. ")", nil, "numberInfoList")
    end
end

-- The rows the encoder left out, as problems (file:line:column for a CSV).
local function row_problems(rejects, listname)
    local out = array()
    for _, r in ipairs(rejects) do
        local p = { field = r.field, message = r.message, code = r.code, index = r.index,
                    file = listname }
        if r.line then
            p.line, p.column = r.line, r.column
            p.text = format("%s:%s:%s: %s: %s", listname, int(r.line), int(r.column or 0),
                            tostring(r.field), tostring(r.message))
        else
            p.text = format("%s: %s: %s", listname, tostring(r.field), tostring(r.message))
        end
        out[#out + 1] = p
    end
    return out
end

-- Checks every row of the list, part by part as a send would build them.
-- Returns { problems (field, then rows, then parts), row_problems, part_problems, rows,
-- parts = { { part, task_name, rows } }, rejected, duplicates, truncated }.
function _M.check(task, taskname, make_list, listname, enc, app_id, has_numbers, bar)
    local report = { rows = 0, parts = array(), rejected = 0, duplicates = 0, truncated = 0,
                     part_problems = array() }
    local name
    report.field_problems, report.warnings, name = field_problems(task, taskname, app_id,
                                                                  has_numbers, enc.strict)
    local list = make_list()
    local is_csv = csv.is(list)
    local rejects = {}
    local n = not is_csv and type(list) == "table" and #list or nil
    if list ~= nil then
        check_parts(report, { list = list, is_csv = is_csv, n = n, listname = listname,
            max_rows = enc.max_rows, o = { require_texts = enc.require_texts,
            truncate = enc.truncate, max_rows = enc.max_rows, rejects = rejects,
            max_rejects = enc.max_rejects, strict = enc.strict } }, name, bar)
    end
    report.row_problems = row_problems(rejects, listname)
    report.rejected = #rejects
    local all = array()
    for _, group in ipairs({ report.field_problems, report.row_problems, report.part_problems }) do
        for _, p in ipairs(group) do all[#all + 1] = p end
    end
    report.problems = all
    return report
end

local function print_report(ctx, opts, report, enc, ok)
    output.print_problems(ctx.stdout, report.problems)
    output.print_problems(ctx.stdout, report.warnings)
    if not opts.quiet or not ok then
        ctx.stdout:write(format("%s%s rows, %s (at most %s rows each); %s rejected, %s, " ..
            "%s truncated%s\n", ok and "valid: " or format("INVALID: %s; ",
            plural(#report.problems, "problem")), grouped(report.rows),
            plural(#report.parts, "task"), grouped(enc.max_rows), grouped(report.rejected),
            plural(report.duplicates, "duplicate"), plural(report.truncated, "text"),
            #report.warnings > 0 and ("; " .. plural(#report.warnings, "warning") ..
            " (--strict makes them errors)") or ""))
    end
end

function _M.command(ctx, opts)
    local started = core.now()
    local enc = args.encoder_opts(opts, "validate")
    local cfg = config.load_settings(opts, ctx.env)
    cfg = config.apply_sandbox(cfg, opts, ctx.env)
    local task, taskname = tasks.load(opts)
    local make_list, listname = numbers.source(opts, task, taskname)
    numbers.check_rejects_path(opts, cfg)
    local bar = output.progress_bar(ctx.stderr, ctx.progress, "validating")
    local report = _M.check(task, taskname, make_list, listname, enc, cfg.app_id,
                            opts.numbers ~= nil, bar)
    bar.clear()
    local ok = #report.problems == 0
    if opts.rejects then
        local rows = {}
        for _, p in ipairs(report.row_problems) do
            rows[#rows + 1] = { line = p.line, column = p.column,
                                field = p.field, message = p.message }
        end
        local w, werr = numbers.write_rejects(opts.rejects, rows)
        if not w then die(EXIT.USAGE, "--rejects: " .. tostring(werr)) end
    end
    if not opts.json then
        print_report(ctx, opts, report, enc, ok)
        return ok and EXIT.OK or EXIT.INVALID
    end
    ctx.stdout:write(output.json({
        ok = ok, problems = output.problems_json(report.problems),
        warnings = output.problems_json(report.warnings), rows = report.rows,
        parts = #report.parts, tasks = report.parts, rejected = report.rejected,
        duplicates = report.duplicates, truncated = report.truncated, task = taskname,
        numbers = opts.numbers, exit_code = ok and EXIT.OK or EXIT.INVALID,
        time = floor((core.now() - started) * 1000 + 0.5) / 1000,
    }), "\n")
    return ok and EXIT.OK or EXIT.INVALID
end

return _M
