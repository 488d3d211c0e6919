-- The sandbox's status report pushes: after a task is created, the sandbox (a real nginx,
-- sandbox/laaffic-sandbox) POSTs simulated call reports for every number to its push URL. The
-- receiver here is a second real nginx (spec/nginx.lua) whose few lines of Lua keep every
-- record it gets in a shared dict and show them on /seen.
--
-- Runs under Lua 5.4 and LuaJIT. The 200,000-number push is tagged #slow.
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local SB = dofile(H.root .. "/spec/sandbox.lua")
local Nginx = dofile(H.root .. "/spec/nginx.lua")
local Sandbox, sh, q, read = SB.Sandbox, SB.sh, SB.q, SB.read

local CT = "application/json;charset=UTF-8"

-- The receiver. POST /push stores the records (bare array, {"array":[...]} or one object);
-- POST /arm {"fail":N,"count_only":bool} answers 500 to the next N pushes (remembering the
-- md5 of each refused body) or keeps only counts; GET /seen shows everything; POST /reset.
local RECEIVER = [[
lua_shared_dict seen 64m;
server {
    listen 127.0.0.1:$PORT;
    location = /push {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local d = ngx.shared.seen
            ngx.req.read_body()
            local body = ngx.req.get_body_data()
            local file = not body and ngx.req.get_body_file()
            if file then
                local f = io.open(file, "rb")
                body = f:read("*a")
                f:close()
            end
            body = body or ""
            d:incr("posts", 1, 0)
            d:incr("ctype:" .. (ngx.var.content_type or "none"), 1, 0)
            d:incr("method:" .. ngx.req.get_method(), 1, 0)
            if ngx.var.arg_token ~= "spec42" then d:incr("no_token", 1, 0) end
            local md5 = ngx.md5(body)
            if (d:get("fail_left") or 0) > 0 then
                d:incr("fail_left", -1)
                d:incr("failed", 1, 0)
                d:set("failed:" .. md5, true)
                return ngx.exit(500)
            end
            if d:get("failed:" .. md5) then d:incr("refetched", 1, 0) end
            local tag = ngx.var.http_x_laaffic_sandbox_batch
            if tag then d:set("tag:" .. tag, d:incr("accepted", 1, 0)) end
            local v = cjson.decode(body)
            if type(v) ~= "table" then
                d:incr("bad_json", 1, 0)
                return ngx.exit(400)
            end
            local recs, shape = v, "array"
            if type(v.array) == "table" then
                recs, shape = v.array, "wrapped"
            elseif v.voiceId then
                recs, shape = { v }, "object"
            end
            d:incr("shape:" .. shape, 1, 0)
            d:incr("received", #recs, 0)
            for _, rec in ipairs(recs) do
                local id = tostring(rec.voiceId)
                local n = d:incr("n:" .. id, 1, 0)
                if d:get("count_only") then
                    if n > 1 then d:incr("dups", 1, 0) end
                elseif n == 1 then
                    d:set("r:" .. id, cjson.encode(rec))
                else
                    d:incr("dups", 1, 0)
                    local first = cjson.decode(d:get("r:" .. id))
                    local same = true
                    for k, x in pairs(first) do if rec[k] ~= x then same = false end end
                    for k in pairs(rec) do if first[k] == nil then same = false end end
                    if not same then d:incr("mismatched", 1, 0) end
                end
            end
            ngx.header["Content-Type"] = "text/plain"
            ngx.print("ok")
        }
    }
    location = /arm {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            ngx.req.read_body()
            local a = cjson.decode(ngx.req.get_body_data() or "{}") or {}
            local d = ngx.shared.seen
            d:set("fail_left", a.fail or 0)
            d:set("count_only", a.count_only == true)
            ngx.print("armed")
        }
    }
    location = /reset {
        content_by_lua_block {
            -- flush_expired too: this lua module's incr() on a key left expired by
            -- flush_all() alone can leave the old node in the tree (seen twice in get_keys)
            ngx.shared.seen:flush_all()
            ngx.shared.seen:flush_expired()
            ngx.print("reset")
        }
    }
    location = /seen {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local d = ngx.shared.seen
            local out = { shapes = {}, ctypes = {}, methods = {}, records = {}, tasks = {},
                          tags = {} }
            for _, k in ipairs(d:get_keys(0)) do
                local kind, rest = k:match("^([%w_]+):(.*)$")
                local v = d:get(k)
                if kind == "shape" then out.shapes[rest] = v
                elseif kind == "ctype" then out.ctypes[rest] = v
                elseif kind == "method" then out.methods[rest] = v
                elseif kind == "tag" then out.tags[rest] = v
                elseif kind == "n" then
                    out.unique = (out.unique or 0) + 1
                    local task = rest:match("^(%d+)%-") or "other"
                    out.tasks[task] = (out.tasks[task] or 0) + 1
                    if not d:get("count_only") then
                        out.records[rest] = out.records[rest] or {}
                        out.records[rest].n = v
                    end
                elseif kind == "r" then
                    out.records[rest] = out.records[rest] or {}
                    out.records[rest].rec = cjson.decode(v)
                elseif not kind and type(v) == "number" then out[k] = v
                end
            end
            ngx.header["Content-Type"] = "application/json"
            ngx.print(cjson.encode(out))
        }
    }
}
]]

