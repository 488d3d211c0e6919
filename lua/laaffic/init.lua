-- laaffic: a client for the LAAFFIC voice platform's AI Agent group-call API.
--
-- The public API (laaffic.new and the client's methods), the defaults and the send and
-- retry policy. What an answer means is laaffic.answer's, the parts of a long list
-- laaffic.tasks'; the byte work (signing, JSON building and validation, libcurl) is the C
-- module laaffic.core's. The API secret is kept in a private weak-keyed table of this
-- module, never in a field of the client, so dumping a client cannot show it. Runtime
-- failures return nil, err (laaffic.error); misuse raises.
-- Usage: README.md ("API").

local type = type
local pairs = pairs
local tostring = tostring
local setmetatable = setmetatable
local error = error
local floor = math.floor
local min = math.min
local format = string.format
local concat = table.concat
local os_time = os.time
local ipairs = ipairs
local ngx = rawget(_G, "ngx")  -- nil outside nginx
local pcall = pcall
local tonumber = tonumber

local core = require "laaffic.core"
local status = require "laaffic.status"
local lerror = require "laaffic.error"
local answer = require "laaffic.answer"
local tasks = require "laaffic.tasks"
local recall = require "laaffic.recall"
local csv = require "laaffic.csv"
local date = require "laaffic.date"
local curl = require "laaffic.transport.curl"
local curl_options = curl.options
local options = require "laaffic.options"
local is_callable = options.is_callable
-- transport names laaffic.new accepts besides a function (see laaffic.transport.ngx)
local TRANSPORTS = { auto = true, subrequest = true, cosocket = true, resty_http = true, curl = true }
local clock_now = core.now
local is_yieldable = coroutine.isyieldable -- LuaJIT 2.1 and Lua 5.3+
local DEFAULT_SLICE_ROWS = 10000
-- the pause between two slices, which lets the worker's other requests in (1 ms, not 0)
local pause = require("laaffic.transport.ngx_socket").pause
-- The nginx phases whose handlers may yield (ngx.sleep's context in lua-nginx-module's
-- documentation); init, init_worker, set, header_filter, body_filter, log, balancer may not.
local YIELD_PHASES = { rewrite = true, access = true, content = true, timer = true,
                       ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true }

local _M = {
    _VERSION = core._VERSION,   -- the one place the version lives
    core = core,
    status = status,
    error = lerror,
    recall = recall,
    csv = csv,
    encode = core.encode,
    sign = core.sign,
    DEFAULT_BASE_URL = "https://api.laaffic.com",
    DEFAULT_PATH = "/v3/voice/group/call/send/agent",
    CONTENT_TYPE = "application/json;charset=UTF-8",
}

-- The client's methods live in their own table rather than in _M (the lua-resty habit),
-- so a client does not answer to client.new or client.core.
local client = {}
local mt = { __index = client }

-- client -> { key = <api key>, secret = <api secret> }. Weak keys: a client that is
-- collected takes its entry with it. Nothing outside this file can reach this table.
local private = setmetatable({}, { __mode = "k" })

local MAX_TS = 9007199254740992     -- 2^53: beyond it a float timestamp is not exact

-- "bDqJFiq9" -> "bDqJ…": at most 4 characters, and never more than half of the key.
local function mask(key)
    return key:sub(1, min(4, floor(#key / 2))) .. "\226\128\166"
end

-- The Timestamp header value for unix seconds given as a number (a fraction, as from
-- ngx.now(), is dropped) or a string of 1 to 20 digits; nil if it is neither.
local function timestamp_string(ts)
    if type(ts) == "number" then
        if ts ~= ts or ts < 0 or ts >= MAX_TS then
            return nil
        end
        return format("%d", floor(ts))
    elseif type(ts) == "string" and #ts <= 20 and ts:match("^%d+$") then
        return ts
    end
    return nil
end

-- A headers table hides Sign from tostring() as well (pairs() still sees every header).
local headers_mt = {
    __tostring = function(h)
        return format("laaffic.headers(Api-Key=%s, Timestamp=%s, Sign=<redacted>)",
                      mask(tostring(h["Api-Key"])), tostring(h["Timestamp"]))
    end,
}

-- A request table hides Sign from tostring(): it shows method, URL and size only.
local req_mt = {
    __tostring = function(r)
        local info = r.info or {}
        return format("laaffic.request(%s %s, rows=%s, bytes=%s, Sign=<redacted>)",
                      tostring(r.method), tostring(r.url), tostring(info.rows),
                      tostring(info.bytes))
    end,
}

function mt.__tostring(self)
    local p = private[self]
    local parts = {}
    if self.app_id then
        parts[#parts + 1] = "app_id=" .. self.app_id
    end
    parts[#parts + 1] = "api_key=" .. (p and mask(p.key) or "?")
    return "laaffic.client(" .. concat(parts, ", ") .. ")"
end

-- A header value must not hold CR or LF (a new header would start) or NUL (C ends there);
-- %z, not \0: LuaJIT's patterns take no NUL.
local HEADER_BREAK = "[\r\n%z]"
-- A URL may hold only these bytes (RFC 3986: unreserved, reserved and "%"); a space, a
-- control or a non-ASCII byte must be percent-encoded.
local URL_BYTES = "^[%w%-%._~:/%?#%[%]@!%$&'%(%)%*%+,;=%%]*$"

local function header_value(v)
    if type(v) == "string" and v:find(HEADER_BREAK) then
        return "must not contain CR, LF or NUL (it is sent as a header)"
    end
end
local function file_name(v)
    if type(v) == "string" and v:find("%z") then return "must not contain a NUL byte" end
end
local function url_bytes(v)
    if type(v) == "string" and not v:find(URL_BYTES) then
        return "must be a URL without spaces, quotes, control or non-ASCII bytes " ..
               "(percent-encode them)"
    end
end
local function http_url(v)
    return url_bytes(v) or
           (not v:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/]") and "must be an http:// or https:// URL")
end
local function transport_option(v)
    if not is_callable(v) and not TRANSPORTS[v] then
        return "must be a function or one of \"auto\", \"subrequest\", \"cosocket\", " ..
               "\"resty_http\", \"curl\"; got " .. type(v)
    end
end
-- slice_rows: rows per slice of an encode inside nginx; 0 or false: one call
local function slice_rows_option(v)
    if v ~= false and (type(v) ~= "number" or v ~= floor(v) or v < 0 or v > core.LF_MAX_ROWS) then
        return "must be an integer from 0 to " .. core.LF_MAX_ROWS .. " or false (0 and false " ..
               "encode in one call)" .. (type(v) == "number" and "" or ", got " .. type(v))
    end
end
local function resolve_list(v)
    if type(v) ~= "table" then return nil end -- the core says what it must be
    for i, x in ipairs(v) do
        if type(x) == "string" and x:find("[%c%s]") then
            return "must not contain spaces or control bytes", "resolve[" .. i .. "]"
        end
    end
end

local NONEMPTY = "a non-empty string"
local SECONDS = "seconds from 0 to 600"
-- laaffic.new's options, in the order they are checked. The libcurl ones without a rule
-- here are checked by the core (core.http), the nginx ones by laaffic.transport.ngx.
local NEW_OPTIONS = options.spec{
    { "api_key", type = "string", nonempty = true, required = true, what = NONEMPTY,
      test = header_value },
    { "api_secret", type = "string", nonempty = true, required = true, what = NONEMPTY },
    { "user_agent", test = header_value },
    { "cafile", test = file_name }, { "capath", test = file_name },
    { "proxy", test = url_bytes },
    { "resolve", test = resolve_list },
    { "app_id", type = "string", nonempty = true, what = NONEMPTY },
    { "base_url", type = "string", what = "an http:// or https:// URL", test = http_url },
    { "path", type = "string", what = "a string", test = url_bytes },
    { "clock", type = "callable", what = "a function returning unix seconds" },
    { "retries", type = "integer", min = 0, max = 10, what = "an integer from 0 to 10" },
    { "backoff", type = "number", min = 0, max = 600, what = SECONDS },
    { "max_backoff", type = "number", min = 0, max = 600, what = SECONDS },
    { "logger", type = "callable", what = "a function" },
    { "sleep", type = "callable", what = "a function" },
    { "transport", test = transport_option },
    { "strict", type = "boolean", what = "a boolean" },
    { "slice_rows", test = slice_rows_option },
    { "connect_timeout" }, { "timeout" }, { "insecure" }, { "http2" }, { "reuse" },
    { "max_response" },
    { "location" }, { "keepalive" }, { "pool_size" },
}

-- The transport laaffic.new's options ask for: a callable, a libcurl transport, or one of
-- laaffic.transport.ngx's. Raises at `level`.
local function make_transport(o, in_nginx, http_opts, level)
    local transport = o.transport
    if transport == nil then
        transport = in_nginx and "auto" or "curl"
    end
    if type(transport) == "string" and transport ~= "curl" and not in_nginx then
        error("laaffic.new: transport '" .. transport .. "' works only inside nginx", level)
    end
    if transport == "curl" then
        -- made now, so a bad transport option raises here, at the caller's line
        local ok, t = pcall(curl.new, http_opts)
        if not ok then
            error("laaffic.new: " .. tostring(t):gsub("^.-laaffic%.http: ", ""), level)
        end
        return t
    elseif type(transport) == "string" then
        http_opts.location, http_opts.keepalive = o.location, o.keepalive
        http_opts.pool_size = o.pool_size
        local ngx_transport = require("laaffic.transport.ngx")
        local t, terr = ngx_transport[transport](http_opts)
        if not t then
            error("laaffic.new: transport '" .. transport .. "': " .. tostring(terr), level)
        end
        return t
    end
    return transport
end

-- laaffic.new{ api_key =, api_secret =, app_id =, base_url =, path =, clock =, ... }
-- (README.md, "laaffic.new"). Returns the client; a missing or malformed option raises,
-- naming it, never its value.
function _M.new(o)
    options.check("laaffic.new", o, NEW_OPTIONS, 2)
    local base_url = (o.base_url or _M.DEFAULT_BASE_URL):gsub("/+$", "")
    local path = o.path or _M.DEFAULT_PATH
    if path ~= "" and path:sub(1, 1) ~= "/" then
        path = "/" .. path
    end
    local in_nginx = type(ngx) == "table" and type(ngx.get_phase) == "function"
    local http_opts = {}
    for k in pairs(curl_options) do
        http_opts[k] = o[k]
    end
    local self = setmetatable({
        strict = o.strict,  -- true: a rule the pages do not state is an error, not a warning
        -- rows encoded between two yields to nginx (false: the whole task in one call)
        slice_rows = o.slice_rows == nil and DEFAULT_SLICE_ROWS or o.slice_rows ~= 0 and o.slice_rows,
        app_id = o.app_id,
        base_url = base_url,
        path = path,
        url = base_url .. path,
        clock = o.clock or os_time,
        retries = o.retries or 2,
        backoff = o.backoff or 0.5,
        max_backoff = o.max_backoff or 8,
        logger = o.logger,
        sleep = o.sleep or (in_nginx and ngx.sleep or core.sleep),
        transport = make_transport(o, in_nginx, http_opts, 3),
        http_opts = http_opts,
        skew = 0,           -- server clock minus ours, learned from a -16 answer's Date
        ambiguous = {},     -- taskName -> true: sent, outcome unknown
    }, mt)
    private[self] = { key = o.api_key, secret = o.api_secret }
    return self
end

-- The private entry of a client, or a raise at the caller of the method.
local function check_self(self, method)
    local p = type(self) == "table" and private[self]
    if not p then
        error("laaffic: call client:" .. method .. "(...) with a colon, on a client made " ..
              "by laaffic.new", 3)
    end
    return p
end

local function sign_headers(p, ts)
    local sign, err = core.sign(p.key, p.secret, ts)
    if not sign then
        return nil, lerror.new{
            kind = "internal",
            message = "could not compute the request signature: " .. tostring(err),
        }
    end
    return setmetatable({
        ["Content-Type"] = _M.CONTENT_TYPE,
        ["Api-Key"] = p.key,
        ["Timestamp"] = ts,
        ["Sign"] = sign,
    }, headers_mt)
end

-- client:headers([timestamp]) -> headers | nil, err
-- The four request headers (Content-Type, Api-Key, Timestamp, Sign) signed for the given
-- unix time (a number or a string of digits; default: the client's clock now). A
-- transport calls this again before every attempt, as the server rejects a stale
-- timestamp with -16.
function client:headers(timestamp)
    local p = check_self(self, "headers")
    if timestamp == nil then
        timestamp = self.clock()
    end
    local ts = timestamp_string(timestamp)
    if not ts then
        error("laaffic: client:headers: timestamp must be unix seconds (a non-negative " ..
              "number or a string of digits), got " .. tostring(timestamp), 2)
    end
    local h, err = sign_headers(p, ts)
    return h, err
end

-- core.encode_body for the public method fname. A malformed option raises in the core as
-- "bad argument #2 to 'encode_body' (opts.max_rows must be ...)": that is raised again as
-- "laaffic: client:create_tasks: opts.max_rows must be ...", at error level `level` as
-- seen from the caller of this function.
-- Inside nginx, in a phase that may yield, the task is encoded `slice` rows at a time
-- (core.encoder) with a pause between slices, so a 200,000-row task does not hold the
-- worker: the other requests run in between. The result is the one-call encode's.
local function encode_body(t, opts, fname, level, slice)
    local ok, body, info, field, code, where
    if slice and ngx and ngx.get_phase and YIELD_PHASES[ngx.get_phase()] and
       (not is_yieldable or is_yieldable()) then
        local enc
        ok, enc = pcall(core.encoder, t, opts)
        body = enc
        if ok then
            body, info, field, code, where = enc:step(slice)
            while body == true do
                pause()
                body, info, field, code, where = enc:step(slice)
            end
        end
    else
        ok, body, info, field, code, where = pcall(core.encode_body, t, opts)
    end
    if not ok then
        local what = tostring(body):match("bad argument #%d+ to '[^']*' %((.*)%)$")
        if not what then error(body, 0) end
        error("laaffic: " .. fname .. ": " .. what, level + 1)
    end
    return body, info, field, code, where
end

-- build_task's work, for the public method fname; misuse raises at error level `level`
-- (as error(msg, level) would here).
local function build_request(self, p, task, opts, fname, level)
    if type(task) ~= "table" then
        error("laaffic: " .. fname .. ": task must be a table, got " .. type(task), level)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("laaffic: " .. fname .. ": opts must be a table or nil, got " .. type(opts), level)
    end

    local t = task
    if self.app_id and task.appId == nil then
        t = {}
        for k, v in pairs(task) do
            t[k] = v
        end
        t.appId = self.app_id
    end

    if self.strict and (opts == nil or opts.strict == nil) then
        local o = { strict = true }
        for k, v in pairs(opts or {}) do
            o[k] = v
        end
        opts = o
    end
    local body, info, field, code, where = encode_body(t, opts, fname, level + 1, self.slice_rows)
    if not body then
        return nil, lerror.new{
            kind = "invalid",
            message = tostring(info),
            field = field,
            code = code,
            file = where and where.file,
            line = where and where.line,
            column = where and where.column,
        }
    end

    -- Sign after encoding (which may take a while for 200,000 rows), as late as we can.
    local now = self.clock()
    local ts = timestamp_string(now)
    if not ts then
        error("laaffic: " .. fname .. ": the clock returned " .. tostring(now) ..
              ", not unix seconds", level)
    end
    local headers, err = sign_headers(p, ts)
    if not headers then
        return nil, err
    end

    return setmetatable({
        method = "POST",
        url = self.url,
        headers = headers,
        body = body,
        info = info,
    }, req_mt)
end

-- client:build_task(task [, opts]) -> req | nil, err (README.md, "client:build_task").
-- task.appId comes from the client's app_id when the task has none; the caller's table is
-- not changed (its top level is copied). tostring(req) does not show the Sign.
function client:build_task(task, opts)
    local p = check_self(self, "build_task")
    -- not a tail call: it would take this function's level away from the error levels
    local req, err = build_request(self, p, task, opts, "client:build_task", 3)
    return req, err
end

-- ---------------------------------------------------------------------------- sending

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
                 Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Unix time of an HTTP Date header ("Sun, 22 Nov 2026 01:24:05 GMT"), or nil.
function _M.parse_http_date(s)
    if type(s) ~= "string" then return nil end
    local d, mon, y, hh, mm, ss = s:match("^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    local m = MONTHS[mon or ""]
    if not m then return nil end
    return date.unix(tonumber(y), m, tonumber(d), tonumber(hh), tonumber(mm), tonumber(ss), 0)
end

local function log(self, ev)
    local logger = self.logger
    if logger then
        -- a logger that raises must not turn a sent task into an error
        pcall(logger, ev)
    end
end

-- Sends a built request until it is created or fails for good: the retry policy of
-- create_task (below). transport(req) and sleep(seconds) are parameters, so that
-- create_tasks can run several of these at once (transport:parallel).
local function send(self, req, task_name, transport, sleep)
    local started = clock_now()
    local info = req.info
    local attempt = 0
    while true do
        attempt = attempt + 1
        if attempt > 1 or self.skew ~= 0 then
            -- sign afresh, on the server's clock: it rejects a stale timestamp (-16)
            local h, herr = self:headers(floor(self.clock() + self.skew))
            if not h then
                return nil, herr
            end
            req.headers = h
        end
        log(self, { event = "request", method = req.method, url = req.url, attempt = attempt,
                    bytes = info.bytes, task_name = task_name })
        local t0 = clock_now()
        local res, msg, kind, sent = transport(req)
        local elapsed = clock_now() - t0
        local malformed = res and answer.bad_response(res)
        if malformed then
            return answer.malformed(self.ambiguous, task_name, malformed)
        end
        local decoded, err
        if not res then
            log(self, { event = "error", method = req.method, url = req.url, attempt = attempt,
                        kind = kind, sent = sent, elapsed = elapsed, message = msg,
                        task_name = task_name })
            if sent == false and attempt <= self.retries and not answer.NO_RETRY[kind] then
                sleep(math.min(self.max_backoff, self.backoff * 2 ^ (attempt - 1)))
            else
                return answer.transport_failure(self.ambiguous, attempt, task_name, msg, kind, sent)
            end
        else
            log(self, { event = "response", method = req.method, url = req.url,
                        attempt = attempt, status = res.status, elapsed = elapsed,
                        http_version = res.http_version, connects = res.connects,
                        task_name = task_name })
            decoded, err = answer.http(self.ambiguous, res, task_name)
            if not decoded then
                return nil, err
            end
            if tonumber(decoded.status) == -16 and attempt <= self.retries then
                local server = _M.parse_http_date(res.headers and res.headers.date)
                if server then
                    self.skew = server - self.clock()
                end
            else
                local key_id, aerr = answer.result(self.ambiguous, res, decoded, task_name)
                if not key_id then
                    return nil, aerr
                end
                return key_id, {
                    attempts = attempt, http_status = res.status, rows = info.rows,
                    truncated = info.truncated, bytes = info.bytes, warnings = info.warnings,
                    time = clock_now() - started,
                }
            end
        end
    end
end

-- client:create_task(task [, opts]) -> key_id, info | nil, err (README.md,
-- "client:create_task"). Encodes once, signs at every attempt (send's retry policy); a
-- list longer than one task is refused before anything is sent.
function client:create_task(task, opts)
    local p = check_self(self, "create_task")
    local req, err = build_request(self, p, task, opts, "client:create_task", 3)
    if not req then
        return nil, err
    end
    if req.info.more then
        req.body:close()
        return nil, lerror.new{ kind = "invalid", field = "numberInfoList",
            code = -21, message = "numberInfoList: the list has more rows than one task " ..
                "takes; nothing was sent: client:create_tasks splits it into several tasks" }
    end
    return send(self, req, req.info.task_name or task.taskName, self.transport, self.sleep)
end

-- ---------------------------------------------------------------------------- create_tasks

-- the build_task options create_tasks passes on (the core checks them)
local ENCODE_OPTS = { "require_texts", "truncate", "max_rows", "rejects", "max_rejects", "strict" }
local TASKS_OPTIONS = { { "concurrency", type = "integer", min = 1, max = 64,
                          what = "an integer from 1 to 64" },
                        { "on_progress", type = "callable", what = "a function" } }
for _, k in ipairs(ENCODE_OPTS) do
    TASKS_OPTIONS[#TASKS_OPTIONS + 1] = { k }
end
TASKS_OPTIONS = options.spec(TASKS_OPTIONS)

-- client:create_tasks(task [, opts]) -> result, err (README.md, "client:create_tasks")
-- A list of any length as parts named taskName-part-k, decided by the list and max_rows
-- only, so a re-run finds the parts it created as already_exists. After the first failure
-- no new part starts; the parts under way finish.
function client:create_tasks(task, opts)
    local p = check_self(self, "create_tasks")
    if type(task) ~= "table" then
        error("laaffic: client:create_tasks: task must be a table, got " .. type(task), 2)
    end
    opts = options.check("laaffic: client:create_tasks", opts, TASKS_OPTIONS, 2, true)
    local enc = {}
    for _, k in ipairs(ENCODE_OPTS) do
        enc[k] = opts[k]
    end
    -- part k of a table, or the next part of a CSV source: req, or nil, err (err.part set)
    local function build(e, k)
        e.part = not csv.is(task.numberInfoList) and k or nil
        -- build_request (1) <- build (2) <- build_part (3) <- tasks.run (4) <-
        -- create_tasks (5) <- its caller (6)
        local req, err = build_request(self, p, task, e, "client:create_tasks", 6)
        if not req then
            err.part = k
            return nil, err
        end
        return req
    end
    local function send_part(req, task_name, transport, sleep)
        local key_id, info = send(self, req, task_name, transport, sleep)
        return key_id, info
    end
    local result, err = tasks.run(task, opts, enc, build, send_part, self.transport, self.sleep)
    return result, err
end

-- client:close(): releases the transport's connection. The client can still build tasks.
function client:close()
    check_self(self, "close")
    local t = self.transport
    if type(t) == "table" and t.close then
        t:close()
    end
end

return _M
