-- laaffic.push: the status-report push receiver.
--
-- 1. push.parse, under Lua 5.4 and LuaJIT: the three body shapes, typed fields, times,
--    malformed and hostile input (never a raise).
-- 2. push.handler in a real nginx (spec/nginx.lua, one worker) driven with the curl
--    command line: records arrive, are de-duplicated, bad tokens and addresses are
--    refused, a failing on_record gets a 500 and the re-send delivers what was missing,
--    a body nginx spooled to a temp file is read.
--
-- Expected Unix times are worked out by hand in the comments, not with the code under
-- test or os.time.
local cjson = require("cjson")
local push = require("laaffic.push")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")

local unpack = H.unpack

local function ok_parse(body, opts)
    local records, err = push.parse(body, opts)
    assert(records ~= nil, "parse failed: " .. tostring(err))
    assert.are.equal("table", type(records))
    return records
end

local function bad_parse(body, opts, pattern)
    local records, err = push.parse(body, opts)
    assert.is_nil(records)
    assert.are.equal("string", type(err))
    if pattern then
        assert.is_truthy(err:find(pattern, 1, true), ("error %q lacks %q"):format(err, pattern))
    end
    return err
end

local function is_int(v)
    if H.has_int then return math.type(v) == "integer" end
    return type(v) == "number" and v == math.floor(v)
end

