-- laaffic_sandbox.faults: the fault modes that make the sandbox misbehave on purpose, so
-- that a client's handling of slow, broken and lost answers can be tested. POST
-- /_sandbox/fault arms a mode for the next N API requests (arm); the API endpoint takes
-- it (take) and calls the three hooks below at the points where a mode acts: before the
-- body is read, instead of an answer, and when the answer goes out. README.md ("The
-- sandbox") lists the modes.
local ngx = ngx
local type = type
local tostring = tostring
local tonumber = tonumber
local ipairs = ipairs
local pcall = pcall
local floor = math.floor
local concat = table.concat

local cjson = require "cjson.safe"
local common = require "laaffic_sandbox.common"

local dict, nap, send_json = common.dict, common.nap, common.send_json

local _M = {}

-- mode -> default ms; NAMES: the modes in the order the error message lists them
local FAULTS = {
    delay = 1000, slow_read = 1000, drop = 0, drop_after_create = 0, status500 = 0,
    garbage = 0, hang = 60000, reset = 0, short_body = 0, cut_json = 0, slow_headers = 500,
    slow_body = 500, redirect = 0, not_http = 0, status = 0,
}
local NAMES = { "delay", "slow_read", "drop", "drop_after_create", "status500", "garbage",
                "hang", "reset", "short_body", "cut_json", "slow_headers", "slow_body",
                "redirect", "not_http", "status" }
local BYTES = { reset = 64, short_body = 0 }      -- default `bytes` (cut_json: half)
local REDIRECTS = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }
local EXTRAS = { "fault:bytes", "fault:location", "fault:http_status", "fault:status" }

---------------------------------------------------------------------------------------
-- Arming (the control endpoint) and taking (the API endpoint)
---------------------------------------------------------------------------------------

-- GET /_sandbox/fault
function _M.json()
    local d = dict()
    local mode = d:get("fault:mode")
    if not mode then
        return '{"mode":"none","count":0}'
    end
    return cjson.encode({ mode = mode, count = d:get("fault:count"), ms = d:get("fault:ms"),
                          bytes = d:get("fault:bytes"), location = d:get("fault:location"),
                          http_status = d:get("fault:http_status"),
                          status = d:get("fault:status") })
end

local function disarm(d)
    d:delete("fault:mode")
    d:delete("fault:count")
    d:delete("fault:ms")
    for _, k in ipairs(EXTRAS) do
        d:delete(k)
    end
end

-- The mode-specific settings of f: -> status (for mode "status") | nil, error | nil
local function check_extras(mode, f)
    local bytes, location, http_status = f.bytes, f.location, f.http_status
    if bytes ~= nil and (type(bytes) ~= "number" or bytes < 0 or bytes > 1e9 or
                         bytes ~= floor(bytes)) then
        return nil, "bytes must be an integer from 0 to 1000000000"
    end
    if mode == "redirect" then
        if type(location) ~= "string" or #location > 2048 or location:find("[%c%s]") or
           not location:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/]") then
            return nil, "redirect needs a location: an http:// or https:// URL of at most " ..
                        "2048 characters"
        end
        if http_status ~= nil and not REDIRECTS[http_status] then
            return nil, "http_status must be 301, 302, 303, 307 or 308"
        end
    elseif location ~= nil or http_status ~= nil then
        return nil, "location and http_status are for mode redirect only"
    end
    local status = f.status ~= nil and tostring(f.status) or nil
    if mode == "status" then
        if not common.REASON[status] or status == "0" then
            return nil, "mode status needs a status the vendor's pages list (-1, -2, -16, " ..
                        "... -68), not 0"
        end
    elseif status ~= nil then
        return nil, "status is for mode status only"
    end
    return status
end

-- POST /_sandbox/fault with f (the decoded body): -> true | nil, error
function _M.arm(f)
    if type(f) ~= "table" then
        return nil, "the body must be a JSON object"
    end
    local mode = f.mode
    local d = dict()
    if mode == "none" or mode == cjson.null then
        disarm(d)
        return true
    end
    if type(mode) ~= "string" or not FAULTS[mode] then
        return nil, "mode must be one of " .. concat(NAMES, ", ") .. ", none"
    end
    local status, err = check_extras(mode, f)
    if err then
        return nil, err
    end
    local n = f.count == nil and 1 or f.count
    local ms = f.ms == nil and FAULTS[mode] or f.ms
    if type(n) ~= "number" or n < 1 or n ~= floor(n) then
        return nil, "count must be an integer >= 1"
    end
    if type(ms) ~= "number" or ms < 0 or ms > 3600000 then
        return nil, "ms must be a number from 0 to 3600000"
    end
    for _, k in ipairs(EXTRAS) do
        d:delete(k)
    end
    if f.bytes ~= nil then d:set("fault:bytes", f.bytes) end
    if f.location ~= nil then d:set("fault:location", f.location) end
    if f.http_status ~= nil then d:set("fault:http_status", f.http_status) end
    if status ~= nil then d:set("fault:status", status) end
    d:set("fault:mode", mode)
    d:set("fault:count", n)
    d:set("fault:ms", ms)
    return true
