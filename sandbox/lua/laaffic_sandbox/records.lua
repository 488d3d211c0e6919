-- laaffic_sandbox.records: the JSON text of one simulated call status report, the shape
-- the vendor's push page documents, with the variety a receiver must cope with (numbers
-- sent as strings, times as text or milliseconds, three call outcomes). Pure: the specs
-- call record_json outside nginx.
local tostring = tostring
local ipairs = ipairs
local floor = math.floor
local concat = table.concat
local format = string.format

local _M = {}

-- Outcome of the record of number i, by (i - 1) % 10: 6 answered, 2 not connected, 2
-- failed; the first three numbers of a task cover all three.
local OUTCOME = { "answered", "not_connected", "failed", "answered", "answered",
                  "not_connected", "answered", "answered", "failed", "answered" }
local ANSWER_INTENTS = { "10001", "10002", "10003" }

-- The record's fields, in the order of the vendor's page, then the sandbox's extras.
local FIELDS = {
    "voiceId", "type", "callee", "displayNum", "submitTime", "callTime", "ringingTime",
    "answerTime", "hangupTime", "billPeriod", "code", "recordingFileId", "ringDuration",
    "currency", "quoteExchange", "chargedDuration", "rate", "cost", "settleRate", "settlePay",
    "aiAgentChargedDuration", "aiAgentBillPeriod", "aiAgentRate", "aiAgentFee",
    "aiAgentQuoteRate", "aiAgentQuoteFee", "terminationCode", "terminationReason", "sipCode",
    "calledInfo", "scriptId", "intent", "keyId", "taskName",
}
local KEYS = {}
for i, name in ipairs(FIELDS) do
    KEYS[i] = (i == 1 and '{"' or ',"') .. name .. '":'
end

-- JSON values. Every string passed to js is made here from digits and fixed ASCII text
-- (taskName and displayNum are encoded by cjson once per job).
local function js(s)
    return '"' .. s .. '"'
end

local function jint(n)
    return format("%d", n)
end

local function jtext(n)
    return format('"%d"', n)
end

local function jmoney(x)
    return format('"%.4f"', x)
end

-- A time as "YYYY-MM-DD HH:MM:SS" (UTC), or as a millisecond timestamp (older pushes).
local function jtime(t, ms)
    if not t then
        return '""'
    elseif ms then
        return format("%d", floor(t * 1000))
    end
    return os.date('!"%Y-%m-%d %H:%M:%S"', floor(t))
end

-- The call of the task's i-th number, placed at call_t: its outcome's codes and times.
-- answered: terminationCode 0, sipCode 200, billPeriod > 0, intent "10001".."10003";
-- not connected: intent "99999", sipCode 480 "no answer" or 486 "user busy",
-- terminationCode 2 or 3, billPeriod 0; failed: intent "99998", sipCode 503 or 404,
-- terminationCode 5 or 4, billPeriod 0, no ringing time.
local function call_of(i, call_t)
    local outcome = OUTCOME[(i - 1) % 10 + 1]
    local c = { outcome = outcome, bill = 0 }
    if outcome == "answered" then
        c.sip, c.tcode, c.reason = 200, 0, "normal hangup"
        c.intent = ANSWER_INTENTS[i % 3 + 1]
        c.ring = 3 + i % 12
        c.bill = 8 + (i * 7) % 113
        c.ring_t = call_t + 1
        c.answer_t = c.ring_t + c.ring
        c.hangup_t = c.answer_t + c.bill
    elseif outcome == "not_connected" then
        if floor(i / 4) % 2 == 0 then
            c.sip, c.tcode, c.reason, c.ring = 480, 2, "no answer", 20 + i % 40
        else
            c.sip, c.tcode, c.reason, c.ring = 486, 3, "user busy", 1 + i % 3
        end
        c.intent = "99999"
        c.ring_t = call_t + 1
        c.hangup_t = c.ring_t + c.ring
    else
        if floor(i / 6) % 2 == 0 then
            c.sip, c.tcode, c.reason = 503, 5, "service unavailable"
        else
            c.sip, c.tcode, c.reason = 404, 4, "number does not exist"
        end
        c.intent, c.ring = "99998", 0
        c.hangup_t = call_t + 1
    end
    return c
end

-- The JSON text of the report of the task's i-th number (job: key_id, token, submit,
-- display_json, script_json, name_json, recording), fields in the order of FIELDS.
-- JSON types:
--   always numbers: type (1), aiAgentChargedDuration, aiAgentBillPeriod, keyId
--   numbers, but strings of digits ("12") when i % 3 == 0: billPeriod, ringDuration,
--     chargedDuration, terminationCode, sipCode
--   times: "YYYY-MM-DD HH:MM:SS" (UTC), but millisecond numbers when i % 4 == 0; ""
--     when there is none (answerTime unless answered, ringingTime of a failed call)
--   strings: voiceId ("<keyId>-<i>-<12 hex, per job>"), callee, displayNum, code (the
--     terminationCode's digits), recordingFileId ("" unless answered and recorded),
--     currency ("USD"), quoteExchange, rate, cost, settleRate, settlePay, aiAgentRate,
--     aiAgentFee, aiAgentQuoteRate, aiAgentQuoteFee (decimals, "0.0120"),
--     terminationReason, calledInfo (""), scriptId (the agentId), intent, taskName
function _M.record_json(job, i, callee)
    local ms = i % 4 == 0           -- times as millisecond numbers
    local num = i % 3 == 0 and jtext or jint    -- some numeric fields as JSON strings ("12")
    local call_t = job.submit + 1 + (i - 1) % 600
    local c = call_of(i, call_t)
    local bill = c.bill
    local charged = bill > 0 and math.ceil(bill / 60) * 60 or 0
    local minutes = charged / 60
    local v = {
        js(format("%d-%d-%s", job.key_id, i, job.token)),                   -- voiceId
        "1",                                                                -- type
        js(callee),
        job.display_json,
        jtime(job.submit, ms), jtime(call_t, ms), jtime(c.ring_t, ms), jtime(c.answer_t, ms),
        jtime(c.hangup_t, ms),
        num(bill),                                                          -- billPeriod
        js(tostring(c.tcode)),                                              -- code
        js((c.outcome == "answered" and job.recording) and format("rec%d%07d", job.key_id, i)
           or ""),
        num(c.ring),                                                        -- ringDuration
        '"USD"', '"1.0000"',                                                -- currency, quoteExchange
        num(charged),                                                       -- chargedDuration
        '"0.0120"', jmoney(minutes * 0.012),                                -- rate, cost
        '"0.0100"', jmoney(minutes * 0.01),                                 -- settleRate, settlePay
        jint(charged), jint(bill),                                          -- aiAgentChargedDuration, BillPeriod
        '"0.0300"', jmoney(minutes * 0.03),                                 -- aiAgentRate, aiAgentFee
        '"0.0300"', jmoney(minutes * 0.03),                                 -- aiAgentQuoteRate, QuoteFee
        num(c.tcode), js(c.reason), num(c.sip),                             -- terminationCode, Reason, sipCode
        '""',                                                               -- calledInfo
        job.script_json,                                                    -- scriptId
        js(c.intent),
        jint(job.key_id), job.name_json,                                    -- keyId, taskName
    }
    local parts = {}
    for f = 1, #KEYS do
        parts[#parts + 1] = KEYS[f]
        parts[#parts + 1] = v[f]
    end
    parts[#parts + 1] = "}"
    return concat(parts)
end

return _M
