-- bench/mem.lua: the process's memory as the kernel counts it, for the benchmarks.
--
--   local mem = dofile((arg[0]:match("^(.*/)") or "./") .. "mem.lua")
--   if mem.reset_peak() then ...; local rise = mem.kb("VmHWM") - before end
local M = {}

-- A field of /proc/self/status in kB ("VmRSS": resident now, "VmHWM": the peak).
function M.kb(field)
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("*a")
    f:close()
    return tonumber(s:match(field .. ":%s*(%d+)"))
end

-- Resets the peak-RSS mark (VmHWM) to the current RSS; false where the kernel does not
-- allow it.
function M.reset_peak()
    local f = io.open("/proc/self/clear_refs", "w")
    if not f then return false end
    f:write("5")
    f:close()
    return true
end

return M
