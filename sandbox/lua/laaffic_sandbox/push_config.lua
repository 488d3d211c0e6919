-- laaffic_sandbox.push_config: the push simulator's settings (where to POST the call
-- reports and how), their defaults, their checks, and the copy in the shared dict that
-- POST /_sandbox/push-config changes at run time. parse_url and merge are pure (the
-- specs call them outside nginx).
local type = type
local tostring = tostring
local tonumber = tonumber
local pairs = pairs
local floor = math.floor

local cjson = require "cjson.safe"
local common = require "laaffic_sandbox.common"

local _M = {}

-- The defaults of every push setting; url nil = no pushes.
_M.DEFAULTS = {
    delay_ms = 100,         -- from task creation to the first POST
    duplicates = true,      -- re-send ~10% of the records in a later batch
    shape = "mixed",        -- "array" (bare JSON array), "wrapped" ({"array":[...]}), "mixed"
    batch = 100,            -- records per POST
    retry_s = 1,            -- wait before re-sending a batch that was not answered 200
    retries = 3,            -- re-sends of one batch before it counts as failed
}
local SHAPES = { array = true, wrapped = true, mixed = true }

-- Parses a push URL: only http:// to 127.0.0.1 or localhost (the sandbox must never send
-- anything off this machine). Returns { url, host, port, path } or nil, reason.
function _M.parse_url(url)
    if type(url) ~= "string" then
        return nil, "url must be a string"
    end
    if #url > 2048 or url:find("[%c%s]") then
        return nil, "url must be at most 2048 characters, without spaces or control characters"
    end
    local rest = url:match("^[Hh][Tt][Tt][Pp]://(.*)$")
    if not rest then
        return nil, "only http:// URLs are accepted"
    end
    local authority, path = rest:match("^([^/?#]*)(.*)$")
    if authority:find("@", 1, true) then
        return nil, "user information in the URL is not accepted"
    end
    local host, port = authority:match("^([^:]*):(%d+)$")
    if not host then
        host, port = authority, "80"
    end
    host = host:lower()
    if host ~= "127.0.0.1" and host ~= "localhost" then
        return nil, "the push URL's host must be 127.0.0.1 or localhost: the sandbox never " ..
                    "sends traffic off this machine"
    end
    port = tonumber(port)
    if #authority > #host + 6 or port < 1 or port > 65535 then
        return nil, "the port must be 1 to 65535"
    end
    path = path:gsub("#.*$", "")
    if path == "" then
        path = "/"
    elseif path:sub(1, 1) == "?" then
        path = "/" .. path
    end
    return { url = url, host = host, port = port, path = path }
end

local function number_in(v, lo, hi)
    return type(v) == "number" and v == v and v >= lo and v <= hi
end

local function integer_in(v, lo, hi)
    return type(v) == "number" and v == floor(v) and v >= lo and v <= hi
end

-- setting -> function(value) returning the value to store, or nil, reason
local CHECKS = {
    url = function(v)
        if v == "" or v == cjson.null or v == false then
            return false                        -- off (stored as nil)
        end
        local ok, err = _M.parse_url(v)
        if not ok then
            return nil, "url: " .. err
        end
        return v
    end,
    delay_ms = function(v)
        if number_in(v, 0, 600000) then return v end
        return nil, "delay_ms must be a number from 0 to 600000"
    end,
    duplicates = function(v)
        if type(v) == "boolean" then return v end
        return nil, "duplicates must be true or false"
    end,
    shape = function(v)
        if SHAPES[v] then return v end
        return nil, 'shape must be "array", "wrapped" or "mixed"'
    end,
    batch = function(v)
        if integer_in(v, 1, 10000) then return v end
        return nil, "batch must be an integer from 1 to 10000"
    end,
    retry_s = function(v)
        if number_in(v, 0, 3600) then return v end
        return nil, "retry_s must be a number from 0 to 3600"
    end,
    retries = function(v)
        if integer_in(v, 0, 10) then return v end
        return nil, "retries must be an integer from 0 to 10"
    end,
}

-- Applies the settings of t over base (a full config) and returns the new config, or nil
-- and the reason. t.url = "" or cjson.null turns pushing off.
function _M.merge(base, t)
    if type(t) ~= "table" then
        return nil, "the body must be a JSON object"
    end
    local c = {}
    for k, v in pairs(base) do
        c[k] = v
    end
    for k, v in pairs(t) do
        local check = CHECKS[k]
        if not check then
            return nil, "unknown setting " .. tostring(k) ..
                        " (url, delay_ms, duplicates, shape, batch, retry_s, retries)"
        end
        local value, err = check(v)
        if value == nil then
            return nil, err
        end
        if value == false and k == "url" then
            value = nil
        end
        c[k] = value
    end
    return c
end

-- The settings in force: the run-time ones, else those init() was given.
function _M.current()
    local s = common.dict():get("push:config")
    local c = s and cjson.decode(s)
    if type(c) == "table" then
        return c
    end
    return common.conf.push
end

function _M.json()
    local c = _M.current()
    return cjson.encode({
        url = c.url or "", delay_ms = c.delay_ms, duplicates = c.duplicates, shape = c.shape,
        batch = c.batch, retry_s = c.retry_s, retries = c.retries,
    })
end

-- POST /_sandbox/push-config with t (the decoded body): -> true | nil, reason
function _M.set(t)
    local c, err = _M.merge(_M.current(), t)
    if not c then
        return nil, err
    end
    common.dict():set("push:config", cjson.encode(c))
    return true
end

return _M
