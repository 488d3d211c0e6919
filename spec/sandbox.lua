-- spec/sandbox.lua: shell helpers and a Sandbox object for the specs that run against
-- the local sandbox (bin/laaffic-sandbox). Loaded with dofile by spec/40 and spec/41.

local cjson = require("cjson")
local core = require("laaffic.core")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local BIN = H.root .. "/bin/laaffic-sandbox"
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

-- `export NAME='value'` lines -> { NAME = value }
local function parse_env(text)
    local env = {}
    for line in text:gmatch("[^\n]+") do
        local name, value = line:match("^export%s+([%w_]+)=(.*)$")
        if name then
            value = value:gsub("^'(.*)'$", "%1"):gsub("'\\''", "'")
            env[name] = value
        end
    end
    return env
end

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
        error("bin/laaffic-sandbox start failed (" .. rc .. "): " .. err .. out)
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

return {
    Sandbox = Sandbox, sh = sh, q = q, read = read, write = write, md5_file = md5_file,
    alive = alive, parse_env = parse_env, decode = decode, API = API, CT = CT, BIN = BIN,
}
