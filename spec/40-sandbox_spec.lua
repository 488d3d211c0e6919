-- The local sandbox: sandbox/laaffic-sandbox starts a real nginx (Debian's nginx with the
-- lua module) running sandbox/lua/laaffic_sandbox/ on 127.0.0.1. The spec talks to it over
-- real HTTP and HTTPS with the curl command-line tool: request bodies go through files
-- (--data-binary @file) and the headers through a curl config file (-K), so neither the
-- secret nor the Sign derived from it is ever in a process's argv.
--
-- Runs under Lua 5.4 and LuaJIT. The 200,000-number upload is tagged #slow.
local laaffic = require("laaffic")
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local CT = "application/json;charset=UTF-8"

local SB = dofile(H.root .. "/spec/sandbox.lua")
local Sandbox, sh, q, read, write = SB.Sandbox, SB.sh, SB.q, SB.read, SB.write
local md5_file, alive = SB.md5_file, SB.alive

---------------------------------------------------------------------------------------
-- Tasks
---------------------------------------------------------------------------------------

local seq = 0
local function unique(label)
    seq = seq + 1
    return ("spec40 %d %d %s"):format(os.time() % 100000, seq, label)
end

local function task(label, extra)
    local t = {
        appId = "2Xql9RBI",
        taskName = unique(label),
        agentId = 41,
        numberInfoList = {
            { calleeNumber = "463200000007", text1 = "David" },
            { calleeNumber = "463200000008", text1 = "Oliver" },
            { calleeNumber = "463200000009" },
        },
    }
    for k, v in pairs(extra or {}) do
        t[k] = v
    end
    return t
end

local function body(label, extra)
    local t = task(label, extra)
    return cjson.encode(t), t
end

local function assert_status(res, status, reason_part)
    assert.are.equal(0, res.rc, "curl failed: " .. tostring(res.err))
    assert.are.equal(200, res.http)
    assert.is_table(res.json, "not JSON: " .. tostring(res.body))
    assert.are.equal(status, res.json.status, "answer: " .. tostring(res.body))
    assert.is_string(res.json.reason)
    if reason_part then
        assert.is_truthy(res.json.reason:find(reason_part, 1, true),
                         "reason " .. res.json.reason .. " lacks " .. reason_part)
    end
end

local function assert_key_id(res)
    assert_status(res, "0", "success")
    local id = res.json.data
    assert.are.equal("number", type(id))
    assert.are.equal(math.floor(id), id)
    assert.is_true(id > 0)
    return id
end

-- The vendor's curl example (seed 001): URL path and the --data-raw body, comments kept.
local function seed_001()
    local out = sh("ls " .. q(H.shared .. "/seeds"))
    local name = out:match("(001_[^\n]*%.txt)")
    assert(name, "no seed 001 in " .. H.shared .. "/seeds")
    local text = assert(read(H.shared .. "/seeds/" .. name))
    local url = assert(text:match("%-%-request POST '([^']+)'"), "no URL in seed 001")
    local raw = assert(text:match("%-%-data%-raw '(.-)'"), "no --data-raw in seed 001")
    -- the same body without its comments (none of its strings holds a "//")
    return url:match("^https?://[^/]+(/.*)$"), raw, (raw:gsub("//[^\n]*", ""))
end

---------------------------------------------------------------------------------------

