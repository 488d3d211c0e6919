-- laaffic.transport.curl: the default transport, HTTP(S) through libcurl in the C core.
--
--   local curl = require "laaffic.transport.curl"
--   local send = curl.new{ timeout = 30, cafile = "/etc/ssl/my-ca.pem" }
--   local res, err, kind, sent = send{ method = "POST", url = ..., headers = ..., body = ... }
--
-- A transport is a function(request) -> response | nil, message, kind, sent:
--   request  = { method, url, headers = { name = value }, body = string | laaffic.body }
--   response = { status = <HTTP status>, headers = { <lower-case name> = value },
--                body = <string>, http_version =, connects =, time = { total =, ... } }
--   On failure: message, kind ("dns", "connect", "tls", "certificate", "timeout",
--   "connection", "empty", "too_large", "url", "transport") and sent: false only when no
--   byte of the request can have reached the server (the only failures laaffic retries;
--   "certificate", an untrusted server certificate, is not retried either).
-- One easy handle serves every call of a transport, so the connection (TLS included) is
-- reused between calls.
local core = require "laaffic.core"

local setmetatable = setmetatable

local _M = {}

local options = {
    connect_timeout = true, timeout = true, proxy = true, cafile = true, capath = true,
    user_agent = true, insecure = true, http2 = true, reuse = true, max_response = true,
    resolve = true,
}
_M.options = options

-- curl.new([opts]) -> transport. opts: connect_timeout (s, default 10), timeout (s, total
-- deadline, default 60), proxy, cafile, capath, user_agent, insecure (default false:
-- TLS peer and host are verified), http2 (default true), reuse (default true),
-- max_response (bytes, default 1 MiB), resolve ({ "host:port:address" }, as curl --resolve).
-- Bad options raise.
function _M.new(opts)
    local o = {}
    for k, v in pairs(opts or {}) do
        if options[k] then o[k] = v end
    end
    local handle = core.http(o)
    local t = setmetatable({ handle = handle }, {
        __call = function(self, req)
            return self.handle:request(req.method, req.url, req.headers, req.body)
        end,
        __tostring = function() return "laaffic.transport.curl" end,
    })
    return t
end

return _M
