-- laaffic.push: the receiver of the platform's call status reports ("status report push").
--
-- push.parse(body [, opts]) turns a pushed body into records with typed fields (plain Lua
-- 5.4 or LuaJIT, no nginx); push.handler(opts) builds an nginx content handler that checks
-- the token, reads the body, calls on_record once per new record (voiceId de-duplicated in
-- a lua_shared_dict) and answers so that the platform re-sends what failed. Pushes are
-- unsigned and re-sent, so parsing is tolerant and never raises on a body. The options,
-- the record fields and the answers are documented in README.md ("Receiving status-report
-- pushes"); IP restrictions are nginx's own allow/deny.

local type = type
local ipairs = ipairs
local pcall = pcall
local tostring = tostring
local tonumber = tonumber
local error = error
local floor = math.floor
local format = string.format
local concat = table.concat
local byte = string.byte
local unpack_list = table.unpack or unpack -- luacheck: ignore 143 (unpack: Lua 5.1/LuaJIT)

local cjson_safe = require("cjson.safe")
local ngx_body = require("laaffic.ngx_body")
local options = require("laaffic.options")
local push_parse = require("laaffic.push_parse")

-- No _VERSION here: the version lives in one place, laaffic.core (see laaffic._VERSION).
local _M = {
    parse = push_parse.parse,
    NUMBER_FIELDS = push_parse.NUMBER_FIELDS,
    TIME_FIELDS = push_parse.TIME_FIELDS,
    STRING_FIELDS = push_parse.STRING_FIELDS,
}

local DEFAULT_MAX_BYTES = push_parse.DEFAULT_MAX_BYTES
local LIMIT_RULES = push_parse.LIMIT_RULES

---------------------------------------------------------------------------------------
-- handler
---------------------------------------------------------------------------------------

-- A token: a string, or a list of them to rotate.
local function token_option(v)
    local list = type(v) == "table" and v or { v }
    for i, t in ipairs(list) do
        if type(t) ~= "string" or t == "" or t:find("[/%c%s]") then
            return "must be a non-empty string without '/', spaces or control characters",
                   type(v) == "table" and ("token[" .. i .. "]") or nil
        end
    end
    if #list == 0 then return "must not be an empty list" end
end

local function dict_option(v)
    if type(v) ~= "string" and type(v) ~= "table" and type(v) ~= "userdata" then
        return "must be the name of a lua_shared_dict, got " .. type(v)
    end
end

-- (an exptime of 0 would mean "never expires" to the shared dict: window and claim_ttl
-- must be positive)
local POSITIVE_SECONDS = "a number of seconds > 0"
local HANDLER_OPTIONS = {
    { "on_record", type = "function", required = true, what = "a function" },
    { "on_invalid", type = "function", what = "a function" },
    { "token", test = token_option },
    { "allow", test = function()
        return "is gone: restrict the push location with nginx's allow/deny directives, " ..
               "e.g. location /laaffic/push/ { allow 203.0.113.0/24; deny all; ... }"
    end },
    { "open", type = "boolean", what = "a boolean" },
    { "dict", test = dict_option },
    { "window", type = "number", min = 0.001, what = POSITIVE_SECONDS },
    { "claim_ttl", type = "number", min = 0.001, what = POSITIVE_SECONDS },
    { "busy_wait", type = "number", min = 0, what = "a number of seconds >= 0" },
    { "key_prefix", type = "string", what = "a string" },
}
for _, r in ipairs(LIMIT_RULES) do HANDLER_OPTIONS[#HANDLER_OPTIONS + 1] = r end
HANDLER_OPTIONS = options.spec(HANDLER_OPTIONS)

local PROCESSING, DONE = 0, 1
local MAX_LOGGED_FAILURES = 5
local LOG_EVERY = 60        -- seconds between two log lines of one kind (per worker)
local MAX_LOGGED_RAW = 1500 -- bytes of a record's JSON the default on_invalid logs

-- A logger that writes a line of one kind at most once per LOG_EVERY seconds; the next
-- line of that kind says how many were left out. One per handler (and so per worker).
local function rate_limited_log(every)
    local last, skipped = {}, {}
    return function(ngx, level, kind, ...)
        local now = ngx.now()
        local t = last[kind]
        if t and now - t < every then
            skipped[kind] = (skipped[kind] or 0) + 1
            return
        end
        local n = skipped[kind] or 0
        last[kind], skipped[kind] = now, 0
        ngx.log(level, "laaffic.push: ", concat({ ... }),
                n > 0 and format(" (%d more like this in the last %d s)", n, floor(now - t)) or "")
    end
end

_M._rate_limited_log = rate_limited_log -- for the specs

-- The default on_invalid: the error log, with the record's JSON (its start, if long).
local function log_invalid(raw, err)
    local ngx = ngx
    local i, why = err:match("^record (%d+): (.*)$")
    local shown = raw
    if #raw > MAX_LOGGED_RAW then
        shown = raw:sub(1, MAX_LOGGED_RAW) .. format("... (%d bytes)", #raw)
    end
    ngx.log(ngx.ERR, "laaffic.push: record ", i or "?", " cannot be keyed (", why or err,
            ") in a push from ", ngx.var.remote_addr, ": not passed to on_record, and not ",
            "re-sent either (a re-send has the same bytes); its JSON: ", shown)
end

local function random_key()
    local f = io.open("/dev/urandom", "rb")
    if f then
        local k = f:read(32)
        f:close()
        if k and #k == 32 then return k end
    end
    return tostring({}) .. tostring(os.time()) .. tostring(os.clock()) .. tostring(math.random())
end

local function same_digest(a, b)
    if #a ~= #b then return false end
    local diff = 0
    for i = 1, #a do
        diff = diff + (byte(a, i) == byte(b, i) and 0 or 1)
    end
    return diff == 0
end

local function json_answer(status, reason, info)
    local ngx = ngx
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Cache-Control"] = "no-store"
    local parts = { '{"status":"', status == 200 and "0" or tostring(status), '","reason":',
                    cjson_safe.encode(reason) or '"error"' }
    if info then
        parts[#parts + 1] = format(',"records":%d,"new":%d,"duplicates":%d,"failed":%d,' ..
                                   '"invalid":%d', info.records, info.new, info.duplicates,
                                   info.failed, info.invalid)
    end
    parts[#parts + 1] = "}\n"
    local body = concat(parts)
    ngx.header["Content-Length"] = #body
    ngx.print(body)
    return status
end

-- Claims key for this request. Returns "claimed", "done", "busy" or "nodict", err; and
-- true when dict:add made room by evicting entries before they expired (its `forcible`):
-- an evicted "done" lets a re-send through again, an evicted claim a concurrent delivery.
local function claim(ngx, dict, key, claim_ttl, busy_wait)
    local ok, err, forcible = dict:add(key, PROCESSING, claim_ttl)
    if ok then return "claimed", nil, forcible end
    if err ~= "exists" then return "nodict", err, forcible end
    local waited, step = 0, 0.005
    while true do
        local v = dict:get(key)
        if v == DONE then return "done" end
        if v == nil then
            ok, err, forcible = dict:add(key, PROCESSING, claim_ttl)
            if ok then return "claimed", nil, forcible end
            if err ~= "exists" then return "nodict", err, forcible end
        else
            if waited >= busy_wait then return "busy" end
            ngx.sleep(step)
            waited = waited + step
            step = step * 2
            if step > 0.1 then step = 0.1 end
        end
    end
end

local function call(fn, a, b)
    local ok, r1, r2 = pcall(fn, a, b)
    if not ok then return false, r1 end
    if not r1 and r2 ~= nil then return false, r2 end
    return true
end

-- The shared dict named by the dict option (or the dict itself), or nil. Raises at `level`.
local function dedup_dict(dict, fname, level)
    if type(dict) ~= "string" then return dict end
    local shared = ngx and ngx.shared
    local d = shared and shared[dict]
    if not d then
        error(fname .. ": option 'dict': no lua_shared_dict named " .. dict, level)
    end
    return d
end

-- The functions below serve one request for the handler state h (made by _M.handler).

local function token_ok(h, ngx)
    if not h.token_digests then -- made on the first request (ngx.hmac_sha1 needs nginx)
        h.hkey = random_key()
        h.token_digests = {}
        for i, t in ipairs(h.tokens) do h.token_digests[i] = ngx.hmac_sha1(h.hkey, t) end
    end
    local digests = h.token_digests
    local candidates = { ngx.var.uri:match("([^/]+)/*$"), ngx.var.http_x_laaffic_token }
    local ok = false
    for c = 1, 2 do
        local cand = candidates[c]
        if cand then
            local d = ngx.hmac_sha1(h.hkey, cand)
            for i = 1, #digests do
                if same_digest(d, digests[i]) then ok = true end
            end
        end
    end
    return ok
end

-- A 413 loses the push's records once the platform stops re-sending: say so.
local function too_large(h, ngx, bytes)
    h.warn(ngx, ngx.ERR, "413", "answered 413 to a push from ", ngx.var.remote_addr, ": ",
           bytes, " bytes, over max_bytes (", h.max_bytes, "); the platform re-sends it a ",
           "few times, then gives up on its records: raise max_bytes and client_max_body_size")
    return nil, 413, "body too large"
end

-- The body is a local here only, so the GC may take it while on_record runs.
-- Returns records | nil, http_status, reason. invalid: see parse's opts.invalid.
local function read_and_parse(h, ngx, info, invalid)
    local max_bytes = h.max_bytes
    local body, from_file = ngx_body.read(max_bytes)
    if not body then
        if from_file == "too_large" then return too_large(h, ngx, "more than " .. max_bytes) end
        ngx.log(ngx.ERR, "laaffic.push: ", from_file)
        return nil, 500, "cannot read the request body"
    end
    info.bytes, info.from_file = #body, from_file
    if #body > max_bytes then return too_large(h, ngx, #body) end -- e.g. chunked
    local parse_opts = h.parse_opts
    parse_opts.invalid = invalid
    local records, err = _M.parse(body, parse_opts)
    parse_opts.invalid = nil
    if not records then return nil, 400, err end
    return records
end

-- on_record for one record, de-duplicated through the dict. Returns true, or false,
-- why when on_record failed; counts in info.
local function handle(h, ngx, rec, info)
    local dict = h.dict
    if not dict then
        local ok, why = call(h.on_record, rec)
        if ok then info.new = info.new + 1 end
        return ok, why
    end
    local key = h.prefix .. rec.voiceId
    local state, derr, forcible = claim(ngx, dict, key, h.claim_ttl, h.busy_wait)
    if forcible then info.evicted = info.evicted + 1 end
    if state == "done" then
        info.duplicates = info.duplicates + 1
        return true
    elseif state == "busy" then
        info.busy = info.busy + 1
        return true
    elseif state == "nodict" then
        h.warn(ngx, ngx.WARN, "nodict", "de-dup dict: ", derr, "; handling voiceId ",
               rec.voiceId, " without de-duplication")
    end
    local ok, why = call(h.on_record, rec)
    if not ok then
        if state == "claimed" then dict:delete(key) end
        return false, why
    end
    info.new = info.new + 1
    local sok, serr, sforcible = dict:set(key, DONE, h.window)
    if sforcible then info.evicted = info.evicted + 1 end
    if not sok then
        h.warn(ngx, ngx.WARN, "noset", "de-dup dict: cannot remember voiceId ", rec.voiceId,
               ": ", serr, "; a re-send of it will be handled again")
    end
    return true
end

-- Every record, then every record that cannot be keyed (on_invalid). Counts in info.
local function handle_all(h, ngx, records, invalid, info)
    local logged = 0
    local function failed(what, pos, id, why)
        info.failed = info.failed + 1
        if logged < MAX_LOGGED_FAILURES then
            logged = logged + 1
            ngx.log(ngx.ERR, "laaffic.push: ", what, " failed for record ", pos,
                    id and (" (voiceId " .. id .. ")") or "", "; the push is answered 500 ",
                    "so the platform re-sends it: ", tostring(why))
        end
    end
    local b = 0 -- invalid records before this one: its place in the push is i + b
    for i = 1, #records do
        while invalid[b + 1] and invalid[b + 1].index <= i + b do b = b + 1 end
        local rec = records[i]
        local ok, why = handle(h, ngx, rec, info)
        if not ok then failed("on_record", i + b, rec.voiceId, why) end
    end
    for i = 1, #invalid do
        local bad = invalid[i]
        local ok, why = call(h.on_invalid, bad.raw, bad.err)
        if not ok then failed("on_invalid", bad.index, nil, why) end
    end
    if logged < info.failed then
        ngx.log(ngx.ERR, "laaffic.push: on_record or on_invalid failed for ", info.failed,
                " of ", info.records, " records of this push")
    end
    if info.evicted > 0 then
        h.warn(ngx, ngx.WARN, "evicted", "de-dup dict is full: dict:add evicted a ",
               "remembered voiceId before its window ended (", info.evicted, " in this ",
               "push); a re-send of an evicted one is handled again: make the ",
               "lua_shared_dict larger or the window shorter")
    end
end

-- One request. Returns the HTTP status and the info table.
local function serve(h)
    local ngx = ngx
    local info = { status = nil, records = 0, new = 0, duplicates = 0, failed = 0, busy = 0,
                   invalid = 0, evicted = 0, bytes = 0, from_file = false }
    ngx.ctx.laaffic_push = info

    local function answer(status, reason, with_counts)
        info.status = status
        return json_answer(status, reason, with_counts and info), info
    end
    local function refuse(status, reason)
        ngx.req.discard_body()
        return answer(status, reason)
    end

    if h.tokens and not token_ok(h, ngx) then
        return refuse(401, "unauthorized")
    end
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Allow"] = "POST"
        return refuse(405, "method not allowed")
    end
    local len = tonumber(ngx.var.http_content_length)
    if len and len > h.max_bytes then
        too_large(h, ngx, len)
        return refuse(413, "body too large")
    end

    local invalid = {}
    local records, err, reason = read_and_parse(h, ngx, info, invalid)
    if not records and err ~= 400 then
        return answer(err, reason)
    end
    if not records then
        ngx.log(ngx.WARN, "laaffic.push: rejected a push from ", ngx.var.remote_addr, ": ", reason)
        if #reason > 200 then reason = reason:sub(1, 200) .. "..." end
        return answer(400, reason)
    end
    info.records, info.invalid = #records + #invalid, #invalid
    handle_all(h, ngx, records, invalid, info)

    if info.failed > 0 then
        return answer(500, format("%d of %d records failed; re-send", info.failed,
                                  info.records), true)
    end
    if info.busy > 0 then
        h.warn(ngx, ngx.WARN, "503", "answered 503: ", info.busy, " record(s) still being ",
               "handled by another delivery after busy_wait (", h.busy_wait, " s); the ",
               "platform re-sends the push, and gives up on them after a few tries")
        return answer(503, format("%d records are being handled by another delivery; " ..
                                  "re-send", info.busy), true)
    end
    return answer(200, "success", true)
end

function _M.handler(opts)
    local fname = "laaffic.push.handler"
    options.check(fname, opts, HANDLER_OPTIONS, 2)
    if opts.token == nil and opts.open ~= true then
        error(fname .. ": give token (pushes are unsigned; open = true to run without one, " ..
              "guarded by nginx's allow/deny)", 2)
    end
    local max_bytes = opts.max_bytes or DEFAULT_MAX_BYTES
    local h = {
        on_record = opts.on_record, on_invalid = opts.on_invalid or log_invalid,
        tokens = opts.token and { unpack_list(type(opts.token) == "table" and opts.token or
                                              { opts.token }) },
        dict = dedup_dict(opts.dict, fname, 3),
        window = opts.window or 86400, claim_ttl = opts.claim_ttl or 120,
        busy_wait = opts.busy_wait or 2, prefix = opts.key_prefix or "lp:",
        max_bytes = max_bytes,
        parse_opts = { max_bytes = max_bytes, max_records = opts.max_records,
                       max_depth = opts.max_depth, utc_offset = opts.utc_offset },
        warn = rate_limited_log(LOG_EVERY), -- one per handler, and so per worker
    }
    return function()
        return serve(h)
    end
end

return _M
