-- laaffic.status: the documented status codes, their names and messages.

local status = require "laaffic.status"

-- Every code the two vendor pages document, with the name laaffic promises for it.
local DOCUMENTED = {
    [0] = "success",
    [-1] = "auth_failed",
    [-2] = "ip_not_allowed",
    [-16] = "timestamp_expired",
    [-18] = "server_error",
    [-20] = "data_exists",
    [-21] = "invalid_data",
    [-22] = "invalid_parameter",
    [-23] = "data_cap_reached",
    [-24] = "data_not_found",
    [-26] = "fee_lookup_failed",
    [-34] = "no_callable_number",
    [-37] = "too_many_tasks",
    [-38] = "text_and_language_required",
    [-39] = "language_unknown",
    [-41] = "task_name_exists",
    [-42] = "recall_not_allowed",
    [-60] = "template_not_found",
    [-67] = "intent_mismatch",
    [-68] = "intent_mismatch",
}

describe("laaffic.status", function()
    it("SUCCESS is 0", function()
        assert.equal(0, status.SUCCESS)
        assert.equal("success", status.lookup(status.SUCCESS).name)
    end)

    it("has exactly the documented codes, each with its name and a sentence", function()
        local n = 0
        for code, name in pairs(DOCUMENTED) do
            n = n + 1
            local e = status.codes[code]
            assert.is_table(e, "missing code " .. code)
            assert.equal(code, e.code)
            assert.equal(name, e.name)
            assert.matches("^[a-z][a-z0-9_]*$", e.name)
            assert.is_string(e.message)
            assert.matches("^%u.+%.$", e.message)     -- a capitalised sentence
        end
        local m = 0
        for code in pairs(status.codes) do
            m = m + 1
            assert.is_not_nil(DOCUMENTED[code], "undocumented code " .. tostring(code))
        end
        assert.equal(n, m)
    end)

    it("gives the remedy where the vendor gives one", function()
        assert.matches("nodeList", status.codes[-22].message)
        assert.matches("recallNum", status.codes[-22].message)
        assert.matches("start", status.codes[-34].message)
        assert.matches("JSON", status.codes[-18].message)
        assert.matches("API key", status.codes[-1].message)
        assert.matches("recallIntent", status.codes[-68].message)
    end)

    it("names are unique except for -67/-68, and map back to their code", function()
        local seen = {}
        for code, e in pairs(status.codes) do
            if e.name ~= "intent_mismatch" then
                assert.is_nil(seen[e.name], "duplicate name " .. e.name)
                seen[e.name] = code
                assert.equal(code, status.names[e.name])
            end
        end
        assert.equal(-68, status.names.intent_mismatch)
        assert.equal(-41, status.names.task_name_exists)
    end)

    it("looks up numbers and the strings the server sends", function()
        local e = status.lookup("-41")
        assert.same({ code = -41, name = "task_name_exists", message = status.codes[-41].message }, e)
        assert.equal("task_name_exists", status.lookup(-41).name)
        assert.equal("task_name_exists", status.lookup(-41.0).name)
        assert.equal("task_name_exists", status.lookup(" -41 ").name)
        assert.equal("success", status.lookup("0").name)
    end)

    it("looks up both -67 and -68", function()
        for _, c in ipairs{ -67, -68, "-67", "-68" } do
            local e = status.lookup(c)
            assert.is_table(e)
            assert.equal("intent_mismatch", e.name)
            assert.equal(tonumber(c), e.code)
        end
    end)

    it("returns nil for undocumented or malformed codes", function()
        for _, c in ipairs{ -99, 1, "-99", "abc", "-41.5", -41.5, "0x10", "", true } do
            assert.is_nil(status.lookup(c), "for " .. tostring(c))
        end
        assert.is_nil(status.lookup(nil))
        assert.is_nil(status.lookup(0 / 0))
        assert.is_nil(status.lookup(math.huge))
    end)

    it("lookup returns a copy that does not change the table", function()
        local e = status.lookup(-41)
        e.name = "changed"
        assert.equal("task_name_exists", status.codes[-41].name)
    end)

    it("to_code parses integer codes only", function()
        assert.equal(-41, status.to_code("-41"))
        assert.equal(-41, status.to_code(-41))
        assert.equal(7, status.to_code("+7"))
        assert.is_nil(status.to_code("-4 1"))
        assert.is_nil(status.to_code("1e3"))
        assert.is_nil(status.to_code({}))
    end)
end)
