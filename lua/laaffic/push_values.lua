-- laaffic.push_values: the values of a status-report push record, for laaffic.push_parse:
-- numbers read from JSON numbers or decimal strings (no hex, inf or nan), kept exact where
-- a double can, written back as text, and times (the documented "YYYY-MM-DD HH:MM:SS",
-- ISO 8601 with a zone, or seconds / milliseconds since the epoch) as unix seconds.

local type = type
local tonumber = tonumber
local floor = math.floor
local huge = math.huge
local tointeger = math.tointeger -- nil on LuaJIT
local format = string.format
local byte = string.byte

local civil_unix = require("laaffic.date").unix

local TWO53 = 2 ^ 53

local function finite(n)
    return n == n and n > -huge and n < huge
end

-- Bytes a decimal number may be written with (and the spaces around it). tonumber alone
-- would also take hex ("0x10"), and on LuaJIT "inf", "nan" and "0b1".
local DECIMAL_BYTE = {}
for c in ("0123456789.eE+- \t\r\n"):gmatch(".") do DECIMAL_BYTE[byte(c)] = true end

local POW10 = {}
for i = 0, 22 do POW10[i] = 10 ^ i end

-- "123", "-0.0120": at most 15 digits, no exponent, no spaces. m / 10^k with both exact
-- is one correctly rounded division, so this equals tonumber (Clinger's fast path); on
-- LuaJIT it is several times faster than tonumber for strings with a fraction. Returns
-- nil for anything else (the caller then uses tonumber).
local function fast_decimal(v, len)
    local i, neg = 1, false
    local c = byte(v, 1)
    if c == 45 then
        neg, i = true, 2
    elseif c == 43 then
        i = 2
    end
    local m, ndigits, scale, dot = 0, 0, 0, false
    while i <= len do
        c = byte(v, i)
        if c >= 48 and c <= 57 then
            m = m * 10 + (c - 48)
            ndigits = ndigits + 1
            if dot then scale = scale + 1 end
        elseif c == 46 and not dot then
            dot = true
        else
            return nil
        end
        i = i + 1
    end
    if ndigits == 0 or ndigits > 15 then return nil end
    local n = m
    if scale > 0 then n = m / POW10[scale] end
    if neg then n = -n end
    return n
end

-- Lua 5.4's tonumber (strtod) is fast already; the byte loop pays off under LuaJIT only.
local use_fast_decimal = type(jit) == "table"

-- A finite number from a JSON number or a decimal string; nil, "empty" for "" and
-- whitespace; nil otherwise. Byte loops rather than patterns: LuaJIT compiles them.
local function to_number(v)
    if type(v) == "number" then
        if finite(v) then return v end
        return nil
    end
    if type(v) ~= "string" then return nil end
    local len = #v
    if len > 64 then return nil end
    if use_fast_decimal and len > 0 then
        local n = fast_decimal(v, len)
        if n then return n end
    end
    for i = 1, len do
        if not DECIMAL_BYTE[byte(v, i)] then return nil end
    end
    local n = tonumber(v)
    if n then
        if finite(n) then return n end
        return nil
    end
    if not v:find("%S") then return nil, "empty" end
    return nil
end

local function as_int(n)
    if tointeger and n == floor(n) and n > -TWO53 and n < TWO53 then
        return tointeger(n)
    end
    return n
end

local function safe_integer(n)
    return n == floor(n) and n > -TWO53 and n < TWO53
end

local function number_text(n)
    if safe_integer(n) then
        return format("%d", n)
    end
    local s = format("%.14g", n)
    if tonumber(s) ~= n then s = format("%.17g", n) end
    return s
end

-- Seconds or milliseconds since the epoch -> seconds; nil for 0, negatives and values
-- beyond year ~5000 in milliseconds.
local function unix_from_number(n)
    if not finite(n) or n <= 0 then return nil end
    if n >= 1e14 then return nil end
    if n >= 1e11 then n = n / 1000 end
    return as_int(n)
end

local function digits(s, i, j)
    local n = 0
    for k = i, j do
        local c = byte(s, k) - 48
        if c < 0 or c > 9 then return nil end
        n = n * 10 + c
    end
    return n
end

local function unix_from_string(s, utc_offset)
    local len = #s
    if len > 64 then return nil end
    -- the documented form, exactly "YYYY-MM-DD HH:MM:SS": read by bytes (compiled by LuaJIT)
    if len == 19 and byte(s, 5) == 45 and byte(s, 8) == 45 and byte(s, 11) == 32
       and byte(s, 14) == 58 and byte(s, 17) == 58 then
        local y, mo, d = digits(s, 1, 4), digits(s, 6, 7), digits(s, 9, 10)
        local h, mi, sec = digits(s, 12, 13), digits(s, 15, 16), digits(s, 18, 19)
        if not (y and mo and d and h and mi and sec) then return nil end
        local t = civil_unix(y, mo, d, h, mi, sec, utc_offset)
        return t and as_int(t)
    end
    if not s:find("^%s*%d%d%d%d%-") then
        local n = to_number(s)
        return n and unix_from_number(n) or nil
    end
    local y, mo, d, h, mi, sec, frac, zone =
        s:match("^%s*(%d%d%d%d)%-(%d%d?)%-(%d%d?)[ T](%d%d?):(%d%d):(%d%d)(%.?%d*)%s*(.-)%s*$")
    if not y then return nil end
    local offset = utc_offset
    if zone == "Z" or zone == "z" then
        offset = 0
    elseif zone ~= "" then
        local sign, zh, zm = zone:match("^([-+])(%d%d):?(%d%d)$")
        if not sign then return nil end
        offset = (tonumber(zh) * 3600 + tonumber(zm) * 60) * (sign == "-" and -1 or 1)
    end
    local t = civil_unix(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi),
                              tonumber(sec), offset)
    if not t then return nil end
    if #frac > 1 then t = t + (tonumber("0" .. frac) or 0) end
    return as_int(t)
end

local function unix_time(v, utc_offset)
    if type(v) == "number" then return unix_from_number(v) end
    if type(v) == "string" then return unix_from_string(v, utc_offset) end
    return nil
end

return {
    finite = finite, to_number = to_number, as_int = as_int, safe_integer = safe_integer,
    number_text = number_text, unix_time = unix_time,
}
