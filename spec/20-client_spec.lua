-- laaffic (lua/laaffic/init.lua): the client, signing at call time, the secret kept out of
-- sight, appId from the client, encode errors as laaffic.error objects.

local laaffic = require "laaffic"
local core = require "laaffic.core"
local cjson = require "cjson"

local KEY, SECRET, APP = "bDqJFiq9", "7bz1lzh9", "2Xql9RBI"
local VECTOR_TS, VECTOR_SIGN = 1630468800, "05d7a50893e22a5c4bb3216ae3396c7c"

local function new_client(extra)
    local o = { api_key = KEY, api_secret = SECRET, app_id = APP }
    for k, v in pairs(extra or {}) do
        o[k] = v
    end
    local c = laaffic.new(o)
    return c
end

local function valid_task(extra)
    local t = {
        taskName = "spec task",
        agentId = 41,
        numberInfoList = { { calleeNumber = "463200000007" } },
    }
    for k, v in pairs(extra or {}) do
        t[k] = v
    end
    return t
end

-- Calls fn, which must raise; checks the message against pattern and that the error was
-- raised at the caller's level (error(msg, 2)): its position is in this spec file.
local function raises(pattern, fn)
    local ok, e = pcall(fn)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.is_string(e)
    assert.matches(pattern, e)
    assert.matches("20%-client_spec%.lua:%d+: ", e)
    return e
end

