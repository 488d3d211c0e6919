-- spec/shell.lua: the shell and file helpers that the specs and benchmarks share.
-- Loaded with dofile (works under Lua 5.4 and LuaJIT: exit codes are read from the
-- output, not from os.execute).
local S = {}

-- A single-quoted shell word.
function S.q(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function run(cmd, stderr)
    local p = assert(io.popen("{ " .. cmd .. "\n} " .. (stderr and "2>&1" or "") ..
                              "; echo \"__rc=$?\""))
    local out = p:read("*a")
    p:close()
    local body, rc = out:match("^(.-)__rc=(%d+)%s*$")
    return body or out, tonumber(rc or -1)
end

-- Runs cmd with sh; returns its stdout and exit code.
function S.sh(cmd)
    return run(cmd, false)
end

-- The same, with stderr in the output too.
function S.sh_all(cmd)
    return run(cmd, true)
end

function S.write(path, data)
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
end

-- The file's bytes, or nil if it cannot be read.
function S.read(path)
    local f = io.open(path, "rb")
    if not f then
        return nil
    end
    local s = f:read("*a")
    f:close()
    return s
end

-- True while the process exists and has not exited (a zombie waiting for its reaper
-- counts as gone).
function S.alive(pid)
    local stat = S.read("/proc/" .. tostring(pid) .. "/stat")
    return stat ~= nil and stat ~= "" and stat:match("%) (%a)") ~= "Z"
end

return S
