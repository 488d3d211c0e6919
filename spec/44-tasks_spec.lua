-- client:create_tasks against the sandbox: lists split into parts with derived names, sent
-- in parallel through libcurl's multi interface with bounded concurrency; re-runs find the
-- parts already created; a failure stops new parts and is reported with its part.
local laaffic = require("laaffic")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")

local function csv_text(n, first, bad_at)
    local lines = { "calleeNumber,text1" }
    for i = 1, n do
        lines[#lines + 1] = (i == bad_at and "12ab" or tostring((first or 919000000000) + i)) ..
                            ",name " .. i
    end
    return table.concat(lines, "\n") .. "\n"
end

describe("client:create_tasks against the sandbox", function()
    local sb, env
    local seq = 0

    local function client(o)
        local opts = {
            api_key = env.LAAFFIC_SANDBOX_KEY, api_secret = env.LAAFFIC_SANDBOX_SECRET,
            app_id = env.LAAFFIC_SANDBOX_APP_ID, base_url = env.LAAFFIC_SANDBOX_HTTPS,
            cafile = env.LAAFFIC_SANDBOX_CA, backoff = 0, timeout = 10,
        }
        for k, v in pairs(o or {}) do opts[k] = v end
        return laaffic.new(opts)
    end
    local function name()
        seq = seq + 1
        return ("spec44-%d-%d"):format(os.time(), seq)
    end
    -- the sandbox's tasks whose name starts with prefix, by name
    local function created(prefix)
        local out = {}
        for _, t in ipairs(sb:tasks()) do
            if t.taskName:sub(1, #prefix) == prefix then
                assert.is_nil(out[t.taskName], "two tasks named " .. t.taskName)
                out[t.taskName] = t
            end
        end
        return out
    end
    local function count(t)
        local n = 0
        for _ in pairs(t) do n = n + 1 end
        return n
    end

    setup(function()
        sb = SB.Sandbox.start()
        env = sb.env
    end)
    teardown(function()
        if sb then sb:stop() end
    end)

    it("splits a CSV list into parts named taskName-part-N and creates each once", function()
        local n = name()
        local src = assert(laaffic.csv.from_string(csv_text(10)))
        local result, err = client():create_tasks({ taskName = n, agentId = 110, numberInfoList = src },
                                                  { max_rows = 4, concurrency = 2 })
        assert.is_nil(err)
        assert.same({ 3, 0, 0, 10 }, { result.created, result.existing, result.failed, result.rows })
        local tasks = created(n)
        assert.equal(3, count(tasks))
        for p, rows in ipairs{ 4, 4, 2 } do
            local part = result.parts[p]
            local t = tasks[n .. "-part-" .. p]
            assert.is_table(t, "part " .. p)
            assert.equal(part.key_id, t.keyId)
            assert.equal(rows, t.rows)
            assert.equal(rows, part.rows)
            assert.equal(n .. "-part-" .. p, part.task_name)
        end
    end)

    it("sends a list that fits in one part under its own name", function()
        local n = name()
        local list = { { calleeNumber = "919777654321" }, { calleeNumber = "919777654322" } }
        local result, err = client():create_tasks{ taskName = n, agentId = 110, numberInfoList = list }
        assert.is_nil(err)
        assert.equal(1, #result.parts)
        assert.equal(n, result.parts[1].task_name)
        assert.is_table(created(n)[n])
    end)

    it("a re-run finds the parts created before as existing and creates only the missing ones", function()
        local n = name()
        local list = {}
        for i = 1, 9 do list[i] = { calleeNumber = tostring(919100000000 + i) } end
        local c = client()
        -- the first run "crashes" after part 2: create parts 1 and 2 only, one by one
        for p = 1, 2 do
            local req = assert(c:build_task({ taskName = n, agentId = 110, numberInfoList = list },
                                            { part = p, max_rows = 4 }))
            local res = assert(c.transport(req))
            assert.equal(200, res.status)
        end
        local result, err = c:create_tasks({ taskName = n, agentId = 110, numberInfoList = list },
                                           { max_rows = 4, concurrency = 3 })
        assert.is_nil(err)
        assert.same({ 1, 2, 0 }, { result.created, result.existing, result.failed })
        assert.is_true(result.parts[1].exists)
        assert.equal("already_exists", result.parts[2].error.kind)
        assert.is_number(result.parts[3].key_id)
        assert.equal(3, count(created(n)))
    end)

    it("never has more parts in flight than opts.concurrency, and does overlap them", function()
        local n = name()
        sb:control("/_sandbox/reset", "{}")
        sb:fault{ mode = "delay", ms = 300, count = 6 }
        local max_seen, samples = 0, {}
        local src = assert(laaffic.csv.from_string(csv_text(12)))
        local result, err = client():create_tasks({ taskName = n, agentId = 110, numberInfoList = src },
            { max_rows = 2, concurrency = 3, on_progress = function(p)
                samples[#samples + 1] = p.in_flight
                if p.in_flight > max_seen then max_seen = p.in_flight end
            end })
        assert.is_nil(err)
        assert.equal(6, result.created)
        assert.equal(3, max_seen)
        assert.equal(6, count(created(n)))
        assert.equal(0, samples[#samples])
        -- and the sandbox was handling three of them at the same moment
        local _, stats = sb:control("/_sandbox/requests")
        assert.equal(3, stats.max_in_flight)
        assert.equal(6, stats.total)
    end)

    it("stops building parts at an invalid row, lets the parts under way finish, and names the failed part", function()
        local n = name()
        local src = assert(laaffic.csv.from_string(csv_text(20, nil, 11), { name = "calls.csv" }))
        local result, err = client():create_tasks({ taskName = n, agentId = 110, numberInfoList = src },
                                                  { max_rows = 4, concurrency = 2 })
        assert.equal("invalid", err.kind)
        assert.equal(3, err.part)
        assert.same({ "calls.csv", 12, 1 }, { err.file, err.line, err.column })
        assert.matches("^1 of 3 part%(s%) failed; part 3: calls%.csv:12:1: calleeNumber", err.message)
        assert.equal(2, result.created)
        assert.equal(3, #result.parts)
        assert.equal(2, count(created(n)))
    end)

    it("with opts.rejects skips the bad rows and sends the rest", function()
        local n = name()
        local rejects = {}
        local src = assert(laaffic.csv.from_string(csv_text(9, nil, 5)))
        local result, err = client():create_tasks({ taskName = n, agentId = 110, numberInfoList = src },
                                                  { max_rows = 4, rejects = rejects })
        assert.is_nil(err)
        assert.same({ 8, 1, 2 }, { result.rows, result.rejected, result.created })
        assert.equal(6, rejects[1].line)
    end)

    it("reports a transport failure per part without sending a duplicate, and starts no more parts", function()
        local n = name()
        local list = {}
        for i = 1, 6 do list[i] = { calleeNumber = tostring(919200000000 + i) } end
        local c = client{ base_url = "https://127.0.0.1:1", retries = 1 }
        local result, err = c:create_tasks({ taskName = n, agentId = 110, numberInfoList = list },
                                           { max_rows = 2, concurrency = 2 })
        assert.equal("transport", err.kind)
        assert.is_true(result.failed >= 1)
        assert.is_true(#result.parts <= 2)
        assert.equal(0, result.created)
        assert.equal(0, count(created(n)))
    end)

    it("goes one part at a time through a custom transport", function()
        local n = name()
        local inner = client()
        local calls, active, max_active = 0, 0, 0
        local c = client{ transport = function(req)
            calls = calls + 1
            active = active + 1
            if active > max_active then max_active = active end
            local res, e, kind, sent = inner.transport(req)
            active = active - 1
            return res, e, kind, sent
        end }
        local list = {}
        for i = 1, 5 do list[i] = { calleeNumber = tostring(919300000000 + i) } end
        local result, err = c:create_tasks({ taskName = n, agentId = 110, numberInfoList = list },
                                           { max_rows = 2, concurrency = 4 })
        assert.is_nil(err)
        assert.equal(3, result.created)
        assert.equal(3, calls)
        assert.equal(1, max_active)
    end)

    it("raises on misuse", function()
        local c = client()
        assert.has_error(function() c:create_tasks("x") end)
        assert.has_error(function() c:create_tasks({}, { concurrency = 0 }) end)
        assert.has_error(function() c:create_tasks({}, { bogus = true }) end)
        assert.has_error(function() c.create_tasks({}, {}) end)
        -- one checker (laaffic.options): the function and the option, never the value
        local function raises(msg, o)
            local ok, e = pcall(function() local r = c:create_tasks({}, o); return r end)
            assert.is_false(ok)
            assert.matches("^spec/44%-tasks_spec%.lua:%d+: ", e)
            assert.equal(msg, e:gsub("^[^:]*:%d+: ", ""))
        end
        raises("laaffic: client:create_tasks: option 'concurrency' must be an integer from 1 to 64",
               { concurrency = 1.5 })
        raises("laaffic: client:create_tasks: option 'concurrency' must be an integer from 1 to 64" ..
               ", got string", { concurrency = "4" })
        raises("laaffic: client:create_tasks: option 'on_progress' must be a function, got number",
               { on_progress = 1 })
        raises("laaffic: client:create_tasks: unknown option 'bogus'", { bogus = true })
        raises("laaffic: client:create_tasks: options table expected, got string", "fast")
    end)

    it("sends 200,001 numbers as two tasks of 200,000 and 1 #slow", function()
        local n = name()
        local list = {}
        for i = 1, 200001 do list[i] = { calleeNumber = tostring(919000000000 + i) } end
        local result, err = client{ timeout = 60 }:create_tasks{ taskName = n, agentId = 110,
                                                                  numberInfoList = list }
        assert.is_nil(err)
        local tasks = created(n)
        assert.equal(200000, tasks[n .. "-part-1"].rows)
        assert.equal(1, tasks[n .. "-part-2"].rows)
        assert.equal(2, result.created)
    end)
end)
