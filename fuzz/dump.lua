-- fuzz/dump.lua - shows what fuzz/builder.lua builds from an encode input, and what the
-- core makes of it. For reading a saved input:
--
--   LUA_CPATH="build/lua5.4/?.so;;" lua5.4 fuzz/dump.lua fuzz/regressions/encode/<file>
--
-- Prints the task and opts as Lua source (cycles as comments, long strings abridged),
-- then the result of core.encode (abridged JSON, or the error).
--
--   lua5.4 fuzz/dump.lua --save fuzz/regressions/encode/<file>
--
-- writes <file>.built.txt, the builder's description of the table, which
-- spec/17-fuzz-regressions_spec.lua compares against (on Lua 5.4) before it runs the input.
local dir = (arg[0]:match("^(.*[/\\])") or "./")
local B = dofile(dir .. "builder.lua")

local save = arg[1] == "--save"
local path = assert(arg[save and 2 or 1], "usage: lua5.4 fuzz/dump.lua [--save] <input file>")
local f = assert(io.open(path, "rb"))
local bytes = f:read("a")
f:close()
if save then
    local out = assert(io.open(path .. ".built.txt", "wb"))
    out:write(B.describe(B.build(bytes)))
    out:close()
    print("wrote " .. path .. ".built.txt")
    return
end

local function show(v, indent, seen)
    local t = type(v)
    if t == "string" then
        if #v > 80 then
            return string.format("%q --[[ %d bytes ]]", v:sub(1, 60), #v)
        end
        return string.format("%q", v)
    end
    if t == "number" then
        if v ~= v then return "0/0" end
        if v == math.huge then return "math.huge" end
        if v == -math.huge then return "-math.huge" end
        if math.type and math.type(v) == "integer" then return string.format("%d", v) end
        return string.format("%.17g", v)
    end
    if t ~= "table" then return "<" .. tostring(v) .. ">" end
    if seen[v] then return "<cycle: " .. seen[v] .. ">" end
    seen[v] = tostring(v)
    local mt = getmetatable(v)
    local parts, n = {}, 0
    for k, val in next, v do
        n = n + 1
        if n > 12 then
            parts[#parts + 1] = indent .. "  -- ... (" .. tostring(rawlen and rawlen(v) or #v) .. " in the list part)"
            break
        end
        parts[#parts + 1] = indent .. "  [" .. show(k, indent .. "  ", seen) .. "] = " ..
            show(val, indent .. "  ", seen) .. ","
    end
    seen[v] = nil
    local s = "{\n" .. table.concat(parts, "\n") .. "\n" .. indent .. "}"
    if mt then s = s .. " --[[ metatable: " .. show(mt, indent, {}):gsub("\n%s*", " ") .. " ]]" end
    return s
end

local task, opts, bad = B.build(bytes)
print("task = " .. show(task, "", {}))
print("opts = " .. show(opts, "", {}) .. (bad and "  -- malformed on purpose" or ""))
local ok, core = pcall(require, "laaffic.core")
if not ok then
    print("(laaffic.core not found on LUA_CPATH: " .. tostring(core) .. ")")
    return
end
local r = table.pack(pcall(core.encode, task, B.call_opts(opts)))
if not r[1] then
    print("encode raised: " .. tostring(r[2]))
elseif r[2] == nil then
    print("encode failed: ", r[3], r[4], r[5])
else
    print("encode ok: " .. #r[2] .. " bytes: " .. r[2]:sub(1, 300))
end
print("verdict (builder.run, as the harness checks): ", B.run(core, bytes))
