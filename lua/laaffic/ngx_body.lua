-- laaffic.ngx_body: the whole body of the current nginx request, also when nginx spooled
-- it to a temporary file (a body over client_body_buffer_size). The push receiver
-- (laaffic.push.handler) and the sandbox read their request bodies with it.
local io_open = io.open

local _M = {}

-- read(max_bytes) -> body, spooled | nil, err
-- "" when there is no body. err is "too_large" for a spooled body over max_bytes (nil:
-- no limit; a body in memory is the caller's to measure), else what failed.
function _M.read(max_bytes)
    local req = rawget(_G, "ngx").req
    req.read_body()
    local body = req.get_body_data()
    if body then return body, false end
    local path = req.get_body_file()
    if not path then return "", false end
    local f, err = io_open(path, "rb")
    if not f then
        return nil, "cannot open the spooled request body: " .. tostring(err)
    end
    local size = f:seek("end")
    if max_bytes and size and size > max_bytes then
        f:close()
        return nil, "too_large"
    end
    f:seek("set")
    body, err = f:read("*a")
    f:close()
    if not body then
        return nil, "cannot read the spooled request body: " .. tostring(err)
    end
    return body, true
end

return _M
