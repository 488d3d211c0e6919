-- laaffic.http1, the HTTP/1 response reader of the cosocket transport and the sandbox's
-- push simulator, against a stand-in for an nginx cosocket that serves a fixed byte string
-- (receive("*l") strips CRLF; receive(n) and close give nil, "closed", partial at the end).
-- The transport's own messages and kinds over real sockets: spec/41, 43, 60, 61.
local http1 = require("laaffic.http1")

local function socket(bytes)
    local pos = 1
    local s = {}
    function s:receive(what) -- luacheck: ignore 212
        if what == "*l" then
            local e = bytes:find("\n", pos, true)
            if not e then
                local partial = bytes:sub(pos)
                pos = #bytes + 1
                return nil, "closed", partial
            end
            local line = bytes:sub(pos, e - 1):gsub("\r$", "")
            pos = e + 1
            return line
        end
        local piece = bytes:sub(pos, pos + what - 1)
        pos = pos + #piece
        if #piece < what then
            return nil, "closed", piece
        end
        return piece
    end
    return s
end

local function read(bytes, max)
    local sock = socket(bytes)
    local status, version = http1.receive_status(sock)
    local headers = assert(http1.receive_headers(sock))
    local body, err = http1.receive_body(sock, headers, max or 1024)
    return { status = status, version = version, headers = headers, body = body, err = err }
end

describe("laaffic.http1", function()
    it("reads the status line, or says why not", function()
        assert.are.same({ 201, "1.0" }, { http1.receive_status(socket("HTTP/1.0 201 Created\r\n")) })
        assert.are.same({ nil, "not_http", "garbage" }, { http1.receive_status(socket("garbage\r\n")) })
        assert.are.same({ nil, "closed" }, { http1.receive_status(socket("")) })
    end)

    it("reads headers lower-cased, repeated ones joined, up to max_lines", function()
        local h = http1.receive_headers(socket("Content-Type: a/b\r\nX-A: 1\r\nx-a:  2 \r\n\r\nbody"))
        assert.are.same({ ["content-type"] = "a/b", ["x-a"] = "1, 2" }, h)
        h = http1.receive_headers(socket("A: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 2)
        assert.are.same({ a = "1", b = "2" }, h)
        assert.are.same({ nil, "closed" }, { http1.receive_headers(socket("A: 1\r\n")) })
    end)

    it("reads a sized body and refuses one over max before reading it", function()
        local r = read("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA")
        assert.are.same({ 200, "1.1", "hello" }, { r.status, r.version, r.body })
        r = read("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        assert.are.equal("", r.body)
        r = read("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\nhello")
        assert.are.same({ nil, "too_large" }, { r.body, r.err })
        r = read("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello")
        assert.are.same({ nil, "closed" }, { r.body, r.err })
    end)

    it("reads a chunked body, trailers skipped, bounded by max", function()
        local wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n" ..
                     "5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nTrailer: x\r\n\r\n"
        assert.are.equal("hello!", read(wire).body)
        assert.are.same({ nil, "too_large" }, { read(wire, 5).body, read(wire, 5).err })
        local r = read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert.are.same({ nil, "bad chunk size" }, { r.body, r.err })
        r = read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        assert.are.same({ nil, "closed" }, { r.body, r.err })
    end)

    it("reads a body without a length up to the close, bounded by max", function()
        local wire = "HTTP/1.0 200 OK\r\n\r\n" .. string.rep("x", 100)
        assert.are.equal(string.rep("x", 100), read(wire).body)
        assert.are.same({ nil, "too_large" }, { read(wire, 99).body, read(wire, 99).err })
    end)
end)
