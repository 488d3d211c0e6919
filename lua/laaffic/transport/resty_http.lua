-- laaffic.transport.resty_http: the resty_http transport of laaffic.transport.ngx, on
-- lua-resty-http 0.16 or later (not packaged by Debian 12; 0.17.2 and later also need
-- lua-resty-string). Reached as laaffic.transport.ngx.resty_http(opts).
local type = type
local tostring = tostring
local tonumber = tonumber
local pcall = pcall
local setmetatable = setmetatable
local concat = table.concat
local ipairs = ipairs
local lower = string.lower
local S = require("laaffic.transport.ngx_socket")

local split_url, sendable, pieces, now_ms, let_others_in = S.split_url, S.sendable, S.pieces,
    S.now_ms, S.let_others_in
local header_lines, RESTY_OWN, lower_headers, socket_opts = S.header_lines, S.RESTY_OWN,
    S.lower_headers, S.socket_opts
local pool_name, connect_kind, handshake_raise_kind = S.pool_name, S.connect_kind,
    S.handshake_raise_kind

local _M = {}

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
function _M.new(opts)
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

_M.NOT_INSTALLED = NOT_INSTALLED

return _M