-- The documented fields of a report, and the sandbox's two extras.
local FIELDS = {
    "voiceId", "type", "callee", "displayNum", "submitTime", "callTime", "ringingTime",
    "answerTime", "hangupTime", "billPeriod", "code", "recordingFileId", "ringDuration",
    "currency", "quoteExchange", "chargedDuration", "rate", "cost", "settleRate", "settlePay",
    "aiAgentChargedDuration", "aiAgentBillPeriod", "aiAgentRate", "aiAgentFee",
    "aiAgentQuoteRate", "aiAgentQuoteFee", "terminationCode", "terminationReason", "sipCode",
    "calledInfo", "scriptId", "intent", "keyId", "taskName",
}
local TIMES = { "submitTime", "callTime", "ringingTime", "answerTime", "hangupTime" }

local seq = 0
local function task(n, extra)
    seq = seq + 1
    local list = {}
    for i = 1, n do
        list[i] = { calleeNumber = ("4632%08d"):format(seq * 1000 + i), text1 = "n" .. i }
    end
    local t = { appId = "2Xql9RBI", taskName = ("spec42 %d %d %d"):format(os.time() % 100000, seq, n),
                agentId = 41, displayNum = "123456", numberInfoList = list }
    for k, v in pairs(extra or {}) do
        t[k] = v
    end
    return t
end

-- A number that may come as a JSON number or a string of digits ("12").
local function num(v)
    if type(v) == "string" and v:match("^%-?%d+$") then
        return tonumber(v)
    end
    return v
end

local function get(url)
    local out, rc = sh("curl -sS --max-time 5 " .. q(url) .. " 2>&1")
    assert(rc == 0, "curl " .. url .. ": " .. out)
    return out
end

local function post(url, body)
    local out, rc = sh("curl -sS --max-time 5 --data-binary " .. q(body) .. " " .. q(url) .. " 2>&1")
    assert(rc == 0, "curl " .. url .. ": " .. out)
    return out
end

-- Polls cond() every 50 ms until it gives a true value or `seconds` pass; returns that value.
local function wait_for(what, seconds, cond)
    local deadline = core.now() + seconds
    while true do
        local v = cond()
        if v then
            return v
        end
        if core.now() > deadline then
            error("timed out after " .. seconds .. " s waiting for " .. what, 2)
        end
        core.sleep(0.05)
    end
end

