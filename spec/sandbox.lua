-- spec/sandbox.lua: shell helpers and a Sandbox object for the specs that run against
-- the local sandbox (sandbox/laaffic-sandbox). Loaded with dofile by spec/4x, 6x, 70, 80.
-- It also puts the sandbox's Lua modules (sandbox/lua, laaffic_sandbox.*) on package.path
-- for the specs that call their pure functions outside nginx.

local cjson = require("cjson")
local core = require("laaffic.core")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local BIN = H.root .. "/sandbox/laaffic-sandbox"
package.path = H.root .. "/sandbox/lua/?.lua;" .. package.path
local API = "/v3/voice/group/call/send/agent"
local CT = "application/json;charset=UTF-8"

---------------------------------------------------------------------------------------
-- Shell helpers (Lua 5.1 and 5.4: the exit code is read from the output, not os.execute)
---------------------------------------------------------------------------------------

local S = dofile(H.root .. "/spec/shell.lua")
local q, sh, write, read, alive = S.q, S.sh, S.write, S.read, S.alive

local function md5_file(path)
    local out, rc = sh("md5sum " .. q(path))
    assert(rc == 0, "md5sum failed")
    return (out:match("^(%x+)"))
end

-- `export NAME='value'` lines -> { NAME = value }: the CLI's reader of the env file
local parse_env = require("laaffic.cli.config").parse_env

local function decode(s)
    local ok, v = pcall(cjson.decode, s or "")
    if ok then
        return v
    end
    return nil
end

---------------------------------------------------------------------------------------
-- A sandbox under test
---------------------------------------------------------------------------------------

local Sandbox = {}
Sandbox.__index = Sandbox

