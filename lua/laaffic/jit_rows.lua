-- laaffic.jit_rows: the numberInfoList row walker for LuaJIT. Not called by users:
-- laaffic.core loads it the first time it encodes a list (core.jit_rows() says whether it
-- is in use, core.jit_rows(false) turns it off).
--
-- Through the C API, reading a 200,000-row list (lua_next over every row) costs more
-- than validating and writing it. LuaJIT compiles this loop, which reads the same tables
-- several times faster, and passes each plain row (every key calleeNumber or
-- text1..text10, every value a string or, for a text, a number) to the C encoder through
-- the FFI: the C side
-- validates, escapes and writes it exactly as for any other row. At the first row that
-- is not plain, or that the C side refuses (an invalid value), the walker stops and
-- returns that row's index; the C encoder handles it the ordinary way, with its error,
-- reject or pass-through fields, and calls the walker again for the rows after it.
--
-- On Lua 5.x (no FFI) the module returns nothing and the C encoder walks every row.
if not jit then return nil end
local okf, ffi = pcall(require, "ffi")
if not okf then return nil end

local rawget, next, type = rawget, next, type

-- row key -> slot (the C encoder's order: calleeNumber, text1..text10) and its bit
local SLOT, BIT = { calleeNumber = 0 }, { [0] = 1 }
for k = 1, 10 do
    SLOT["text" .. k] = k
    BIT[k] = 2 ^ k
end

local api_ud, api

-- walk(list, i, last, e, api, cdef) -> the first row not written (last + 1: all written).
-- cdef declares the struct api points to: src/rows_jit.c holds its only declaration.
return function(list, i, last, e, api_pointer, cdef)
    if api_pointer ~= api_ud then
        pcall(ffi.cdef, cdef) -- fails harmlessly when it is declared already
        api_ud, api = api_pointer, ffi.cast("const laaffic_rows_api *", api_pointer)
    end
    local row_fn = api.row
    e = ffi.cast("void *", e) -- a light userdata is not converted inside compiled code
    -- the slot arrays, each walk its own: a finalizer run by a GC step may encode too
    local S, N, D = ffi.new("const char *[11]"), ffi.new("size_t[11]"), ffi.new("double[11]")
    while i <= last do
        local row = rawget(list, i)
        if type(row) ~= "table" then return i end
        local present, numbers = 0, 0
        for k, v in next, row do
            local j = SLOT[k]
            if j == nil then return i end
            local tv = type(v)
            if tv == "string" then
                S[j] = v
                N[j] = #v
            elseif tv == "number" then
                D[j] = v
                numbers = numbers + BIT[j]
            else
                return i
            end
            present = present + BIT[j]
        end
        if row_fn(e, present, numbers, S, N, D) ~= 0 then return i end
        i = i + 1
    end
    return i
end
