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
local pairs = pairs
local lower = string.lower
local format = string.format
local http1 = require("laaffic.http1")

local _M = {}

local DEFAULT_LOCATION = "/_laaffic/send"

-- "https://api.example.com:8443/v3/x?y" -> "https", "api.example.com", 8443, "/v3/x?y"
local function split_url(url)
    local scheme, host, port, path = url:match("^(%a[%w+.-]*)://([^/:]+):?(%d*)(.*)$")
    if not scheme then
        return nil
    end
    scheme = lower(scheme)
    if scheme ~= "http" and scheme ~= "https" then
        return nil
    end
    port = tonumber(port) or (scheme == "https" and 443 or 80)
    if path == "" then path = "/" end
    return scheme, host, port, path
end
_M.split_url = split_url

local function body_string(body)
    if body == nil then return "" end
    if type(body) == "string" then return body end
    -- a laaffic.body: nginx's APIs take Lua strings only
    return tostring(body)
end

-- The cosocket and resty_http transports send a body PIECE bytes at a time (body:sub, on a
-- string or a laaffic.body alike), never as one string: nginx copies what a send gets
-- into its own buffers and encrypts it in one go, so a 17 MB sock:send held the worker
-- for tens of ms. A send that a fast peer takes at once does not yield either, so after
-- each piece the request sleeps 1 ms when it has held the worker for YIELD_MS since it
-- last waited (ngx.sleep(0) does not yield on an nginx without OpenResty's patch).
local PIECE = 256 * 1024
local YIELD_MS = 2

-- A request's body as the cosocket and resty_http transports send it: a string or a
-- laaffic.body as it is (both have :sub and #), nil as "", anything else as tostring's.
local function sendable(body)
    if body == nil then return "" end
    local t = type(body)
    if t == "string" or t == "userdata" then return body end
    return tostring(body)
end

-- body (sendable's) -> an iterator of its pieces: piece() -> string | nil at the end |
-- nil, CLOSED_MID_SEND when the body was closed while it was being sent (a caller's
-- mistake: kind "url", not retried); and the body's length.
local CLOSED_MID_SEND = "the body was closed while it was being sent"
local function pieces(body)
    local len, at = #body, 1
    return function()
        if at > len then return nil end
        local ok, piece = pcall(body.sub, body, at, at + PIECE - 1)
        if not ok then
            return nil, CLOSED_MID_SEND
        end
        at = at + PIECE
        return piece
    end, len
end

-- now in ms, not nginx's time cached at the start of this event loop iteration
local function now_ms()
    ngx.update_time()
    return ngx.now() * 1000
end

-- Lets the other requests in when this one has held the worker YIELD_MS since `since`
-- (now_ms()); -> the new `since`.
local function let_others_in(since)
    if now_ms() - since < YIELD_MS then return since end
    ngx.sleep(0.001)
    return now_ms()
end

-- the headers each transport writes itself (a request's own of these names are dropped)
local COSOCKET_OWN = { host = true, ["content-length"] = true, connection = true }
local RESTY_OWN = { host = true, ["content-length"] = true, connection = true,
                    ["transfer-encoding"] = true }

-- The request's own headers as "Name: value" lines, checked before anything is sent: a
-- name or value that is not a string or number, or holds CR or LF (a name ':'), is the
-- caller's error (kind url). skip[lower(name)]: the headers the transport writes itself.
-- Values are never quoted back: one of them is the Sign.
local function header_lines(headers, skip)
    local out = {}
    for k, v in pairs(headers or {}) do
        local tk, tv = type(k), type(v)
        if tk ~= "string" and tk ~= "number" then
            return nil, "a header name must be a string, got a " .. tk
        end
        local name = tostring(k)
        if name:find("[%c:]") then
            return nil, "a header name contains CR, LF or ':'"
        end
        if tv ~= "string" and tv ~= "number" then
            return nil, "header " .. name .. ": the value must be a string or a number, got a " .. tv
        end
        if tostring(v):find("[\r\n]") then
            return nil, "header " .. name .. ": the value contains CR or LF"
        end
        if not skip[lower(name)] then out[#out + 1] = { name, tostring(v) } end
    end
    return out
end

local function lower_headers(h)
    local out = {}
    for k, v in pairs(h or {}) do
        if type(v) == "table" then v = concat(v, ", ") end
        out[lower(k)] = v
    end
    return out
end

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
            local big = req.body ~= nil and #req.body > PIECE
            if big then ngx.sleep(0.001) end
            local body = body_string(req.body)
            if big then ngx.sleep(0.001) end
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

local MAX_RESPONSE = 1024 * 1024

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

-- cosocket{ connect_timeout = 10, timeout = 60, ssl_verify = true, keepalive = 10,
--           pool_size = 16, max_response = 1 MiB, user_agent =, resolve = } -> transport
-- timeout applies to each send and each read; keepalive is how long (s) an idle
-- connection stays in the pool (shorter than the server's, so a reused one is alive).
-- The options cosocket and resty_http share, with their defaults applied (times in ms).
-- resolve = { "host:port:address" } as curl's --resolve: cosockets resolve names with
-- nginx's resolver directive only (not /etc/hosts); pinned["host:port"] = address.
local function socket_opts(opts)
    local o = {
        connect_ms = (opts.connect_timeout or 10) * 1000,
        io_ms = (opts.timeout or 60) * 1000,
        verify = opts.ssl_verify ~= false and opts.insecure ~= true,
        keepalive_ms = (opts.keepalive or 10) * 1000,
        pool_size = opts.pool_size or 16,
        max = opts.max_response or MAX_RESPONSE,
        user_agent = opts.user_agent or ("laaffic/" .. require("laaffic.core")._VERSION),
        pinned = {},
    }
    for _, r in ipairs(opts.resolve or {}) do
        local hp, addr = tostring(r):match("^(.+:%d+):(.+)$")
        if hp then o.pinned[lower(hp)] = addr end
    end
    return o
end

-- The keepalive pool of a connection: everything that decides where it goes and whether
-- its server was verified, so a connection is reused only by a request that would have made
-- the same one (an insecure client's unverified connection never serves a verifying one;
-- a client pinned to one address never gets another's). The CA is nginx's
-- lua_ssl_trusted_certificate, the same for every client of the worker.
local function pool_name(scheme, host, port, addr, verify)
    return concat({ scheme, lower(host), port, addr or "", verify and "verify" or "noverify" }, "|")
end

-- The kind of a connect (TCP or TLS handshake) failure, from the cosocket's error string:
-- nothing was sent.
local function connect_kind(err)
    if err == "timeout" then return "timeout" end
    if err:find("resolve", 1, true) then return "dns" end
    -- "<n>: <OpenSSL's verify error>" or "certificate host mismatch": another try sees the
    -- same certificate (not retried)
    if err:find("certificate", 1, true) or err:match("^%d+: ") then return "certificate" end
    if err:find("handshake", 1, true) or err:find("ssl", 1, true) then return "tls" end
    return "connect"
end

-- The kind of a raise from sslhandshake (lua-resty-core 0.1.25's socket.lua:244
-- "assertion failed!": a handshake that completed at once, then failed verification,
-- lua-resty-core issue #499), or of any other raise while connecting.
local function handshake_raise_kind(raised, verify)
    if verify and tostring(raised):find("assertion failed", 1, true) then
        return "certificate"
    end
    return "tls"
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

-- The adapter uses lua-resty-http's connect / request / body_reader interface (0.16 and
-- later), read in 0.16.1, 0.17.1, 0.17.2 and its current master:
--   connect{ scheme, host, port, pool, pool_size, ssl_server_name, ssl_verify } does the
--     TCP connect and the TLS handshake, so its failures sent nothing; `pool` is ours
--     (pool_name), with everything that decides trust and destination in it;
--   request{ method, path, headers, body } sends, then reads the status and headers. Its
--     errors are the cosocket's own strings ("timeout", "closed", "connection reset by
--     peer", ...), the same before and after the request went out, so the body goes to it
--     as an iterator (with our own Content-Length): it is asked for again only after the
--     piece it returned went out in full;
--   res.body_reader(size) reads the body a piece at a time, so max_response is enforced
--     while reading, never after the whole answer sits in memory.
-- 0.12 to 0.15 named the pool host:port only (an insecure request's unverified connection
-- could serve a verifying one) and ignored ssl_server_name: refused.

-- "lua-resty-http ..." reasons for the messages: bounded, on one line
local function resty_reason(err)
    local s = tostring(err):gsub("%c", " ")
    if #s > 200 then s = s:sub(1, 200) .. "..." end
    return s
end

-- require("resty.http") -> module | nil, reason. Kept per worker: after a module fails
-- to load, a second require only says "loop or previous error loading module", so the
-- first reason is the one every later call reports.
local NOT_INSTALLED = "lua-resty-http is not installed"
local resty_module, resty_error
local function resty_load()
    if resty_module or resty_error then
        return resty_module, resty_error
    end
    local ok, http = pcall(require, "resty.http")
    if not ok then
        local msg = tostring(http)
        if msg:find("module 'resty.http' not found", 1, true) then
            resty_error = NOT_INSTALLED
        else
            -- installed but broken (a missing dependency, a syntax error): say so
            resty_error = "lua-resty-http could not be loaded: " .. resty_reason(msg:match("^[^\n]*"))
            if msg:find("'resty.string'", 1, true) then
                resty_error = resty_error .. " (lua-resty-http 0.17.2 and later need lua-resty-string)"
            end
        end
    elseif type(http) ~= "table" or type(http.new) ~= "function" or type(http.connect) ~= "function" or
           type(http.request) ~= "function" then
        resty_error = "resty.http is not lua-resty-http (no new, connect or request)"
    else
        local major, minor = tostring(http._VERSION):match("^(%d+)%.(%d+)")
        major, minor = tonumber(major), tonumber(minor)
        if not major or (major == 0 and minor < 16) then
            resty_error = "lua-resty-http " .. tostring(http._VERSION) .. " is too old: 0.16 or " ..
                          "later is needed (the TLS name and verify flag in connect)"
        else
            resty_module = http
        end
    end
    return resty_module, resty_error
end

-- Reads a response's body through its body_reader, at most max bytes.
-- -> body | nil, err ("too_large" or the cosocket's error)
local function resty_read_body(res, max)
    local len = tonumber(res.headers["Content-Length"])
    if len and len > max then return nil, "too_large" end
    local reader = res.body_reader
    if not reader then return "" end
    local te = res.headers["Transfer-Encoding"]
    local to_close = not len and not (te and lower(tostring(te)):find("chunked", 1, true))
    local parts, total = {}, 0
    while true do
        local piece, err = reader(65536)
        if piece then
            total = total + #piece
            if total > max then return nil, "too_large" end
            parts[#parts + 1] = piece
        end
        if err then
            -- an answer without a length ends when the server closes
            if err == "closed" and to_close then return concat(parts) end
            return nil, err
        end
        if not piece then return concat(parts) end
    end
end

-- connect, with the handshake's raise caught -> true | nil, message, kind
local function resty_connect(httpc, scheme, host, port, addr, o)
    local where = host .. ":" .. port
    local ok, res, err = pcall(httpc.connect, httpc, {
        scheme = scheme, host = addr or host, port = port, ssl_server_name = host,
        ssl_verify = o.verify, pool = pool_name(scheme, host, port, addr, o.verify),
        pool_size = o.pool_size })
    if not ok then
        return nil, "lua-resty-http raised while connecting to " .. where .. ": " .. resty_reason(res),
               handshake_raise_kind(res, o.verify)
    end
    if not res then
        err = resty_reason(err)
        return nil, "lua-resty-http: could not connect to " .. where .. ": " .. err, connect_kind(err)
    end
    return true
end

-- request and body (nil, a string or a laaffic.body): -> response | nil, message, kind, sent
local function resty_exchange(httpc, method, path, headers, body, where, o)
    -- the body in pieces; asked again after the last means it went out in full
    local next_piece = pieces(body)
    local handed, whole, closed, since = false, false, false, nil
    local function source()
        if since then since = let_others_in(since) else since = now_ms() end
        local piece, perr = next_piece()
        if perr then
            closed = true
            return nil, perr
        end
        handed = true
        whole = piece == nil
        return piece
    end
    local ok, res, err = pcall(httpc.request, httpc, { method = method, path = path,
                                                        headers = headers, body = source })
    if ok and res then
        ok, res, err = pcall(function()
            local data, rerr = resty_read_body(res, o.max)
            if not data then return nil, rerr end
            res.body = data
            return res
        end)
        if ok and not res and err == "too_large" then
            pcall(httpc.close, httpc)
            return nil, "the response was larger than " .. o.max .. " bytes", "too_large", true
        end
    end
    if not ok then
        pcall(httpc.close, httpc)
        return nil, "lua-resty-http raised while sending to " .. where .. ": " .. resty_reason(res),
               "transport", handed
    end
    if not res then
        pcall(httpc.close, httpc)
        err = resty_reason(err)
        local kind = err == "timeout" and "timeout" or closed and "url" or "connection"
        if whole then
            -- the whole request went out: the server may have the task
            return nil, "lua-resty-http: the request went to " .. where .. ", then: " .. err, kind, true
        end
        return nil, "lua-resty-http: could not send the request to " .. where .. ": " .. err, kind, false
    end
    pcall(httpc.set_keepalive, httpc, o.keepalive_ms, o.pool_size)
    -- the request was HTTP/1.1; lua-resty-http's headers are found in any case
    return { status = res.status, headers = lower_headers(res.headers), body = res.body,
             http_version = "1.1" }
end

-- resty_http{ connect_timeout = 10, timeout = 60, ssl_verify = true, keepalive = 10,
--             pool_size = 16, max_response = 1 MiB, user_agent =, resolve = }
--   -> transport, or nil, err when lua-resty-http is missing, broken or older than 0.16.
-- As cosocket: timeout applies to each send and each read (set_timeouts takes ms);
-- keepalive is how long (s) an idle connection stays in the pool; resolve = {
-- "host:port:address" } connects to the address while the Host header and the TLS name
-- stay the URL's. TLS verification uses lua_ssl_trusted_certificate. Failures: kind
-- "url", "dns", "connect", "tls", "certificate", "timeout", "connection" with sent = false
-- while the body had not gone out in full; "timeout", "connection" or "too_large" with
-- sent = true after it had ("transport" if lua-resty-http raised: sent = true once it had
-- asked for the body).
function _M.resty_http(opts)
    local http, lerr = resty_load()
    if not http then
        return nil, lerr
    end
    local o = socket_opts(opts or {})
    local pinned, user_agent = o.pinned, o.user_agent
    return setmetatable({ name = "resty_http" }, {
        __tostring = function() return "laaffic.transport.ngx.resty_http" end,
        __call = function(_, req)
            local scheme, host, port, path = split_url(req.url)
            if not scheme then
                return nil, "not an http(s) URL: " .. tostring(req.url), "url", false
            end
            local body = sendable(req.body)
            local standard = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
            -- Host, Content-Length and User-Agent are ours: lua-resty-http adds its own
            -- only where a header is missing
            local headers = { ["Host"] = standard and host or (host .. ":" .. port),
                              ["User-Agent"] = user_agent, ["Content-Length"] = tostring(#body) }
            -- lua-resty-http writes names and values as they are
            local own, herr = header_lines(req.headers, RESTY_OWN)
            if not own then
                return nil, herr, "url", false
            end
            for _, h in ipairs(own) do
                headers[lower(h[1]) == "user-agent" and "User-Agent" or h[1]] = h[2]
            end
            local httpc, nerr = http.new()
            if not httpc then
                return nil, "lua-resty-http: " .. resty_reason(nerr), "transport", false
            end
            httpc:set_timeouts(o.connect_ms, o.io_ms, o.io_ms)
            local ok, msg, kind = resty_connect(httpc, scheme, host, port, pinned[lower(host) .. ":" .. port], o)
            if not ok then
                pcall(httpc.close, httpc)
                return nil, msg, kind, false
            end
            return resty_exchange(httpc, req.method or "POST", path, headers, body, host .. ":" .. port, o)
        end,
    })
end

---------------------------------------------------------------------------- auto

local REQUEST_PHASES = { rewrite = true, access = true, content = true }
local warned_fallback = false   -- once per worker

-- auto(opts) -> transport that picks subrequest / resty_http / cosocket per call.
function _M.auto(opts)
    opts = opts or {}
    local sub = _M.subrequest(opts)
    local cos = _M.cosocket(opts)
    local resty, rerr = _M.resty_http(opts)
    if not resty and rerr ~= NOT_INSTALLED and not warned_fallback then
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
