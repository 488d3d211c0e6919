-- laaffic.error: the one error object every laaffic runtime failure returns as `nil, err`.
--
-- It carries what a caller branches on (kind: invalid, status, already_exists, ambiguous,
-- transport, protocol, io, internal) and the context of the failure (code, field, reason,
-- http_status, file/line/column, part/task_name, cause); tostring(err) reads as a
-- sentence. new() accepts these fields only, so no caller can stash headers, a request or
-- the secret in an error by accident. The fields: README.md ("laaffic.error").

local type = type
local pairs = pairs
local tostring = tostring
local setmetatable = setmetatable
local getmetatable = getmetatable
local error = error
local format = string.format
local concat = table.concat

local status = require "laaffic.status"

-- No _VERSION here: the version lives in one place, laaffic.core (see laaffic._VERSION).
local _M = {}

local mt = {}

-- kind -> the head of the sentence tostring() writes.
local kinds = {
    invalid = "invalid task",
    status = "the server refused the task",
    transport = "the request failed",
    ambiguous = "the outcome is unknown and the task may already exist",
    already_exists = "the task already exists",
    protocol = "the server's answer could not be understood",
    io = "could not read the call list",
    internal = "internal error",
}
_M.kinds = {}
for k in pairs(kinds) do
    _M.kinds[k] = k
end

local fields = {
    kind = "string", code = "number", name = "string", message = "string",
    field = "string", reason = "string", http_status = "number",
    file = "string", line = "number", column = "number", part = "number", task_name = "string",
    cause = "string",
}

-- "The task name ..." -> "the task name ...", without touching "AI ..." or "appId ...";
-- a trailing full stop goes, as the sentence continues after it.
local function clause(s)
    s = s:gsub("^(%u)(%l)", function(a, b) return a:lower() .. b end)
    return (s:gsub("%.%s*$", ""))
end

local MAX_REASON = 200 -- bytes of a server's reason a message quotes

-- s cut to MAX_REASON bytes (not inside a UTF-8 sequence), saying how long it was.
local function cut(s)
    if #s <= MAX_REASON then return s end
    local n = MAX_REASON
    while n > 0 and (s:byte(n + 1) or 0) >= 0x80 and s:byte(n + 1) < 0xC0 do n = n - 1 end
    return s:sub(1, n) .. format("... (%d bytes)", #s)
end

function mt.__tostring(e)
    local head = kinds[e.kind] or e.kind
    local body = e.message
    local reason = e.reason and cut(e.reason)
    local reason_used = false
    if not body and reason then
        body, reason_used = reason, true
    end
    if body then
        body = clause(body)
        local f = e.field
        if f and f ~= "" and not body:find(f .. ":", 1, true) then
            body = f .. ": " .. body
        end
    elseif e.field then
        body = e.field
    end

    local extra = {}
    if e.code then
        extra[#extra + 1] = format("status %d", e.code) .. (e.name and (" " .. e.name) or "")
    end
    if reason and not reason_used
       and clause(reason):lower() ~= (e.message and clause(e.message):lower()) then
        extra[#extra + 1] = format("reason %q", reason)
    end
    if e.http_status then
        extra[#extra + 1] = format("HTTP %d", e.http_status)
    end

    local s = "laaffic: " .. head
    if body then
        s = s .. ": " .. body
    end
    if #extra > 0 then
        s = s .. " (" .. concat(extra, ", ") .. ")"
    end
    return s
end

-- A new error object. t.kind is required; see the top of this file for the fields.
-- Misuse (unknown kind or field, wrong field type) raises.
function _M.new(t)
    if type(t) ~= "table" then
        error("laaffic.error.new: table expected, got " .. type(t), 2)
    end
    local e = {}
    for k, v in pairs(t) do
        local want = fields[k]
        if not want then
            error("laaffic.error.new: unknown field '" .. tostring(k) .. "'", 2)
        end
        if k == "code" then
            local c = status.to_code(v)
            if c == nil then
                error("laaffic.error.new: field 'code' must be an integer, got " ..
                      tostring(v), 2)
            end
            v = c
        elseif type(v) ~= want then
            error("laaffic.error.new: field '" .. k .. "' must be a " .. want ..
                  ", got " .. type(v), 2)
        end
        e[k] = v
    end
    if not kinds[e.kind] then
        error("laaffic.error.new: field 'kind' must be one of invalid, status, transport, " ..
              "ambiguous, already_exists, protocol, io, internal; got " .. tostring(e.kind), 2)
    end
    if e.code then
        local s = status.codes[e.code]
        if s then
            e.name = e.name or s.name
            e.message = e.message or s.message
        end
    end
    return setmetatable(e, mt)
end

-- An error of kind "status" for the server's answer: code (number or the string the
-- server sends, "-41"), the server's reason text and the HTTP status, both optional.
-- name and message come from laaffic.status; an undocumented code gets name "unknown"
-- and the server's reason as its message.
-- A status that is not an integer at all makes a "protocol" error instead.
function _M.from_status(code, reason, http_status)
    if reason ~= nil and type(reason) ~= "string" then
        reason = tostring(reason)
    end
    if http_status ~= nil and type(http_status) ~= "number" then
        error("laaffic.error.from_status: http_status must be a number, got " ..
              type(http_status), 2)
    end
    local c = status.to_code(code)
    if c == nil then
        return setmetatable({
            kind = "protocol",
            message = "the answer's status is not an integer: " .. format("%q", tostring(code)),
            reason = reason,
            http_status = http_status,
        }, mt)
    end
    local s = status.codes[c]
    return setmetatable({
        kind = "status",
        code = c,
        name = s and s.name or "unknown",
        message = s and s.message or (reason and cut(reason)) or "an undocumented status",
        reason = reason,
        http_status = http_status,
    }, mt)
end

-- true when x is a laaffic error object.
function _M.is(x)
    return type(x) == "table" and getmetatable(x) == mt
end

return _M