describe("laaffic_sandbox push helpers (outside nginx)", function()
    local push_config = require("laaffic_sandbox.push_config")
    local records = require("laaffic_sandbox.records")

    it("accepts only http:// URLs to 127.0.0.1 or localhost", function()
        local t = assert(push_config.parse_url("http://127.0.0.1:8080/push?token=x"))
        assert.are.same({ url = "http://127.0.0.1:8080/push?token=x", host = "127.0.0.1",
                          port = 8080, path = "/push?token=x" }, t)
        t = assert(push_config.parse_url("HTTP://LocalHost"))
        assert.are.same({ "localhost", 80, "/" }, { t.host, t.port, t.path })
        assert.are.equal("/?a=1", push_config.parse_url("http://localhost:81?a=1").path)
        for _, bad in ipairs({
            "https://127.0.0.1/", "http://10.0.0.1/", "http://example.com/", "http://[::1]/",
            "http://127.0.0.1.nip.io/", "http://127.0.0.2/", "http://user@127.0.0.1/",
            "http://127.0.0.1@example.com/", "http://127.0.0.1:0/", "http://127.0.0.1:65536/",
            "http://127.0.0.1:/", "http://127.0.0.1/a b", "http://127.0.0.1/\r\nHost: x",
            "ftp://127.0.0.1/", "127.0.0.1:80/push", "", 42,
        }) do
            assert.is_nil(push_config.parse_url(bad), tostring(bad))
        end
    end)

    it("merges settings and refuses bad ones by name", function()
        local base = assert(push_config.merge({ shape = "mixed", batch = 100 }, {}))
        local c = assert(push_config.merge(base, { batch = 7, shape = "array",
            url = "http://localhost:9/x", duplicates = false, retry_s = 0.5, retries = 0,
            delay_ms = 0 }))
        assert.are.same({ batch = 7, shape = "array", url = "http://localhost:9/x",
                          duplicates = false, retry_s = 0.5, retries = 0, delay_ms = 0 }, c)
        assert.is_nil(assert(push_config.merge(c, { url = "" })).url)
        assert.is_nil(assert(push_config.merge(c, { url = cjson.null })).url)
        for _, case in ipairs({
            { { url = "http://192.0.2.1/" }, "127.0.0.1" }, { { batch = 0 }, "batch" },
            { { batch = 1.5 }, "batch" }, { { shape = "csv" }, "shape" },
            { { duplicates = "yes" }, "duplicates" }, { { retry_s = -1 }, "retry_s" },
            { { retries = 11 }, "retries" }, { { delay_ms = "1" }, "delay_ms" },
            { { colour = 1 }, "unknown setting colour" },
        }) do
            local ok, err = push_config.merge(c, case[1])
            assert.is_nil(ok)
            assert.is_truthy(err:find(case[2], 1, true), err)
        end
    end)

    it("makes records in the documented field order, as valid JSON", function()
        local job = { key_id = 100001, submit = 1775000000.25, display_json = '"123456"',
                      script_json = '"41"', name_json = cjson.encode('a "quoted" name'),
                      recording = true, token = "0123456789ab" }
        for i = 1, 20 do
            local s = records.record_json(job, i, "46320000" .. i)
            local rec = cjson.decode(s)
            local last = 0
            for _, f in ipairs(FIELDS) do
                local at = s:find('"' .. f .. '":', 1, true)
                assert.is_truthy(at, f)
                assert.is_true(at > last, "field order at " .. f)
                last = at
                assert.is_not_nil(rec[f], f)
            end
            assert.are.equal('a "quoted" name', rec.taskName)
            assert.are.equal("100001-" .. i .. "-0123456789ab", rec.voiceId)
        end
    end)
end)

