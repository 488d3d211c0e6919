-- laaffic.transport.ngx_socket: what the cosocket and resty_http transports of
-- laaffic.transport.ngx share: the URL split, the body sent in pieces that let the other
-- requests in, the request's headers checked, the socket options, the keepalive pool's
-- name and the kind of a connect failure.
local ngx = rawget(_G, "ngx")  -- nil outside nginx
local type = type
local tostring = tostring
local tonumber = tonumber
local pcall = pcall
local concat = table.concat
local ipairs = ipairs
local pairs = pairs
local lower = string.lower

local _M = {}

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

-- The cosocket and resty_http transports send a body PIECE bytes at a time (body:sub, on a
-- string or a laaffic.body alike), never as one string: nginx copies what a send gets
-- into its own buffers and encrypts it in one go, so a 17 MB sock:send held the worker
-- for tens of ms. A send that a fast peer takes at once does not yield either, so after
-- each piece the request pauses (pause) when it has held the worker for YIELD_MS since it
-- last waited.
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

-- Lets the other requests to this worker in: a 1 ms sleep, not ngx.sleep(0). On an nginx
-- without OpenResty's delayed-events patch (Debian's) ngx.sleep(0) is a timer due at once,
-- which nginx runs again in the same pass over its timers, so no other request gets in
-- (and each call logs a warning). spec/64 shows the difference.
local function pause()
    ngx.sleep(0.001)
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
    pause()
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

local MAX_RESPONSE = 1024 * 1024

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

_M.PIECE, _M.sendable, _M.pieces, _M.CLOSED_MID_SEND = PIECE, sendable, pieces, CLOSED_MID_SEND
_M.pause, _M.now_ms, _M.let_others_in = pause, now_ms, let_others_in
_M.COSOCKET_OWN, _M.RESTY_OWN, _M.header_lines = COSOCKET_OWN, RESTY_OWN, header_lines
_M.lower_headers, _M.socket_opts, _M.pool_name = lower_headers, socket_opts, pool_name
_M.connect_kind, _M.handshake_raise_kind = connect_kind, handshake_raise_kind

return _M
