-- bench/push.lua: push-receiver throughput under wrk, beside the ceiling.
--
--   scripts/bench-push.sh [lua] [build dir]     (part of make bench; needs wrk)
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/luajit/?.so;;" luajit bench/push.lua
--
-- Starts a real nginx (spec/nginx.lua: Debian's nginx with the lua module, one worker, on
-- 127.0.0.1) with two locations that get the same request bodies:
--   /push/<token>  laaffic.push.handler with the token check and de-duplication in a
--                  lua_shared_dict; on_record counts records into another shared dict.
--   /ceiling       content_by_lua_block { ngx.req.read_body(); ngx.say("ok") }: reads the
--                  body and nothing else - the most any handler in this nginx can do.
--   /decode        for scale: reads the body and cjson.decodes it (what any JSON receiver
--                  pays before looking at a single field).
-- wrk (a separate process, 1 thread, PUSH_BENCH_CONNS connections, default 32) POSTs bodies
-- of N records with voiceIds unique per request (bench/push_wrk.lua), for
-- PUSH_BENCH_SECONDS (default 3) after a 1-second warm-up, for each N in
-- PUSH_BENCH_RECORDS (default "10,100"). Reports requests/s, records/s, p50/p99 latency
-- and "lost": records wrk saw acknowledged with 200 minus records on_record counted - it
-- must be 0 (and the server's own count of 200 answers x N must equal on_record's count).
-- Exits non-zero when a record is lost or a push was not answered 200.
local cjson = require("cjson")
local core = require("laaffic.core")

local function script_dir()
    local src = debug.getinfo(1, "S").source:sub(2)
    return src:match("^(.*[/\\])") or "./"
end
local ROOT = script_dir() .. ".."
local Nginx = dofile(ROOT .. "/spec/nginx.lua")

local SECONDS = tonumber(os.getenv("PUSH_BENCH_SECONDS")) or 3
local CONNS = tonumber(os.getenv("PUSH_BENCH_CONNS")) or 32
local SIZES = {}
for n in (os.getenv("PUSH_BENCH_RECORDS") or "10,100"):gmatch("%d+") do SIZES[#SIZES + 1] = tonumber(n) end
local TOKEN = "bench-token-0123456789"

local S = dofile(ROOT .. "/spec/shell.lua")
local q, sh = S.q, S.sh_all

if select(2, sh("command -v wrk >/dev/null")) ~= 0 then
    io.stderr:write("bench/push.lua: wrk is not installed (apt-get install wrk)\n")
    os.exit(1)
end

local HTTP = [[
    lua_shared_dict push_dedup 256m;
    lua_shared_dict push_count 1m;
    init_by_lua_block {
        local count = ngx.shared.push_count
        package.loaded["bench.push_handler"] = require("laaffic.push").handler{
            token = "]] .. TOKEN .. [[", dict = "push_dedup", window = 3600,
            on_record = function(rec) count:incr("records", 1, 0) end,
        }
    }
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        client_max_body_size 16m;
        client_body_buffer_size 1m;
        keepalive_requests 1000000;
        location /push/ {
            content_by_lua_block {
                local status, info = require("bench.push_handler")()
                if status == 200 then
                    local count = ngx.shared.push_count
                    count:incr("acked", 1, 0)
                    count:incr("bytes", info.bytes, 0)
                end
            }
        }
        location = /ceiling {
            content_by_lua_block { ngx.req.read_body(); ngx.say("ok") }
        }
        location = /decode {
            content_by_lua_block {
                ngx.req.read_body()
                local records = require("cjson.safe").decode(ngx.req.get_body_data())
                ngx.say(records and "ok" or "bad")
            }
        }
        location = /stats {
            content_by_lua_block {
                local c = ngx.shared.push_count
                ngx.say(require("cjson").encode({ records = c:get("records") or 0,
                                                  acked = c:get("acked") or 0, bytes = c:get("bytes") or 0 }))
            }
        }
    }
]]

local srv

local function stats()
    local out, rc = sh("curl -s --max-time 10 " .. q(srv:url("/stats")))
    assert(rc == 0, "stats: curl failed: " .. out)
    return cjson.decode(out)
end

local run_seq = 0
local function wrk(path, records, seconds)
    run_seq = run_seq + 1
    local tag = ("b%d-%d"):format(os.time(), run_seq)
    local cmd = ("timeout %d wrk -t1 -c%d -d%ds --timeout 10s -s %s %s -- %d %s"):format(
        seconds + 30, CONNS, seconds, q(ROOT .. "/bench/push_wrk.lua"), q(srv:url(path)), records, tag)
    local out, rc = sh(cmd)
    local line = out:match("WRK ([^\n]+)")
    assert(rc == 0 and line, "wrk failed (" .. tostring(rc) .. "): " .. out)
    local r = {}
    for k, v in line:gmatch("([%w_]+)=(%d+)") do r[k] = tonumber(v) end
    r.errors = r.connect + r.read + r.write + r.timeout
    return r
