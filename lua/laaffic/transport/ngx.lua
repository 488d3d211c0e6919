-- laaffic.transport.ngx: sending from inside nginx without blocking the worker.
--
-- Three transports, all with the contract of laaffic.transport.curl
-- (function(request) -> response | nil, message, kind, sent):
--
--   subrequest  nginx's own HTTP client: ngx.location.capture into the internal location
--               that nginx/laaffic.conf defines (keepalive upstream, proxy_ssl_verify on).
--               Works in the rewrite, access and content phases.
--   cosocket    a small HTTP/1.1 client on ngx.socket.tcp with a keepalive pool and TLS
--               verification against lua_ssl_trusted_certificate. Works wherever cosockets
--               do, timers (ngx.timer.at) included, where subrequests are not allowed.
--   resty_http  lua-resty-http 0.16 or later, when it is installed (not packaged by Debian 12;
--               0.17.2 and later also need lua-resty-string).
--
-- auto (the default that laaffic.new picks inside nginx) chooses per call from the phase:
-- subrequest in rewrite/access/content, resty_http or else cosocket in a timer, and an
-- error naming the phase anywhere else (init, init_worker, set, header/body filter, log:
-- nginx allows no I/O there: start a timer). libcurl is never chosen inside nginx; ask for
-- it with transport = "curl" if you really want a blocking call.
local ngx = rawget(_G, "ngx")  -- nil outside nginx
local type = type
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local concat = table.concat
local ipairs = ipairs
local lower = string.lower
local format = string.format
local http1 = require("laaffic.http1")
local S = require("laaffic.transport.ngx_socket")
local resty_http = require("laaffic.transport.resty_http")

local split_url, sendable, pieces, CLOSED_MID_SEND = S.split_url, S.sendable, S.pieces,
    S.CLOSED_MID_SEND
local now_ms, let_others_in, header_lines, COSOCKET_OWN = S.now_ms, S.let_others_in,
    S.header_lines, S.COSOCKET_OWN
local lower_headers, socket_opts, pool_name = S.lower_headers, S.socket_opts, S.pool_name
local connect_kind, handshake_raise_kind = S.connect_kind, S.handshake_raise_kind

local _M = {}

local DEFAULT_LOCATION = "/_laaffic/send"

_M.split_url = split_url

---------------------------------------------------------------------------- subrequest

-- Runs in the internal location's rewrite phase: copies what the transport put in
-- ngx.ctx into the variables that nginx/laaffic.conf's proxy_set_header lines read.
function _M.prepare()
    local c = ngx.ctx.laaffic
    if type(c) ~= "table" then
        return ngx.exit(403)
    end
    local var = ngx.var
    var.laaffic_path = c.path
    var.laaffic_host = c.host
    var.laaffic_api_key = c.api_key or ""
    var.laaffic_timestamp = c.timestamp or ""
    var.laaffic_sign = c.sign or ""
    var.laaffic_user_agent = c.user_agent
end

-- Runs in the internal location's header filter: hands the upstream's figures back to
-- the transport through the subrequest's ngx.ctx (add_header does not apply to
-- subrequests).
function _M.report()
    local c = ngx.ctx.laaffic
    if type(c) == "table" then
        c.upstream_sent = ngx.var.upstream_bytes_sent or ""
        c.upstream_status = ngx.var.upstream_status or "-"
    end
end

