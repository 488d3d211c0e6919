-- laaffic.options: the one checker of the options tables the public functions take
-- (laaffic.new, client:create_tasks, laaffic.recall.*, laaffic.push.parse and .handler).
--
-- Each function states its options as data, one rule per option, in the order they are
-- checked; check() raises at its caller's caller on an unknown option, a wrong type or a
-- value out of range. The message names the function and the option, never the value
-- (it may be a credential): "laaffic.new: option 'retries' must be an integer from 0 to
-- 10, got string". What a rule cannot say (a value that depends on another) stays with
-- the function.

local type = type
local pairs = pairs
local tostring = tostring
local error = error
local getmetatable = getmetatable
local floor = math.floor
local huge = math.huge

local _M = {}

local function is_callable(v)
    if type(v) == "function" then return true end
    local m = getmetatable(v)
    return type(m) == "table" and m.__call ~= nil
end
_M.is_callable = is_callable

-- type name -> does v have it
local TYPES = {
    string = function(v) return type(v) == "string" end,
    number = function(v) return type(v) == "number" end,
    integer = function(v) return type(v) == "number" end, -- integral: checked as a range
    boolean = function(v) return type(v) == "boolean" end,
    table = function(v) return type(v) == "table" end,
    ["function"] = function(v) return type(v) == "function" end,
    callable = is_callable,
}

local function got(v)
    if v == "" then return ", got an empty string" end
    return ", got " .. type(v)
end

-- A number rule's range: min/max inclusive, integer, and finite always.
local function in_range(rule, v)
    if v ~= v or v == huge or v == -huge then return false end
    if rule.type == "integer" and v ~= floor(v) then return false end
    if rule.min and v < rule.min then return false end
    if rule.above and v <= rule.above then return false end
    if rule.max and v > rule.max then return false end
    return true
end

-- What is wrong with value v (not nil) under rule: the message's tail and, for an
-- element of a list, the name to show ("resolve[2]"); nil when it is fine.
local function fault(rule, v)
    local t = rule.type
    if t then
        if not TYPES[t](v) then return "must be " .. rule.what .. got(v) end
        if rule.nonempty and v == "" then return "must be " .. rule.what .. got(v) end
        if (t == "number" or t == "integer") and not in_range(rule, v) then
            return "must be " .. rule.what
        end
    end
    if rule.test then return rule.test(v) end
    return nil
end

-- spec: a list of rules, each { "<name>", type =, what =, min =, max =, above =, nonempty =,
-- required =, test = }:
--   type      "string", "number", "integer", "boolean", "table", "function", "callable"
--             (a function or a table with __call); none: any value (test decides, or
--             another layer, e.g. the C core, checks it)
--   what      what a good value is, for "must be <what>": "an integer from 0 to 10"
--   min, max  inclusive bounds of a number (which must be finite in any case); above:
--             an exclusive lower bound
--   nonempty  a string must not be ""
--   required  true ("must be <what>, got nil"), or the message's tail when it is missing
--   test      function(v) -> nil | tail [, shown name]: a further check
-- Returns the spec, ready for check.
function _M.spec(list)
    local by_name = {}
    for i = 1, #list do by_name[list[i][1]] = list[i] end
    return { list = list, by_name = by_name }
end

-- Checks opts against spec for the function fname ("laaffic.new"), raising at `level`
-- as error() counts it in the function that calls check. opts may be nil when nil_ok.
-- Returns opts, or a new empty table for a nil one.
function _M.check(fname, opts, spec, level, nil_ok)
    level = level + 1
    if opts == nil and nil_ok then return {} end
    if type(opts) ~= "table" then
        error(fname .. ": options table expected, got " .. type(opts), level)
    end
    local by_name = spec.by_name
    for k in pairs(opts) do
        if not by_name[k] then
            error(fname .. ": unknown option '" .. tostring(k) .. "'", level)
        end
    end
    local list = spec.list
    for i = 1, #list do
        local rule = list[i]
        local name = rule[1]
        local v = opts[name]
        local why, shown
        if v == nil then
            local req = rule.required
            if req == true then
                why = "must be " .. rule.what .. ", got nil"
            elseif req then
                why = req
            end
        else
            why, shown = fault(rule, v)
        end
        if why then
            error(fname .. ": option '" .. (shown or name) .. "' " .. why, level)
        end
    end
    return opts
end

return _M
