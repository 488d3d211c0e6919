-- laaffic: a client for the LAAFFIC voice platform's AI Agent group-call API.
--
--   local laaffic = require "laaffic"
--   local client = laaffic.new{ api_key = "...", api_secret = "...", app_id = "..." }
--   local req, err = client:build_task{
--       taskName = "reminders 2026-04-01", agentId = 110,
--       numberInfoList = { { calleeNumber = "919777654321", text1 = "David" } },
--       recallFlow = laaffic.recall.by_intent{ intents = { laaffic.recall.NOT_CONNECTED },
--                                              interval = 1, rounds = 2, agent_id = 110 },
--   }
--   if not req then return nil, err end     -- err: a laaffic.error object
--   -- req.method, req.url, req.headers, tostring(req.body)
--
-- The byte work (signing, JSON building and validation) is done by the C module
-- laaffic.core; this module owns the public API, defaults and the error objects.
--
-- The API secret is never stored in a field of the client: it lives in a private,
-- weak-keyed table of this module, keyed by the client object, so dumping the client (or
-- its metatable) cannot show it. tostring(client) shows the app_id and a masked key.
--
-- Runtime failures return nil, err (a laaffic.error object); misuse (a missing or
-- malformed option, a method called with a dot) raises.

local type = type
local pairs = pairs
local tostring = tostring
local setmetatable = setmetatable
local getmetatable = getmetatable
local error = error
local floor = math.floor
local min = math.min
local format = string.format
local concat = table.concat
local os_time = os.time

local core = require "laaffic.core"
local status = require "laaffic.status"
local lerror = require "laaffic.error"
local recall = require "laaffic.recall"

local _M = {
    _VERSION = core._VERSION,   -- the one place the version lives
    core = core,
    status = status,
    error = lerror,
    recall = recall,
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

local function is_callable(f)
    if type(f) == "function" then
        return true
    end
    local m = getmetatable(f)
    return type(m) == "table" and m.__call ~= nil
end

local options = {
    api_key = true, api_secret = true, app_id = true, base_url = true, path = true,
    clock = true,
}

-- laaffic.new{ api_key =, api_secret =, app_id =, base_url =, path =, clock = }
--   api_key, api_secret  required, non-empty strings.
--   app_id               optional string: build_task fills task.appId with it when the
--                        task has none.
--   base_url             default "https://api.laaffic.com" (a trailing "/" is dropped).
--   path                 default "/v3/voice/group/call/send/agent" (one vendor page shows
--                        it without "/v3").
--   clock                optional function returning unix seconds (default os.time), used
--                        to sign at build time; tests pass their own.
-- Returns the client. A missing or malformed option raises, naming it.
function _M.new(o)
    if type(o) ~= "table" then
        error("laaffic.new: options table expected, got " .. type(o), 2)
    end
    for k in pairs(o) do
        if not options[k] then
            error("laaffic.new: unknown option '" .. tostring(k) .. "'", 2)
        end
    end
    -- The messages name the option and the value's type, never the value: it may be
    -- the secret.
    for _, name in pairs({ "api_key", "api_secret" }) do
        local v = o[name]
        if type(v) ~= "string" or v == "" then
            error("laaffic.new: option '" .. name .. "' must be a non-empty string, got " ..
                  (v == "" and "an empty string" or type(v)), 2)
        end
    end

    local app_id = o.app_id
    if app_id ~= nil and (type(app_id) ~= "string" or app_id == "") then
        error("laaffic.new: option 'app_id' must be a non-empty string, got " ..
              (app_id == "" and "an empty string" or type(app_id)), 2)
    end

    local base_url = o.base_url
    if base_url == nil then
        base_url = _M.DEFAULT_BASE_URL
    end
    if type(base_url) ~= "string" or not base_url:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/]") then
        error("laaffic.new: option 'base_url' must be an http:// or https:// URL, got " ..
              (type(base_url) == "string" and format("%q", base_url) or type(base_url)), 2)
    end
    base_url = base_url:gsub("/+$", "")

    local path = o.path
    if path == nil then
        path = _M.DEFAULT_PATH
    end
    if type(path) ~= "string" then
        error("laaffic.new: option 'path' must be a string, got " .. type(path), 2)
    end
    if path ~= "" and path:sub(1, 1) ~= "/" then
        path = "/" .. path
    end

    local clock = o.clock
    if clock == nil then
        clock = os_time
    end
    if not is_callable(clock) then
        error("laaffic.new: option 'clock' must be a function returning unix seconds, got " ..
              type(clock), 2)
    end

    local self = setmetatable({
        app_id = app_id,
        base_url = base_url,
        path = path,
        url = base_url .. path,
        clock = clock,
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

-- client:build_task(task [, opts]) -> req | nil, err
-- Validates and encodes the task (laaffic.core.encode_body; opts passes through:
-- require_texts, truncate) and signs it with the clock's time now. task.appId comes from
-- the client's app_id when the task has none; the caller's table is not changed (only
-- its top level is copied: numberInfoList is shared, not copied).
-- req = { method = "POST", url =, headers =, body = <laaffic.body>, info = { rows =,
-- truncated =, bytes = } }; tostring(req) does not show the Sign.
-- An invalid task gives nil and a laaffic.error of kind "invalid" (field, code, name).
function client:build_task(task, opts)
    local p = check_self(self, "build_task")
    if type(task) ~= "table" then
        error("laaffic: client:build_task: task must be a table, got " .. type(task), 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("laaffic: client:build_task: opts must be a table or nil, got " .. type(opts), 2)
    end

    local t = task
    if self.app_id and task.appId == nil then
        t = {}
        for k, v in pairs(task) do
            t[k] = v
        end
        t.appId = self.app_id
    end

    local body, info, field, code = core.encode_body(t, opts)
    if not body then
        return nil, lerror.new{
            kind = "invalid",
            message = tostring(info),
            field = field,
            code = code,
        }
    end

    -- Sign after encoding (which may take a while for 200,000 rows), as late as we can.
    local now = self.clock()
    local ts = timestamp_string(now)
    if not ts then
        error("laaffic: client:build_task: the clock returned " .. tostring(now) ..
              ", not unix seconds", 2)
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

return _M
