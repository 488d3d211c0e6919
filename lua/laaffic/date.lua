-- laaffic.date: the one calendar routine of the Lua layer (proleptic Gregorian, UTC).
--
-- laaffic reads dates in two places: the Date header of a -16 answer (laaffic.parse_http_date)
-- and the times of a status-report push (laaffic.push). Both turn a civil date into Unix
-- time here, with the same month lengths and leap years. (The C core checks sendTime's
-- calendar on its own, in src/.)

local floor = math.floor

local _M = {}

local MONTH_DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function is_leap(y)
    return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
end

-- Days since 1970-01-01 (H. Hinnant's days_from_civil).
local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12 -- March = 0
    local doy = floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

-- Days in month m (1-12) of year y.
local function days_in_month(y, m)
    if m == 2 and is_leap(y) then return 29 end
    return MONTH_DAYS[m]
end

-- Unix time of a civil date and time read offset seconds east of UTC, or nil when a
-- field is out of range (month 13, 31 April, 29 February of a common year, hour 24;
-- second 60 is a leap second and counts as the next one).
function _M.unix(y, mo, d, h, mi, sec, offset)
    if mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or sec > 60 then return nil end
    if d > 28 and d > days_in_month(y, mo) then return nil end
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (offset or 0)
end

_M.is_leap, _M.days_from_civil, _M.days_in_month = is_leap, days_from_civil, days_in_month

return _M