end

local function measure(path, records, count)
    local before = count and stats()
    local r = wrk(path, records, SECONDS)
    if count then
        core.sleep(0.3) -- requests still in flight when wrk stopped counting
        local after = stats()
        r.counted = after.records - before.records
        r.acked = after.acked - before.acked
        r.body_bytes = r.acked > 0 and (after.bytes - before.bytes) / r.acked or 0
        local ok_requests = r.requests - r.non2xx
        r.lost = ok_requests * records - r.counted
        if r.lost < 0 then r.lost = 0 end -- handled after wrk's cut: not lost
        r.server_gap = r.acked * records - r.counted
    end
    local secs = r.duration_us / 1e6
    r.rps = r.requests / secs
    r.recps = r.rps * records
    return r
end

local function main()
    srv = Nginx.start{ http = HTTP, workers = 1 }
    local nginx_version = sh("nginx -v 2>&1"):match("nginx/(%S+)") or "?"
    local wrk_version = sh("wrk -v 2>&1"):match("wrk (%S+)") or "?"
    print(("push receiver under wrk: nginx %s (1 worker, lua module, LuaJIT), wrk %s (1 thread, %d " ..
           "connections), %d s per run after a 1 s warm-up, 127.0.0.1"):format(nginx_version, wrk_version,
           CONNS, SECONDS))
    local failed = false
    for _, n in ipairs(SIZES) do
        wrk("/push/" .. TOKEN, n, 1)
        wrk("/ceiling", n, 1)
        wrk("/decode", n, 1)
        local p = measure("/push/" .. TOKEN, n, true)
        local c = measure("/ceiling", n, false)
        local d = measure("/decode", n, false)
        print()
        print(("%d records per push (%.1f KB body): %d records handled, %d acknowledged x %d"):format(
            n, p.body_bytes / 1024, p.counted, p.acked, n))
        print(("| %-44s | %9s | %10s | %7s | %7s | %5s |"):format("handler", "req/s", "records/s", "p50 ms",
                                                               "p99 ms", "lost"))
        print("|" .. ("-"):rep(46) .. "|" .. ("-"):rep(11) .. "|" .. ("-"):rep(12) .. "|" .. ("-"):rep(9) ..
              "|" .. ("-"):rep(9) .. "|" .. ("-"):rep(7) .. "|")
        print(("| %-44s | %9.0f | %10.0f | %7.2f | %7.2f | %5d |"):format(
            "laaffic.push.handler (token, de-dup, parse)", p.rps, p.recps, p.p50_us / 1000, p.p99_us / 1000,
            p.lost))
        print(("| %-44s | %9.0f | %10.0f | %7.2f | %7.2f | %5s |"):format(
            "ceiling: read_body + say (no parse)", c.rps, c.recps, c.p50_us / 1000, c.p99_us / 1000, "-"))
        print(("| %-44s | %9.0f | %10.0f | %7.2f | %7.2f | %5s |"):format(
            "for scale: read_body + cjson.decode + say", d.rps, d.recps, d.p50_us / 1000, d.p99_us / 1000, "-"))
        print(("push handler at %.0f%% of the ceiling's request rate, %.0f%% of a bare cjson.decode's"):format(
            100 * p.rps / c.rps, 100 * p.rps / d.rps))
        if p.lost ~= 0 or p.server_gap ~= 0 or p.non2xx ~= 0 or p.errors ~= 0 then
            failed = true
            print(("FAIL: lost %d, server gap %d, non-2xx %d, socket errors %d"):format(p.lost, p.server_gap,
                                                                                         p.non2xx, p.errors))
        end
        for _, x in ipairs({ { "ceiling", c }, { "decode", d } }) do
            if x[2].non2xx ~= 0 or x[2].errors ~= 0 then
                print(("note: the %s run had %d non-2xx answers and %d socket errors"):format(x[1], x[2].non2xx,
                                                                                            x[2].errors))
            end
        end
    end
    -- spec/nginx.lua's readiness probe (GET /) leaves one "index.html is not found" line
    for line in srv:log():gmatch("[^\n]+") do
        if line:find("%[error%]") or line:find("%[alert%]") or line:find("%[crit%]") then
            if not line:find("index.html\" is not found", 1, true) then
                failed = true
                print("FAIL: nginx logged: " .. line)
            end
        end
    end
    return not failed
end

local ok, res = pcall(main)
if srv then srv:stop() end
if not ok then
    io.stderr:write("bench/push.lua: " .. tostring(res) .. "\n")
    os.exit(1)
end
os.exit(res and 0 or 1)
