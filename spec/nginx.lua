-- spec/nginx.lua: a real nginx with the lua module for specs, in a temporary directory on
-- 127.0.0.1. Loaded with dofile.
--
--   local Nginx = dofile(H.root .. "/spec/nginx.lua")
--   local ngx_srv = Nginx.start{
--       http = [[ server { listen 127.0.0.1:$PORT; location / { content_by_lua_block { ... } } } ]],
--       main = "",                 -- optional main-context directives
--       workers = 1,               -- worker_processes
--       ports = 1,                 -- how many free ports to allocate: $PORT, $PORT2, ...
--   }
--   ngx_srv.port, ngx_srv.ports[2], ngx_srv.dir, ngx_srv:url("/path"), ngx_srv:log()
--   ngx_srv:stop()                  -- waits until every nginx process is gone
--
-- The nginx.conf comes from the template the sandbox and `make demo` use too
-- (sandbox/nginx.conf.in, filled by sandbox/nginx-conf): lua_package_path reaches the
-- repo's lua/, sandbox/lua/ and Debian's Lua 5.1 modules (cjson, resty.core);
-- lua_package_cpath the LuaJIT build of laaffic.core (build/luajit).
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local core = require("laaffic.core")

local Nginx = {}
Nginx.__index = Nginx

local S = dofile(H.root .. "/spec/shell.lua")
local sh, q, read, alive = S.sh_all, S.q, S.read, S.alive

-- Free ports on 127.0.0.1, asked from the kernel (bound and released at once).
local function free_ports(n)
    local out = sh("python3 -c 'import socket\nss=[socket.socket() for _ in range(" .. n ..
                   ")]\nfor s in ss: s.bind((\"127.0.0.1\",0))\n" ..
                   "print(\" \".join(str(s.getsockname()[1]) for s in ss))'")
    local ports = {}
    for p in out:gmatch("%d+") do ports[#ports + 1] = tonumber(p) end
    assert(#ports == n, "could not get free ports: " .. out)
    return ports
end

Nginx.free_ports = free_ports

-- the repository's absolute path: nginx resolves relative paths against its own prefix
local ROOT = sh("cd " .. q(H.root) .. " && pwd"):match("^(%S+)")
Nginx.root = ROOT

function Nginx.start(o)
    local dir = assert(sh("mktemp -d /tmp/laaffic-nginx.XXXXXX")):match("^(%S+)")
    local ports = free_ports(o.ports or 1)
    local http = o.http:gsub("%$PORT(%d*)", function(i)
        return tostring(ports[tonumber(i ~= "" and i or 1)])
    end)
    -- the shared template (sandbox/nginx.conf.in) with this spec's main and http parts
    local main_file, http_file = dir .. "/main.part", dir .. "/http.part"
    for path, text in pairs({ [main_file] = o.main or "", [http_file] = http }) do
        local f = assert(io.open(path, "w"))
        f:write(text)
        f:close()
    end
    local cout, cfg_rc = sh(q(ROOT .. "/sandbox/nginx-conf") .. " " .. q(dir) .. " --workers " ..
                         (o.workers or 1) .. " --log-level " .. (o.log_level or "notice") ..
                         " --main " .. q(main_file) .. " < " .. q(http_file) .. " > " ..
                         q(dir .. "/nginx.conf"))
    if cfg_rc ~= 0 then
        sh("rm -rf " .. q(dir))
        error("sandbox/nginx-conf failed (" .. cfg_rc .. "): " .. cout)
    end
    local self = setmetatable({ dir = dir, ports = ports, port = ports[1] }, Nginx)
    local out, rc = sh("nginx -p " .. q(dir .. "/") .. " -c " .. q(dir .. "/nginx.conf"))
    if rc ~= 0 then
        local log = read(dir .. "/logs/error.log") or ""
        sh("rm -rf " .. q(dir))
        error("nginx did not start (" .. rc .. "): " .. out .. log)
    end
    self.pid = tonumber(read(dir .. "/nginx.pid") or "")
    -- wait until the first port accepts connections
    for _ = 1, 100 do
        local _, crc = sh("curl -s -o /dev/null --max-time 1 http://127.0.0.1:" .. self.port .. "/")
        if crc ~= 7 then break end
        core.sleep(0.05)
    end
    return self
end

function Nginx:url(path)
    return "http://127.0.0.1:" .. self.port .. (path or "/")
end

function Nginx:log()
    return read(self.dir .. "/logs/error.log") or ""
end

-- Stops nginx (quit, then kill) and waits for every process of it; removes the directory
-- unless keep. Returns true when nothing of it is left running.
function Nginx:stop(keep)
    if self.pid then
        local workers = sh("pgrep -P " .. self.pid)
        sh("kill -QUIT " .. self.pid)
        for i = 1, 100 do
            if not alive(self.pid) then break end
            if i == 60 then sh("kill -KILL " .. self.pid) end
            core.sleep(0.05)
        end
        for w in workers:gmatch("%d+") do
            if alive(w) then sh("kill -KILL " .. w) end
        end
    end
    local gone = not (self.pid and alive(self.pid))
    if not keep then sh("rm -rf " .. q(self.dir)) end
    return gone
end

return Nginx