-- subrequest{ location = "/_laaffic/send", user_agent = } -> transport
function _M.subrequest(opts)
    opts = opts or {}
    local location = opts.location or DEFAULT_LOCATION
    local user_agent = opts.user_agent or ("laaffic/" .. require("laaffic.core")._VERSION)
    return setmetatable({ name = "subrequest" }, {
        __tostring = function() return "laaffic.transport.ngx.subrequest(" .. location .. ")" end,
        __call = function(_, req)
            local scheme, host, port, path = split_url(req.url)
            if not scheme then
                return nil, "not an http(s) URL: " .. tostring(req.url), "url", false
            end
            if (scheme == "https" and port ~= 443) or (scheme == "http" and port ~= 80) then
                host = host .. ":" .. port
            end
            local h = req.headers or {}
            -- a big body: the copy to a string and nginx's own copy, each a stall of its
            -- own (ms), with the other requests let in before and between them
            local body = sendable(req.body)
            local big = #body > S.PIECE
            if big then S.pause() end
            body = tostring(body) -- a laaffic.body: nginx's APIs take Lua strings only
            if big then S.pause() end
            local c = {
                path = path, host = host:gsub(":%d+$", ""), api_key = h["Api-Key"],
                timestamp = h["Timestamp"], sign = h["Sign"], user_agent = user_agent,
            }
            local res = ngx.location.capture(location, {
                method = ngx.HTTP_POST, body = body, ctx = { laaffic = c },
            })
            local headers = lower_headers(res.header)
            local upstream_status = c.upstream_status
            if upstream_status == nil then
                return nil, format("the internal location %s is not laaffic's (HTTP %d): include " ..
                    "nginx/laaffic.conf in this server { }", location, res.status), "config", false
            end
            local sent_bytes = 0
            for n in tostring(c.upstream_sent or ""):gmatch("%d+") do
                sent_bytes = sent_bytes + tonumber(n)
            end
            -- the body can have arrived in full only if at least that many bytes went out
            local sent = sent_bytes >= #body
            local first = tostring(upstream_status):match("^%s*(%S+)")
            if res.truncated then
                return nil, "the API's answer was cut off", "connection", true
            end
            if res.status == 502 and (first == "502" or first == "-") then
                return nil, "nginx could not get an answer from the API (502 Bad Gateway)",
                       sent and "connection" or "connect", sent
            end
            if res.status == 504 and (first == "504" or first == "-") then
                return nil, "the API did not answer in time (nginx 504)", "timeout", sent
            end
            return { status = res.status, headers = headers, body = res.body or "",
                     http_version = "1.1" }
        end,
    })
end

---------------------------------------------------------------------------- cosocket

-- Reads the answer after the request went out (laaffic.http1). -> response | nil,
-- message, kind: the server may have the task in every case (sent = true).
local function receive_answer(sock, host, reused, max)
    local status, err, line = http1.receive_status(sock)
    if not status then
        if err == "not_http" then
            return nil, "not an HTTP answer: " .. line:sub(1, 80), "connection"
        end
        return nil, "reading the answer from " .. host .. ": " .. tostring(err) ..
               (reused and " (on a reused connection)" or ""),
               err == "timeout" and "timeout" or (err == "closed" and "empty" or "connection")
    end
    local version = err
    local headers
    headers, err = http1.receive_headers(sock)
    if not headers then
        return nil, "reading the answer's headers: " .. tostring(err), "connection"
    end
    local data
    data, err = http1.receive_body(sock, headers, max)
    if not data then
        if err == "too_large" then
            return nil, "the response was larger than " .. max .. " bytes", "too_large"
        end
        return nil, "reading the answer's body: " .. tostring(err), "connection"
    end
    return { status = status, headers = headers, body = data, http_version = version }
end

