-- laaffic.error: the error object, its sentence, from_status.

local lerror = require "laaffic.error"
local status = require "laaffic.status"

local function raises(pattern, fn)
    local ok, e = pcall(fn)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.is_string(e)
    assert.matches(pattern, e)
    assert.matches("23%-error_spec%.lua:%d+: laaffic%.error%.", e)
    return e
end

describe("laaffic.error", function()
    it("an invalid-task error reads as a sentence with field, code and name", function()
        local msg = 'numberInfoList[3].calleeNumber: must be 6 to 18 digits ' ..
                    '(country code + number), got "12345"'
        local e = lerror.new{ kind = "invalid", field = "numberInfoList[3].calleeNumber",
                              code = -21, message = msg }
        assert.equal("invalid_data", e.name)        -- filled from laaffic.status
        assert.equal(msg, e.message)
        assert.equal('laaffic: invalid task: numberInfoList[3].calleeNumber: must be 6 to 18 ' ..
                     'digits (country code + number), got "12345" (status -21 invalid_data)',
                     tostring(e))
    end)

    it("puts the field in front of a message that does not name it", function()
        local e = lerror.new{ kind = "invalid", field = "taskName", code = -22,
                              message = "required" }
        assert.equal("laaffic: invalid task: taskName: required (status -22 invalid_parameter)",
                     tostring(e))
    end)

    it("a server refusal names status, name, the server's reason and HTTP status", function()
        local e = lerror.from_status("-41", "Task name already exists", 200)
        assert.equal("status", e.kind)
        assert.equal(-41, e.code)
        assert.equal("task_name_exists", e.name)
        assert.equal(status.codes[-41].message, e.message)
        assert.equal("Task name already exists", e.reason)
        assert.equal(200, e.http_status)
        local s = tostring(e)
        assert.matches("^laaffic: the server refused the task: the task name already exists", s)
        local tail = '(status -41 task_name_exists, reason "Task name already exists", HTTP 200)'
        assert.equal(tail, s:sub(-#tail))
        assert.is_nil(s:find("%.%s*%(")) -- no full stop left in the middle of the sentence
    end)

    it("does not repeat a reason that says what the message says", function()
        local e = lerror.new{ kind = "status", code = -24, reason = "The data does not exist",
                              http_status = 200 }
        assert.equal("laaffic: the server refused the task: the data does not exist " ..
                     "(status -24 data_not_found, HTTP 200)", tostring(e))
    end)

    it("from_status takes numbers and strings, -67 and -68 alike", function()
        assert.equal("intent_mismatch", lerror.from_status(-67).name)
        assert.equal("intent_mismatch", lerror.from_status("-68").name)
        assert.equal(-68, lerror.from_status("-68").code)
        assert.is_nil(lerror.from_status(-16).http_status)
        assert.equal("timestamp_expired", lerror.from_status(-16).name)
    end)

    it("from_status keeps an undocumented code, with the server's reason", function()
        local e = lerror.from_status("-99", "something new", 200)
        assert.equal("status", e.kind)
        assert.equal(-99, e.code)
        assert.equal("unknown", e.name)
        assert.equal("something new", e.message)
        assert.equal("laaffic: the server refused the task: something new " ..
                     "(status -99 unknown, HTTP 200)", tostring(e))
    end)

    it("quotes a server reason of any length in at most 200 bytes, keeping err.reason whole", function()
        local long = ("R"):rep(5000)
        for _, code in ipairs({ -22, -9999, "x" }) do
            local e = lerror.from_status(code, long, 200)
            local s = tostring(e)
            assert.is_nil(s:find(("R"):rep(201), 1, true), tostring(code))
            assert.is_truthy(s:find(("R"):rep(200) .. "...", 1, true), tostring(code))
            assert.is_true(#s < 500, tostring(code))
            assert.equal(long, e.reason)
        end
        -- also a reason given to new as the only text
        local e = lerror.new{ kind = "status", code = -9999, reason = long }
        assert.is_true(#tostring(e) < 500)
    end)

    it("from_status turns a non-integer status into a protocol error", function()
        local e = lerror.from_status("oops", nil, 502)
        assert.equal("protocol", e.kind)
        assert.is_nil(e.code)
        assert.matches("^laaffic: the server's answer could not be understood: .*\"oops\"", tostring(e))
        assert.matches("(HTTP 502)", tostring(e), 1, true)
    end)

    it("every kind reads as a sentence starting with laaffic:", function()
        local want = { "invalid", "status", "transport", "ambiguous", "already_exists",
                       "protocol", "io", "internal" }
        local n = 0
        for _ in pairs(lerror.kinds) do
            n = n + 1
        end
        assert.equal(#want, n)
        local heads = {}
        for _, kind in ipairs(want) do
            assert.equal(kind, lerror.kinds[kind])
            local s = tostring(lerror.new{ kind = kind, message = "Something happened." })
            assert.matches("^laaffic: [^:]+: something happened$", s)
            local head = s:match("^laaffic: ([^:]+):")
            assert.is_nil(heads[head], "two kinds share a head: " .. head)
            heads[head] = true
        end
    end)

    it("keeps acronyms when it lowercases the first word", function()
        local e = lerror.new{ kind = "status", code = -60 }
        assert.matches(": the AI speech template does not exist ", tostring(e), 1, true)
        local e2 = lerror.new{ kind = "transport", message = "TLS handshake failed" }
        assert.equal("laaffic: the request failed: TLS handshake failed", tostring(e2))
    end)

    it("is() tells laaffic errors from anything else", function()
        assert.is_true(lerror.is(lerror.new{ kind = "transport", message = "timeout" }))
        assert.is_true(lerror.is(lerror.from_status(-1)))
        assert.is_false(lerror.is({ kind = "transport", message = "timeout" }))
        assert.is_false(lerror.is("laaffic: invalid task"))
        assert.is_false(lerror.is(nil))
    end)

    it("accepts only the documented fields, so nothing else (headers, Sign) rides along", function()
        raises("unknown field 'headers'", function()
            local e = lerror.new{ kind = "transport", message = "x",
                                  headers = { Sign = "05d7a50893e22a5c4bb3216ae3396c7c" } }
            return e
        end)
        raises("unknown field 'secret'", function()
            local e = lerror.new{ kind = "transport", secret = "7bz1lzh9" }
            return e
        end)
    end)

    it("raises on misuse, naming the field", function()
        raises("field 'kind'", function()
            local e = lerror.new{ message = "no kind" }
            return e
        end)
        raises("field 'kind'", function()
            local e = lerror.new{ kind = "oops" }
            return e
        end)
        raises("field 'code' must be an integer", function()
            local e = lerror.new{ kind = "status", code = "minus one" }
            return e
        end)
        raises("field 'http_status' must be a number", function()
            local e = lerror.new{ kind = "status", code = -1, http_status = "200" }
            return e
        end)
        raises("table expected", function()
            local e = lerror.new("invalid")
            return e
        end)
        raises("http_status must be a number", function()
            local e = lerror.from_status(-1, "x", "200")
            return e
        end)
    end)
end)
