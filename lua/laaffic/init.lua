-- laaffic: a client for the LAAFFIC voice platform's AI Agent group-call API.
--
-- The public API (laaffic.new and the client's methods), the defaults, the send and retry
-- policy and create_tasks' splitting of a long list; the byte work (signing, JSON building
-- and validation, libcurl) is the C module laaffic.core's. The API secret is kept in a
-- private weak-keyed table of this module, never in a field of the client, so dumping a
-- client cannot show it. Runtime failures return nil, err (laaffic.error); misuse raises.
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
local function encode_body(t, opts, fname, level)
    local ok, body, info, field, code, where = pcall(core.encode_body, t, opts)
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
    local body, info, field, code, where = encode_body(t, opts, fname, level + 1)
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

local cjson_ok, cjson = pcall(require, "cjson.safe")
if not cjson_ok then
    cjson = nil
end

local MAX_QUOTE = 200
local MAY_EXIST = "Do not re-send blindly: re-send with the same taskName and a -41 " ..
                  "answer (kind already_exists) means it was created"

-- failures that sent nothing but that another attempt cannot mend
local NO_RETRY = { url = true, phase = true, config = true, certificate = true }

-- A bounded, single-line quote of what a server sent, for error messages.
local function quote(s)
    s = tostring(s or "")
    local cut = #s > MAX_QUOTE
    s = s:sub(1, MAX_QUOTE):gsub("[%c]", " ")
    return format("%q", s) .. (cut and "..." or "")
end

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