-- Starts a sandbox in a fresh directory. creds: optional { NAME = value } exported to the
-- start command through a sourced file (never through argv). args: extra start options.
function Sandbox.start(creds, args)
    local tmp = assert(sh("mktemp -d /tmp/laaffic-spec40.XXXXXX")):match("^(%S+)")
    local self = setmetatable({ tmp = tmp, dir = tmp .. "/sandbox", n = 0 }, Sandbox)
    local lines = { "set -a" }
    for k, v in pairs(creds or {}) do
        lines[#lines + 1] = k .. "=" .. q(v)
    end
    write(tmp .. "/start.env", table.concat(lines, "\n") .. "\n")
    local out, rc = sh("cd " .. q(H.root) .. " && . " .. q(tmp .. "/start.env") .. " && " ..
                       q(BIN) .. " start --ttl 600 --dir " .. q(self.dir) .. " " ..
                       (args or "") .. " 2>" .. q(tmp .. "/start.err"))
    if rc ~= 0 then
        local err = read(tmp .. "/start.err") or ""
        self:stop()
        error("sandbox/laaffic-sandbox start failed (" .. rc .. "): " .. err .. out)
    end
    self.env = parse_env(assert(read(self.dir .. "/env"), "no env file"))
    self.pid = tonumber(self.env.LAAFFIC_SANDBOX_PID)
    local workers = sh("pgrep -P " .. self.pid)
    self.workers = {}
    for w in workers:gmatch("%d+") do
        self.workers[#self.workers + 1] = tonumber(w)
    end
    return self
end

-- Stops the sandbox and removes its directories; returns the stop command's exit code.
function Sandbox:stop()
    local _, rc = sh(q(BIN) .. " stop --dir " .. q(self.dir) .. " 2>/dev/null")
    sh("rm -rf " .. q(self.tmp))
    return rc
end

function Sandbox:file(name)
    self.n = self.n + 1
    return ("%s/%s.%d"):format(self.tmp, name, self.n)
end

-- One request with curl. o: body (string) or body_file, path (default API), base
-- ("http"/"https"), ts (default now), key, sign (default: the right one), headers
-- ({ "Name: value" } extra), method, no_auth, curl (extra curl arguments, a string).
-- Returns { rc, http, time, ctype, body, json }.
function Sandbox:request(o)
    o = o or {}
    local env = self.env
    local ts = o.ts or os.time()
    local key = o.key or env.LAAFFIC_SANDBOX_KEY
    local headers = { "Content-Type: " .. CT }
    if not o.no_auth then
        headers[#headers + 1] = "Api-Key: " .. key
        headers[#headers + 1] = "Timestamp: " .. tostring(ts)
        headers[#headers + 1] = "Sign: " ..
            (o.sign or core.sign(env.LAAFFIC_SANDBOX_KEY, env.LAAFFIC_SANDBOX_SECRET, ts))
    end
    for _, h in ipairs(o.headers or {}) do
        headers[#headers + 1] = h
    end
    local cfg = {}
    for _, h in ipairs(headers) do
        cfg[#cfg + 1] = 'header = "' .. h:gsub("[\\\"]", "\\%0") .. '"'
    end
    local cfg_file = self:file("curl.cfg")
    write(cfg_file, table.concat(cfg, "\n") .. "\n")
    local body_file = o.body_file
    if not body_file then
        body_file = self:file("body")
        write(body_file, o.body or "")
    end
    local resp_file = self:file("resp")
    local base = o.base == "https" and env.LAAFFIC_SANDBOX_HTTPS or env.LAAFFIC_SANDBOX_HTTP
    local cmd = table.concat({
        "curl -sS -o", q(resp_file),
        "-w '%{http_code} %{time_total} %{content_type}'",
        "-K", q(cfg_file),
        o.method and ("-X " .. o.method) or "",
        "--data-binary", q("@" .. body_file),
        o.curl or "",
        q(base .. (o.path or API)),
        "2>", q(resp_file .. ".err"),
    }, " ")
    local out, rc = sh(cmd)
    local http, t, ctype = out:match("^(%d+) ([%d%.]+) ?(.*)$")
    local body = read(resp_file)
    return {
        rc = rc, http = tonumber(http), time = tonumber(t), ctype = ctype, body = body,
        json = decode(body), err = read(resp_file .. ".err"),
    }
end

-- A control endpoint: GET path, or POST path with a JSON text. Returns http, decoded body.
function Sandbox:control(path, post, curl)
    local resp_file = self:file("ctl")
    local cmd = "curl -sS -o " .. q(resp_file) .. " -w '%{http_code}' " .. (curl or "")
    if post then
        local f = self:file("ctl-body")
        write(f, post)
        cmd = cmd .. " --data-binary " .. q("@" .. f)
    end
    local out = sh(cmd .. " " .. q(self.env.LAAFFIC_SANDBOX_HTTP .. path) .. " 2>/dev/null")
    return tonumber(out:match("^(%d+)")), decode(read(resp_file)), read(resp_file)
end

function Sandbox:fault(f)
    local http, res = self:control("/_sandbox/fault", cjson.encode(f))
    if http ~= 200 then error("POST /_sandbox/fault answered " .. tostring(http), 2) end
    return res
end

function Sandbox:task_record(key_id)
    local http, tasks = self:control("/_sandbox/tasks")
    if http ~= 200 then error("GET /_sandbox/tasks answered " .. tostring(http), 2) end
    for _, t in ipairs(tasks) do
        if t.keyId == key_id then
            return t
        end
    end
    return nil
end

-- GET /_sandbox/pushes: the push counters.
function Sandbox:pushes()
    local http, res, raw = self:control("/_sandbox/pushes")
    if http ~= 200 then error("GET /_sandbox/pushes answered " .. tostring(http), 2) end
    return res, raw
end

-- POST /_sandbox/push-config with the settings in t (a table or a JSON text); returns
-- the HTTP status and the answer (the whole configuration, or {error=...}).
function Sandbox:push_config(t)
    local http, res = self:control("/_sandbox/push-config",
                                   type(t) == "string" and t or cjson.encode(t))
    return http, res
end

-- GET /_sandbox/tasks: every task the sandbox created, and how many are named name.
function Sandbox:tasks(name)
    local http, tasks = self:control("/_sandbox/tasks")
    if http ~= 200 then error("GET /_sandbox/tasks answered " .. tostring(http), 2) end
    local named = 0
    for _, t in ipairs(tasks) do
        if t.taskName == name then named = named + 1 end
    end
    return tasks, named
end

-- GET /_sandbox/requests: { total, status = {...}, faults = {...} }.
function Sandbox:requests()
    local http, res = self:control("/_sandbox/requests")
    if http ~= 200 then error("GET /_sandbox/requests answered " .. tostring(http), 2) end
    return res
end

---------------------------------------------------------------------------------------
-- Test peers on 127.0.0.1 (python3), and certificates made with openssl
---------------------------------------------------------------------------------------

-- Runs a python3 script in the background (it ends itself after its own deadline) and
-- waits for the port it writes to portfile. Returns the port and the pid.
local function spawn_py(dir, name, code, args)
    local script, portfile = dir .. "/" .. name .. ".py", dir .. "/" .. name .. ".port"
    write(script, code)
    local out = sh("python3 " .. q(script) .. " " .. q(portfile) .. " " .. (args or "") ..
                   " >" .. q(dir .. "/" .. name .. ".out") .. " 2>&1 & echo $!")
    local pid = tonumber(out:match("(%d+)"))
    for _ = 1, 200 do
        local port = read(portfile)
        if port and port:match("^%d+$") then return tonumber(port), pid end
        core.sleep(0.025)
    end
    error(name .. " did not start: " .. (read(dir .. "/" .. name .. ".out") or ""))
end

local LISTENER = [[
import os, socket, sys, time
portfile, logfile, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
s.settimeout(0.2)
open(portfile + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
end = time.time() + seconds
body = b'{"status":"0","reason":"success","data":999999}'
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.settimeout(1)
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < 65536:
            d = c.recv(65536)
            if not d:
                break
            data += d
    except Exception:
        pass
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    with open(logfile, "a") as f:
        f.write("%d %s\n" % (len(data), line))
    try:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        c.close()
    except Exception:
        pass
]]

-- A second HTTP listener on 127.0.0.1 that records every connection it gets (bytes and
-- request line, one line each in its log) and answers each with an API success, so a
-- client that reached it would believe it. Ends itself after `seconds` (default 60).
-- Returns { port =, pid =, connections = function() -> n, lines end, stop = function() }.
local function listener(dir, seconds)
    local log = dir .. "/listener.log"
    write(log, "")
    local port, pid = spawn_py(dir, "listener", LISTENER, q(log) .. " " .. tostring(seconds or 60))
    local l = { port = port, pid = pid, log = log }
    function l.connections()
        local lines = {}
        for line in (read(log) or ""):gmatch("[^\n]+") do lines[#lines + 1] = line end
        return #lines, lines
    end
    function l.stop()
        if alive(pid) then sh("kill " .. pid .. " 2>/dev/null") end
    end
    return l
end

local RAW_CLIENT = [[
import json, socket, sys, time
port, reqfile, seconds, outfile = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
req = open(reqfile, "rb").read()
half = len(sys.argv) > 5 and sys.argv[5] == "half"
c = socket.create_connection(("127.0.0.1", port))
chunks, data, error = [], b"", None
try:
    c.sendall(req)
    if half:
        c.shutdown(socket.SHUT_WR)
except OSError as e:
    error = type(e).__name__
t0 = time.time()
end = t0 + seconds
while error is None and time.time() < end:
    c.settimeout(max(0.01, end - time.time()))
    try:
        d = c.recv(65536)
    except socket.timeout:
        break
    except OSError as e:
        error = type(e).__name__
        break
    if not d:
        error = "EOF"
        break
    chunks.append([round(time.time() - t0, 3), len(d)])
    data += d
json.dump({"data": data.decode("latin-1"), "chunks": chunks, "error": error}, open(outfile, "w"))
]]

-- Sends the bytes of request to 127.0.0.1:port over a plain TCP socket (half: then shuts
-- its sending side) and reads for up to `seconds`. Returns { data = what came back,
-- chunks = { { seconds, bytes }, ... } as they arrived, error = nil (deadline) | "EOF" |
-- "ConnectionResetError" | ... }.
local function raw_exchange(dir, port, request, seconds, half)
    local reqfile, outfile, script = dir .. "/raw.req", dir .. "/raw.json", dir .. "/raw.py"
    write(reqfile, request)
    write(script, RAW_CLIENT)
    sh("rm -f " .. q(outfile))
    local _, rc = sh("python3 " .. q(script) .. " " .. port .. " " .. q(reqfile) .. " " ..
                     tostring(seconds) .. " " .. q(outfile) .. (half and " half" or "") .. " 2>&1")
    assert(rc == 0, "the raw client failed")
    local res = cjson.decode(assert(read(outfile)))
    if res.error == cjson.null then res.error = nil end
    return res
end

-- Makes, under dir/certs, a test CA and three server certificates signed by it (EC P-256):
--   good       SAN DNS:localhost, IP:127.0.0.1, valid now
--   wrong_host CN and SAN other.example only, valid now
--   expired    the names of good, valid only in January 2020 (`openssl ca` -startdate/-enddate)
-- Returns { ca = path, good = { crt =, key = }, wrong_host = {...}, expired = {...} }.
local function tls_certs(dir)
    local d = dir .. "/certs"
    sh("mkdir -p " .. q(d .. "/newcerts") .. " && : > " .. q(d .. "/index.txt"))
    write(d .. "/serial", "1000\n")
    write(d .. "/good.ext", table.concat({
        "basicConstraints = CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        "extendedKeyUsage = serverAuth",
        "subjectAltName = DNS:localhost, IP:127.0.0.1", "" }, "\n"))
    write(d .. "/wrong.ext", table.concat({
        "basicConstraints = CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        "extendedKeyUsage = serverAuth",
        "subjectAltName = DNS:other.example", "" }, "\n"))
    write(d .. "/ca.cnf", table.concat({
        "[ca]", "default_ca = test_ca", "[test_ca]",
        "database = " .. d .. "/index.txt", "new_certs_dir = " .. d .. "/newcerts",
        "serial = " .. d .. "/serial", "default_md = sha256", "policy = any",
        "unique_subject = no", "copy_extensions = none",
        "[any]", "commonName = supplied", "" }, "\n"))
    local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    local function csr(name, cn)
        return "openssl req -new " .. ec .. " -keyout " .. q(d .. "/" .. name .. ".key") ..
               " -out " .. q(d .. "/" .. name .. ".csr") .. " -subj " .. q("/CN=" .. cn)
    end
    local function sign(name, ext)
        return "openssl x509 -req -in " .. q(d .. "/" .. name .. ".csr") .. " -CA " ..
               q(d .. "/ca.crt") .. " -CAkey " .. q(d .. "/ca.key") ..
               " -set_serial 0x$(openssl rand -hex 8) -days 2 -extfile " .. q(d .. "/" .. ext) ..
               " -out " .. q(d .. "/" .. name .. ".crt")
    end
    local cmds = {
        "openssl req -x509 " .. ec .. " -keyout " .. q(d .. "/ca.key") .. " -out " ..
            q(d .. "/ca.crt") .. " -days 2 -subj '/CN=laaffic spec test CA'" ..
            " -addext 'basicConstraints=critical,CA:TRUE'" ..
            " -addext 'keyUsage=critical,keyCertSign,cRLSign'",
        csr("good", "localhost"), sign("good", "good.ext"),
        csr("wrong_host", "other.example"), sign("wrong_host", "wrong.ext"),
        csr("expired", "localhost"),
        "openssl ca -batch -notext -config " .. q(d .. "/ca.cnf") .. " -cert " .. q(d .. "/ca.crt") ..
            " -keyfile " .. q(d .. "/ca.key") .. " -in " .. q(d .. "/expired.csr") ..
            " -out " .. q(d .. "/expired.crt") .. " -extfile " .. q(d .. "/good.ext") ..
            " -startdate 20200101000000Z -enddate 20200131000000Z",
    }
    for _, cmd in ipairs(cmds) do
        local out, rc = S.sh_all(cmd)
        if rc ~= 0 then error("openssl failed (" .. rc .. "): " .. cmd .. "\n" .. out) end
    end
    local certs = { ca = d .. "/ca.crt", dir = d }
    for _, name in ipairs({ "good", "wrong_host", "expired" }) do
        certs[name] = { crt = d .. "/" .. name .. ".crt", key = d .. "/" .. name .. ".key" }
    end
    return certs
end

return {
    Sandbox = Sandbox, sh = sh, q = q, read = read, write = write, md5_file = md5_file,
    alive = alive, parse_env = parse_env, decode = decode, API = API, CT = CT, BIN = BIN,
    listener = listener, raw_exchange = raw_exchange, tls_certs = tls_certs,
}
