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
-- lua_package_path reaches the repo's lua/ and Debian's Lua 5.1 modules (cjson,
-- resty.core); lua_package_cpath the LuaJIT build of laaffic.core (build/luajit).
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local core = require("laaffic.core")

local Nginx = {}
Nginx.__index = Nginx

local S = dofile(H.root .. "/spec/shell.lua")
local sh, q, read, alive = S.sh_all, S.q, S.read, S.alive

local function module_path(name)
    for _, d in ipairs({ "/usr/lib/nginx/modules", "/usr/share/nginx/modules" }) do
        local p = d .. "/" .. name
        if read(p) then return p end
    end
    error("nginx module " .. name .. " not found (apt-get install libnginx-mod-http-lua)")
end

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
    sh("mkdir -p " .. q(dir .. "/logs") .. " " .. q(dir .. "/tmp"))
    local ports = free_ports(o.ports or 1)
    local http = o.http:gsub("%$PORT(%d*)", function(i)
        return tostring(ports[tonumber(i ~= "" and i or 1)])
    end)
    local user = sh("id -u"):match("^0") and "user root;" or ""
    local conf = table.concat({
        "load_module " .. module_path("ndk_http_module.so") .. ";",
        "load_module " .. module_path("ngx_http_lua_module.so") .. ";",
        user,
        "daemon on; master_process on;",
        "worker_processes " .. (o.workers or 1) .. ";",
        "pid " .. dir .. "/nginx.pid;",
        "error_log " .. dir .. "/logs/error.log " .. (o.log_level or "notice") .. ";",
        o.main or "",
        "events { worker_connections 1024; }",
        "http {",
        "  access_log off;",
        "  client_body_temp_path " .. dir .. "/tmp/body;",
        "  proxy_temp_path " .. dir .. "/tmp/proxy;",
        "  fastcgi_temp_path " .. dir .. "/tmp/fastcgi;",
        "  uwsgi_temp_path " .. dir .. "/tmp/uwsgi;",
        "  scgi_temp_path " .. dir .. "/tmp/scgi;",
        "  client_max_body_size 64m;",
        "  lua_package_path \"" .. ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" ..
            "/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;\";",
        "  lua_package_cpath \"" .. ROOT .. "/build/luajit/?.so;/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;\";",
        http,
        "}",
    }, "\n")
    local f = assert(io.open(dir .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
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
