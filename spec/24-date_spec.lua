-- laaffic.date: the calendar shared by laaffic.parse_http_date and laaffic.push.
local date = require("laaffic.date")
local laaffic = require("laaffic")
local push = require("laaffic.push")

describe("laaffic.date", function()
    it("knows the Gregorian leap years", function()
        for _, y in ipairs({ 1600, 2000, 2004, 2024, 2400 }) do assert.is_true(date.is_leap(y), y) end
        for _, y in ipairs({ 1700, 1900, 2001, 2023, 2100 }) do assert.is_false(date.is_leap(y), y) end
        assert.equal(29, date.days_in_month(2024, 2))
        assert.equal(28, date.days_in_month(2100, 2))
        assert.equal(30, date.days_in_month(2021, 4))
    end)

    it("counts days from 1970-01-01, before it too", function()
        assert.equal(0, date.days_from_civil(1970, 1, 1))
        assert.equal(-1, date.days_from_civil(1969, 12, 31))
        assert.equal(11016, date.days_from_civil(2000, 2, 29))
        assert.equal(19797, date.days_from_civil(2024, 3, 15))
    end)

    it("gives Unix time of a checked civil date, offset east of UTC", function()
        assert.equal(1710506096, date.unix(2024, 3, 15, 12, 34, 56, 0))
        assert.equal(1710506096 - 28800, date.unix(2024, 3, 15, 12, 34, 56, 28800))
        assert.equal(951782400, date.unix(2000, 2, 29, 0, 0, 0))
        for _, bad in ipairs({ { 2023, 2, 29 }, { 2100, 2, 29 }, { 2021, 4, 31 }, { 2021, 13, 1 },
                               { 2021, 0, 1 }, { 2021, 1, 0 } }) do
            assert.is_nil(date.unix(bad[1], bad[2], bad[3], 0, 0, 0, 0), table.concat(bad, "-"))
        end
        assert.is_nil(date.unix(2021, 1, 1, 24, 0, 0, 0))
    end)

    it("is the calendar of both the Date header and the push times", function()
        -- one routine: the same days are refused in both places
        for _, d in ipairs({ "29 Feb 2023", "31 Apr 2021", "30 Feb 2000" }) do
            assert.is_nil(laaffic.parse_http_date("Mon, " .. d .. " 00:00:00 GMT"), d)
        end
        assert.equal(951782400, laaffic.parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
        local recs = assert(push.parse('[{"voiceId":"a","callTime":"2023-02-29 00:00:00"},' ..
                                       '{"voiceId":"b","callTime":"2000-02-29 00:00:00"}]'))
        assert.is_nil(recs[1].callTime_unix)
        assert.equal(951782400, recs[2].callTime_unix)
    end)
end)
