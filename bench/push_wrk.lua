-- bench/push_wrk.lua: the wrk script of bench/push.lua (wrk's own LuaJIT runs it).
--
--   wrk -t1 -c32 -d4s -s bench/push_wrk.lua http://127.0.0.1:PORT/path -- RECORDS RUN
--
-- Every request POSTs a JSON list of RECORDS status records shaped like the vendor's
-- (every documented field), each with a voiceId unique across threads and runs:
-- "<RUN>-<thread>-<request>-<record>". done() prints one line for bench/push.lua:
--   WRK requests=N non2xx=N connect=N read=N write=N timeout=N duration_us=N p50_us=N p99_us=N bytes=N
local counter = 0
local n_records = 10
local run = "r"
local thread_id = 1
local head, tail

local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

function init(args)
    thread_id = tid or 1 -- the global that setup() gave this thread
    n_records = tonumber(args[1]) or n_records
    run = args[2] or run
    local rest = '","type":1,"callee":"919777654321","displayNum":"","submitTime":"2026-11-22 10:00:00",' ..
        '"callTime":"2026-11-22 10:00:01","ringingTime":"2026-11-22 10:00:03","answerTime":"2026-11-22 10:00:09",' ..
        '"hangupTime":"2026-11-22 10:01:12","billPeriod":"6","code":200,"recordingFileId":"rf-20261122-0001",' ..
        '"ringDuration":6,"currency":"USD","quoteExchange":"1","chargedDuration":66,"rate":"0.0120",' ..
        '"cost":"0.0132","settleRate":"0.0120","settlePay":"0.0132","aiAgentChargedDuration":66,' ..
        '"aiAgentBillPeriod":"6","aiAgentRate":"0.0200","aiAgentFee":"0.0220","aiAgentQuoteRate":"0.0200",' ..
        '"aiAgentQuoteFee":"0.0220","terminationCode":0,"terminationReason":"normal clearing","sipCode":200,' ..
        '"calledInfo":"","scriptId":"110","intent":"A"}'
    head, tail = '{"voiceId":"', rest
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json;charset=UTF-8"
end

function request()
    counter = counter + 1
    local parts = { "[" }
    local base = run .. "-" .. thread_id .. "-" .. counter .. "-"
    for i = 1, n_records do
        if i > 1 then parts[#parts + 1] = "," end
        parts[#parts + 1] = head
        parts[#parts + 1] = base .. i
        parts[#parts + 1] = tail
    end
    parts[#parts + 1] = "]"
    return wrk.format(nil, nil, nil, table.concat(parts))
end

function done(summary, latency)
    local e = summary.errors
    io.write(("WRK requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d duration_us=%d " ..
              "p50_us=%d p99_us=%d bytes=%d\n"):format(summary.requests, e.status, e.connect, e.read,
              e.write, e.timeout, summary.duration, latency:percentile(50), latency:percentile(99),
              summary.bytes))
end
