-- laaffic.recall: recallFlow builders.

local recall = require "laaffic.recall"
local core = require "laaffic.core"
local cjson = require "cjson"

-- The recallFlow of vendor seed 001 (the quick-start page's curl example), comments removed.
local SEED_001_RECALL_FLOW = [[{
    "recallType": 3,
    "recallInterval": 1,
    "recallNum": 2,
    "nodeList": [ { "agentId": "110" }, { "agentId": "110" } ],
    "recallIntent": [ "99999" ]
}]]

local function task_with(flow)
    return {
        appId = "Jgd8oFei",
        taskName = "test",
        agentId = 110,
        numberInfoList = { { calleeNumber = "919777654321" } },
        recallFlow = flow,
    }
end

-- fn must raise; the message must match pattern and carry the position of this file
-- (raised with error(msg, 2) at the helper's caller).
local function raises(pattern, fn)
    local ok, e = pcall(fn)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.is_string(e)
    assert.matches(pattern, e)
    assert.matches("21%-recall_spec%.lua:%d+: laaffic%.recall%.", e)
    return e
end

describe("laaffic.recall", function()
    it("NOT_CONNECTED is the intent code for called but not connected", function()
        assert.equal("99999", recall.NOT_CONNECTED)
    end)

    it("by_intent builds the recallFlow of the quick-start example", function()
        local flow = recall.by_intent{ intents = { "99999" }, interval = 1, rounds = 2,
                                       agent_id = 110 }
        assert.same({
            recallType = 3,
            recallInterval = 1,
            recallNum = 2,
            nodeList = { { agentId = "110" }, { agentId = "110" } },
            recallIntent = { "99999" },
        }, flow)
    end)

    it("by_intent encodes to the same recallFlow JSON content as vendor seed 001", function()
        local flow = recall.by_intent{ intents = { "99999" }, interval = 1, rounds = 2,
                                       agent_id = 110 }
        local json, msg = core.encode(task_with(flow))
        assert.is_string(json, msg)
        local got = cjson.decode(json).recallFlow
        local want = cjson.decode(SEED_001_RECALL_FLOW)
        assert.same(want, got)
        assert.equal("string", type(got.nodeList[1].agentId))
        assert.equal("string", type(got.recallIntent[1]))
    end)

    it("all and failed carry recallType 0 and 1 and no recallIntent", function()
        local a = recall.all{ rounds = 3, interval = 10, agent_id = 41 }
        local f = recall.failed{ rounds = 3, interval = 10, agent_id = 41 }
        assert.equal(0, a.recallType)
        assert.equal(1, f.recallType)
        assert.is_nil(a.recallIntent)
        assert.is_nil(f.recallIntent)
        assert.equal(10, a.recallInterval)
        assert.equal(3, f.recallNum)
    end)

    it("makes nodeList as long as rounds, with separate node tables", function()
        for _, helper in ipairs{ "all", "failed", "by_intent" } do
            for rounds = 1, 10 do
                local flow = recall[helper]{ rounds = rounds, interval = 5, agent_id = 41,
                                             intents = helper == "by_intent" and { 1 } or nil }
                assert.equal(rounds, flow.recallNum)
                assert.equal(rounds, #flow.nodeList)
                for i = 1, rounds do
                    assert.same({ agentId = "41" }, flow.nodeList[i])
                end
                if rounds > 1 then
                    assert.is_false(rawequal(flow.nodeList[1], flow.nodeList[2]))
                end
            end
        end
    end)

    it("passes core.encode's validation for every helper", function()
        local flows = {
            recall.all{ rounds = 1, interval = 1, agent_id = 41 },
            recall.failed{ rounds = 4, interval = 60, agent_id = "41" },
            recall.by_intent{ rounds = 2, interval = 1, agent_id = 110,
                              intents = { recall.NOT_CONNECTED, 99998 } },
            recall.by_intent{ agents = { 41, "42", 2147483647 }, interval = 1440,
                              intents = { "99999" } },
        }
        for i, flow in ipairs(flows) do
            local json, msg = core.encode(task_with(flow))
            assert.is_string(json, "flow " .. i .. ": " .. tostring(msg))
            local got = cjson.decode(json).recallFlow
            assert.equal(flow.recallNum, #got.nodeList)
            assert.equal(flow.recallType, got.recallType)
        end
    end)

    it("agents gives one agent per round and sets rounds", function()
        local flow = recall.failed{ agents = { 41, "42", 43 }, interval = 2 }
        assert.equal(3, flow.recallNum)
        assert.same({ { agentId = "41" }, { agentId = "42" }, { agentId = "43" } },
                    flow.nodeList)
        local same = recall.failed{ agents = { 41, 42 }, rounds = 2, interval = 2 }
        assert.equal(2, #same.nodeList)
    end)

    it("writes integral intents and agent ids as integer strings", function()
        local flow = recall.by_intent{ intents = { 99999, 99998.0, "7" }, interval = 1.0,
                                       rounds = 1.0, agent_id = 110.0 }
        assert.same({ "99999", "99998", "7" }, flow.recallIntent)
        assert.same({ { agentId = "110" } }, flow.nodeList)
        assert.equal("1", tostring(flow.recallNum))
        assert.equal("1", tostring(flow.recallInterval))
    end)

    it("raises naming the option on misuse", function()
        raises("option 'rounds' must be a positive integer", function()
            local f = recall.all{ rounds = 0, interval = 1, agent_id = 41 }
            return f
        end)
        raises("option 'rounds' must be a positive integer", function()
            local f = recall.all{ rounds = 1.5, interval = 1, agent_id = 41 }
            return f
        end)
        raises("option 'rounds' must be a positive integer", function()
            local f = recall.failed{ rounds = "2", interval = 1, agent_id = 41 }
            return f
        end)
        raises("option 'rounds' is required", function()
            local f = recall.all{ interval = 1, agent_id = 41 }
            return f
        end)
        raises("option 'interval'", function()
            local f = recall.all{ rounds = 2, agent_id = 41 }
            return f
        end)
        raises("option 'interval'", function()
            local f = recall.all{ rounds = 2, interval = 0, agent_id = 41 }
            return f
        end)
        raises("option 'agent_id'", function()
            local f = recall.all{ rounds = 2, interval = 1 }
            return f
        end)
        raises("option 'agent_id'", function()
            local f = recall.all{ rounds = 2, interval = 1, agent_id = 0 }
            return f
        end)
        raises("option 'agent_id'", function()
            local f = recall.all{ rounds = 2, interval = 1, agent_id = "agent-41" }
            return f
        end)
        raises("not both", function()
            local f = recall.all{ rounds = 2, interval = 1, agent_id = 41, agents = { 41, 41 } }
            return f
        end)
        raises("option 'agents'", function()
            local f = recall.all{ rounds = 3, interval = 1, agents = { 41, 42 } }
            return f
        end)
        raises("option 'agents'", function()
            local f = recall.all{ interval = 1, agents = {} }
            return f
        end)
        raises("option 'agents%[2%]'", function()
            local f = recall.all{ interval = 1, agents = { 41, -1 } }
            return f
        end)
        raises("option 'intents'.- is required", function()
            local f = recall.by_intent{ rounds = 2, interval = 1, agent_id = 110 }
            return f
        end)
        raises("option 'intents' must not be empty", function()
            local f = recall.by_intent{ intents = {}, rounds = 2, interval = 1, agent_id = 110 }
            return f
        end)
        raises("option 'intents' must be a list", function()
            local f = recall.by_intent{ intents = "99999", rounds = 2, interval = 1,
                                        agent_id = 110 }
            return f
        end)
        raises("option 'intents%[2%]'", function()
            local f = recall.by_intent{ intents = { "99999", "" }, rounds = 2, interval = 1,
                                        agent_id = 110 }
            return f
        end)
        raises("option 'intents%[1%]'", function()
            local f = recall.by_intent{ intents = { 1.5 }, rounds = 2, interval = 1,
                                        agent_id = 110 }
            return f
        end)
        raises("option 'intents' belongs to recall.by_intent", function()
            local f = recall.failed{ intents = { "99999" }, rounds = 2, interval = 1,
                                     agent_id = 110 }
            return f
        end)
        raises("unknown option 'round'", function()
            local f = recall.all{ round = 2, interval = 1, agent_id = 41 }
            return f
        end)
        raises("options table expected", function()
            local f = recall.all()
            return f
        end)
    end)

    it("names the option in a misuse message, never its value", function()
        for _, case in ipairs({
            { "rounds", { rounds = 1e9, interval = 1, agent_id = 41 }, "1e+09" },
            { "rounds", { rounds = "2 rounds", interval = 1, agent_id = 41 }, "2 rounds" },
            { "agent_id", { rounds = 2, interval = 1, agent_id = "agent-41" }, "agent-41" },
            { "agents%[2%]", { interval = 1, agents = { 41, 99999999999 } }, "99999999999" },
        }) do
            local e = raises("laaffic%.recall%.all: option '" .. case[1] .. "'", function()
                local f = recall.all(case[2])
                return f
            end)
            assert.is_nil(e:find(case[3], 1, true), e)
        end
        local e = raises("option 'intents%[1%]'", function()
            local f = recall.by_intent{ intents = { -7 }, rounds = 1, interval = 1, agent_id = 1 }
            return f
        end)
        assert.is_nil(e:find("-7", 1, true), e)
    end)

    it("bounds rounds and the agents list to recall.MAX_ROUNDS, before building anything", function()
        assert.equal(1000, recall.MAX_ROUNDS)
        for _, fn in ipairs({ recall.all, recall.failed }) do
            raises("option 'rounds' must be at most 1000 %(recall%.MAX_ROUNDS%)$", function()
                local f = fn{ rounds = 1e9, interval = 1, agent_id = 41 }
                return f
            end)
        end
        raises("option 'rounds' must be at most 1000", function()
            local f = recall.by_intent{ rounds = 1001, interval = 1, agent_id = 41, intents = { 1 } }
            return f
        end)
        local agents = {}
        for i = 1, 1001 do agents[i] = 41 end
        raises("option 'agents' must list at most 1000 agents %(recall%.MAX_ROUNDS%), got 1001", function()
            local f = recall.all{ interval = 1, agents = agents }
            return f
        end)
        agents[1001] = nil
        assert.equal(1000, recall.failed{ interval = 1, agents = agents }.recallNum)
        assert.equal(1000, #recall.all{ rounds = 1000, interval = 1, agent_id = 41 }.nodeList)
    end)
end)
