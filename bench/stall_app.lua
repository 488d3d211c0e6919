-- bench/stall_app.lua: the Lua of the stall benchmark's nginx (scripts/bench-stall.sh makes
-- its nginx.conf; bench/stall.py drives it). Loaded by init_by_lua with dofile.
--
--   GET /send?via=content|timer&src=table|csv&encode=sliced|one&name=N[&transport=T]
--     creates one task of STALL_ROWS numbers against the sandbox and answers, as JSON, when
--     it is created: { key_id, rows, ms } or { error }. via=content sends from this content
--     handler (the subrequest transport), via=timer from an ngx.timer.at timer (cosockets)
--     while the handler waits on a semaphore; src=table sends the list prebuilt in
--     init_worker, src=csv a laaffic.csv source opened on STALL_CSV. encode=one asks for
--     the one-call encode (slice_rows = 0), encode=sliced leaves slice_rows at its
--     default (or sets STALL_SLICE_ROWS). transport=cosocket sends from the content
--     handler with the cosocket transport instead of auto's subrequest.
--   GET /info   { rows = N, slice_rows = STALL_SLICE_ROWS }
local laaffic = require("laaffic")
local cjson = require("cjson")
local semaphore = require("ngx.semaphore")

local ngx = ngx
local getenv = os.getenv

local _M = {}

local ROWS                      -- the list, built once per worker (not what is measured)
local NROWS = tonumber(getenv("STALL_ROWS")) or 200000
local CSV_PATH = getenv("STALL_CSV")
local SLICE_ROWS = tonumber(getenv("STALL_SLICE_ROWS") or "")  -- nil: the client's default

local function client_opts()
    local https = getenv("LAAFFIC_SANDBOX_HTTPS")
    return {
        api_key = getenv("LAAFFIC_SANDBOX_KEY"), api_secret = getenv("LAAFFIC_SANDBOX_SECRET"),
        app_id = getenv("LAAFFIC_SANDBOX_APP_ID"), base_url = https, timeout = 120,
        -- the cosocket transport connects without a resolver
        resolve = { "localhost:" .. https:match(":(%d+)$") .. ":127.0.0.1" },
    }
end

-- Same rows as bench/send.lua's 200,000-number task (and the CSV file of bench-stall.sh).
function _M.init_worker()
    ROWS = {}
    for i = 1, NROWS do
        ROWS[i] = { calleeNumber = ("9197%08d"):format(i), text1 = (i % 2 == 0) and "David" or "Oliver",
                    text2 = tostring(1000 + (i * 37) % 9000), text3 = "2026-04-10" }
    end
end

local function now()
    ngx.update_time()
    return ngx.now()
end

-- One create_task; -> the answer's table.
local function create(args)
    local o = client_opts()
    if args.encode == "one" then o.slice_rows = 0 else o.slice_rows = SLICE_ROWS end
    if args.transport then o.transport = args.transport end
    local c = laaffic.new(o)
    local list = ROWS
    if args.src == "csv" then
        local src, err = laaffic.csv.open(CSV_PATH)
        if not src then return { error = tostring(err) } end
        list = src
    end
    local t0 = now()
    local key_id, info = c:create_task({ taskName = args.name, agentId = 110, numberInfoList = list })
    local ms = (now() - t0) * 1000
    c:close()
    if not key_id then return { error = tostring(info), kind = info.kind } end
    return { key_id = key_id, rows = info.rows, ms = ms, via = c.transport.last }
end

local function via_timer(args)
    local sema = semaphore.new()
    local res
    local ok, terr = ngx.timer.at(0, function(premature)
        if premature then res = { error = "premature timer" } else
            -- a raise must not leave the handler waiting
            local ok, r = pcall(create, args)
            res = ok and r or { error = "raised: " .. tostring(r) }
        end
        sema:post(1)
    end)
    if not ok then return { error = "no timer: " .. tostring(terr) } end
    local waited, werr = sema:wait(300)
    if not waited then return { error = "waiting for the timer: " .. tostring(werr) } end
    return res
end

function _M.send()
    local args = ngx.req.get_uri_args()
    local res
    if args.via == "timer" then res = via_timer(args) else res = create(args) end
    if res.error then ngx.status = 500 end
    ngx.say(cjson.encode(res))
end

function _M.info()
    ngx.say(cjson.encode({ rows = NROWS, slice_rows = SLICE_ROWS }))
end

return _M
