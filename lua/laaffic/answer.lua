-- laaffic.answer: what the server's answer to a task means, for client:create_task.
--
-- A transport gives a response or a failure; this module turns it into the task's keyId
-- or a laaffic.error whose kind says whether the task may exist (ambiguous), exists
-- (already_exists), or was refused. `ambiguous` is the client's table of taskNames whose
-- outcome is unknown: a later -41 for one of them is the earlier attempt's own task.

local type = type
local tostring = tostring
local tonumber = tonumber
local pcall = pcall
local floor = math.floor
local format = string.format

local lerror = require "laaffic.error"

local _M = {}

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
local function api_result(ambiguous, res, decoded, task_name)
    local st = decoded.status
    local code = tonumber(st)
    if code == 0 then
        if task_name then
            ambiguous[task_name] = nil
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
        local earlier = task_name and ambiguous[task_name]
        if task_name then
            ambiguous[task_name] = nil
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
local function mark_ambiguous(ambiguous, task_name)
    if task_name then
        ambiguous[task_name] = true
    end
end

-- The error for a transport call that failed (msg, kind, sent) and is not retried.
local function transport_failure(ambiguous, attempt, task_name, msg, kind, sent)
    if sent == false then
        return nil, lerror.new{ kind = "transport", cause = kind and tostring(kind),
            message = NO_RETRY[kind] and
                (kind == "certificate" and
                 "the server's certificate is not trusted (not retried): " .. tostring(msg)
                 or tostring(msg)) or
                format("could not reach the server after %d attempt(s) (%s): %s",
                       attempt, tostring(kind), tostring(msg)) }
    end
    mark_ambiguous(ambiguous, task_name)
    return nil, lerror.new{ kind = "ambiguous", cause = kind and tostring(kind),
        message = format("the request may have reached the server, so the task may " ..
            "exist (%s: %s). " .. MAY_EXIST, tostring(kind), tostring(msg)) }
end

-- An HTTP answer (res, of the documented shape): the parsed API answer, or nil, err for
-- a status or body that is not one.
local function http_answer(ambiguous, res, task_name)
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
        mark_ambiguous(ambiguous, task_name)
        return nil, lerror.new{ kind = "ambiguous", http_status = res.status, cause = "http",
            message = format("the server answered HTTP %d (%s), so the task may exist. %s",
                             res.status, quote(res.body), MAY_EXIST) }
    end
    local decoded = cjson and cjson.decode(res.body)
    if type(decoded) ~= "table" or decoded.status == nil then
        -- a 2xx that is not the API's answer (cut short, or from something else): the
        -- task may exist
        mark_ambiguous(ambiguous, task_name)
        return nil, lerror.new{ kind = "ambiguous", http_status = res.status, cause = "http",
            message = "the server's answer is not the API's JSON (" .. quote(res.body) ..
                "), so the task may exist. " .. MAY_EXIST }
    end
    return decoded
end

-- A custom transport's response of the wrong shape (what: bad_response's answer):
-- whether it sent the request is unknown.
local function malformed(ambiguous, task_name, what)
    mark_ambiguous(ambiguous, task_name)
    return nil, lerror.new{ kind = "protocol", cause = "transport",
        message = "the transport returned " .. what .. ", not a response " ..
            "{ status = <integer>, headers = <table>, body = <string> }; if it sent " ..
            "the request, the task may exist. " .. MAY_EXIST }
end

_M.NO_RETRY = NO_RETRY
_M.bad_response = bad_response
_M.malformed = malformed
_M.transport_failure = transport_failure
_M.http = http_answer
_M.result = api_result

return _M
