-- laaffic.recall: builders for a task's recallFlow.
--
-- Each helper (all, failed, by_intent) returns a plain table ready for task.recallFlow,
-- with one nodeList entry per round (the server answers -22 when nodeList's length is not
-- recallNum) and agentIds as strings, as in the vendor's examples. rounds is bounded by
-- MAX_ROUNDS, laaffic's bound (a typo such as 1e9 must not build a billion nodes). The
-- options: README.md ("laaffic.recall").

local type = type
local pairs = pairs
local error = error
local pcall = pcall
local setmetatable = setmetatable
local getmetatable = getmetatable
local floor = math.floor
local huge = math.huge
local format = string.format

local options = require "laaffic.options"

-- No _VERSION here: the version lives in one place, laaffic.core (see laaffic._VERSION).
local _M = {}

_M.NOT_CONNECTED = "99999"

_M.ALL = 0
_M.FAILED = 1
_M.BY_INTENT = 3

local MAX_AGENT_ID = 2147483647
-- laaffic's bound on rounds (one nodeList entry each), not the vendor's: see above
local MAX_ROUNDS = 1000
_M.MAX_ROUNDS = MAX_ROUNDS

local function is_integer(v)
    return type(v) == "number" and v == v and v > -huge and v < huge and v == floor(v)
end

-- Misuse found anywhere inside build() is thrown as a tagged table; the public helper
-- catches it and re-raises the message at its caller's level (error(msg, 2)), however
-- deep the check was.
local misuse_mt = {}

local function fail(fname, msg)
    error(setmetatable({ "laaffic.recall." .. fname .. ": " .. msg }, misuse_mt), 0)
end

local function is_sequence(t)
    local n = #t
    for k in pairs(t) do
        if not is_integer(k) or k < 1 or k > n then
            return false
        end
    end
    return true
end

-- An agent id as the string the vendor's examples send ("110").
local function agent_string(fname, opt, v)
    if is_integer(v) then
        if v < 1 or v > MAX_AGENT_ID then
            fail(fname, "option '" .. opt .. "' must be an agent id between 1 and " ..
                        MAX_AGENT_ID)
        end
        return format("%d", v)
    end
    if type(v) == "string" and #v >= 1 and #v <= 10 and v:match("^%d+$") then
        return v
    end
    fail(fname, "option '" .. opt .. "' must be a positive integer or a string of 1 to " ..
                "10 digits, got " .. (v == "" and "an empty string" or type(v)))
end

-- The options every helper takes, in the order they are checked (laaffic.options); what
-- depends on another option (agent_id or agents, intents for by_intent only) is build's.
local OPTIONS = options.spec{
    { "rounds", type = "integer", min = 1, what = "a positive integer",
      test = function(v)
          if v > MAX_ROUNDS then
              return "must be at most " .. MAX_ROUNDS .. " (recall.MAX_ROUNDS)"
          end
      end },
    { "interval", type = "integer", min = 1, what = "a positive integer (minutes)",
      required = "(minutes between rounds) is required" },
    { "agent_id" }, { "agents" },
    { "intents", type = "table", what = "a list of intent codes" },
}

local function build(fname, recall_type, o)
    local rounds = o.rounds and floor(o.rounds)    -- 2.0 -> 2 (an integer on Lua 5.4)
    local interval = floor(o.interval)
    local nodes = {}
    local agents, agent_id = o.agents, o.agent_id
    if agents ~= nil and agent_id ~= nil then
        fail(fname, "give either option 'agent_id' or option 'agents', not both")
    elseif agents ~= nil then
        if type(agents) ~= "table" or not is_sequence(agents) or #agents == 0 then
            fail(fname, "option 'agents' must be a non-empty list of agent ids")
        end
        if #agents > MAX_ROUNDS then
            fail(fname, "option 'agents' must list at most " .. MAX_ROUNDS .. " agents " ..
                        "(recall.MAX_ROUNDS), got " .. #agents)
        end
        if rounds == nil then
            rounds = #agents
        elseif #agents ~= rounds then
            fail(fname, "option 'agents' must give one agent per round: " .. #agents ..
                        " agents for " .. rounds .. " rounds")
        end
        for i = 1, #agents do
            nodes[i] = { agentId = agent_string(fname, "agents[" .. i .. "]", agents[i]) }
        end
    elseif agent_id ~= nil then
        if rounds == nil then
            fail(fname, "option 'rounds' is required with option 'agent_id'")
        end
        local id = agent_string(fname, "agent_id", agent_id)
        for i = 1, rounds do
            nodes[i] = { agentId = id }
        end
    else
        fail(fname, "option 'agent_id' (or 'agents', one per round) is required")
    end

    local flow = {
        recallType = recall_type,
        recallInterval = interval,
        recallNum = rounds,
        nodeList = nodes,
    }

    local intents = o.intents
    if recall_type == _M.BY_INTENT then
        if intents == nil then
            fail(fname, "option 'intents' (a list of intent codes, e.g. { recall.NOT_CONNECTED })"
                        .. " is required")
        end
        if not is_sequence(intents) then
            fail(fname, "option 'intents' must be a list of intent codes")
        end
        if #intents == 0 then
            fail(fname, "option 'intents' must not be empty")
        end
        local list = {}
        for i = 1, #intents do
            local v = intents[i]
            if is_integer(v) and v >= 0 then
                list[i] = format("%d", v)
            elseif type(v) == "string" and v ~= "" then
                list[i] = v
            else
                fail(fname, "option 'intents[" .. i .. "]' must be a non-empty string or " ..
                            "a non-negative integer")
            end
        end
        flow.recallIntent = list
    elseif intents ~= nil then
        fail(fname, "option 'intents' belongs to recall.by_intent only")
    end

    return flow
end

local function run(fname, recall_type, o)
    options.check("laaffic.recall." .. fname, o, OPTIONS, 3)
    local ok, res = pcall(build, fname, recall_type, o)
    if ok then
        return res
    end
    if getmetatable(res) == misuse_mt then
        error(res[1], 3)    -- run (1) <- recall.xxx (2) <- the user's call (3)
    end
    error(res, 0)
end

-- recallType 0: call every number again in each round.
function _M.all(o)
    local flow = run("all", _M.ALL, o)
    return flow
end

-- recallType 1: call again the numbers whose call failed.
function _M.failed(o)
    local flow = run("failed", _M.FAILED, o)
    return flow
end

-- recallType 3: call again the numbers whose final intent is one of o.intents.
function _M.by_intent(o)
    local flow = run("by_intent", _M.BY_INTENT, o)
    return flow
end

return _M