end

-- The armed fault for this request, if any: mode, ms, { bytes =, location =,
-- http_status =, status = }; counted in GET /_sandbox/requests.
function _M.take()
    local d = dict()
    local mode = d:get("fault:mode")
    if not mode then
        return nil
    end
    local left = d:incr("fault:count", -1, 0)
    if not left or left < 0 then
        d:delete("fault:mode")
        d:delete("fault:count")
        return nil
    end
    local ms = d:get("fault:ms") or FAULTS[mode] or 0
    local extra = { bytes = d:get("fault:bytes"), location = d:get("fault:location"),
                    http_status = d:get("fault:http_status"), status = d:get("fault:status") }
    if left == 0 then
        d:delete("fault:mode")
        d:delete("fault:count")
    end
    d:incr("faults:" .. mode, 1, 0)
    return mode, ms, extra
end

---------------------------------------------------------------------------------------
-- Broken answers (the fault modes that misbehave on the wire)
---------------------------------------------------------------------------------------

-- The fd of this request's connection, found by its ports (getpeername/getsockname over
-- the worker's descriptors: nginx does not hand the fd to Lua). nil if not found.
local ffi_ready
local function connection_fd()
    local ok, ffi = pcall(require, "ffi")
    if not ok then
        return nil
    end
    if not ffi_ready then
        pcall(ffi.cdef, [[
            int getpeername(int fd, void *addr, unsigned int *len);
            int getsockname(int fd, void *addr, unsigned int *len);
            int setsockopt(int fd, int level, int name, const void *val, unsigned int len);
        ]])
        ffi_ready = true
    end
    local rport, lport = tonumber(ngx.var.remote_port), tonumber(ngx.var.server_port)
    if not rport or not lport then
        return nil, ffi
    end
    local addr = ffi.new("uint8_t[128]")        -- a sockaddr_storage
    local len = ffi.new("unsigned int[1]")
    -- sockaddr_in and sockaddr_in6 both keep the port, big-endian, at offset 2
    local function port_of(getter, fd)
        len[0] = 128
        if getter(fd, addr, len) ~= 0 then
            return nil
        end
        return addr[2] * 256 + addr[3]
    end
    for fd = 0, 65535 do
        if port_of(ffi.C.getpeername, fd) == rport and port_of(ffi.C.getsockname, fd) == lport then
            return fd, ffi
        end
    end
    return nil, ffi
end

-- reset: reads `bytes` of the body, then resets the connection. Over HTTP/1.x the socket
-- gets SO_LINGER {on, 0}, so nginx's close() sends a TCP RST instead of a FIN; over HTTP/2
-- (one connection, many streams; no request socket to read part of the body with) no body
-- is read and 444 makes nginx reset the stream (RST_STREAM).
local function reset_connection(bytes)
    local length = tonumber(ngx.var.http_content_length)
    if length and bytes > length then
        bytes = length          -- never wait for bytes that are not coming
    end
    local h2 = ngx.req.http_version() >= 2
    if bytes > 0 and not h2 then          -- (no request socket over HTTP/2 in lua-nginx 0.10)
        local sock = ngx.req.socket()
        if sock then
            sock:settimeout(10000)
            local got, err, partial = sock:receive(bytes)
            ngx.log(ngx.NOTICE, "laaffic sandbox: reset after ", #(got or partial or ""),
                    " body bytes", err and (" (" .. err .. ")") or "")
        end
    end
    if not h2 then
        local fd, ffi = connection_fd()
        if fd then
            -- SOL_SOCKET 1, SO_LINGER 13 (Linux); struct linger { int l_onoff, l_linger; }
            local linger = ffi.new("int[2]", 1, 0)
            if ffi.C.setsockopt(fd, 1, 13, linger, 8) ~= 0 then
                ngx.log(ngx.WARN, "laaffic sandbox: reset: setsockopt(SO_LINGER) failed")
            end
        else
            ngx.log(ngx.WARN, "laaffic sandbox: reset: connection fd not found, closing with FIN")
        end
    end
    return ngx.exit(444)
end