describe("laaffic sandbox status report pushes", function()
    local rx, sb, push_url

    local function seen()
        return cjson.decode(get(rx:url("/seen")))
    end

    local function create(n, extra)
        local res = sb:request({ body = cjson.encode(task(n, extra)) })
        assert.are.equal(200, res.http, tostring(res.err))
        assert.are.equal("0", res.json and res.json.status, res.body)
        return res.json.data
    end

    -- Waits until every job has ended and its batches are settled; returns the counters.
    local function settled(records, seconds)
        return wait_for(records .. " records pushed and settled", seconds or 10, function()
            local p = sb:pushes()
            if p.records >= records and p.active == 0 and
               p.delivered_batches + p.failed_batches == p.batches then
                return p
            end
        end)
    end

    lazy_setup(function()
        rx = Nginx.start({ http = RECEIVER })
        push_url = rx:url("/push?token=spec42")
        sb = Sandbox.start(nil, "--push-url " .. q(push_url))
    end)

    lazy_teardown(function()
        if sb then
            assert.are.equal(0, sb:stop())
        end
        if rx then
            assert.is_true(rx:stop())
        end
    end)

    before_each(function()
        -- reset: counters cleared, running jobs stopped, settings back to the start's
        assert.are.equal(200, (sb:control("/_sandbox/reset", "{}")))
        post(rx:url("/reset"), "")
        post(rx:url("/arm"), "{}")
    end)

    it("takes its push URL from --push-url, with the documented defaults", function()
        local http, c = sb:control("/_sandbox/push-config")
        assert.are.equal(200, http)
        assert.are.same({ url = push_url, delay_ms = 100, duplicates = true, shape = "mixed",
                          batch = 100, retry_s = 1, retries = 3 }, c)
        assert.are.equal(push_url, sb.env.LAAFFIC_SANDBOX_PUSH_URL)
        local p = sb:pushes()
        assert.are.same({ records = 0, sent = 0, duplicates = 0, batches = 0,
                          delivered_batches = 0, failed_batches = 0, retries = 0, posts = 0,
                          delivered_records = 0, jobs = 0, active = 0, last_error = "" }, p)
    end)

    describe("a task of 45 numbers, 10 records a batch", function()
        local N, key_id, p, s, callees = 45, nil, nil, nil, {}

        lazy_setup(function()
            sb:control("/_sandbox/reset", "{}")
            post(rx:url("/reset"), "")
            post(rx:url("/arm"), "{}")
            local http = sb:push_config({ batch = 10, delay_ms = 0 })
            assert.are.equal(200, http)
            key_id = create(N)
            for i = 1, N do callees[("4632%08d"):format(seq * 1000 + i)] = true end
            p = settled(N)
            s = seen()
        end)

        it("delivers every number's report, and the counters agree with the receiver", function()
            assert.are.equal(N, s.unique)
            for id in pairs(s.records) do
                assert.matches(("^%d%%-%%d+%%-%%x+$"):format(key_id), id)
            end
            assert.are.equal(N, p.records)
            assert.are.equal(p.records + p.duplicates, p.sent)
            assert.are.equal(p.sent, s.received)
            assert.are.equal(p.sent, p.delivered_records)
            assert.are.equal(p.batches, p.delivered_batches)
            assert.are.equal(p.batches, s.posts)
            assert.are.equal(p.batches, p.posts)
            assert.are.same({ 0, 0, "" }, { p.failed_batches, p.retries, p.last_error })
            assert.is_true(p.batches >= 5, "batches: " .. p.batches)
            assert.are.same({ [CT] = s.posts }, s.ctypes)
            assert.are.same({ POST = s.posts }, s.methods)
            assert.is_nil(s.no_token, "the URL's query string reached the receiver")
            -- the sandbox numbers its batches (X-Laaffic-Sandbox-Batch: keyId/n), each came
            for n = 1, p.batches do
                assert.is_number(s.tags[("%d/%d"):format(key_id, n)], "batch " .. n)
            end
            assert.is_nil(s.bad_json)
        end)

        it("re-sends some records in a later batch, with identical content", function()
            assert.is_true(p.duplicates >= 1)
            assert.are.equal(p.duplicates, s.dups)
            assert.is_nil(s.mismatched)
            local twice = 0
            for _, r in pairs(s.records) do
                if r.n > 1 then twice = twice + 1 end
            end
            assert.is_true(twice >= 1)
        end)

        it("alternates the bare array and the {\"array\":[...]} wrapper", function()
            assert.is_true((s.shapes.array or 0) >= 1, cjson.encode(s.shapes))
            assert.is_true((s.shapes.wrapped or 0) >= 1, cjson.encode(s.shapes))
            assert.is_nil(s.shapes.object)
        end)

        it("sends every documented field, some numbers as strings, some times as ms", function()
            local text_nums, json_nums, string_times, ms_times = 0, 0, 0, 0
            for _, r in pairs(s.records) do
                local rec = r.rec
                for _, f in ipairs(FIELDS) do
                    assert.is_not_nil(rec[f], f .. " missing")
                end
                assert.are.equal(1, rec.type)
                assert.is_true(callees[rec.callee], rec.callee)
                assert.are.equal("123456", rec.displayNum)
                assert.are.equal(key_id, rec.keyId)
                assert.matches("^spec42 ", rec.taskName)
                assert.are.equal("41", rec.scriptId)
                assert.is_string(rec.intent)
                for _, f in ipairs({ "billPeriod", "ringDuration", "sipCode", "terminationCode",
                                     "chargedDuration" }) do
                    if type(rec[f]) == "string" then
                        assert.matches("^%d+$", rec[f])
                        text_nums = text_nums + 1
                    else
                        assert.is_number(rec[f])
                        json_nums = json_nums + 1
                    end
                end
                for _, f in ipairs(TIMES) do
                    local v = rec[f]
                    if type(v) == "number" then
                        assert.is_true(v > 1.6e12 and v == math.floor(v), f .. " " .. v)
                        ms_times = ms_times + 1
                    elseif v ~= "" then
                        assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$", v)
                        string_times = string_times + 1
                    end
                end
                for _, f in ipairs({ "rate", "cost", "settleRate", "settlePay", "aiAgentRate",
                                     "aiAgentFee", "aiAgentQuoteRate", "aiAgentQuoteFee" }) do
                    assert.matches("^%d+%.%d+$", rec[f])
                end
            end
            assert.is_true(text_nums > 0 and json_nums > 0, text_nums .. "/" .. json_nums)
            assert.is_true(string_times > 0 and ms_times > 0, string_times .. "/" .. ms_times)
        end)

        it("mixes answered, not connected (intent 99999) and failed calls", function()
            local kinds = {}
            for _, r in pairs(s.records) do
                local rec = r.rec
                local tc, sip, bill = num(rec.terminationCode), num(rec.sipCode), num(rec.billPeriod)
                local kind
                if rec.intent == "99999" then
                    kind = "not_connected"
                    assert.is_true(sip == 480 or sip == 486, "sipCode " .. sip)
                    assert.are.equal(0, bill)
                    assert.are.equal("", rec.answerTime)
                elseif tc ~= 0 then
                    kind = "failed"
                    assert.are.equal("99998", rec.intent)
                    assert.is_true(sip == 503 or sip == 404, "sipCode " .. sip)
                    assert.are.equal(0, bill)
                else
                    kind = "answered"
                    assert.are.equal(200, sip)
                    assert.is_true(bill > 0)
                    assert.matches("^1%d%d%d%d$", rec.intent)
                    assert.are_not.equal("", rec.answerTime)
                    assert.are_not.equal("0.0000", rec.cost)
                end
                kinds[kind] = (kinds[kind] or 0) + 1
            end
            -- deterministic from the number's index: 6, 2 and 2 in every ten
            assert.are.same({ answered = 27, not_connected = 9, failed = 9 }, kinds)
        end)
    end)

    it("re-sends a batch the receiver answered 500, the same body again", function()
        post(rx:url("/arm"), '{"fail":1}')
        assert.are.equal(200, (sb:push_config({ retry_s = 0.2, duplicates = false, delay_ms = 0 })))
        create(5)
        local p = settled(5)
        local s = seen()
        assert.are.equal(1, s.failed)
        assert.are.equal(1, s.refetched)         -- the md5 of the refused body came back
        assert.are.equal(5, s.unique)
        assert.are.same({ 1, 1, 0, 1, 2 },
                        { p.batches, p.delivered_batches, p.failed_batches, p.retries, p.posts })
        assert.matches("HTTP 500", p.last_error)
    end)

    it("gives a batch up after the configured retries", function()
        post(rx:url("/arm"), '{"fail":10}')
        assert.are.equal(200, (sb:push_config({ retry_s = 0.1, retries = 2, duplicates = false,
                                                delay_ms = 0 })))
        create(3)
        local p = settled(3)
        assert.are.same({ 1, 0, 1, 2, 3 },
                        { p.batches, p.delivered_batches, p.failed_batches, p.retries, p.posts })
        assert.are.equal(3, seen().failed)
        assert.matches("attempt 3%): HTTP 500", p.last_error)
    end)

    it("retries when nothing listens at the push URL", function()
        local port = Nginx.free_ports(1)[1]
        assert.are.equal(200, (sb:push_config({ url = "http://localhost:" .. port .. "/push",
            retry_s = 0.1, retries = 1, duplicates = false, delay_ms = 0 })))
        create(2)
        local p = settled(2)
        assert.are.same({ 1, 0, 1, 1, 2 },
                        { p.batches, p.delivered_batches, p.failed_batches, p.retries, p.posts })
        assert.matches("connect to 127%.0%.0%.1:" .. port, p.last_error)
        assert.is_nil(seen().posts)
    end)

    it("sends only the configured shape when it is not mixed", function()
        assert.are.equal(200, (sb:push_config({ shape = "wrapped", batch = 4, duplicates = false,
                                                delay_ms = 0 })))
        create(10)
        settled(10)
        assert.are.same({ wrapped = 3 }, seen().shapes)
        sb:control("/_sandbox/reset", "{}")
        post(rx:url("/reset"), "")
        assert.are.equal(200, (sb:push_config({ shape = "array", batch = 4, delay_ms = 0 })))
        create(10)
        settled(10)
        local s = seen()
        assert.is_true(s.shapes.array >= 3)
        assert.is_nil(s.shapes.wrapped)
    end)

    it("refuses push URLs that would leave the machine, and bad settings", function()
        for _, url in ipairs({ "http://192.0.2.1/push", "http://example.com/push",
                               "https://127.0.0.1/push", "http://127.0.0.1@192.0.2.1/",
                               "http://127.0.0.1.nip.io/", "http://[::1]:80/" }) do
            local http, res = sb:push_config({ url = url })
            assert.are.equal(400, http, url)
            assert.matches("^url: ", res.error)
        end
        for _, bad in ipairs({ '{"batch":0}', '{"shape":"csv"}', '{"colour":1}', "[1]", "nope" }) do
            assert.are.equal(400, (sb:push_config(bad)), bad)
        end
        local _, c = sb:control("/_sandbox/push-config")
        assert.are.equal(push_url, c.url)          -- unchanged
        assert.are.equal(100, c.batch)
    end)

    it("refuses a non-loopback URL at start, from --push-url or the environment", function()
        local tmp = sh("mktemp -d /tmp/laaffic-spec42.XXXXXX"):match("^(%S+)")
        local out, rc = sh(q(SB.BIN) .. " start --dir " .. q(tmp .. "/a") ..
                           " --push-url http://192.0.2.1/push 2>&1")
        assert.are_not.equal(0, rc)
        assert.matches("never sends traffic off this machine", out)
        out, rc = sh("LAAFFIC_SANDBOX_PUSH_URL=https://localhost/ " .. q(SB.BIN) ..
                     " start --dir " .. q(tmp .. "/b") .. " 2>&1")
        assert.are_not.equal(0, rc)
        assert.matches("LAAFFIC_SANDBOX_PUSH_URL", out)
        assert.is_nil(read(tmp .. "/a/nginx.pid"))
        assert.is_nil(read(tmp .. "/b/nginx.pid"))
        sh("rm -rf " .. q(tmp))
    end)

    it("takes the push URL from LAAFFIC_SANDBOX_PUSH_URL", function()
        local other = Sandbox.start({ LAAFFIC_SANDBOX_PUSH_URL = push_url })
        local ok, err = pcall(function()
            local _, c = other:control("/_sandbox/push-config")
            assert.are.equal(push_url, c.url)
            other:push_config({ delay_ms = 0 })
            local res = other:request({ body = cjson.encode(task(3)) })
            assert.are.equal("0", res.json.status)
            wait_for("3 records from the second sandbox", 10, function()
                return (seen().unique or 0) >= 3
            end)
        end)
        other:stop()
        assert(ok, err)
    end)

    it("pushes nothing without a push URL", function()
        assert.are.equal(200, (sb:push_config({ url = "", delay_ms = 0 })))
        local _, c = sb:control("/_sandbox/push-config")
        assert.are.equal("", c.url)
        create(3)
        core.sleep(0.5)
        local p = sb:pushes()
        assert.are.same({ 0, 0, 0 }, { p.jobs, p.records, p.posts })
        assert.is_nil(seen().posts)
    end)

    it("reset clears the counters and stops a job that is still retrying", function()
        post(rx:url("/arm"), '{"fail":100}')
        assert.are.equal(200, (sb:push_config({ retry_s = 30, delay_ms = 0, duplicates = false })))
        create(2)
        wait_for("the first refused post", 5, function()
            return sb:pushes().posts >= 1
        end)
        assert.are.equal(1, sb:pushes().active)
        assert.are.equal(200, (sb:control("/_sandbox/reset", "{}")))
        local p = sb:pushes()
        assert.are.same({ 0, 0, 0, "" }, { p.records, p.posts, p.active, p.last_error })
        local _, c = sb:control("/_sandbox/push-config")
        assert.are.equal(1, c.retry_s)            -- back to the start's settings
        -- the retrying job ends at its next step without counting anything more
        core.sleep(0.3)
        assert.are.same({ 0, 0 }, { sb:pushes().posts, sb:pushes().active })
    end)

    it("pushes a 200,000-number task batch by batch #slow", function()
        post(rx:url("/arm"), '{"count_only":true}')
        assert.are.equal(200, (sb:push_config({ batch = 1000, delay_ms = 1500 })))
        local function hwm()
            local status = read("/proc/" .. sb.workers[1] .. "/status") or ""
            return tonumber(status:match("VmHWM:%s*(%d+) kB"))
        end
        local rows = {}
        for i = 1, 200000 do
            rows[i] = ('{"calleeNumber":"91%010d"}'):format(7000000000 + i)
        end
        local f = sb:file("big")
        SB.write(f, '{"appId":"2Xql9RBI","taskName":"spec42 200k ' .. os.time() ..
                    '","agentId":41,"numberInfoList":[' .. table.concat(rows, ",") .. "]}")
        rows = nil -- luacheck: ignore 311
        local res = sb:request({ body_file = f, curl = "--max-time 60" })
        assert.are.equal("0", res.json and res.json.status, res.body)
        local key_id = ("%d"):format(res.json.data)
        local before = hwm()                       -- the peak of receiving the task
        assert.are.equal(0, sb:pushes().active, "the push started before the peak was read")
        local p = settled(200000, 60)
        local s = seen()
        assert.are.equal(200000, p.records)
        assert.are.same({ [key_id] = 200000 }, s.tasks)
        assert.are.equal(200000, s.unique)
        assert.are.equal(p.sent, s.received)
        assert.are.equal(p.duplicates, s.dups)
        assert.is_true(p.duplicates > 10000 and p.duplicates < 30000, "duplicates " .. p.duplicates)
        assert.are.equal(0, p.failed_batches)
        -- some batches arrive after a later one (held back, then sent)
        local order, late = {}, 0
        for tag, arrival in pairs(s.tags) do
            order[tonumber(tag:match("/(%d+)$"))] = arrival
        end
        for n = 2, p.batches do
            if order[n] < order[n - 1] then late = late + 1 end
        end
        assert.is_true(late >= 5, late .. " batches out of order")
        -- the job keeps the numbers and a batch or two of records, not 200,000 records
        local after = hwm()
        assert.is_true(after - before < 64 * 1024, ("worker VmHWM %d -> %d kB"):format(before, after))
    end)
end)