-- Every string reachable from v by walking tables (keys, values, metatables; raw, so no
-- __index/__pairs tricks hide anything) and the metatables of userdata.
local function reachable_strings(v, seen, out)
    seen, out = seen or {}, out or {}
    local t = type(v)
    if t == "string" then
        out[#out + 1] = v
    elseif t == "number" or t == "boolean" then
        out[#out + 1] = tostring(v)
    elseif (t == "table" or t == "userdata") and not seen[v] then
        seen[v] = true
        if t == "table" then
            for k, x in next, v do
                reachable_strings(k, seen, out)
                reachable_strings(x, seen, out)
            end
        end
        reachable_strings(debug.getmetatable(v), seen, out)
    end
    return out
end

local function contains(list, needle)
    for _, s in ipairs(list) do
        if s:find(needle, 1, true) then
            return true
        end
    end
    return false
end

describe("laaffic module", function()
    it("exposes the submodules and the core's functions", function()
        assert.equal(require "laaffic.recall", laaffic.recall)
        assert.equal(require "laaffic.status", laaffic.status)
        assert.equal(require "laaffic.error", laaffic.error)
        assert.equal(core, laaffic.core)
        assert.equal(core.encode, laaffic.encode)
        assert.equal(core.sign, laaffic.sign)
        assert.is_string(laaffic._VERSION)
        assert.equal(core._VERSION, laaffic._VERSION)
    end)
end)

describe("laaffic.new", function()
    it("returns a client with the documented defaults", function()
        local c = laaffic.new{ api_key = KEY, api_secret = SECRET }
        assert.equal("https://api.laaffic.com", c.base_url)
        assert.equal("/v3/voice/group/call/send/agent", c.path)
        assert.equal("https://api.laaffic.com/v3/voice/group/call/send/agent", c.url)
        assert.is_nil(c.app_id)
        assert.equal(os.time, c.clock)
    end)

    it("takes base_url and path (one vendor page has no /v3)", function()
        local c = new_client{ base_url = "http://127.0.0.1:8080/",
                              path = "/voice/group/call/send/agent" }
        assert.equal("http://127.0.0.1:8080/voice/group/call/send/agent", c.url)
        local req = assert(c:build_task(valid_task()))
        assert.equal("http://127.0.0.1:8080/voice/group/call/send/agent", req.url)
    end)

    it("raises naming a missing or malformed option", function()
        raises("option 'api_key'", function()
            local c = laaffic.new{ api_secret = SECRET }
            return c
        end)
        raises("option 'api_key'", function()
            local c = laaffic.new{ api_key = 12345678, api_secret = SECRET }
            return c
        end)
        raises("option 'api_secret'", function()
            local c = laaffic.new{ api_key = KEY }
            return c
        end)
        raises("option 'api_secret'", function()
            local c = laaffic.new{ api_key = KEY, api_secret = "" }
            return c
        end)
        raises("option 'app_id'", function()
            local c = laaffic.new{ api_key = KEY, api_secret = SECRET, app_id = 42 }
            return c
        end)
        raises("option 'base_url'", function()
            local c = laaffic.new{ api_key = KEY, api_secret = SECRET, base_url = "api.laaffic.com" }
            return c
        end)
        raises("option 'clock'", function()
            local c = laaffic.new{ api_key = KEY, api_secret = SECRET, clock = 1630468800 }
            return c
        end)
        -- NaN is outside every range (it compares false both ways)
        for _, opt in ipairs({ "retries", "backoff", "max_backoff" }) do
            raises("laaffic%.new: option '" .. opt .. "' must be", function()
                local c = laaffic.new{ api_key = KEY, api_secret = SECRET, [opt] = 0 / 0 }
                return c
            end)
        end
        -- slice_rows: rows per slice inside nginx; 0 or false: one call
        for _, v in ipairs({ -1, 1.5, 200001, 0 / 0, "10", true }) do
            raises("laaffic%.new: option 'slice_rows' must be an integer from 0 to 200000 or false", function()
                local c = laaffic.new{ api_key = KEY, api_secret = SECRET, slice_rows = v }
                return c
            end)
        end
        for _, v in ipairs({ 0, false, 1, 200000 }) do
            assert.is_table(laaffic.new{ api_key = KEY, api_secret = SECRET, slice_rows = v })
        end
        raises("unknown option 'api_secert'", function()
            local c = laaffic.new{ api_key = KEY, api_secret = SECRET, api_secert = SECRET }
            return c
        end)
        raises("options table expected", function()
            local c = laaffic.new(KEY)
            return c
        end)
    end)

    it("refuses api_key, user_agent with CR/LF/NUL, base_url with bad URL bytes, naming only the option", function()
        local function refused(opt, value, extra)
            local o = { api_key = KEY, api_secret = SECRET }
            for k, v in pairs(extra or {}) do o[k] = v end
            o[opt] = value
            local e = raises("laaffic%.new: option '" .. opt .. "'", function()
                local c = laaffic.new(o)
                return c
            end)
            assert.is_nil(e:find(value, 1, true), e)
            assert.is_nil(e:find("request", 1, true), e)
        end
        refused("api_key", "bDqJ\r\nX-Injected: 1")
        refused("api_key", "bDqJ\nFiq9")
        refused("api_key", "bDqJ\0Fiq9")
        refused("user_agent", "agent/1\r\nX-Injected: 1")
        refused("user_agent", "agent\0/1")
        refused("base_url", "https://api.laaffic .com")
        refused("base_url", "https://api.laaffic.com/a b")
        refused("base_url", "https://api.laaffic.com/\0")
        refused("base_url", "https://api.laaffic.com/\226\128\166")
        refused("base_url", 'https://api.laaffic.com/"x"')
        refused("path", "/v3/voice group")
        refused("path", "/v3/\r\n")
        refused("cafile", "/etc/ssl/ca.pem\0junk")
        refused("capath", "/etc/ssl/certs\0junk")
        refused("proxy", "http://proxy:3128/\0")
        refused("proxy", "http://proxy 3128")
        local e = raises("laaffic%.new: option 'resolve%[2%]'", function()
            local c = laaffic.new{ api_key = KEY, api_secret = SECRET,
                                   resolve = { "a:443:127.0.0.1", "b:443:127.0.0.1\r\nX" } }
            return c
        end)
        assert.is_nil(e:find("127", 1, true))
        -- what stays valid
        local c = laaffic.new{ api_key = KEY, api_secret = SECRET, user_agent = "my app/1.0 (x; y)",
                               base_url = "https://user@api.laaffic.com:8443/~a/b-c_d.e;f=g?h=i&j=%20",
                               path = "/v3/voice/group/call/send/agent" }
        assert.equal("https://user@api.laaffic.com:8443/~a/b-c_d.e;f=g?h=i&j=%20", c.base_url)
        -- a secret may hold any byte: it is only signed, never sent
        assert.is_table(laaffic.new{ api_key = KEY, api_secret = "a\r\n\0b" })
    end)

    it("does not put the secret value in a misuse message", function()
        local e = raises("option 'api_key'", function()
            local c = laaffic.new{ api_key = {}, api_secret = SECRET }
            return c
        end)
        assert.is_nil(e:find(SECRET, 1, true))
    end)
end)

describe("client:headers", function()
    it("gives the vendor's published signature for the published vector", function()
        local h = assert(new_client():headers(VECTOR_TS))
        assert.equal(VECTOR_SIGN, h.Sign)
        assert.equal("1630468800", h.Timestamp)
        assert.equal(KEY, h["Api-Key"])
        assert.equal("application/json;charset=UTF-8", h["Content-Type"])
        local n = 0
        for _ in pairs(h) do
            n = n + 1
        end
        assert.equal(4, n)
    end)

    it("accepts the timestamp as a string of digits", function()
        local h = assert(new_client():headers("1630468800"))
        assert.equal(VECTOR_SIGN, h.Sign)
        assert.equal("1630468800", h.Timestamp)
    end)

    it("drops a fraction (ngx.now()) and signs the header value it sends", function()
        local h = assert(new_client():headers(1630468800.75))
        assert.equal("1630468800", h.Timestamp)
        assert.equal(VECTOR_SIGN, h.Sign)
    end)

    it("uses the client's clock when no timestamp is given", function()
        local c = new_client{ clock = function() return VECTOR_TS end }
        local h = assert(c:headers())
        assert.equal(VECTOR_SIGN, h.Sign)
    end)

    it("hides Sign from tostring", function()
        local h = assert(new_client():headers(VECTOR_TS))
        local s = tostring(h)
        assert.is_nil(s:find(VECTOR_SIGN, 1, true))
        assert.is_nil(s:find(SECRET, 1, true))
        assert.matches("Sign=<redacted>", s, 1, true)
    end)

    it("raises on a malformed timestamp or a dot call", function()
        local c = new_client()
        raises("timestamp", function()
            local h = c:headers(-1)
            return h
        end)
        raises("timestamp", function()
            local h = c:headers("16304688OO")
            return h
        end)
        raises("client:headers", function()
            local h = c.headers(VECTOR_TS)
            return h
        end)
    end)
end)

describe("client:build_task", function()
    it("builds the request of vendor seed 000 byte-for-byte in content", function()
        local seed_headers = {
            ["Content-Type"] = "application/json;charset=UTF-8",
            ["Sign"] = "05d7a50893e22a5c4bb3216ae3396c7c",
            ["Timestamp"] = "1630468800",
            ["Api-Key"] = "bDqJFiq9",
        }
        local seed_body = [[{
            "appId": "2Xql9RBI", "taskName": "I want to test Agent API-16",
            "displayNum": "1008122211", "maxCalls": 300, "maxRingingTime": 60,
            "agentId": 41, "enableRecording": 1, "calloutRate": 1,
            "allowSendTime": [ { "strTime": "18:28", "endTime": "19:28" } ],
            "numberInfoList": [ { "calleeNumber": "463200000007" } ],
            "recallFlow": { "recallType": 3, "recallInterval": 1, "recallNum": 5,
                "nodeList": [ {"agentId": "41"}, {"agentId": "41"}, {"agentId": "41"},
                              {"agentId": "41"}, {"agentId": "41"} ],
                "recallIntent": [ "99998", "99999" ] } }]]
        local c = new_client{ clock = function() return VECTOR_TS end }
        local req, err = c:build_task{
            taskName = "I want to test Agent API-16",
            displayNum = "1008122211",
            maxCalls = 300,
            maxRingingTime = 60,
            agentId = 41,
            enableRecording = 1,
            calloutRate = 1,
            allowSendTime = { { strTime = "18:28", endTime = "19:28" } },
            numberInfoList = { { calleeNumber = "463200000007" } },
            recallFlow = laaffic.recall.by_intent{ intents = { 99998, laaffic.recall.NOT_CONNECTED },
                                                   interval = 1, rounds = 5, agent_id = 41 },
        }
        assert.is_nil(err)
        assert.equal("POST", req.method)
        assert.equal("https://api.laaffic.com/v3/voice/group/call/send/agent", req.url)
        local h = {}
        for k, v in pairs(req.headers) do
            h[k] = v
        end
        assert.same(seed_headers, h)
        assert.same(cjson.decode(seed_body), cjson.decode(tostring(req.body)))
        assert.equal(1, req.info.rows)
        assert.equal(#tostring(req.body), req.info.bytes)
    end)

    it("signs at call time, not at new() time, with md5(key .. secret .. ts)", function()
        local times, calls = { 1700000000, 1700000007 }, 0
        local c = new_client{ clock = function()
            calls = calls + 1
            return times[calls]
        end }
        assert.equal(0, calls)
        local r1 = assert(c:build_task(valid_task()))
        local r2 = assert(c:build_task(valid_task()))
        assert.equal(2, calls)
        assert.equal("1700000000", r1.headers.Timestamp)
        assert.equal("1700000007", r2.headers.Timestamp)
        assert.not_equal(r1.headers.Sign, r2.headers.Sign)
        assert.equal(core.sign(KEY, SECRET, 1700000000), r1.headers.Sign)
        assert.equal(core.sign(KEY, SECRET, 1700000007), r2.headers.Sign)
        assert.matches("^%x+$", r1.headers.Sign)
        assert.equal(32, #r1.headers.Sign)
    end)

    it("fills appId from the client without touching the caller's task", function()
        local c = new_client()
        local rows = { { calleeNumber = "463200000007" }, { calleeNumber = "463200000008" } }
        local task = valid_task{ numberInfoList = rows }
        local before = {}
        for k, v in pairs(task) do
            before[k] = v
        end

        -- Watch what the core is given: a copy of the top level, sharing numberInfoList.
        local real, seen = core.encode_body, nil
        core.encode_body = function(t, opts)
            seen = t
            return real(t, opts)
        end
        local ok, req, err = pcall(c.build_task, c, task)
        core.encode_body = real
        assert.is_true(ok, req)
        assert.is_nil(err)

        assert.equal(APP, cjson.decode(tostring(req.body)).appId)
        assert.is_nil(task.appId)
        assert.same(before, task)
        for k, v in pairs(task) do
            assert.equal(before[k], v)       -- same values, not copies
        end
        assert.is_not_nil(seen)
        assert.is_false(rawequal(seen, task))
        assert.is_true(rawequal(rows, seen.numberInfoList))
    end)

    it("keeps the task's own appId and passes that task itself", function()
        local c = new_client()
        local task = valid_task{ appId = "OtherApp" }
        local real, seen = core.encode_body, nil
        core.encode_body = function(t, opts)
            seen = t
            return real(t, opts)
        end
        local ok, req = pcall(c.build_task, c, task)
        core.encode_body = real
        assert.is_true(ok, req)
        assert.equal("OtherApp", cjson.decode(tostring(req.body)).appId)
        assert.is_true(rawequal(task, seen))
    end)

    it("without app_id anywhere, reports appId as missing", function()
        local c = laaffic.new{ api_key = KEY, api_secret = SECRET }
        local req, err = c:build_task(valid_task())
        assert.is_nil(req)
        assert.equal("invalid", err.kind)
        assert.equal("appId", err.field)
        assert.equal(-22, err.code)
    end)

    it("returns a laaffic.error naming field, code and status name", function()
        local c = new_client()
        local req, err = c:build_task(valid_task{ numberInfoList = {
            { calleeNumber = "463200000007" },
            { calleeNumber = "463200000008" },
            { calleeNumber = "12345" },
        } })
        assert.is_nil(req)
        assert.is_true(laaffic.error.is(err))
        assert.equal("invalid", err.kind)
        assert.equal("numberInfoList[3].calleeNumber", err.field)
        assert.equal(-21, err.code)
        assert.equal("invalid_data", err.name)
        assert.matches("^numberInfoList%[3%]%.calleeNumber: ", err.message)
        local s = tostring(err)
        assert.matches("^laaffic: invalid task: numberInfoList%[3%]%.calleeNumber: ", s)
        assert.matches("(status -21 invalid_data)", s, 1, true)
    end)

    it("maps a missing required field to -22 invalid_parameter", function()
        local task = valid_task()
        task.taskName = nil
        local req, err = new_client():build_task(task)
        assert.is_nil(req)
        assert.equal("taskName", err.field)
        assert.equal(-22, err.code)
        assert.equal("invalid_parameter", err.name)
    end)

    it("does not read the clock when the task is invalid", function()
        local calls = 0
        local c = new_client{ clock = function()
            calls = calls + 1
            return VECTOR_TS
        end }
        local req = c:build_task(valid_task{ agentId = "41" })
        assert.is_nil(req)
        assert.equal(0, calls)
    end)

    it("passes opts through to the core (truncate, require_texts)", function()
        local c = new_client()
        local long = string.rep("x", 31)
        local req = assert(c:build_task(valid_task{ numberInfoList = {
            { calleeNumber = "463200000007", text1 = long } } }))
        assert.equal(1, req.info.truncated)
        assert.equal(string.rep("x", 30),
                     cjson.decode(tostring(req.body)).numberInfoList[1].text1)

        local req2, err = c:build_task(valid_task{ numberInfoList = {
            { calleeNumber = "463200000007", text1 = long } } }, { truncate = false })
        assert.is_nil(req2)
        assert.equal("numberInfoList[1].text1", err.field)

        local req3, err3 = c:build_task(valid_task(), { require_texts = { 1 } })
        assert.is_nil(req3)
        assert.equal("numberInfoList[1].text1", err3.field)
    end)

    it("raises on misuse", function()
        local c = new_client()
        raises("task must be a table", function()
            local r = c:build_task("{}")
            return r
        end)
        raises("opts must be a table", function()
            local r = c:build_task(valid_task(), true)
            return r
        end)
        raises("client:build_task", function()
            local r = c.build_task(valid_task())
            return r
        end)
        raises("the clock returned", function()
            local bad = new_client{ clock = function() return "now" end }
            local r = bad:build_task(valid_task())
            return r
        end)
    end)

    it("a malformed option names the public method and the option, not encode_body", function()
        local c = new_client{ transport = function() error("must not send") end }
        local function bad_opt(pattern, fn)
            local e = raises(pattern, fn)
            assert.is_nil(e:find("encode_body", 1, true), e)
            assert.is_nil(e:find("bad argument", 1, true), e)
        end
        bad_opt("laaffic: client:build_task: opts%.require_texts must be a list", function()
            return c:build_task(valid_task(), { require_texts = "x" })
        end)
        bad_opt("laaffic: client:build_task: opts%.max_rows must be an integer", function()
            return c:build_task(valid_task(), { max_rows = -1 })
        end)
        bad_opt("laaffic: client:create_task: opts%.truncate must be a boolean", function()
            return c:create_task(valid_task(), { truncate = "no" })
        end)
        bad_opt("laaffic: client:create_tasks: opts%.max_rows must be an integer", function()
            return c:create_tasks(valid_task(), { max_rows = "x" })
        end)
        bad_opt("laaffic: client:create_tasks: opts%.rejects must be a table", function()
            return c:create_tasks(valid_task(), { rejects = 5 })
        end)
    end)
end)

-- A client whose transport answers what answer(req) returns.
local function answering(answer, extra)
    local o = { transport = function(req) return answer(req) end }
    for k, v in pairs(extra or {}) do o[k] = v end
    return new_client(o)
end

local function api_answer(data_json)
    return function()
        return { status = 200, headers = {}, body = '{"status":"0","reason":"success","data":' ..
                 data_json .. "}" }
    end
end

describe("a custom transport's answer", function()
    it("that is not a response table with an integer status is a protocol error, not a crash", function()
        for _, bad in ipairs({ { status = "200", body = "{}" }, "HTTP/1.1 200 OK", 200, true,
                               { status = 200.5, body = "{}" }, { body = '{"status":"0","data":1}' },
                               { status = 200, body = { status = "0" } },
                               { status = 200, body = '{"status":"0","data":1}', headers = 5 } }) do
            local c = answering(function() return bad end)
            local ok, key_id, err = pcall(c.create_task, c, valid_task())
            assert.is_true(ok, tostring(key_id))
            assert.is_nil(key_id)
            assert.equal("protocol", err.kind, tostring(err))
            assert.matches("transport returned", err.message)
        end
    end)
end)

describe("the server's keyId", function()
    local function key_id_of(data_json)
        local c = answering(api_answer(data_json))
        return c:create_task(valid_task())
    end

    it("is a positive integer, sent as a number or a digit string", function()
        assert.equal(123123, (key_id_of("123123")))
        assert.equal(123123, (key_id_of('"123123"')))
        if math.type then assert.equal("integer", math.type((key_id_of("123123")))) end
        assert.equal(9007199254740991, (key_id_of("9007199254740991")))
    end)

    it("keeps every digit above 2^53, as a string", function()
        assert.equal("9007199254740993", (key_id_of("9007199254740993")))
        assert.equal("9007199254740993", (key_id_of('"9007199254740993"')))
        assert.equal("12345678901234567890", (key_id_of("12345678901234567890")))
        -- found at the top level only, the last one as cjson does
        local c = answering(function()
            return { status = 200, body = '{"x":{"data":5},"reason":"\\"data\\":7","status":"0",' ..
                                          '"data":1,"data":9007199254740995}' }
        end)
        assert.equal("9007199254740995", (c:create_task(valid_task())))
    end)

    it("anything else says the task was created and its keyId is unreadable, never re-send", function()
        for _, data in ipairs({ "true", "1.5", "-5", "0", '""', '"12a"', '"-3"', '"0"', "{}", "[1]",
                                "1e400", "null", '"123456789012345678901"' }) do
            local key_id, err = key_id_of(data)
            assert.is_nil(key_id, data)
            assert.equal("protocol", err.kind, data)
            assert.equal(0, err.code, data)
            local msg = tostring(err)
            assert.matches("created", msg)
            assert.matches("keyId", msg)
            assert.is_nil(msg:lower():find("re%-send"), msg)
        end
    end)
end)

describe("create_tasks' on_progress", function()
    it("that raises is reported, not ignored; the parts are still sent", function()
        local sent = 0
        local c = answering(function()
            sent = sent + 1
            return { status = 200, body = '{"status":"0","reason":"success","data":' .. sent .. "}" }
        end)
        local calls = 0
        local list = { { calleeNumber = "463200000007" }, { calleeNumber = "463200000008" },
                       { calleeNumber = "463200000009" } }
        local result, err = c:create_tasks(valid_task{ numberInfoList = list }, { max_rows = 1,
            on_progress = function() calls = calls + 1; error("progress bar broke") end })
        assert.equal(3, sent)
        assert.equal(3, result.created)
        assert.equal(1, calls) -- not called again after it raised
        assert.is_not_nil(err)
        assert.equal("internal", err.kind)
        assert.matches("on_progress raised", tostring(err))
        assert.matches("progress bar broke", tostring(err))
        assert.matches("progress bar broke", result.progress_error)
    end)
end)

describe("the secret", function()
    local c, req, err, bad_req
    before_each(function()
        c = new_client{ clock = function() return VECTOR_TS end }
        req = assert(c:build_task(valid_task()))
        bad_req, err = c:build_task(valid_task{ numberInfoList = { { calleeNumber = "x" } } })
    end)

    it("the walker used below does find a secret where there is one", function()
        local planted = setmetatable({}, { __index = { deep = { SECRET } } })
        assert.is_true(contains(reachable_strings(planted), SECRET))
    end)

    it("is not in tostring(client), which masks the key", function()
        local s = tostring(c)
        assert.equal("laaffic.client(app_id=2Xql9RBI, api_key=bDqJ\226\128\166)", s)
        assert.is_nil(s:find(SECRET, 1, true))
        assert.is_nil(s:find(KEY, 1, true))
    end)

    it("is not reachable from the client table or its metatable", function()
        local strings = reachable_strings(c)
        assert.is_true(contains(strings, APP))     -- the walk does see the client's fields
        assert.is_false(contains(strings, SECRET))
    end)

    it("is neither in the request nor in tostring(req), which hides the Sign", function()
        assert.is_false(contains(reachable_strings(req), SECRET))
        local s = tostring(req)
        assert.is_nil(s:find(SECRET, 1, true))
        assert.is_nil(s:find(req.headers.Sign, 1, true))
        assert.is_nil(s:find(VECTOR_SIGN, 1, true))
        assert.matches("Sign=<redacted>", s, 1, true)
        assert.matches("POST", s, 1, true)
        assert.matches(c.url, s, 1, true)
        assert.is_nil(tostring(req.body):find(SECRET, 1, true))
    end)

    it("is not in an encode error, nor is the Sign", function()
        assert.is_nil(bad_req)
        assert.is_true(laaffic.error.is(err))
        local s = tostring(err)
        assert.is_nil(s:find(SECRET, 1, true))
        assert.is_nil(s:find(VECTOR_SIGN, 1, true))
        assert.is_false(contains(reachable_strings(err), SECRET))
        assert.is_false(contains(reachable_strings(err), VECTOR_SIGN))
    end)
end)