-- The status line and headers of a 200 answer of `answer`'s true length, sent now.
local function send_head(answer)
    ngx.status = 200
    ngx.header["Content-Type"] = common.CONTENT_TYPE
    ngx.header["Content-Length"] = #answer
    ngx.send_headers()
end

-- short_body: the headers with the answer's true Content-Length, the first `bytes` of
-- the body, then the connection closes.
local function send_short(answer, bytes)
    send_head(answer)
    if bytes > 0 then
        ngx.print(answer:sub(1, math.min(bytes, #answer - 1)))
    end
    ngx.flush(true)
    return ngx.exit(444)
end

-- slow_body: the headers at once, then the body one byte every ms, flushed each time.
-- A client that gives up ends the request (lua_check_client_abort); a stop does too.
local function send_slow_body(answer, ms)
    send_head(answer)
    ngx.flush(true)
    for i = 1, #answer do
        if not nap(ms) then
            return ngx.exit(444)
        end
        ngx.print(answer:sub(i, i))
        local ok = ngx.flush(true)
        if not ok then
            return ngx.exit(444)
        end
    end
    return ngx.exit(ngx.HTTP_OK)
end

-- slow_headers: the whole answer (status line, headers, body) one byte every ms, written
-- to the raw downstream socket (HTTP/1.x only: over HTTP/2 this is slow_body).
local function send_slow_headers(answer, ms)
    if ngx.req.http_version() >= 2 then
        return send_slow_body(answer, ms)
    end
    local sock, err = ngx.req.socket(true)
    if not sock then
        ngx.log(ngx.ERR, "laaffic sandbox: slow_headers: no raw socket: ", err)
        return ngx.exit(444)
    end
    local raw = concat({
        "HTTP/1.1 200 OK\r\n",
        "Content-Type: ", common.CONTENT_TYPE, "\r\n",
        "Content-Length: ", tostring(#answer), "\r\n",
        "Connection: close\r\n\r\n",
        answer,
    })
    for i = 1, #raw do
        local ok = sock:send(raw:sub(i, i))
        if not ok or (i < #raw and not nap(ms)) then
            break
        end
    end
    return ngx.exit(444)
end

-- not_http: an answer that is not HTTP at all, after the request was read in full
local function send_not_http()
    if ngx.req.http_version() >= 2 then
        return ngx.exit(444)
    end
    local sock, err = ngx.req.socket(true)
    if not sock then
        ngx.log(ngx.ERR, "laaffic sandbox: not_http: no raw socket: ", err)
        return ngx.exit(444)
    end
    sock:send("garbage\r\n\r\n")
    return ngx.exit(444)
end

---------------------------------------------------------------------------------------
-- The hooks the API endpoint calls; each returns true when the mode ended the request
---------------------------------------------------------------------------------------

-- Before the body is read: slow_read waits, reset resets.
function _M.before_body(mode, ms, extra)
    if mode == "slow_read" then
        nap(ms)
    elseif mode == "reset" then
        reset_connection(extra.bytes or BYTES.reset)
        return true
    end
    return false
end

-- After the body was read, instead of checking it: no task is created.
function _M.instead_of_answer(mode, ms, extra)
    if mode == "drop" then
        ngx.exit(444)                   -- close without an answer
    elseif mode == "hang" then
        nap(ms)
        ngx.exit(444)
    elseif mode == "status500" then
        ngx.exit(500)                   -- nginx's own HTML error page
    elseif mode == "garbage" then
        ngx.status = 200
        ngx.header["Content-Type"] = common.CONTENT_TYPE
        ngx.print("<html>oops")
        ngx.exit(ngx.HTTP_OK)
    elseif mode == "redirect" then
        ngx.header["Location"] = extra.location
        send_json(extra.http_status or 307, '{"error":"moved"}')
    else
        return false
    end
    return true
end

-- The answer (the task created, or refused) goes out late, cut, slowly or not at all.
function _M.answer(mode, ms, extra, answer)
    if mode == "drop_after_create" then
        return ngx.exit(444)
    elseif mode == "delay" then
        nap(ms)
    elseif mode == "short_body" then
        return send_short(answer, extra.bytes or BYTES.short_body)
    elseif mode == "cut_json" then
        local n = extra.bytes or floor(#answer / 2)
        return send_json(200, answer:sub(1, math.min(n, #answer - 1)))
    elseif mode == "slow_headers" then
        return send_slow_headers(answer, ms)
    elseif mode == "slow_body" then
        return send_slow_body(answer, ms)
    elseif mode == "not_http" then
        return send_not_http()
    end
    return send_json(200, answer)
end

return _M