describe("laaffic sandbox (nginx + sandbox/lua/laaffic_sandbox)", function()
    local sb

    lazy_setup(function()
        sb = Sandbox.start()
    end)

    lazy_teardown(function()
        if not sb then
            return
        end
        local pid, workers, dir = sb.pid, sb.workers, sb.dir
        assert.are.equal(0, sb:stop())
        assert.is_false(alive(pid), "nginx master " .. tostring(pid) .. " still running")
        for _, w in ipairs(workers) do
            assert.is_false(alive(w), "nginx worker " .. w .. " still running")
        end
        local left = sh("pgrep -f " .. q("[n]ginx: .*" .. dir) .. " || true")
        assert.are.equal("", left)
        assert.is_nil(read(dir .. "/nginx.pid"))
    end)

    it("writes an env file with URLs, CA and credentials", function()
        local e = sb.env
        assert.are.equal(sb.dir, e.LAAFFIC_SANDBOX_DIR)
        assert.matches("^http://127%.0%.0%.1:%d+$", e.LAAFFIC_SANDBOX_HTTP)
        assert.matches("^https://localhost:%d+$", e.LAAFFIC_SANDBOX_HTTPS)
        assert.is_string(read(e.LAAFFIC_SANDBOX_CA))
        assert.are.equal("bDqJFiq9", e.LAAFFIC_SANDBOX_KEY)
        assert.are.equal("7bz1lzh9", e.LAAFFIC_SANDBOX_SECRET)
        assert.are.equal("2Xql9RBI", e.LAAFFIC_SANDBOX_APP_ID)
        assert.is_true(alive(sb.pid))
        -- the secret is in owner-only files, not in nginx's command line or config
        local cmdline = read("/proc/" .. sb.pid .. "/cmdline") or ""
        assert.is_nil(cmdline:find("7bz1lzh9", 1, true))
        assert.is_nil(read(sb.dir .. "/nginx.conf"):find("7bz1lzh9", 1, true))
        local mode = sh("stat -c %a " .. q(sb.dir .. "/sandbox.conf.lua") .. " " ..
                        q(sb.dir .. "/env"))
        assert.are.equal("600\n600\n", mode)
    end)

    it("accepts a signed task: status 0, an integer keyId, recorded with rows and md5", function()
        local b, t = body("ok")
        local f = sb:file("task")
        write(f, b)
        local res = sb:request({ body_file = f })
        local id = assert_key_id(res)
        assert.are.equal(CT, res.ctype)
        local rec = sb:task_record(id)
        assert.is_table(rec, "task " .. id .. " not in /_sandbox/tasks")
        assert.are.equal(t.taskName, rec.taskName)
        assert.are.equal(3, rec.rows)
        assert.are.equal(#b, rec.bytes)
        assert.are.equal(md5_file(f), rec.md5)
        assert.is_number(rec.received_at)
        assert.is_false(rec.spooled)
        -- keyIds increase
        local id2 = assert_key_id(sb:request({ body = body("ok 2") }))
        assert.is_true(id2 > id)
    end)

    it("serves the path without /v3 and accepts an upper-case Sign", function()
        local ts = os.time()
        local sign = core.sign(sb.env.LAAFFIC_SANDBOX_KEY, sb.env.LAAFFIC_SANDBOX_SECRET, ts):upper()
        assert_key_id(sb:request({ body = body("no v3"), path = "/voice/group/call/send/agent",
                                   ts = ts, sign = sign }))
    end)

    it("answers -1 to a wrong Sign, a wrong Api-Key and missing headers", function()
        assert_status(sb:request({ body = body("bad sign"), sign = string.rep("0", 32) }), "-1")
        assert_status(sb:request({ body = body("bad key"), key = "SQLHdsQFe0Gk8ckwJZqcwxfUYRm0Qu0o" }),
                      "-1")
        assert_status(sb:request({ body = body("no auth"), no_auth = true }), "-1")
        -- a Sign made with another secret
        local ts = os.time()
        assert_status(sb:request({ body = body("other secret"), ts = ts,
                                   sign = core.sign(sb.env.LAAFFIC_SANDBOX_KEY, "nottheone", ts) }),
                      "-1")
    end)

    it("answers -1 to an appId that is not configured", function()
        assert_status(sb:request({ body = body("bad app", { appId = "NotMine1" }) }), "-1",
                      "Authentication error")
    end)

    it("answers -16 outside the timestamp window, both ways", function()
        local now = os.time()
        assert_status(sb:request({ body = body("old ts"), ts = now - 3600 }), "-16",
                      "Timestamp expires")
        assert_status(sb:request({ body = body("future ts"), ts = now + 3600 }), "-16")
        assert_key_id(sb:request({ body = body("skewed ts"), ts = now - 200 }))
    end)

    it("answers -18 when the body is not a JSON object", function()
        assert_status(sb:request({ body = '{"appId": "2Xql9RBI", "taskName": ' }), "-18",
                      "Port program unusual")
        assert_status(sb:request({ body = "[1,2,3]" }), "-18")
        assert_status(sb:request({ body = "" }), "-18")
        assert_status(sb:request({ body = "appId=2Xql9RBI" }), "-18")
    end)

    it("answers -21 with the field path for a value outside its rule", function()
        local b = body("bad callee", { numberInfoList = {
            { calleeNumber = "463200000007" }, { calleeNumber = "12345" } } })
        assert_status(sb:request({ body = b }), "-21", "numberInfoList[2].calleeNumber")
        assert_status(sb:request({ body = body("bad ringing", { maxRingingTime = 5 }) }), "-21",
                      "maxRingingTime")
    end)

    it("answers -22 when nodeList and recallNum differ, or a required field is missing", function()
        local b = body("bad nodes", { recallFlow = {
            recallType = 3, recallInterval = 1, recallNum = 3, recallIntent = { "99999" },
            nodeList = { { agentId = "41" }, { agentId = "41" } } } })
        assert_status(sb:request({ body = b }), "-22", "nodeList")
        local t = task("no agent")
        t.agentId = nil
        assert_status(sb:request({ body = cjson.encode(t) }), "-22", "agentId")
    end)

    it("accepts what the rules allow: null sendTime, a long text (cut, counted), unknown fields",
       function()
        local b = body("lenient", { sendTime = cjson.null, calloutRate = 1, futureField = { x = 1 },
            numberInfoList = { { calleeNumber = "463200000007", text1 = string.rep("x", 31) } } })
        local id = assert_key_id(sb:request({ body = b }))
        assert.are.equal(1, sb:task_record(id).truncated)
    end)

    it("answers -41 to a task name used before", function()
        local b = body("twice")
        assert_key_id(sb:request({ body = b }))
        assert_status(sb:request({ body = b }), "-41", "Task name already exists")
        -- over HTTPS too: the names are shared by both listeners
        assert_status(sb:request({ body = b, base = "https",
                                   curl = "--cacert " .. q(sb.env.LAAFFIC_SANDBOX_CA) }), "-41")
    end)

    it("answers the vendor's curl example (seed 001) -18: its // comments are not JSON", function()
        local path, raw, plain = seed_001()
        assert.are.equal("/voice/group/call/send/agent", path)
        assert.is_truthy(raw:find("//", 1, true), "the seed body should carry // comments")
        local f = sb:file("seed001-commented")
        write(f, raw)
        assert_status(sb:request({ body_file = f, path = path }), "-18",
                      "// comments are not JSON")
        assert_status(sb:request({ body = '{"appId":', path = path }), "-18", "it is not JSON")
        f = sb:file("seed001")
        write(f, plain)
        local id = assert_key_id(sb:request({ body_file = f, path = path }))
        local rec = sb:task_record(id)
        assert.are.equal("test", rec.taskName)
        assert.are.equal("Jgd8oFei", rec.appId)
        assert.are.equal(2, rec.rows)
        assert.are.equal(md5_file(f), rec.md5)
    end)

    it("speaks HTTPS with the sandbox CA, and fails verification without it", function()
        local res = sb:request({ body = body("https"), base = "https",
                                 curl = "--cacert " .. q(sb.env.LAAFFIC_SANDBOX_CA) })
        assert_key_id(res)
        res = sb:request({ body = body("https no ca"), base = "https" })
        assert.are.equal(60, res.rc)        -- CURLE_PEER_FAILED_VERIFICATION
        -- the certificate also names 127.0.0.1
        local port = sb.env.LAAFFIC_SANDBOX_HTTPS:match(":(%d+)$")
        local out = sh("curl -sS -o /dev/null -w '%{http_code}' --cacert " ..
                       q(sb.env.LAAFFIC_SANDBOX_CA) .. " https://127.0.0.1:" .. port ..
                       "/_sandbox/ping 2>&1")
        assert.are.equal("200", out)
    end)

    it("answers 405 to a GET on the API path and 404 elsewhere", function()
        assert.are.equal(405, sb:request({ method = "GET", body = "" }).http)
        assert.are.equal(404, sb:control("/nothing/here"))
    end)

    it("refuses the control endpoints to clients other than 127.0.0.1", function()
        local http = sb:control("/_sandbox/tasks", nil, "--interface 127.0.0.2")
        assert.are.equal(403, http)
    end)

    describe("faults", function()
        after_each(function()
            sb:fault({ mode = "none" })
        end)

        it("delay answers normally, late", function()
            sb:fault({ mode = "delay", ms = 600 })
            local res = sb:request({ body = body("delay") })
            assert_key_id(res)
            assert.is_true(res.time >= 0.6, "took " .. res.time)
            res = sb:request({ body = body("after delay") })
            assert_key_id(res)
            assert.is_true(res.time < 0.5, "took " .. res.time)
        end)

        it("slow_read waits before reading the body", function()
            sb:fault({ mode = "slow_read", ms = 400 })
            local res = sb:request({ body = body("slow read") })
            assert_key_id(res)
            assert.is_true(res.time >= 0.4, "took " .. res.time)
        end)

        it("drop closes the connection without an answer (curl 52), creating nothing", function()
            sb:fault({ mode = "drop" })
            local b = body("drop")
            assert.are.equal(52, sb:request({ body = b }).rc)
            assert_key_id(sb:request({ body = b }))  -- it was not created
        end)

        it("drop_after_create creates the task, then drops: a re-send gets -41", function()
            sb:fault({ mode = "drop_after_create" })
            local b = body("lost answer")
            assert.are.equal(52, sb:request({ body = b }).rc)
            assert_status(sb:request({ body = b }), "-41")
        end)

        it("status500 answers HTTP 500", function()
            sb:fault({ mode = "status500" })
            local res = sb:request({ body = body("500") })
            assert.are.equal(0, res.rc)
            assert.are.equal(500, res.http)
            assert.is_nil(res.json)
        end)

        it("garbage answers HTTP 200 with a body that is not JSON", function()
            sb:fault({ mode = "garbage" })
            local res = sb:request({ body = body("garbage") })
            assert.are.equal(0, res.rc)
            assert.are.equal(200, res.http)
            assert.is_nil(res.json)
            assert.is_truthy(#res.body > 0)
        end)

        it("hang answers nothing until the client gives up", function()
            sb:fault({ mode = "hang" })
            local res = sb:request({ body = body("hang"), curl = "--max-time 1" })
            assert.are.equal(28, res.rc)        -- CURLE_OPERATION_TIMEDOUT
            assert_key_id(sb:request({ body = body("after hang") }))
        end)

        it("count arms several requests, and the counters see them", function()
            local _, before = sb:control("/_sandbox/requests")
            sb:fault({ mode = "status500", count = 2 })
            assert.are.equal(500, sb:request({ body = body("c1") }).http)
            assert.are.equal(500, sb:request({ body = body("c2") }).http)
            assert_key_id(sb:request({ body = body("c3") }))
            local _, after = sb:control("/_sandbox/requests")
            assert.are.equal(before.total + 3, after.total)
            assert.are.equal((before.faults.status500 or 0) + 2, after.faults.status500)
            assert.are.equal((before.status["0"] or 0) + 1, after.status["0"])
        end)

        it("refuses an unknown mode", function()
            assert.are.equal(400, (sb:control("/_sandbox/fault", '{"mode":"explode"}')))
        end)

        it("mode status answers any code the pages list, with its text, creating nothing", function()
            local seed = {
                ["-2"] = "Restricted IP access", ["-23"] = "Data caps",
                ["-37"] = "exceeds the maximum concurrent task limit",
                ["-42"] = "Recall is allowed only when", ["-60"] = "speech template",
                ["-67"] = "callback intent", ["-68"] = "recall intent",
            }
            for code, text in pairs(seed) do
                local b = body("status " .. code)
                sb:fault({ mode = "status", status = tonumber(code), count = 2 })
                assert_status(sb:request({ body = b }), code, text)
                assert_status(sb:request({ body = b }), code, text)
                assert_key_id(sb:request({ body = b }))     -- the name was not taken
            end
            for _, bad in ipairs({ '{"mode":"status"}', '{"mode":"status","status":0}',
                                   '{"mode":"status","status":-99}',
                                   '{"mode":"delay","status":-37}' }) do
                assert.are.equal(400, (sb:control("/_sandbox/fault", bad)), bad)
            end
        end)

        it("mode status: the client maps the answer to its named error", function()
            sb:fault({ mode = "status", status = "-37" })
            local c = laaffic.new({ api_key = sb.env.LAAFFIC_SANDBOX_KEY,
                api_secret = sb.env.LAAFFIC_SANDBOX_SECRET, base_url = sb.env.LAAFFIC_SANDBOX_HTTP })
            local key_id, err = c:create_task(H.base_task())
            assert.is_nil(key_id)
            assert.are.same({ "status", -37 }, { err.kind, err.code })
        end)
    end)

    it("reset forgets tasks, names and counters", function()
        local b = body("reset")
        assert_key_id(sb:request({ body = b }))
        local http, res = sb:control("/_sandbox/reset", "{}")
        assert.are.equal(200, http)
        assert.is_true(res.ok)
        local _, tasks, raw = sb:control("/_sandbox/tasks")
        assert.are.equal("[]", raw)
        assert.are.equal(0, #tasks)
        local _, counts = sb:control("/_sandbox/requests")
        assert.are.equal(0, counts.total)
        assert.are.equal(100001, assert_key_id(sb:request({ body = b })))
    end)

    it("receives a 200,000-number task intact #slow", function()
        local rows = {}
        for i = 1, 200000 do
            rows[i] = ('{"calleeNumber":"91%010d","text1":"Customer %06d of the big batch",' ..
                       '"text2":"%d.00"}'):format(7000000000 + i, i, i % 9000 + 100)
        end
        local b = '{"appId":"2Xql9RBI","taskName":"' .. unique("200k") ..
                  '","agentId":41,"numberInfoList":[' .. table.concat(rows, ",") .. "]}"
        rows = nil -- luacheck: ignore 311
        assert.is_true(#b > 16 * 1024 * 1024, "body of " .. #b .. " bytes")
        local f = sb:file("big")
        write(f, b)
        local size = #b
        b = nil -- luacheck: ignore 311
        collectgarbage()
        local res = sb:request({ body_file = f, curl = "--max-time 60" })
        local id = assert_key_id(res)
        local rec = sb:task_record(id)
        assert.are.equal(200000, rec.rows)
        assert.are.equal(size, rec.bytes)
        assert.are.equal(md5_file(f), rec.md5)
    end)
end)

describe("laaffic_sandbox.api.has_comment", function()
    local has = require("laaffic_sandbox.api").has_comment

    it("finds // outside strings only", function()
        assert.is_true(has('{"a":1,//one\n"b":"http://x"}'))
        assert.is_true(has('{"a":"\\\\"}// tail'))
        assert.is_false(has('{"b":"http://x"}'))
        assert.is_false(has('{"a":"q\\"//x"}'))
        assert.is_false(has("{}"))
        assert.is_false(has('{"a":2/'))
        assert.is_false(has('{"a":"unterminated //'))
    end)
end)

describe("laaffic sandbox with its own credentials and a small body buffer", function()
    local sb
    local creds = {
        LAAFFIC_SANDBOX_KEY = "spec40key", LAAFFIC_SANDBOX_SECRET = "spec40 'secret\"",
        LAAFFIC_SANDBOX_APP_ID = "Spec40App", LAAFFIC_SANDBOX_APP_IDS = "",
    }

    lazy_setup(function()
        sb = Sandbox.start(creds, "--window 30 --body-buffer 8k")
    end)

    lazy_teardown(function()
        if sb then
            local pid = sb.pid
            assert.are.equal(0, sb:stop())
            assert.is_false(alive(pid))
        end
    end)

    it("uses the credentials from the environment and only the configured appIds", function()
        assert.are.equal("spec40key", sb.env.LAAFFIC_SANDBOX_KEY)
        assert.are.equal("spec40 'secret\"", sb.env.LAAFFIC_SANDBOX_SECRET)
        assert.are.equal("Spec40App", sb.env.LAAFFIC_SANDBOX_APP_IDS)
        assert_key_id(sb:request({ body = body("own creds", { appId = "Spec40App" }) }))
        assert_status(sb:request({ body = body("default app") }), "-1")
        local _, _, plain = seed_001()
        assert_status(sb:request({ body = plain }), "-1")   -- Jgd8oFei not accepted here
        assert_status(sb:request({ body = body("old key", { appId = "Spec40App" }),
                                   key = "bDqJFiq9" }), "-1")
    end)

    it("applies the configured timestamp window", function()
        assert_status(sb:request({ body = body("ts 60", { appId = "Spec40App" }),
                                   ts = os.time() - 60 }), "-16")
        assert_key_id(sb:request({ body = body("ts 10", { appId = "Spec40App" }),
                                   ts = os.time() - 10 }))
    end)

    it("reads a body nginx spooled to a file", function()
        local rows = {}
        for i = 1, 2000 do
            rows[i] = { calleeNumber = ("4632%08d"):format(i), text1 = "row " .. i }
        end
        local b = body("spooled", { appId = "Spec40App", numberInfoList = rows })
        assert.is_true(#b > 8 * 1024)
        local f = sb:file("spooled")
        write(f, b)
        local id = assert_key_id(sb:request({ body_file = f }))
        local rec = sb:task_record(id)
        assert.are.equal(2000, rec.rows)
        assert.are.equal(md5_file(f), rec.md5)
        assert.is_true(rec.spooled)
    end)
end)
