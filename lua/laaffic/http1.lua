-- laaffic.http1: reads an HTTP/1.x response from a connected socket (an nginx cosocket),
-- one small step per function as lua-resty-http does (_receive_status, _receive_headers,
-- _body_reader). The cosocket transport (laaffic.transport.ngx) and the sandbox's push
-- simulator both read their answers with it; each turns the errors into its own words.
-- Errors are the socket's own strings ("timeout", "closed", ...) plus "not_http",
-- "bad chunk size" and "too_large".
local tonumber = tonumber
local concat = table.concat
local lower = string.lower

local _M = {}

-- The status line. -> status (number), version ("1.1") | nil, err, line (for "not_http")
function _M.receive_status(sock)
    local line, err = sock:receive("*l")
    if not line then
        return nil, err
    end
    local version, status = line:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not status then
        return nil, "not_http", line
    end
    return tonumber(status), version
end

-- The header lines up to the empty one, names lower-cased, repeated ones joined with ", ".
-- max_lines (optional) stops reading after that many lines. -> headers | nil, err
function _M.receive_headers(sock, max_lines)
    local headers, n = {}, 0
    while not max_lines or n < max_lines do
        local line, err = sock:receive("*l")
        if not line then
            return nil, err
        end
        if line == "" then
            break
        end
        n = n + 1
        local k, v = line:match("^([^:]+):%s*(.-)%s*$")
        if k then
            k = lower(k)
            headers[k] = headers[k] and (headers[k] .. ", " .. v) or v
        end
    end
    return headers
end

-- A chunked body, trailers skipped. -> body | nil, err
local function chunked_body(sock, max)
    local parts, total = {}, 0
    while true do
        local line, err = sock:receive("*l")
        if not line then return nil, err end
        local hex = line:match("^%s*(%x+)")     -- (tonumber(nil, 16) raises)
        local size = hex and tonumber(hex, 16)
        if not size then return nil, "bad chunk size" end
        if size == 0 then
            repeat  -- trailers, up to the empty line
                line, err = sock:receive("*l")
                if not line then return nil, err end
            until line == ""
            return concat(parts)
        end
        total = total + size
        if total > max then return nil, "too_large" end
        local data
        data, err = sock:receive(size)
        if not data then return nil, err end
        parts[#parts + 1] = data
        line, err = sock:receive(2)     -- the CRLF after the chunk
        if not line then return nil, err end
    end
end

-- A body without a length ends when the server closes; read a piece at a time so that
-- max holds while reading. -> body | nil, err
local function close_delimited_body(sock, max)
    local parts, total = {}, 0
    while true do
        local data, err, partial = sock:receive(65536)
        data = data or partial
        total = total + #data
        if total > max then return nil, "too_large" end
        parts[#parts + 1] = data
        if err == "closed" then return concat(parts) end
        if err then return nil, err end
    end
end

-- The body the headers announce (chunked, Content-Length or up to the close), at most
-- max bytes. -> body | nil, err
function _M.receive_body(sock, headers, max)
    local te = headers["transfer-encoding"]
    if te and lower(te):find("chunked", 1, true) then
        return chunked_body(sock, max)
    end
    local len = tonumber(headers["content-length"])
    if len then
        if len > max then return nil, "too_large" end
        if len == 0 then return "" end
        return sock:receive(len)
    end
    return close_delimited_body(sock, max)
end

return _M
