-- laaffic.status: the status codes the LAAFFIC group-call API answers with.
--
-- One table of every code the two vendor pages document, each with a stable snake_case
-- name and a one-sentence message, so code can branch on names and errors read well.
-- lookup(code), codes[code], names[name], to_code(s): README.md ("laaffic.status").

local type = type
local tonumber = tonumber
local floor = math.floor
local huge = math.huge

-- No _VERSION here: the version lives in one place, laaffic.core (see laaffic._VERSION).
local _M = {}

_M.SUCCESS = 0

-- { code, name, message }, in the order of the vendor's table.
local list = {
    { 0, "success", "The request succeeded." },
    { -1, "auth_failed",
      "Authentication failed; check the API key, the API secret and the appId." },
    { -2, "ip_not_allowed",
      "The request came from an IP address the account does not allow." },
    { -16, "timestamp_expired",
      "The Timestamp header has expired; sign every request (and every retry) at send time." },
    { -18, "server_error",
      "The server hit a program error; check that the request body is valid JSON." },
    { -20, "data_exists",
      "The data already exists (the server does not say which); the task may already " ..
      "exist: check the task list before sending it again." },
    { -21, "invalid_data", "A field value failed the server's data validation." },
    { -22, "invalid_parameter",
      "A parameter is missing or malformed, e.g. the nodeList length differs from " ..
      "recallNum; make them equal." },
    { -23, "data_cap_reached", "A data limit of the account has been reached." },
    { -24, "data_not_found", "The data does not exist." },
    { -26, "fee_lookup_failed", "The server could not look up the fee." },
    { -34, "no_callable_number",
      "No callable number was left when the task last ended; start the group-call " ..
      "task again." },
    { -37, "too_many_tasks",
      "The task exceeds the limit on concurrent group-call tasks; let a running task " ..
      "complete before submitting again." },
    { -38, "text_and_language_required",
      "The conversion text and the language type are required." },
    { -39, "language_unknown", "The language type of the text could not be determined." },
    { -41, "task_name_exists",
      "The task name already exists; task names must be unique per account." },
    { -42, "recall_not_allowed",
      "A recall is allowed only once the task is cancelled or completed." },
    { -60, "template_not_found", "The AI speech template does not exist." },
    { -67, "intent_mismatch",
      "The AI agent's industry intents do not match the recall intents; check " ..
      "recallFlow.recallIntent." },
    { -68, "intent_mismatch",
      "The AI agent's industry intents do not match the recall intents; check " ..
      "recallFlow.recallIntent." },
}

local codes, names = {}, {}
for i = 1, #list do
    local e = list[i]
    codes[e[1]] = { code = e[1], name = e[2], message = e[3] }
    names[e[2]] = e[1]      -- -68 comes after -67, so intent_mismatch -> -68
end

_M.codes = codes
_M.names = names

-- An integer code from a number or a string such as "-41" (surrounding blanks allowed);
-- nil for anything else (fractions, NaN, "abc", "0x10", tables...).
function _M.to_code(v)
    local t = type(v)
    if t == "string" then
        if not v:match("^%s*[-+]?%d+%s*$") then
            return nil
        end
        v = tonumber(v:match("^%s*%+?(.-)%s*$"))
        if v == nil then
            return nil
        end
    elseif t ~= "number" then
        return nil
    end
    if v ~= v or v == huge or v == -huge or v ~= floor(v) then
        return nil
    end
    return floor(v)     -- an integer subtype on Lua 5.4
end

-- { code = <integer>, name = <string>, message = <string> } for a documented code given
-- as a number or a string; nil for an undocumented or malformed one. The table is a fresh
-- copy: the caller may keep or change it.
function _M.lookup(code)
    local c = _M.to_code(code)
    local e = c and codes[c]
    if not e then
        return nil
    end
    return { code = e.code, name = e.name, message = e.message }
end

return _M