-- Connects a cosocket, TLS included on a new connection (sslhandshake's raise caught).
-- -> reused (boolean) | nil, message, kind: nothing was sent
local function cosocket_connect(sock, scheme, host, port, addr, verify)
    local ok, err = sock:connect(addr or host, port, { pool = pool_name(scheme, host, port, addr, verify) })
    if not ok then
        return nil, "connect to " .. host .. ":" .. port .. ": " .. tostring(err), connect_kind(tostring(err))
    end
    local reused = sock:getreusedtimes() > 0
    if scheme == "https" and not reused then
        local fine
        fine, ok, err = pcall(sock.sslhandshake, sock, nil, host, verify)
        if not fine then
            sock:close()
            local kind = handshake_raise_kind(ok, verify)
            return nil, "TLS handshake with " .. host .. ": " .. (kind == "certificate" and
                   "the certificate was refused" or "failed") .. " (lua-resty-core raised: " ..
                   tostring(ok):gsub("%c", " ") .. ")", kind
        end
        if not ok then
            sock:close()
            -- a refused certificate is not retried (another try sees the same one); any
            -- other handshake failure may be transient
            return nil, "TLS handshake with " .. host .. ": " .. tostring(err), connect_kind(tostring(err))
        end
    end
    return reused
end

-- Sends the head, then the body from next_piece (pieces): the head with the first piece,
-- so a small request is one send. -> true | nil, err
local function send_request(sock, head, next_piece)
    local piece, err = next_piece()
    if err then return nil, err end
    local since = now_ms()  -- the worker is held from here until a send waits or we sleep
    local ok
    ok, err = sock:send(piece and { head, piece } or head)
    while ok do
        piece, err = next_piece()
        if not piece then return not err or nil, err end
        since = let_others_in(since)
        ok, err = sock:send(piece)
    end
    return nil, err
end

function _M.cosocket(opts)
    local o = socket_opts(opts or {})
    local connect_ms, io_ms, verify, keepalive_ms = o.connect_ms, o.io_ms, o.verify, o.keepalive_ms
    local pool_size, max, user_agent, pinned = o.pool_size, o.max, o.user_agent, o.pinned
    return setmetatable({ name = "cosocket" }, {
        __tostring = function() return "laaffic.transport.ngx.cosocket" end,
        __call = function(_, req)
            local scheme, host, port, path = split_url(req.url)
            if not scheme then
                return nil, "not an http(s) URL: " .. tostring(req.url), "url", false
            end
            local own, herr = header_lines(req.headers, COSOCKET_OWN)
            if not own then
                return nil, herr, "url", false
            end
            local sock = ngx.socket.tcp()
            sock:settimeouts(connect_ms, io_ms, io_ms)
            local reused, cerr, ckind = cosocket_connect(sock, scheme, host, port,
                                                         pinned[lower(host) .. ":" .. port], verify)
            if reused == nil then
                return nil, cerr, ckind, false
            end
            local next_piece, len = pieces(sendable(req.body))
            local hostport = ((scheme == "https" and port == 443) or (scheme == "http" and port == 80))
                             and host or (host .. ":" .. port)
            local head = { (req.method or "POST") .. " " .. path .. " HTTP/1.1",
                           "Host: " .. hostport, "User-Agent: " .. user_agent,
                           "Content-Length: " .. len, "Connection: keep-alive" }
            for _, h in ipairs(own) do
                head[#head + 1] = h[1] .. ": " .. h[2]
            end
            head[#head + 1] = "\r\n"
            local ok, err = send_request(sock, concat(head, "\r\n"), next_piece)
            if not ok then
                sock:close()
                -- the body did not go out in full, so the server cannot have the task
                return nil, "sending to " .. host .. ": " .. tostring(err), err == "timeout" and "timeout"
                       or err == CLOSED_MID_SEND and "url" or "connection", false
            end
            -- from here on the server may have the whole task
            local res, msg, kind = receive_answer(sock, host, reused, max)
            if not res then
                sock:close()
                return nil, msg, kind, true
            end
            local headers = res.headers
            local conn = lower(headers["connection"] or "")
            if res.http_version == "1.1" and not conn:find("close", 1, true) and
               (headers["content-length"] or headers["transfer-encoding"]) then
                sock:setkeepalive(keepalive_ms, pool_size)
            else
                sock:close()
            end
            res.connects = reused and 0 or 1
            return res
        end,
    })
end

---------------------------------------------------------------------------- lua-resty-http

-- resty_http(opts) -> transport, or nil, err when lua-resty-http is missing, broken or
-- older than 0.16 (laaffic.transport.resty_http)
_M.resty_http = resty_http.new

---------------------------------------------------------------------------- auto

local REQUEST_PHASES = { rewrite = true, access = true, content = true }
local warned_fallback = false   -- once per worker

-- auto(opts) -> transport that picks subrequest / resty_http / cosocket per call.
function _M.auto(opts)
    opts = opts or {}
    local sub = _M.subrequest(opts)
    local cos = _M.cosocket(opts)
    local resty, rerr = _M.resty_http(opts)
    if not resty and rerr ~= resty_http.NOT_INSTALLED and not warned_fallback then
        -- lua-resty-http is there but unusable: timers still send (cosocket), and say why
        warned_fallback = true
        ngx.log(ngx.WARN, "laaffic: transport auto uses cosocket in timers, not lua-resty-http: ", rerr)
    end
    return setmetatable({ name = "auto", resty_error = rerr }, {
        __tostring = function() return "laaffic.transport.ngx.auto" end,
        __call = function(self, req)
            local phase = ngx.get_phase()
            local t
            if REQUEST_PHASES[phase] and not opts.no_subrequest then
                t = sub
            elseif phase == "timer" or REQUEST_PHASES[phase] then
                t = resty or cos
            else
                return nil, "laaffic cannot send from nginx's " .. phase .. " phase: send from " ..
                       "rewrite/access/content, or from a timer (ngx.timer.at)", "phase", false
            end
            self.last = t.name
            return t(req)
        end,
    })
end

return _M