-- The text of the number given for key at the top level of the JSON object body (the
-- last one, as cjson keeps the last of duplicate keys), or nil. body is valid JSON: cjson
-- decoded it. (cjson has no way to give a number's digits: it reads a double.)
local function top_level_number(body, key)
    local depth, i, found = 0, 1, nil
    while true do
        local s, _, c = body:find('(["{}%[%]])', i)
        if not s then return found end
        if c == '"' then
            local j = s + 1 -- to the closing quote; a backslash escapes the byte after it
            while true do
                local q = body:find('["\\]', j)
                if not q then return found end
                if body:byte(q) == 92 then j = q + 2 else j = q; break end
            end
            i = j + 1
            if depth == 1 then -- a string followed by ':' here is a key of the top object
                local _, e, num = body:find("^%s*:%s*(%-?%d[%d%.eE+%-]*)", i)
                if e and cjson.decode(body:sub(s, j)) == key then
                    found, i = num, e + 1
                end
            end
        else
            depth = depth + ((c == "{" or c == "[") and 1 or -1)
            i = s + 1
        end
    end
end

local MAX_KEY_ID_DIGITS = 20
local TWO53 = 2 ^ 53

-- The keyId of a success answer's data: a positive integer, sent as a JSON number or a
-- string of digits. Returns an integer below 2^53, the string of its digits from 2^53 on
-- (a double would round 9007199254740993 to ...992), or nil for anything else.
local function key_id_of(data, body)
    local digits = data
    if type(data) == "number" then
        digits = top_level_number(body, "data")
        if not (digits and digits:match("^%d+$")) then
            -- 1e3 or 12.0: the value, when it is an integer a double holds exactly
            if data == floor(data) and data > 0 and data < TWO53 then
                return math.tointeger and math.tointeger(data) or data
            end
            return nil
        end
    end
    if type(digits) ~= "string" or #digits > MAX_KEY_ID_DIGITS or not digits:match("^[1-9]%d*$") then
        return nil
    end
    local n = tonumber(digits)
    if n < TWO53 then
        return math.tointeger and math.tointeger(n) or n
    end
    return digits
end

-- A success without a readable keyId: the task exists (the server said so), so the error
-- must not invite a second send.
local function unreadable_key_id(res, what)
    return nil, lerror.new{ kind = "protocol", code = 0, http_status = res.status,
        message = "the server created the task (status 0) but " .. what .. "; the task " ..
                  "exists: do not send it again, look its keyId up in the console" }
end

-- Turns a parsed API answer into key_id or nil, err.
local function api_result(self, res, decoded, task_name)
    local st = decoded.status
    local code = tonumber(st)
    if code == 0 then
        if task_name then
            self.ambiguous[task_name] = nil
        end
        local data = decoded.data
        if data == nil or data == (cjson and cjson.null) then
            return unreadable_key_id(res, "sent no keyId (data)")
        end
        local key_id = key_id_of(data, res.body)
        if not key_id then
            local shown = type(data) == "string" and quote(data) or
                          type(data) == "number" and (top_level_number(res.body, "data") or
                                                      tostring(data)) or
                          type(data) == "table" and "an object or a list" or tostring(data)
            return unreadable_key_id(res, "its keyId is unreadable: data is " .. shown ..
                                     ", not a positive integer")
        end
        return key_id
    end
    local reason = decoded.reason
    if type(reason) ~= "string" then reason = nil end
    local err = lerror.from_status(st, reason, res.status)
    if code == -20 then
        -- "Data existing" names no task: it may or may not be this one, so it is a
        -- status error (never counted as created) that says how to find out
        err.message = format("the server answered -20 \"data existing\" without saying " ..
            "what exists: a task named %s may already exist (a request for it whose answer " ..
            "was lost may have landed). Check the task list in the LAAFFIC console for it; " ..
            "if it is not there, send again", format("%q", tostring(task_name)))
    elseif code == -41 then
        local earlier = task_name and self.ambiguous[task_name]
        if task_name then
            self.ambiguous[task_name] = nil
        end
        err = lerror.new{
            kind = "already_exists", code = code, reason = reason, http_status = res.status,
            message = earlier and
                ("a task named " .. format("%q", task_name) .. " already exists: the earlier " ..
                 "attempt whose answer was lost did create it") or
                ("a task named " .. format("%q", tostring(task_name)) .. " already exists"),
        }
    end
    return nil, err
end

-- What is wrong with a transport's response, or nil when it has the documented shape:
-- { status = <integer 100-599>, headers = <table> or nil, body = <string> or nil }.
local function bad_response(res)
    if type(res) ~= "table" then
        return "a " .. type(res)
    end
    local st = res.status
    if type(st) ~= "number" or st ~= floor(st) or st < 100 or st > 599 then
        return "a table whose status is " ..
               (type(st) == "number" and tostring(st) or ("a " .. type(st)))
    end
    if res.body ~= nil and type(res.body) ~= "string" then
        return "a table whose body is a " .. type(res.body)
    end
    if res.headers ~= nil and type(res.headers) ~= "table" then
        return "a table whose headers are a " .. type(res.headers)
    end
    return nil
end

-- The outcome of this taskName is unknown: a later -41 for it is our own task.
local function mark_ambiguous(self, task_name)
    if task_name then
        self.ambiguous[task_name] = true
    end
end

-- The error for a transport call that failed (msg, kind, sent) and is not retried.
local function transport_failure(self, attempt, task_name, msg, kind, sent)
    if sent == false then
        return nil, lerror.new{ kind = "transport", cause = kind and tostring(kind),
            message = NO_RETRY[kind] and
                (kind == "certificate" and
                 "the server's certificate is not trusted (not retried): " .. tostring(msg)
                 or tostring(msg)) or
                format("could not reach the server after %d attempt(s) (%s): %s",
                       attempt, tostring(kind), tostring(msg)) }
    end
    mark_ambiguous(self, task_name)
    return nil, lerror.new{ kind = "ambiguous", cause = kind and tostring(kind),
        message = format("the request may have reached the server, so the task may " ..
            "exist (%s: %s). " .. MAY_EXIST, tostring(kind), tostring(msg)) }
end

-- An HTTP answer (res, of the documented shape): the parsed API answer, or nil, err for
-- a status or body that is not one.
local function http_answer(self, res, task_name)
    if res.status >= 300 and res.status <= 399 then
        -- never followed: a POST carrying Api-Key and Sign goes to one host only
        local loc = res.headers and res.headers.location
        return nil, lerror.new{ kind = "protocol", http_status = res.status,
            message = format("the server answered HTTP %d, a redirect%s, which is not " ..
                "followed for a request carrying credentials: check base_url",
                res.status, loc and (" to " .. quote(loc)) or "") }
    end
    if res.status >= 400 and res.status <= 499 then
        return nil, lerror.new{ kind = "protocol", http_status = res.status,
            message = format("the server answered HTTP %d: %s", res.status, quote(res.body)) }
    end
    if res.status >= 500 or res.status < 200 then
        -- the server may have created the task before failing
        mark_ambiguous(self, task_name)
        return nil, lerror.new{ kind = "ambiguous", http_status = res.status, cause = "http",
            message = format("the server answered HTTP %d (%s), so the task may exist. %s",
                             res.status, quote(res.body), MAY_EXIST) }
    end
    local decoded = cjson and cjson.decode(res.body)
    if type(decoded) ~= "table" or decoded.status == nil then
        -- a 2xx that is not the API's answer (cut short, or from something else): the
        -- task may exist
        mark_ambiguous(self, task_name)
        return nil, lerror.new{ kind = "ambiguous", http_status = res.status, cause = "http",
            message = "the server's answer is not the API's JSON (" .. quote(res.body) ..
                "), so the task may exist. " .. MAY_EXIST }
    end
    return decoded
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
        local malformed = res and bad_response(res)
        if malformed then
            -- a custom transport's bug: whether it sent the request is unknown
            mark_ambiguous(self, task_name)
            return nil, lerror.new{ kind = "protocol", cause = "transport",
                message = "the transport returned " .. malformed .. ", not a response " ..
                    "{ status = <integer>, headers = <table>, body = <string> }; if it sent " ..
                    "the request, the task may exist. " .. MAY_EXIST }
        end
        local decoded, err
        if not res then
            log(self, { event = "error", method = req.method, url = req.url, attempt = attempt,
                        kind = kind, sent = sent, elapsed = elapsed, message = msg,
                        task_name = task_name })
            if sent == false and attempt <= self.retries and not NO_RETRY[kind] then
                sleep(math.min(self.max_backoff, self.backoff * 2 ^ (attempt - 1)))
            else
                return transport_failure(self, attempt, task_name, msg, kind, sent)
            end
        else
            log(self, { event = "response", method = req.method, url = req.url,
                        attempt = attempt, status = res.status, elapsed = elapsed,
                        http_version = res.http_version, connects = res.connects,
                        task_name = task_name })
            decoded, err = http_answer(self, res, task_name)
            if not decoded then
                return nil, err
            end
            if tonumber(decoded.status) == -16 and attempt <= self.retries then
                local server = _M.parse_http_date(res.headers and res.headers.date)
                if server then
                    self.skew = server - self.clock()
                end
            else
                local key_id, aerr = api_result(self, res, decoded, task_name)
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

local DEFAULT_CONCURRENCY = 4
-- the build_task options create_tasks passes on (the core checks them)
local ENCODE_OPTS = { "require_texts", "truncate", "max_rows", "rejects", "max_rejects", "strict" }
local TASKS_OPTIONS = { { "concurrency", type = "integer", min = 1, max = 64,
                          what = "an integer from 1 to 64" },
                        { "on_progress", type = "callable", what = "a function" } }
for _, k in ipairs(ENCODE_OPTS) do
    TASKS_OPTIONS[#TASKS_OPTIONS + 1] = { k }
end
TASKS_OPTIONS = options.spec(TASKS_OPTIONS)

-- The next part of a list as a built request: part k of a table, or the next part of a
-- CSV source. Returns req, or nil, err (err.part set).
local function next_part(self, p, task, enc, k)
    enc.part = not csv.is(task.numberInfoList) and k or nil
    -- build_request (1) <- next_part (2) <- build_part (3) <- create_tasks (4) <- its caller
    local req, err = build_request(self, p, task, enc, "client:create_tasks", 5)
    if not req then
        err.part = k
        return nil, err
    end
    return req
end

-- The state of one create_tasks call: the result being filled, the progress shown to
-- on_progress, the part reached (k) and whether the list has more.
local function new_run(self, p, task, opts)
    local enc = {}
    for _, k in ipairs(ENCODE_OPTS) do
        enc[k] = opts[k]
    end
    local list = task.numberInfoList
    return {
        client = self, p = p, task = task, enc = enc, on_progress = opts.on_progress,
        src = csv.is(list) and list or nil, started = clock_now(),
        result = { parts = {}, created = 0, existing = 0, failed = 0, rows = 0,
                   rejected = 0, duplicates = 0, warnings = {} },
        first_err = nil,
        in_flight = 0,          -- parts being sent
        progress = { parts = 0, done = 0, created = 0, failed = 0, rows = 0 },
        progress_error = nil,   -- what on_progress raised: it is not called again
        more = true, k = 0,
    }
end

local function report(run, finished)
    if not run.on_progress or run.progress_error then return end
    local result, progress = run.result, run.progress
    progress.parts, progress.created = #result.parts, result.created + result.existing
    progress.failed, progress.rows = result.failed, result.rows
    progress.in_flight = run.in_flight
    if run.src then
        local si = run.src:info()
        progress.bytes, progress.size = si.bytes, si.size
    end
    progress.finished = finished or nil
    -- a raise must not stop the parts under way (their keyIds would be lost)
    local ok, perr = pcall(run.on_progress, progress)
    if not ok then
        run.progress_error = tostring(perr)
    end
end

-- A part is done: send() gave key_id or err.
local function record(run, entry, key_id, err)
    local result = run.result
    if key_id then
        entry.key_id = key_id
        result.created = result.created + 1
    elseif err.kind == "already_exists" then
        entry.exists, entry.error = true, err
        result.existing = result.existing + 1
    else
        entry.error = err
        err.part, err.task_name = entry.part, entry.task_name
        result.failed = result.failed + 1
        run.first_err = run.first_err or err
    end
    run.progress.done = run.progress.done + 1
    run.in_flight = run.in_flight - 1
    report(run)
end

-- A CSV file that changes while it is read would mix two versions or lose rows: after
-- reading each part, before sending it, the file must still be the one opened. Returns
-- nil, or the error (and closes req's body).
local function changed(run, req)
    local src, k = run.src, run.k
    local ok, why = src:check()
    if ok then return nil end
    if req then req.body:close() end
    return lerror.new{ kind = "io", file = src:info().name, part = k,
        message = format("%s changed while it was being sent (%s): part %d and the " ..
            "parts after it were not sent%s", src:info().name, tostring(why), k,
            k > 1 and "; the parts before it went out (see their results)" or "") }
end

-- Builds the next part: req, entry; or nil when the list is done, reading it failed, or
-- a part failed (no new part is started then).
local function build_part(run)
    if not run.more or run.first_err then
        return nil
    end
    local result = run.result
    run.k = run.k + 1
    local k = run.k
    local req, err = next_part(run.client, run.p, run.task, run.enc, k)
    local cerr = run.src and changed(run, req)
    if cerr then req, err = nil, cerr end
    local entry = { part = k }
    result.parts[k] = entry
    if not req then
        run.more = false
        entry.error = err
        result.failed = result.failed + 1
        run.first_err = run.first_err or err
        report(run)
        return nil
    end
    local info = req.info
    if k == 1 then          -- the task's fields, the same in every part
        result.warnings = info.warnings
    end
    run.more = info.more and true or false
    entry.task_name, entry.rows = info.task_name or run.task.taskName, info.rows
    result.rows = result.rows + info.rows
    result.rejected = result.rejected + (info.rejected or 0)
    result.duplicates = result.duplicates + (info.duplicates or 0)
    run.in_flight = run.in_flight + 1
    report(run)
    return req, entry
end

-- Sends the parts, starting with the one already built (req, entry): up to concurrency
-- at once when the transport can run requests in parallel (transport:parallel, as
-- laaffic.transport.curl's), else one at a time through the transport.
local function send_parts(self, run, req, entry, concurrency)
    local function next_req()
        if req then
            local r, e = req, entry
            req, entry = nil, nil
            return r, e
        end
        return build_part(run)
    end
    local t = self.transport
    if concurrency > 1 and type(t) == "table" and t.parallel then
        t:parallel(concurrency, function()
            local r, e = next_req()
            if not r then return nil end
            return function(send_fn, sleep_fn)
                return send(self, r, e.task_name, send_fn, sleep_fn)
            end, { req = r, entry = e }
        end, function(job, key_id, err)
            job.req.body:close()
            record(run, job.entry, key_id, err)
        end)
        return
    end
    while true do
        local r, e = next_req()
        if not r then break end
        local key_id, err = send(self, r, e.task_name, t, self.sleep)
        r.body:close()
        record(run, e, key_id, err)
    end
end

-- create_tasks' answer once every part is done: result, and the first failure (or what
-- on_progress raised) as one error.
local function run_result(run)
    local result, first_err = run.result, run.first_err
    result.time = clock_now() - run.started
    report(run, true)
    result.progress_error = run.progress_error
    if first_err then
        return result, lerror.new{ kind = first_err.kind, code = first_err.code,
            field = first_err.field, reason = first_err.reason,
            http_status = first_err.http_status, file = first_err.file,
            line = first_err.line, column = first_err.column, part = first_err.part,
            task_name = first_err.task_name,
            message = format("%d of %d part(s) failed; part %d%s: %s", result.failed,
                             #result.parts, first_err.part or 0,
                             first_err.task_name and format(" (%q)", first_err.task_name) or "",
                             tostring(first_err.message)) }
    end
    if run.progress_error then
        return result, lerror.new{ kind = "internal", message = "opts.on_progress raised, " ..
            "and was not called again (every part was sent as usual: see the result): " ..
            run.progress_error }
    end
    return result
end

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
    local run = new_run(self, p, task, opts)
    -- the first part here, so that a malformed encoder option raises at the caller
    local req, entry = build_part(run)
    send_parts(self, run, req, entry, opts.concurrency or DEFAULT_CONCURRENCY)
    local result, err = run_result(run)
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