describe("laaffic.push.parse", function()
    describe("body shapes", function()
        it("a bare JSON array", function()
            local r = ok_parse('[{"voiceId":"a1","type":1},{"voiceId":"a2","type":1}]')
            assert.are.equal(2, #r)
            assert.are.equal("a1", r[1].voiceId)
            assert.are.equal("a2", r[2].voiceId)
        end)

        it('the {"array":[...]} wrapper', function()
            local r = ok_parse(' {"array":[{"voiceId":"w1"},{"voiceId":"w2"},{"voiceId":"w3"}]}\n')
            assert.are.equal(3, #r)
            assert.are.equal("w3", r[3].voiceId)
        end)

        it("a single object", function()
            local r = ok_parse('{"voiceId":"s1","callee":"919777654321"}')
            assert.are.equal(1, #r)
            assert.are.equal("s1", r[1].voiceId)
            assert.are.equal("919777654321", r[1].callee)
        end)

        it("empty lists are zero records", function()
            assert.are.same({}, ok_parse("[]"))
            assert.are.same({}, ok_parse('{"array":[]}'))
        end)

        it("a UTF-8 BOM and surrounding whitespace are accepted", function()
            assert.are.equal(1, #ok_parse('\239\187\191 \r\n[{"voiceId":"b"}]\n'))
        end)

        it("keeps unknown fields as sent, null included", function()
            local r = ok_parse('[{"voiceId":"u","futureField":{"x":[1,2]},"other":null,"flag":true}]')[1]
            assert.are.same({ x = { 1, 2 } }, r.futureField)
            assert.are.equal(cjson.null, r.other)
            assert.are.equal(true, r.flag)
            assert.are.same({}, r.raw)
        end)

        it("rejects a wrapper whose array is not a list", function()
            bad_parse('{"array":null}', nil, "array: must be a list of records")
            bad_parse('{"array":"x"}', nil, "array: must be a list of records")
            bad_parse('{"array":{"voiceId":"x"}}', nil, "array: must be a list of records")
        end)

        it("rejects records that are not objects, with their index", function()
            bad_parse('[{"voiceId":"a"},5]', nil, "record 2: must be an object")
            bad_parse('[{"voiceId":"a"},{"voiceId":"b"},[1,2]]', nil, "record 3: must be an object")
            bad_parse('{"array":[null]}', nil, "record 1: must be an object")
        end)
    end)

    describe("voiceId", function()
        it("is required: a record without it fails the whole push", function()
            local err = bad_parse('[{"voiceId":"a"},{"voiceId":"b"},{"type":1}]', nil,
                                  "record 3: voiceId: missing")
            assert.are.equal("record 3: voiceId: missing", err)
            bad_parse('[{"voiceId":null}]', nil, "record 1: voiceId: missing")
            bad_parse("{}", nil, "record 1: voiceId: missing")
        end)

        it("opts.invalid keeps the good records and lists the ones that cannot be keyed", function()
            local invalid = {}
            local r = ok_parse('[{"voiceId":"m1"},{"x":1},{"voiceId":"m2"},5,{"voiceId":true,"cost":"1"},' ..
                               '{"voiceId":""}]', { invalid = invalid })
            assert.are.equal(2, #r)
            assert.are.equal("m1", r[1].voiceId)
            assert.are.equal("m2", r[2].voiceId)
            assert.are.equal(4, #invalid)
            assert.are.same({ index = 2, raw = '{"x":1}', err = "record 2: voiceId: missing" }, invalid[1])
            assert.are.same({ index = 4, raw = "5", err = "record 4: must be an object" }, invalid[2])
            assert.are.equal(5, invalid[3].index)
            assert.are.equal('{"voiceId":true,"cost":"1"}', invalid[3].raw) -- as sent, untyped
            assert.are.equal("record 5: voiceId: must be a string or number", invalid[3].err)
            assert.are.equal("record 6: voiceId: empty", invalid[4].err)
            -- every record bad: no records, all listed; appended to what the list held
            r = ok_parse('{"array":[{"type":1},null]}', { invalid = invalid })
            assert.are.same({}, r)
            assert.are.equal(6, #invalid)
            assert.are.same({ index = 2, raw = "null", err = "record 2: must be an object" }, invalid[6])
            -- also when a long numeric voiceId makes parse decode the body twice: listed once
            local inv2 = {}
            r = ok_parse('[{"voiceId":12345678901234567890},{"voiceId":null}]', { invalid = inv2 })
            assert.are.equal("12345678901234567890", r[1].voiceId)
            assert.are.equal(1, #inv2)
            assert.are.equal("record 2: voiceId: missing", inv2[1].err)
            -- raw is the record's bytes as sent: spacing, escapes, key order, every digit
            local inv3 = {}
            local rec3 = '{ "callee" : 919777654321012345678, "note":"a \\"]}[{\\" \\u00e9",\n "x":[1,{"y":[]}] }'
            r = ok_parse(' [ {"voiceId":"k1","z":[{},[]]} ,\r\n' .. rec3 .. ' , {"voiceId":"k2"} ]',
                         { invalid = inv3 })
            assert.are.equal(2, #r)
            assert.are.same({ index = 2, raw = rec3, err = "record 2: voiceId: missing" }, inv3[1])
            -- the wrapper: the last "array" key is the one decoded; a single object is itself
            local inv4 = {}
            r = ok_parse('{"array":[{"x":1}],"n":{"array":[5]},"array" : [{"voiceId":"w"},{"x":2}]}',
                         { invalid = inv4 })
            assert.are.equal("w", r[1].voiceId)
            assert.are.same({ { index = 2, raw = '{"x":2}', err = "record 2: voiceId: missing" } }, inv4)
            inv4 = {}
            assert.are.same({}, ok_parse('\239\187\191 {"voiceId":[1,2], "array":7}\n', { invalid = inv4 }))
            assert.are.equal('{"voiceId":[1,2], "array":7}', inv4[1].raw)
            -- a body that is not a push at all is still nil, err
            bad_parse('[{"voiceId":"a"}', { invalid = {} }, "invalid JSON")
            assert.has_error(function() push.parse("[]", { invalid = 5 }) end, "laaffic.push.parse: " ..
                             "option 'invalid' must be a table (the records that cannot be keyed are " ..
                             "appended), got number")
        end)

        it("opts.invalid: raw is each bad record's text as sent, for random bodies", function()
            local seed = 4242
            local function rand(n) -- Park-Miller: exact in a double, so LuaJIT draws the same
                seed = (seed * 16807) % 2147483647
                return seed % n + 1
            end
            local WS = { "", " ", "\n", "\t ", "\r\n  " }
            local function ws() return WS[rand(#WS)] end
            local STRINGS = { '"a"', '""', '"\\"]}"', '"x\\\\"', '"[{,:"', '"\\u00e9\\n"', '"voiceId"' }
            local value
            local function member(k, v) return ws() .. k .. ws() .. ":" .. ws() .. v .. ws() end
            value = function(depth)
                local k = rand(depth > 3 and 4 or 6)
                if k == 1 then return STRINGS[rand(#STRINGS)] end
                if k == 2 then return ({ "0", "-1.5e3", "12345678901234567890123", "true", "null" })[rand(5)] end
                if k == 3 then return "false" end
                if k == 4 then return "3" end
                local parts = {}
                for i = 1, rand(4) - 1 do
                    parts[i] = k == 5 and (ws() .. value(depth + 1) .. ws())
                               or member('"k' .. rand(9) .. '"', value(depth + 1))
                end
                return k == 5 and ("[" .. table.concat(parts, ",") .. "]") or ("{" .. table.concat(parts, ",") .. "}")
            end
            local checked = 0
            for round = 1, 300 do
                local texts, bad_texts, good = {}, {}, 0
                for i = 1, rand(6) do
                    local members = {}
                    for j = 1, rand(3) - 1 do members[j] = member('"f' .. j .. '"', value(1)) end
                    if rand(2) == 1 then
                        local id = member('"voiceId"', '"id' .. round .. "-" .. i .. '"')
                        table.insert(members, rand(#members + 1), id)
                        good = good + 1
                        texts[i] = "{" .. table.concat(members, ",") .. "}"
                    else -- keys are only "fN" and "kN" here: no voiceId
                        texts[i] = rand(5) == 1 and value(3) or ("{" .. table.concat(members, ",") .. "}")
                        bad_texts[#bad_texts + 1] = texts[i]
                    end
                end
                local list = "[" .. ws() .. table.concat(texts, ws() .. "," .. ws()) .. ws() .. "]"
                local body = rand(2) == 1 and list or
                             ('{"other":' .. value(2) .. ', "array"' .. ws() .. ":" .. list .. "}")
                local invalid = {}
                local r = push.parse(body, { invalid = invalid })
                assert(r, body)
                assert.are.equal(good, #r, body)
                assert.are.equal(#bad_texts, #invalid, body)
                checked = checked + #invalid
                for i, t in ipairs(bad_texts) do
                    assert.are.equal(t, invalid[i].raw, body)
                end
            end
            assert.is_true(checked > 300, checked)
        end)

        it("must be a string or number", function()
            assert.are.equal("record 3: voiceId: must be a string or number",
                             bad_parse('[{"voiceId":"a"},{"voiceId":"b"},{"voiceId":true}]'))
            bad_parse('[{"voiceId":{}}]', nil, "record 1: voiceId: must be a string or number")
            bad_parse('[{"voiceId":[1]}]', nil, "record 1: voiceId: must be a string or number")
            bad_parse('[{"voiceId":""}]', nil, "record 1: voiceId: empty")
            bad_parse('[{"voiceId":"' .. ("x"):rep(513) .. '"}]', nil, "record 1: voiceId: longer than 512")
        end)

        it("a number becomes the digits sent, even past 2^53", function()
            local r = ok_parse('[{"voiceId":1234},{"voiceId":12345678901234567890},{"voiceId" : -7}]')
            assert.are.equal("1234", r[1].voiceId)
            assert.are.equal("12345678901234567890", r[2].voiceId)
            assert.are.equal("-7", r[3].voiceId)
        end)

        it("the number quoting does not touch strings that mention voiceId", function()
            local r = ok_parse('[{"voiceId":"v","note":"\\"voiceId\\":123"}]')
            assert.are.equal('"voiceId":123', r[1].note)
            -- also when a long numeric voiceId makes parse quote the numbers in the text
            r = ok_parse('[{"voiceId":"a","note":"\\"voiceId\\":123, \\"callee\\": 5"},' ..
                         '{"voiceId":98765432109876543210,"callee":-5}]')
            assert.are.equal('"voiceId":123, "callee": 5', r[1].note)
            assert.are.equal("98765432109876543210", r[2].voiceId)
            assert.are.equal("-5", r[2].callee)
            -- and never makes a malformed number valid
            bad_parse('[{"voiceId":01}]', nil, "invalid JSON")
            bad_parse('[{"voiceId":1e}]', nil, "invalid JSON")
        end)
    end)

    describe("typed numbers", function()
        local NUMS = { "type", "billPeriod", "code", "ringDuration", "chargedDuration", "rate", "cost",
                       "settleRate", "settlePay", "aiAgentChargedDuration", "aiAgentBillPeriod",
                       "aiAgentRate", "aiAgentFee", "aiAgentQuoteRate", "aiAgentQuoteFee",
                       "terminationCode", "sipCode", "quoteExchange" }

        it("lists the documented numeric fields", function()
            local want = { unpack(NUMS) }
            table.sort(want)
            assert.are.same(want, push.NUMBER_FIELDS)
        end)

        it("reads numbers sent as numbers and as strings alike", function()
            local rec1, rec2 = { voiceId = "n1" }, { voiceId = "n2" }
            for i, name in ipairs(NUMS) do
                rec1[name] = i + 0.25
                rec2[name] = " " .. tostring(i + 0.25) .. " "
            end
            local r = ok_parse(cjson.encode({ rec1, rec2 }))
            for i, name in ipairs(NUMS) do
                assert.are.equal(i + 0.25, r[1][name], name)
                assert.are.equal(i + 0.25, r[2][name], name)
            end
        end)

        it("decimal strings give exactly tonumber's value", function()
            -- parse reads short decimals with its own digit loop on LuaJIT: it must agree
            -- with tonumber to the last bit
            local seed = 7
            local function rand(n)
                seed = (seed * 1103515245 + 12345) % 2147483648
                return seed % n
            end
            local texts, recs = {}, {}
            for i = 1, 20000 do
                local int = tostring(rand(100000))
                local k = rand(5)
                local s
                if k == 0 then
                    s = int
                elseif k == 1 then
                    s = int .. "." .. tostring(rand(1000000000)):sub(1, rand(10) + 1)
                elseif k == 2 then
                    s = "-" .. int .. "." .. ("0"):rep(rand(5)) .. tostring(rand(100000))
                elseif k == 3 then
                    s = "0." .. ("0"):rep(rand(8)) .. tostring(rand(10000000))
                else
                    s = tostring(rand(1000000000)) .. tostring(rand(1000000000)) .. "." .. tostring(rand(1000))
                end
                texts[i] = s
                recs[i] = '{"voiceId":"d' .. i .. '","cost":"' .. s .. '","rate":' .. s .. "}"
            end
            local r = ok_parse("[" .. table.concat(recs, ",") .. "]")
            for i, s in ipairs(texts) do
                if r[i].cost ~= tonumber(s) or r[i].rate ~= tonumber(s) then
                    error(("%s: got %.17g and %.17g, tonumber gives %.17g"):format(s, r[i].cost, r[i].rate,
                                                                                   tonumber(s)))
                end
            end
        end)

        it("count-like fields are integers, decimals stay decimals", function()
            local r = ok_parse('[{"voiceId":"i","type":"1","code":200,"sipCode":"486","terminationCode":0,' ..
                               '"ringDuration":"12","chargedDuration":60,"cost":"0.0125","rate":1.5e-2,' ..
                               '"quoteExchange":"7.1"}]')[1]
            assert.are.equal(1, r.type)
            assert.is_true(is_int(r.type))
            assert.are.equal(200, r.code)
            assert.is_true(is_int(r.code))
            assert.are.equal(486, r.sipCode)
            assert.are.equal(0, r.terminationCode)
            assert.are.equal(12, r.ringDuration)
            assert.is_true(is_int(r.ringDuration))
            assert.are.equal(60, r.chargedDuration)
            assert.are.equal(0.0125, r.cost)
            assert.are.equal(0.015, r.rate)
            assert.are.equal(7.1, r.quoteExchange)
        end)

        it("an unreadable value is nil and kept in raw, never an error", function()
            local r = ok_parse('[{"voiceId":"r","billPeriod":"60/60","cost":"abc","rate":true,' ..
                               '"code":{"x":1},"sipCode":"0x1F","type":"inf","settlePay":"nan",' ..
                               '"aiAgentFee":1e999,"settleRate":"1e999","ringDuration":""}]')[1]
            assert.is_nil(r.billPeriod)
            assert.are.equal("60/60", r.raw.billPeriod)
            assert.is_nil(r.cost)
            assert.are.equal("abc", r.raw.cost)
            assert.is_nil(r.rate)
            assert.are.equal(true, r.raw.rate)
            assert.is_nil(r.code)
            assert.are.same({ x = 1 }, r.raw.code)
            assert.is_nil(r.sipCode) -- hex is not a decimal number
            assert.are.equal("0x1F", r.raw.sipCode)
            assert.is_nil(r.type)
            assert.is_nil(r.settlePay)
            assert.is_nil(r.aiAgentFee)
            assert.is_nil(r.settleRate)
            assert.are.equal("1e999", r.raw.settleRate)
            -- empty is absent, not unreadable
            assert.is_nil(r.ringDuration)
            assert.is_nil(r.raw.ringDuration)
        end)

        it("null in a documented field is absent", function()
            local r = ok_parse('[{"voiceId":"z","cost":null,"callTime":null,"intent":null}]')[1]
            assert.is_nil(r.cost)
            assert.is_nil(r.callTime)
            assert.is_nil(r.callTime_unix)
            assert.is_nil(r.intent)
            assert.are.same({}, r.raw)
        end)

        it("string fields: numbers become their text, intent stays a string", function()
            local r = ok_parse('[{"voiceId":"s","intent":99999,"callee":919777654321012345,"displayNum":123,' ..
                               '"scriptId":42,"currency":"USD","terminationReason":["x"]}]')[1]
            assert.are.equal("99999", r.intent)
            assert.are.equal("919777654321012345", r.callee) -- past 2^53, digits kept
            assert.are.equal("123", r.displayNum)
            assert.are.equal("42", r.scriptId)
            assert.are.equal("USD", r.currency)
            assert.is_nil(r.terminationReason)
            assert.are.same({ "x" }, r.raw.terminationReason)
            local r2 = ok_parse('{"voiceId":"s2","intent":"A"}')[1]
            assert.are.equal("A", r2.intent)
        end)

        it("a pushed field named raw is kept as raw.raw", function()
            local r = ok_parse('{"voiceId":"x","raw":"platform value"}')[1]
            assert.are.equal("platform value", r.raw.raw)
        end)
    end)

    describe("times", function()
        -- 2024-01-01T00:00:00Z: 54 years after 1970 with 13 leap days (1972..2020):
        -- (54*365 + 13) * 86400 = 19723 * 86400 = 1704067200.
        -- 2024-03-15: + 31 (Jan) + 29 (Feb, leap) + 14 days = 74 days = 6393600 s.
        -- 12:34:56 = 43200 + 2040 + 56 = 45296 s.
        local T_2024_03_15_123456 = 1704067200 + 6393600 + 45296 -- 1710506096

        it('"YYYY-MM-DD HH:MM:SS" is read as UTC by default', function()
            local r = ok_parse('[{"voiceId":"t","callTime":"2024-03-15 12:34:56"}]')[1]
            assert.are.equal("2024-03-15 12:34:56", r.callTime) -- as sent
            assert.are.equal(1710506096, T_2024_03_15_123456)
            assert.are.equal(T_2024_03_15_123456, r.callTime_unix)
            assert.is_true(is_int(r.callTime_unix))
        end)

        it("opts.utc_offset sets the zone of wall-clock times; an explicit zone wins", function()
            local body = '[{"voiceId":"t","callTime":"2024-03-15 12:34:56",' ..
                         '"answerTime":"2024-03-15T12:34:56Z","hangupTime":"2024-03-15T12:34:56-05:00"}]'
            local r = ok_parse(body, { utc_offset = 8 * 3600 })[1]
            assert.are.equal(T_2024_03_15_123456 - 28800, r.callTime_unix)
            assert.are.equal(T_2024_03_15_123456, r.answerTime_unix)
            assert.are.equal(T_2024_03_15_123456 + 5 * 3600, r.hangupTime_unix)
        end)

        it("millisecond and second integers, as numbers or strings", function()
            local r = ok_parse('[{"voiceId":"t","submitTime":1710506096789,"callTime":"1710506096000",' ..
                               '"ringingTime":1710506096,"answerTime":"1710506096"}]')[1]
            assert.are.equal(1710506096789, r.submitTime) -- as sent
            assert.is_true(math.abs(r.submitTime_unix - 1710506096.789) < 1e-6)
            assert.are.equal("1710506096000", r.callTime)
            assert.are.equal(T_2024_03_15_123456, r.callTime_unix)
            assert.are.equal(T_2024_03_15_123456, r.ringingTime_unix)
            assert.are.equal(T_2024_03_15_123456, r.answerTime_unix)
        end)

        it("every documented time field gets its _unix twin", function()
            assert.are.same({ "submitTime", "callTime", "ringingTime", "answerTime", "hangupTime" },
                            push.TIME_FIELDS)
            local rec = { voiceId = "all" }
            for _, f in ipairs(push.TIME_FIELDS) do rec[f] = "1970-01-02 00:00:01" end
            local r = ok_parse(cjson.encode(rec))[1]
            for _, f in ipairs(push.TIME_FIELDS) do assert.are.equal(86401, r[f .. "_unix"], f) end
        end)

        it("leap days and impossible dates", function()
            -- 2000-01-01T00:00:00Z = 946684800 (10957 days); Feb 29 is day 59 after it.
            local r = ok_parse('[{"voiceId":"t","callTime":"2000-02-29 23:59:59",' ..
                               '"answerTime":"2023-02-29 00:00:00","hangupTime":"2024-13-01 00:00:00",' ..
                               '"ringingTime":"2024-01-01 24:00:00"}]')[1]
            assert.are.equal(946684800 + 59 * 86400 + 86399, r.callTime_unix)
            assert.is_nil(r.answerTime_unix)
            assert.are.equal("2023-02-29 00:00:00", r.answerTime)
            assert.is_nil(r.hangupTime_unix)
            assert.is_nil(r.ringingTime_unix)
        end)

        it("0, empty, negative and unreadable times have no Unix time", function()
            local r = ok_parse('[{"voiceId":"t","callTime":0,"answerTime":"","hangupTime":-5,' ..
                               '"ringingTime":"yesterday","submitTime":{"a":1}}]')[1]
            assert.is_nil(r.callTime_unix)
            assert.are.equal("", r.answerTime)
            assert.is_nil(r.answerTime_unix)
            assert.is_nil(r.hangupTime_unix)
            assert.is_nil(r.ringingTime_unix)
            assert.are.same({ a = 1 }, r.submitTime)
            assert.is_nil(r.submitTime_unix)
        end)
    end)

    describe("bad input", function()
        it("malformed JSON", function()
            bad_parse('[{"voiceId":"a"}', nil, "invalid JSON")
            bad_parse('[{"voiceId":"a",}]', nil, "invalid JSON")
            bad_parse("[{'voiceId':'a'}]", nil, "invalid JSON")
            bad_parse('[{"voiceId":"a"}] trailing', nil, "invalid JSON")
            bad_parse('[{"voiceId":NaN}]', nil, "invalid JSON")
            bad_parse("", nil, "empty body")
            bad_parse(" \n\t ", nil, "empty body")
            bad_parse("null", nil, "must be a JSON array or object")
            bad_parse("42", nil, "must be a JSON array or object")
            bad_parse('"x"', nil, "must be a JSON array or object")
        end)

        it("oversize bodies and too many records", function()
            local err = bad_parse((" "):rep(100) .. "[]", { max_bytes = 100 }, "body too large")
            assert.are.equal("body too large: 102 bytes (at most 100)", err)
            assert.are.same({}, ok_parse((" "):rep(98) .. "[]", { max_bytes = 100 }))
            -- the default: 8 MiB
            bad_parse("[" .. (" "):rep(8 * 1024 * 1024) .. "]", nil, "at most 8388608")
            bad_parse('[{"voiceId":"a"},{"voiceId":"b"}]', { max_records = 1 }, "too many records: 2 (at most 1)")
        end)

        it("deep nesting is refused, not a stack overflow", function()
            bad_parse(("["):rep(100000) .. ("]"):rep(100000), nil, "invalid JSON")
            bad_parse('[{"voiceId":"d","x":' .. ('{"a":'):rep(50) .. "1" .. ("}"):rep(50) .. "}]", nil,
                      "invalid JSON")
            -- a record with a modest nesting is fine
            ok_parse('[{"voiceId":"d","calledInfo":' .. ('{"a":'):rep(10) .. "1" .. ("}"):rep(10) .. "}]")
            bad_parse(('[{"voiceId":"d","x":' .. ('[' ):rep(5)) .. "1]]]]]}]", { max_depth = 4 }, "invalid JSON")
        end)

        it("garbage bytes and invalid UTF-8", function()
            bad_parse("\255\254\253\0\1", nil, "invalid JSON")
            bad_parse("\0", nil)
            -- invalid UTF-8 inside strings is passed through as bytes
            local r = ok_parse('[{"voiceId":"\255\254","callee":"\192\128"}]')
            assert.are.equal("\255\254", r[1].voiceId)
        end)

        it("a body that is not a string is an error, not a raise", function()
            for _, v in ipairs({ 5, true, {}, function() end }) do
                local records, err = push.parse(v)
                assert.is_nil(records)
                assert.is_truthy(err:find("body must be a string", 1, true))
            end
            local records, err = push.parse(nil)
            assert.is_nil(records)
            assert.are.equal("body must be a string, got nil", err)
        end)

        it("misuse of opts raises at the caller", function()
            assert.has_error(function() push.parse("[]", 5) end,
                             "laaffic.push.parse: options table expected, got number")
            assert.has_error(function() push.parse("[]", { max_byte = 1 }) end,
                             "laaffic.push.parse: unknown option 'max_byte'")
            assert.has_error(function() push.parse("[]", { max_bytes = -1 }) end,
                             "laaffic.push.parse: option 'max_bytes' must be a positive number")
            assert.has_error(function() push.parse("[]", { utc_offset = "8" }) end)
        end)

        it("never raises on adversarial strings", function()
            local cases = {
                "", " ", "null", "true", "false", "0", "-1", "1e999", "-1e999", "[]", "{}", "[null]", "[[]]",
                "[{}]", "[[{}]]", '{"array":null}', '{"array":"x"}', '{"array":[null]}', '{"array":[[]]}',
                '{"array":{}}', '{"array":[{}]}', '{"array":[{"voiceId":"a"}],"voiceId":"b"}',
                '[{"voiceId":null}]', '[{"voiceId":{}}]', '[{"voiceId":[]}]', '[{"voiceId":""}]',
                '[{"voiceId":NaN}]', '[{"voiceId":Infinity}]', '[{"voiceId":1e999}]', '[{"voiceId":-0}]',
                '[{"voiceId":0x10}]', '[{"voiceId":1.5}]', '[{"voiceId":1e300}]', '[{"voiceId":-1e-300}]',
                '[{"voiceId":"x","cost":1e999}]', '[{"voiceId":"x","cost":-0.0}]',
                '[{"voiceId":"x","callTime":"9999-99-99 99:99:99"}]', '[{"voiceId":"x","callTime":-1}]',
                '[{"voiceId":"x","callTime":1e308}]', '[{"voiceId":"x","callTime":"2024-03-15 12:34:56+99:99"}]',
                '[{"voiceId":"x","callTime":"0000-01-01 00:00:00"}]', '[{"voiceId":"x","callTime":"' ..
                    ("9"):rep(400) .. '"}]', '[{"voiceId":"x","cost":"' .. ("1"):rep(400) .. '"}]',
                '[{"voiceId":"x","callTime":{"a":1}}]', '[{"voiceId":"x","submitTime":"2024-02-30 00:00:00"}]',
                '[{"voiceId":"' .. ("a"):rep(600) .. '"}]', "\255\254\253", '["\255"]', '[{"voiceId":"\255\254"}]',
                "\0", "[\0]", '[1,2,3', '"\\ud800"', '["\\ud800"]', '[{"voiceId":"\\u0000"}]',
                ("["):rep(1000), ("{"):rep(1000), ('{"a":'):rep(1000), ("[1,"):rep(1000),
                (" "):rep(100000), ("\n"):rep(1000) .. "[]", '[{"voiceId":"x","raw":null}]',
                '[{"voiceId":"x","voiceId":"y"}]', '{"voiceId":"x","array":[1]}', '{"array":[1],"array":[2]}',
                '[{"voiceId" :  12  , "callee":  -3.5e2 ,"displayNum":0}]', '[{"voiceId":"1",' ..
                    '"type":"--1","code":"1-","rate":"1e+","cost":"+.5","sipCode":" 2 0 0 "}]',
            }
            -- a deterministic fuzz: strings from a JSON-ish alphabet and mutations of a good body
            local alphabet = { "[", "]", "{", "}", ",", ":", '"', "voiceId", "array", "1", "-", "e", ".",
                               "null", "true", " ", "\\", "\255", "\0", "callTime", "2024-03-15 12:34:56",
                               "cost", '"abc"' }
            local seed = 12345
            local function rand(n)
                seed = (seed * 1103515245 + 12345) % 2147483648
                return seed % n + 1
            end
            for _ = 1, 1500 do
                local parts = {}
                for j = 1, rand(30) do parts[j] = alphabet[rand(#alphabet)] end
                cases[#cases + 1] = table.concat(parts)
            end
            local good = '[{"voiceId":"g1","type":"1","cost":"0.5","callTime":"2024-03-15 12:34:56"},' ..
                         '{"voiceId":2,"intent":99999,"answerTime":1710506096789}]'
            for _ = 1, 1500 do
                local pos = rand(#good)
                local s = good:sub(1, pos - 1) .. alphabet[rand(#alphabet)] .. good:sub(pos + rand(3))
                cases[#cases + 1] = s
            end
            for i, s in ipairs(cases) do
                local invalid = {}
                assert(pcall(push.parse, s, { invalid = invalid }), ("case %d raised with opts.invalid"):format(i))
                for _, bad in ipairs(invalid) do
                    assert(type(bad.raw) == "string" and type(bad.err) == "string", ("case %d: invalid"):format(i))
                    -- the bytes as sent, found by parse's scanner
                    assert(s:find(bad.raw, 1, true), ("case %d: raw %q not in the body"):format(i, bad.raw))
                end
                local ok, records, err = pcall(push.parse, s)
                assert(ok, ("case %d raised: %s"):format(i, tostring(records)))
                if records == nil then
                    assert(type(err) == "string" and #err > 0, ("case %d: nil without a message"):format(i))
                else
                    assert(type(records) == "table", ("case %d: %s"):format(i, type(records)))
                    for _, rec in ipairs(records) do
                        assert(type(rec.voiceId) == "string" and #rec.voiceId > 0, ("case %d: voiceId"):format(i))
                        assert(type(rec.raw) == "table", ("case %d: raw"):format(i))
                    end
                end
            end
        end)
    end)

    describe("the handler's rate-limited log", function()
        it("writes a kind once per interval, then says how many it left out", function()
            local lines, clock = {}, 1000.25
            local fake = { ERR = 3, now = function() return clock end,
                           log = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end }
            local warn = push._rate_limited_log(60)
            warn(fake, fake.ERR, "413", "answered ", 413)
            for _ = 1, 5 do
                clock = clock + 10.6
                warn(fake, fake.ERR, "413", "answered ", 413)
            end
            warn(fake, fake.ERR, "503", "answered 503") -- another kind is not held back
            clock = clock + 10.6 -- 63.6 s after the first
            warn(fake, fake.ERR, "413", "answered ", 413)
            assert.are.same({ "laaffic.push: answered 413", "laaffic.push: answered 503",
                              "laaffic.push: answered 413 (5 more like this in the last 63 s)" }, lines)
        end)
    end)

    describe("handler options", function()
        it("misuse raises when the handler is built", function()
            local f = function() end
            assert.has_error(function() push.handler() end, "laaffic.push.handler: options table expected, got nil")
            assert.has_error(function() push.handler{ token = "t" } end,
                             "laaffic.push.handler: option 'on_record' must be a function, got nil")
            assert.has_error(function() push.handler{ on_record = f } end)
            assert.has_error(function() push.handler{ on_record = f, token = "" } end)
            assert.has_error(function() push.handler{ on_record = f, token = "a/b" } end)
            -- no IP allow-list of its own: nginx's allow/deny guard the location
            for _, o in ipairs({ { on_record = f, allow = { "10.0.0.0/8" } },
                                 { on_record = f, token = "t", allow = {} } }) do
                local ok, e = pcall(function() local h = push.handler(o); return h end)
                assert.is_false(ok)
                assert.matches("^spec/50%-push_spec%.lua:%d+: laaffic%.push%.handler: option 'allow'", e)
                assert.is_truthy(e:find("allow 203.0.113.0/24; deny all;", 1, true), e)
            end
            assert.has_error(function() push.handler{ on_record = f, token = "t", bogus = 1 } end,
                             "laaffic.push.handler: unknown option 'bogus'")
            assert.has_error(function() push.handler{ on_record = f, token = "t", window = -1 } end)
            assert.has_error(function() push.handler{ on_record = f, token = "t", window = 0 } end,
                             "laaffic.push.handler: option 'window' must be a number of seconds > 0")
            assert.has_error(function() push.handler{ on_record = f, token = "t", claim_ttl = 0 } end)
            assert.is_function(push.handler{ on_record = f, token = "t", busy_wait = 0 })
            assert.is_function(push.handler{ on_record = f, open = true })
            assert.is_function(push.handler{ on_record = f, token = { "old", "new" } })
            assert.is_function(push.handler{ on_record = f, on_invalid = f, open = true })
            assert.has_error(function() push.handler{ on_record = f, on_invalid = 5, open = true } end,
                             "laaffic.push.handler: option 'on_invalid' must be a function, got number")
        end)
    end)
end)

---------------------------------------------------------------------------------------
-- The handler in a real nginx
---------------------------------------------------------------------------------------

local S = dofile(H.root .. "/spec/shell.lua")
local q, sh, read, write = S.q, S.sh_all, S.read, S.write

local TOKEN = "tok-5ecret_123"

local NGINX_HTTP = [[
    lua_shared_dict push_dedup 4m;
    lua_shared_dict push_seen 4m;
    lua_shared_dict push_tiny 12k;
    init_by_lua_block {
        local push = require("laaffic.push")
        local cjson = require("cjson.safe")
        local seen = ngx.shared.push_seen
        local function on_record(rec)
            if seen:get("fail:" .. rec.voiceId) then
                error("simulated failure for " .. rec.voiceId)
            end
            if rec.voiceId:sub(1, 4) == "slow" then ngx.sleep(0.3) end
            seen:incr("calls:" .. rec.voiceId, 1, 0)
            local n = seen:incr("n", 1, 0)
            seen:set("order:" .. n, cjson.encode({ voiceId = rec.voiceId, type = rec.type, cost = rec.cost,
                                                   callTime_unix = rec.callTime_unix, intent = rec.intent }))
        end
        local h = {
            main = push.handler{ token = "]] .. TOKEN .. [[", dict = "push_dedup", window = 600,
                                 on_record = on_record },
            -- guarded by nginx's allow/deny in their locations (below)
            allow = push.handler{ open = true, dict = "push_dedup", key_prefix = "a:",
                                  on_record = on_record },
            deny = push.handler{ token = "]] .. TOKEN .. [[", on_record = on_record },
            small = push.handler{ token = "]] .. TOKEN .. [[", max_bytes = 1000, on_record = on_record },
            nodedup = push.handler{ token = "]] .. TOKEN .. [[", on_record = on_record },
            busy = push.handler{ token = "]] .. TOKEN .. [[", dict = "push_dedup", key_prefix = "b:",
                                 busy_wait = 0.05, on_record = on_record },
            -- on_invalid keeps what it gets; it fails while push_seen holds "fail_invalid"
            inv = push.handler{ token = "]] .. TOKEN .. [[", dict = "push_dedup", key_prefix = "i:",
                                on_record = on_record, on_invalid = function(raw, err)
                                    if seen:get("fail_invalid") then return nil, "invalid store down" end
                                    local n = seen:incr("invalid_n", 1, 0)
                                    seen:set("invalid:" .. n, cjson.encode({ raw = raw, err = err }))
                                    return true
                                end },
            -- a de-duplication dict far too small for the voiceIds it is given
            tiny = push.handler{ token = "]] .. TOKEN .. [[", dict = "push_tiny", window = 600,
                                 on_record = on_record },
        }
        -- runs handler name and keeps its info table for the spec
        h.run = function(name)
            local _, info = h[name]()
            seen:set("last_info", cjson.encode(info))
        end
        package.loaded["spec50.handlers"] = h
    }
    server {
        listen 127.0.0.1:$PORT;
        client_max_body_size 16m;
        location /push/ {
            client_body_buffer_size 1k;
            content_by_lua_block {
                local _, info = require("spec50.handlers").main()
                ngx.shared.push_seen:set("last_from_file", info.from_file and 1 or 0)
            }
        }
        location /allow/ {
            allow 127.0.0.2; allow ::1; deny all;
            content_by_lua_block { require("spec50.handlers").run("allow") }
        }
        location /deny/ {
            deny 127.0.0.1;
            content_by_lua_block { require("spec50.handlers").run("deny") }
        }
        location /nodedup/ { content_by_lua_block { require("spec50.handlers").nodedup() } }
        location /busy/ { content_by_lua_block { require("spec50.handlers").run("busy") } }
        location /inv/ { content_by_lua_block { require("spec50.handlers").run("inv") } }
        location /tiny/ { content_by_lua_block { require("spec50.handlers").run("tiny") } }
        location /small/ { content_by_lua_block { require("spec50.handlers").run("small") } }
        location = /seen {
            content_by_lua_block {
                local cjson = require("cjson.safe")
                local seen = ngx.shared.push_seen
                local out = { n = seen:get("n") or 0, calls = {}, records = {},
                              last_from_file = seen:get("last_from_file") }
                for _, k in ipairs(seen:get_keys(0)) do
                    local id = k:match("^calls:(.*)$")
                    if id then out.calls[id] = seen:get(k) end
                end
                for i = 1, out.n do out.records[i] = cjson.decode(seen:get("order:" .. i)) end
                out.last_info = cjson.decode(seen:get("last_info") or "null")
                out.invalid = {}
                for i = 1, seen:get("invalid_n") or 0 do
                    out.invalid[i] = cjson.decode(seen:get("invalid:" .. i))
                end
                ngx.say(cjson.encode(out))
            }
        }
        location = /control {
            content_by_lua_block {
                local args = ngx.req.get_uri_args()
                local seen = ngx.shared.push_seen
                if args.fail then seen:set("fail:" .. args.fail, true) end
                if args.fix then seen:delete("fail:" .. args.fix) end
                if args.fail_invalid then seen:set("fail_invalid", true) end
                if args.fix_invalid then seen:delete("fail_invalid") end
                ngx.say("ok")
            }
        }
    }
]]

describe("laaffic.push.handler in nginx", function()
    local Nginx = dofile(H.root .. "/spec/nginx.lua")
    local srv, tmp
    local nfile = 0

    setup(function()
        srv = Nginx.start{ http = NGINX_HTTP, workers = 1 }
        tmp = srv.dir .. "/spec-client"
        assert(select(2, sh("mkdir -p " .. q(tmp))) == 0)
    end)

    teardown(function()
        if srv then assert.is_true(srv:stop()) end
    end)

    -- POSTs body (through a file) with curl; returns http code, body, curl rc.
    local function request(path, body, o)
        o = o or {}
        nfile = nfile + 1
        local out = tmp .. "/out" .. nfile
        local args = { "curl -s -o " .. q(out) .. " -w '%{http_code}' --max-time 20" }
        if body then
            local bf = tmp .. "/body" .. nfile
            write(bf, body)
            args[#args + 1] = "--data-binary @" .. q(bf) ..
                              " -H 'Content-Type: application/json;charset=UTF-8'"
        end
        if o.method then args[#args + 1] = "-X " .. o.method end
        for _, h in ipairs(o.headers or {}) do args[#args + 1] = "-H " .. q(h) end
        if o.interface then args[#args + 1] = "--interface " .. q(o.interface) end
        args[#args + 1] = q(srv:url(path))
        local code, rc = sh(table.concat(args, " "))
        return tonumber(code), read(out) or "", rc
    end

    local function post(path, body, o)
        local code, res = request(path, body, o)
        local json = cjson.decode(res)
        return code, json, res
    end

    local function seen()
        local code, res = request("/seen")
        assert.are.equal(200, code)
        return cjson.decode(res)
    end

    local function control(query)
        local code = request("/control?" .. query)
        assert.are.equal(200, code)
    end

    local function records(ids, extra)
        local list = {}
        for i, id in ipairs(ids) do
            local r = { voiceId = id, type = "1", cost = "0.0125", callTime = "2024-03-15 12:34:56",
                        intent = 99999, terminationCode = 0 }
            for k, v in pairs(extra or {}) do r[k] = v end
            list[i] = r
        end
        return cjson.encode(list)
    end

    it("receives a push of 3 records with typed fields", function()
        local code, json, raw = post("/push/" .. TOKEN, records({ "r1", "r2", "r3" }))
        assert.are.equal(200, code, raw)
        assert.are.equal("0", json.status)
        assert.are.equal(3, json.records)
        assert.are.equal(3, json.new)
        assert.are.equal(0, json.duplicates)
        local s = seen()
        assert.are.equal(3, s.n)
        assert.are.same({ r1 = 1, r2 = 1, r3 = 1 }, s.calls)
        for i, id in ipairs({ "r1", "r2", "r3" }) do
            local r = s.records[i]
            assert.are.equal(id, r.voiceId)
            assert.are.equal(1, r.type)
            assert.are.equal(0.0125, r.cost)
            assert.are.equal(1710506096, r.callTime_unix)
            assert.are.equal("99999", r.intent)
        end
    end)

    it("de-duplicates the same push sent again", function()
        local code, json = post("/push/" .. TOKEN, records({ "r1", "r2", "r3" }))
        assert.are.equal(200, code)
        assert.are.equal(0, json.new)
        assert.are.equal(3, json.duplicates)
        -- the wrapper shape, with one new record among old ones
        code, json = post("/push/" .. TOKEN, '{"array":' .. records({ "r2", "r4", "r3" }) .. "}")
        assert.are.equal(200, code)
        assert.are.equal(1, json.new)
        assert.are.equal(2, json.duplicates)
        local s = seen()
        assert.are.same({ r1 = 1, r2 = 1, r3 = 1, r4 = 1 }, s.calls)
    end)

    it("takes the token from the X-Laaffic-Token header", function()
        local code, json = post("/push/", records({ "h1" }), { headers = { "X-Laaffic-Token: " .. TOKEN } })
        assert.are.equal(200, code)
        assert.are.equal(1, json.new)
    end)

    it("refuses a bad or missing token with 401 and records nothing", function()
        local before = seen().n
        for _, case in ipairs({
            { "/push/wrong-token" }, { "/push/" }, { "/push/" .. TOKEN .. "x" }, { "/push/" .. TOKEN:sub(1, -2) },
            { "/push/", { "X-Laaffic-Token: nope" } }, { "/push/" .. TOKEN:upper() },
        }) do
            local code, json = post(case[1], records({ "bad1" }), { headers = case[2] })
            assert.are.equal(401, code, case[1])
            assert.are.equal("unauthorized", json.reason)
        end
        local s = seen()
        assert.are.equal(before, s.n)
        assert.is_nil(s.calls.bad1)
    end)

    it("nginx's allow/deny in the push location answer 403 before the handler runs", function()
        local before = seen().last_info
        -- deny 127.0.0.1: nginx's own 403 page, even with the right token
        local code, raw = request("/deny/" .. TOKEN, records({ "ip1" }))
        assert.are.equal(403, code)
        -- nginx's HTML page, not the handler's JSON answer
        assert.is_truthy(raw:find("<title>403 Forbidden</title>", 1, true), raw)
        -- allow 127.0.0.2; deny all: 127.0.0.1 is refused the same way
        code, raw = request("/allow/x", records({ "ip2" }))
        assert.are.equal(403, code)
        assert.is_truthy(raw:find("<title>403 Forbidden</title>", 1, true), raw)
        local s = seen()
        assert.is_nil(s.calls.ip1)
        assert.is_nil(s.calls.ip2)
        assert.are.same(before, s.last_info)         -- the handler never ran
        -- from 127.0.0.2, which allow names (the whole 127/8 is loopback on Linux)
        local c2, res, rc = request("/allow/x", records({ "ip3" }), { interface = "127.0.0.2" })
        if rc == 0 then
            assert.are.equal(200, c2, res)
            assert.are.equal(1, seen().calls.ip3)
        else
            pending("curl --interface 127.0.0.2 is not possible here (curl exit " .. tostring(rc) .. ")")
        end
    end)

    it("answers 400 for a body that is not a push, recording nothing", function()
        local before = seen().n
        local code, json = post("/push/" .. TOKEN, '[{"voiceId":"j1"')
        assert.are.equal(400, code)
        assert.is_truthy(json.reason:find("invalid JSON", 1, true))
        code = post("/push/" .. TOKEN, '{"array":5}')
        assert.are.equal(400, code)
        code = post("/push/" .. TOKEN, "")
        assert.are.equal(400, code)
        assert.are.equal(before, seen().n)
    end)

    it("one record without a voiceId does not lose the others: they are handled, it is logged", function()
        local code, json, raw = post("/push/" .. TOKEN, '[{"voiceId":"m1"},{"x":1},{"voiceId":"m2"}]')
        -- 200: a re-send of the same bytes could not key the bad record either
        assert.are.equal(200, code, raw)
        assert.are.equal(3, json.records)
        assert.are.equal(2, json.new)
        assert.are.equal(1, json.invalid)
        local s = seen()
        assert.are.equal(1, s.calls.m1)
        assert.are.equal(1, s.calls.m2)
        -- the default on_invalid: the error log, with the record's JSON
        local log = srv:log()
        assert.is_truthy(log:find('record 2 cannot be keyed (voiceId: missing)', 1, true), log)
        assert.is_truthy(log:find('{"x":1}', 1, true), log)
    end)

    it("on_invalid gets the raw record and the reason; if it fails, the push is re-sent", function()
        local body = '{"array":[{"voiceId":"v1"},{"voiceId":{"a":1}},{"voiceId":"v2"},[]]}'
        local code, json = post("/inv/" .. TOKEN, body)
        assert.are.equal(200, code)
        assert.are.equal(2, json.new)
        assert.are.equal(2, json.invalid)
        local s = seen()
        assert.are.equal(2, #s.invalid)
        assert.are.same({ a = 1 }, cjson.decode(s.invalid[1].raw).voiceId)
        assert.are.equal("record 2: voiceId: must be a string or number", s.invalid[1].err)
        assert.are.equal("record 4: voiceId: missing", s.invalid[2].err)
        assert.are.equal(2, s.last_info.invalid)
        -- the hook's store is down: 500, so the platform re-sends; the good records are
        -- handled once, the bad ones reach on_invalid again on the re-send
        control("fail_invalid=1")
        body = '[{"voiceId":"v3"},{"nope":1}]'
        code, json = post("/inv/" .. TOKEN, body)
        assert.are.equal(500, code)
        assert.are.equal(1, json.failed)
        assert.is_truthy(srv:log():find("on_invalid failed for record 2; the push is answered 500 so the " ..
                                        "platform re-sends it: invalid store down", 1, true))
        control("fix_invalid=1")
        code, json = post("/inv/" .. TOKEN, body)
        assert.are.equal(200, code)
        assert.are.equal(1, json.duplicates)
        assert.are.equal(1, json.invalid)
        s = seen()
        assert.are.equal(1, s.calls.v3)
        assert.are.equal(3, #s.invalid)
        assert.are.equal('{"nope":1}', s.invalid[3].raw)
    end)

    it("a full de-duplication dict: every eviction counted, a warning logged (not each time)", function()
        local ids = {}
        for i = 1, 400 do ids[i] = ("evict-%04d-"):format(i) .. ("x"):rep(24) end
        local code, json = post("/tiny/" .. TOKEN, records(ids))
        assert.are.equal(200, code)
        assert.are.equal(400, json.new)
        local info = seen().last_info
        assert.is_true(info.evicted > 300, "evicted " .. tostring(info.evicted))
        -- the re-send: the evicted voiceIds are handled again, and the log says why
        code, json = post("/tiny/" .. TOKEN, records(ids))
        assert.are.equal(200, code)
        assert.is_true(json.new > 300)
        local log = srv:log()
        local _, warnings = log:gsub("de%-dup dict is full", "")
        assert.are.equal(1, warnings, log) -- rate-limited: once a minute per worker
        assert.is_truthy(log:find("evicted a remembered voiceId", 1, true), log)
    end)

    it("logs 413 and 503 answers, rate-limited (the platform gives up on those records)", function()
        local big = records({ "big1", "big2", "big3", "big4", "big5", "big6", "big7", "big8", "big9", "big10" })
        for _ = 1, 3 do
            assert.are.equal(413, (request("/small/" .. TOKEN, big)))
        end
        local log = srv:log()
        local _, n = log:gsub("answered 413", "")
        assert.are.equal(1, n, log)
        assert.is_truthy(log:find("over max_bytes (1000)", 1, true), log)
        assert.are.equal(413, seen().last_info.status)
    end)

    it("answers 405 to other methods and 413 to oversize bodies", function()
        local code = request("/push/" .. TOKEN, nil, { method = "GET" })
        assert.are.equal(405, code)
        code = request("/small/" .. TOKEN, records({ "big1", "big2", "big3", "big4", "big5", "big6",
                                                     "big7", "big8", "big9", "big10" }))
        assert.are.equal(413, code)
        -- without a Content-Length (chunked), found after reading
        code = request("/small/" .. TOKEN, records({ "big1", "big2", "big3", "big4", "big5", "big6",
                                                     "big7", "big8", "big9", "big10" }),
                       { headers = { "Transfer-Encoding: chunked" } })
        assert.are.equal(413, code)
        assert.is_nil(seen().calls.big1)
    end)

    it("answers 500 when on_record raises, and the re-send delivers the rest once", function()
        control("fail=f2")
        local code, json = post("/push/" .. TOKEN, records({ "f1", "f2", "f3" }))
        assert.are.equal(500, code)
        assert.are.equal(1, json.failed)
        local s = seen()
        assert.are.equal(1, s.calls.f1)
        assert.is_nil(s.calls.f2)
        assert.are.equal(1, s.calls.f3)
        local log = srv:log()
        assert.is_truthy(log:find("on_record failed for record 2 (voiceId f2)", 1, true), log)
        assert.is_truthy(log:find("simulated failure for f2", 1, true))
        -- still failing: a re-send is refused again, nothing is delivered twice
        code = post("/push/" .. TOKEN, records({ "f1", "f2", "f3" }))
        assert.are.equal(500, code)
        control("fix=f2")
        code, json = post("/push/" .. TOKEN, records({ "f1", "f2", "f3" }))
        assert.are.equal(200, code)
        assert.are.equal(1, json.new)
        assert.are.equal(2, json.duplicates)
        s = seen()
        assert.are.same(1, s.calls.f1)
        assert.are.same(1, s.calls.f2)
        assert.are.same(1, s.calls.f3)
    end)

    it("reads a large body that nginx spooled to a temp file", function()
        local ids = {}
        for i = 1, 2000 do ids[i] = "big" .. i end
        local body = records(ids, { terminationReason = ("x"):rep(50) })
        assert.is_true(#body > 100000)
        local code, json = post("/push/" .. TOKEN, body)
        assert.are.equal(200, code)
        assert.are.equal(2000, json.new)
        local s = seen()
        assert.are.equal(1, s.last_from_file)
        assert.are.equal(1, s.calls.big1)
        assert.are.equal(1, s.calls.big2000)
        -- a small one stays in memory
        code = post("/push/" .. TOKEN, records({ "mem1" }))
        assert.are.equal(200, code)
        assert.are.equal(0, seen().last_from_file)
    end)

    it("two concurrent deliveries of the same voiceId call on_record once", function()
        local body = records({ "slow1", "slow2" })
        local bf = tmp .. "/concurrent.json"
        write(bf, body)
        local cmd = {}
        for i = 1, 3 do
            cmd[#cmd + 1] = ("curl -s -o %s -w '%%{http_code}\\n' --max-time 20 --data-binary @%s %s &"):format(
                q(tmp .. "/conc" .. i), q(bf), q(srv:url("/push/" .. TOKEN)))
        end
        cmd[#cmd + 1] = "wait"
        local out = sh(table.concat(cmd, "\n"))
        local codes = {}
        for c in out:gmatch("%d%d%d") do codes[#codes + 1] = c end
        assert.are.same({ "200", "200", "200" }, codes)
        local new, dup = 0, 0
        for i = 1, 3 do
            local j = cjson.decode(read(tmp .. "/conc" .. i))
            new, dup = new + j.new, dup + j.duplicates
        end
        assert.are.equal(2, new)
        assert.are.equal(4, dup)
        local s = seen()
        assert.are.equal(1, s.calls.slow1)
        assert.are.equal(1, s.calls.slow2)
    end)

    it("a delivery that finds a voiceId still being handled answers 503", function()
        local bf = tmp .. "/busy.json"
        write(bf, records({ "slowb1" }))
        local cmd = {}
        for i = 1, 2 do
            cmd[#cmd + 1] = ("curl -s -o %s -w '%%{http_code}\n' --max-time 20 --data-binary @%s %s &"):format(
                q(tmp .. "/busy" .. i), q(bf), q(srv:url("/busy/" .. TOKEN)))
        end
        cmd[#cmd + 1] = "wait"
        local out = sh(table.concat(cmd, "\n"))
        local codes = {}
        for c in out:gmatch("%d%d%d") do codes[#codes + 1] = c end
        table.sort(codes)
        assert.are.same({ "200", "503" }, codes)
        assert.is_truthy(srv:log():find("answered 503: 1 record(s) still being handled by another", 1, true))
        -- the platform's re-send finds it done
        local code, json = post("/busy/" .. TOKEN, records({ "slowb1" }))
        assert.are.equal(200, code)
        assert.are.equal(1, json.duplicates)
        assert.are.equal(1, seen().calls.slowb1)
    end)

    it("without a dict every delivery reaches on_record (at least once)", function()
        for _ = 1, 2 do
            local code, json = post("/nodedup/" .. TOKEN, records({ "nd1" }))
            assert.are.equal(200, code)
            assert.are.equal(1, json.new)
        end
        assert.are.equal(2, seen().calls.nd1)
    end)

    it("logged no Lua error of its own", function()
        local log = srv:log()
        assert.is_falsy(log:find("lua entry thread aborted", 1, true), log)
        assert.is_falsy(log:find("runtime error", 1, true), log)
    end)
end)
