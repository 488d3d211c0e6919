-- The C core's memory safety and object lifecycles (issue 11): the CSV reader across its
-- refill, bodies and handles closed while a multi runs them, tables and options changed by
-- finalizers in the middle of a call, the body-size estimate, CR/LF in the request line.
--
-- Each case is written so that the defect it guards shows here as a failed assertion or
-- a crash, and under `make asan-specs` (the core built with ASan + UBSan) as a report.
-- HTTP cases run against spec/httpd.py on 127.0.0.1 (a port the kernel chooses).
local core = require("laaffic.core")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local S = dofile(H.root .. "/spec/shell.lua")

local ASAN = os.getenv("LAAFFIC_ASAN") ~= nil
local VALGRIND = os.getenv("LAAFFIC_VALGRIND") ~= nil

local tmpdir
setup(function()
    tmpdir = assert(S.sh("mktemp -d /tmp/laaffic-spec24.XXXXXX")):match("^(%S+)")
end)
teardown(function()
    if tmpdir then S.sh("rm -rf " .. S.q(tmpdir)) end
end)

local function task(list)
    return { taskName = "safety", agentId = 110, appId = "app", numberInfoList = list }
end

local function rows(n)
    local list = {}
    for i = 1, n do
        list[i] = { calleeNumber = ("9197776%05d"):format(i), text1 = "David", text2 = "5000" }
    end
    return list
end

-- Runs f with the collector stepping at every allocation, so pending finalizers run at
-- the first allocation inside the call under test; restores the defaults after.
local function aggressive_gc(f)
    collectgarbage("collect")
    collectgarbage("setpause", 0)
    collectgarbage("setstepmul", 1000)
    local ok, err = pcall(f)
    collectgarbage("setpause", 200)
    collectgarbage("setstepmul", H.is_luajit and 200 or 100)
    collectgarbage("collect")
    assert(ok, err)
end

-- Runs f with 2000 finalizers pending: the collector has begun to call them, a few a
-- step, and steps after every few allocations (the step multiplier sets how much work,
-- so how many finalizers, a step does). on_gc(k) is what the k-th does once f runs.
-- Returns f's results.
local function with_pending_finalizers(stepmul, on_gc, f)
    collectgarbage("collect")
    local st = { armed = false, ran = 0 }
    local mt = { __gc = function(o)
        st.ran = st.ran + 1
        if st.armed then on_gc(o[1]) end
    end }
    collectgarbage("stop")
    for k = 1, 2000 do setmetatable({ k }, mt) end
    collectgarbage("restart")
    if H.is_luajit then
        collectgarbage("setpause", 0)
        collectgarbage("setstepmul", stepmul)
    else
        collectgarbage("incremental", 0, stepmul, 0)
    end
    for _ = 1, 100000 do
        if st.ran > 0 then break end
        collectgarbage("step", 0)
    end
    st.armed = true
    local r = { pcall(f) }
    st.armed = false
    if H.is_luajit then
        collectgarbage("setpause", 200)
        collectgarbage("setstepmul", 200)
    else
        collectgarbage("incremental", 200, 100, 13)
    end
    collectgarbage("collect")
    assert(r[1], r[2])
    return H.unpack(r, 2)
end

-- Lua 5.4 needs its incremental mode for setpause/setstepmul to matter
if not H.is_luajit then collectgarbage("incremental") end

---------------------------------------------------------------------------------------
describe("the CSV reader", function()
    it("starts the next part right after blank lines that end at the 256 KiB refill", function()
        -- the header and one row, blank lines up to byte 262,140, then a row that crosses
        -- the first read block: part 2 starts at a record the reader had to read more for
        local head = "calleeNumber,text1\n919777654321,a\n"
        local text = head .. ("\n"):rep(262140 - #head) ..
                     "919777654322,bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n\n\n919777654323,c\n"
        local path = tmpdir .. "/refill.csv"
        S.write(path, text)
        local src = assert(core.csv_file(path))
        local seen = {}
        for part = 1, 3 do
            local json, info = core.encode(task(src), { max_rows = 1 })
            assert.is_string(json, info)
            assert.are.equal(1, info.rows)
            assert.are.equal(part, info.part)
            seen[part] = json:match('"calleeNumber":"(%d+)"')
        end
        assert.are.same({ "919777654321", "919777654322", "919777654323" }, seen)
        local json, msg = core.encode(task(src), { max_rows = 1 })
        assert.is_nil(json)
        assert.matches("no rows left", msg)
        src:close()
    end)

    it("keeps the name it was given while the collector runs (options are read raw)", function()
        aggressive_gc(function()
            for i = 1, 100 do
                local name = ("n"):rep(60) .. i
                -- a name behind __index is not an option: only the table's own fields are
                local fresh = setmetatable({}, { __index = function(_, k)
                    if k == "name" then return ("m"):rep(60) .. i end
                end })
                local a = assert(core.csv_string("calleeNumber\n919777654321\n", fresh))
                assert.are.equal("<string>", a:info().name)
                local b = assert(core.csv_string("calleeNumber\n919777654321\n", { name = name }))
                assert.are.equal(name, b:info().name)
            end
        end)
    end)

    it("names the source in the error when a finalizer closes it during an encode", function()
        local lines = { "calleeNumber,text1" }
        for i = 1, 400 do
            lines[#lines + 1] = (i % 2 == 0 and "12x%d" or "9197776%05d"):format(i) .. ",t"
        end
        local src = assert(core.csv_string(table.concat(lines, "\n"), { name = "list.csv" }))
        local json, msg = with_pending_finalizers(1, function() src:close() end, function()
            return core.encode(task(src), { rejects = {}, max_rejects = 1000 })
        end)
        if json == nil then
            assert.matches("^list%.csv:%d+: ", msg)
            assert.is_nil(msg:find("(null)", 1, true))
        end
        src:close()
    end)

    it("checks its options before it opens the file: a refused call leaves no descriptor", function()
        local path = tmpdir .. "/fd.csv"
        S.write(path, "calleeNumber\n919777654321\n")
        local function fds()
            local out = S.sh("ls /proc/" .. (S.read("/proc/self/stat") or ""):match("^(%d+)") .. "/fd | wc -l")
            return tonumber(out:match("%d+"))
        end
        collectgarbage("collect")
        collectgarbage("stop")
        local before = fds()
        for _ = 1, 50 do
            assert.has_error(function() core.csv_file(path, { delimiter = "ab" }) end)
            assert.has_error(function() core.csv_file(path, { columns = { nope = 1 } }) end)
        end
        local after = fds()
        collectgarbage("restart")
        -- 100 refused calls: without the fix, 100 more (give or take one of busted's own)
        assert.is_true(after <= before + 2, ("%d descriptors before, %d after"):format(before, after))
    end)

    it("refuses columns.calleeNumber = false with a header row as what it is", function()
        for _, o in ipairs({ { columns = { calleeNumber = false } },
                             { header = false, columns = { calleeNumber = false } } }) do
            local src, msg, kind = core.csv_string("calleeNumber\n919777654321\n", o)
            assert.is_nil(src)
            assert.are.equal("<string>: opts.columns.calleeNumber must not be false", msg)
            assert.are.equal("invalid", kind)
        end
        local src, msg = core.csv_string("919777654321,x\n", { header = false, columns = { text1 = 2 } })
        assert.is_nil(src)
        assert.matches("maps other columns but not calleeNumber", msg)
    end)
end)

---------------------------------------------------------------------------------------
describe("the encoder with finalizers that change the task", function()
    -- The step the encoder's key-array allocation triggers (300 keys: more than the debt
    -- a step leaves) calls finalizers that add keys to the table being written, or take
    -- keys away. Every run either succeeds with JSON or says what went wrong; none writes
    -- out of bounds or reads a freed key.
    local function encode_churned(t, target, mode, stepmul)
        return with_pending_finalizers(stepmul, function(k)
            if mode == "add" then
                target[("added_key_%d_%s"):format(k, ("z"):rep(40))] = "v"
            else
                local key = next(target)
                if key then target[key] = nil end
            end
        end, function() return core.encode(t) end)
    end

    local function check(mode, json, msg)
        if json then
            assert.is_truthy(require("cjson").decode(json))
        elseif mode == "add" then
            assert.matches("changed while it was encoded", msg)
        else
            assert.is_string(msg) -- a key gone: "is required", or the change itself
        end
    end

    local function keys(t, prefix, v)
        for k = 1, 300 do t[("%s_%d_%s"):format(prefix, k, ("y"):rep(40))] = v end
        return t
    end

    for _, mode in ipairs({ "add", "remove" }) do
        for _, stepmul in ipairs({ 1, 10, 40 }) do
            local what = (" (%s, step multiplier %d)"):format(mode, stepmul)
            it("in a field laaffic passes through" .. what, function()
                local t = task(rows(2))
                t.extra = keys({}, "key", 1)
                check(mode, encode_churned(t, t.extra, mode, stepmul))
            end)

            it("in the task's unknown fields" .. what, function()
                local t = keys(task(rows(2)), "top", 1)
                check(mode, encode_churned(t, t, mode, stepmul))
            end)

            it("in a row's unknown fields" .. what, function()
                local list = rows(3)
                keys(list[2], "row", "v")
                check(mode, encode_churned(task(list), list[2], mode, stepmul))
            end)
        end
    end
end)

---------------------------------------------------------------------------------------
describe("the body-size estimate", function()
    it("does not extrapolate one huge row onto every row after it", function()
        -- 200,000 rows, row 100 with a 20 MB field passed through: a 26 MB body. The
        -- encoder runs in a process limited to 1.5 GB of address space, on the plain build
        local cpath = package.cpath:gsub("build/asan/", "build/lua5.4/")
        local script = tmpdir .. "/estimate.lua"
        S.write(script, table.concat({
            "local core = require('laaffic.core')",
            "local list = {}",
            "for i = 1, 200000 do list[i] = { calleeNumber = ('9197%08d'):format(i) } end",
            "list[100].note = ('x'):rep(20 * 1000 * 1000)",
            "local body, info = core.encode_body({ taskName = 'big', agentId = 1, appId = 'a',",
            "                                      numberInfoList = list })",
            "io.write(body and ('ok ' .. #body) or tostring(info))",
        }, "\n"))
        local lua = H.is_luajit and "luajit" or "lua5.4"
        -- (without the sanitizer runtime: it cannot start under such a limit)
        local out = S.sh_all("env -u LD_PRELOAD -u ASAN_OPTIONS LUA_CPATH=" .. S.q(cpath) ..
                             " sh -c " .. S.q("ulimit -v 1500000; exec " .. lua .. " " .. S.q(script)))
        local n = tonumber(out:match("^ok (%d+)$"))
        assert(n, out)
        assert.is_true(n > 20 * 1000 * 1000 and n < 30 * 1000 * 1000, out)
    end)
end)

---------------------------------------------------------------------------------------
describe("HTTP handles, bodies and multis", function()
    local pid, base, logfile

    lazy_setup(function()
        local portfile = tmpdir .. "/httpd.port"
        logfile = tmpdir .. "/httpd.log"
        local out = S.sh("env -u LD_PRELOAD python3 " .. S.q(H.root .. "/spec/httpd.py") .. " " ..
                         S.q(portfile) .. " " .. S.q(logfile) .. " 300 >/dev/null 2>&1 & echo $!")
        pid = tonumber(out:match("%d+"))
        for _ = 1, 200 do
            local port = S.read(portfile)
            if port and port ~= "" then
                base = "http://127.0.0.1:" .. port
                return
            end
            core.sleep(0.05)
        end
        error("spec/httpd.py did not start")
    end)
    lazy_teardown(function()
        if pid then S.sh("kill " .. pid .. " 2>/dev/null") end
    end)

    local function big_body()
        local body = assert(core.encode_body(task(rows(2000))))
        assert.is_true(#body > 64 * 1024)
        return body, tostring(body)
    end

    -- waits for every transfer of m; returns the entries in the order they finished
    local function drain(m, limit)
        local done, t0 = {}, core.now()
        while m:running() > 0 do
            assert(core.now() - t0 < (limit or 20), "the multi still runs")
            for _, d in ipairs(m:wait(1)) do done[#done + 1] = d end
        end
        return done
    end

    it("sends the whole body when it is closed while a multi sends it", function()
        local h, m = core.http{ timeout = 20 }, core.multi()
        local body, json = big_body()
        m:add(h, "POST", base .. "/echo", { ["Content-Type"] = "application/json" }, body)
        body:close()
        assert.are.equal(0, #body) -- closed, as far as Lua can see
        collectgarbage("collect")
        local done = drain(m)
        assert.are.equal(1, #done)
        assert.is_table(done[1].response, done[1].error)
        assert.are.equal(200, done[1].response.status)
        assert.is_true(done[1].response.body == json, "the server got other bytes")
        assert.are.equal("", body:tostring())
        m:close()
        h:close()
    end)

    it("refuses a closed body in h:request and m:add", function()
        local h, m = core.http{ timeout = 5 }, core.multi()
        local body = big_body()
        body:close()
        assert.has_error(function() h:request("POST", base .. "/echo", {}, body) end,
                         "bad argument #4 to 'request' (the body was closed)")
        assert.has_error(function() m:add(h, "POST", base .. "/echo", {}, body) end,
                         "bad argument #5 to 'add' (the body was closed)")
        assert.are.equal(0, m:running())
        local res = h:request("POST", base .. "/echo", {}, "still works")
        assert.are.equal("still works", res.body)
        m:close()
        h:close()
    end)

    it("drops a handle closed while it runs from the multi's count and list", function()
        local m = core.multi()
        local a, b = core.http{ timeout = 20 }, core.http{ timeout = 20 }
        m:add(a, "GET", base .. "/slow")
        m:add(b, "POST", base .. "/echo", {}, "b's body")
        assert.are.equal(2, m:running())
        a:close()
        assert.are.equal(1, m:running())
        local done = drain(m, 10)
        assert.are.equal(1, #done)
        assert.are.equal(b, done[1].handle)
        assert.are.equal("b's body", done[1].response.body)
        assert.are.equal(0, m:running())
        assert.are.same({}, m:wait(0))
        -- the closed handle is refused, the multi goes on with new ones
        assert.has_error(function() m:add(a, "GET", base .. "/") end)
        local c = core.http{ timeout = 5 }
        m:add(c, "GET", base .. "/")
        assert.are.equal(200, drain(m)[1].response.status)
        m:close()
        b:close()
        c:close()
    end)

    -- finalizers that run while a response is turned into Lua values (300 headers: many
    -- allocations) close the handle, or the multi, under it
    for _, stepmul in ipairs({ 1, 10, 40 }) do
        it("survives finalizers that close the handle during h:request (step multiplier " ..
           stepmul .. ")", function()
            for _ = 1, 3 do
                local h = core.http{ timeout = 10 }
                local res, err = with_pending_finalizers(stepmul, function() h:close() end,
                    function() return h:request("GET", base .. "/headers/300") end)
                assert.is_table(res, err)
                assert.are.equal(200, res.status)
                assert.are.equal("value 299 " .. ("v"):rep(40), res.headers["x-header-299"])
                h:close()
            end
        end)

        it("survives finalizers that close the handle and the multi during m:wait " ..
           "(step multiplier " .. stepmul .. ")", function()
            for i = 1, 4 do
                local m, h = core.multi(), core.http{ timeout = 10 }
                local other = core.http{ timeout = 10 }
                m:add(h, "GET", base .. "/headers/300")
                m:add(other, "GET", base .. "/headers/300")
                -- the transfers end before the finalizers are armed: m:wait reports them
                core.sleep(0.3)
                local done = with_pending_finalizers(stepmul, function()
                    other:close()
                    if i % 2 == 0 then m:close() end
                end, function() return m:wait(5) end)
                for _, d in ipairs(done) do
                    assert.is_true(d.handle == h or d.handle == other)
                    if d.response then
                        assert.are.equal("value 299 " .. ("v"):rep(40), d.response.headers["x-header-299"])
                    end
                end
                -- what is left runs to its end, unless a finalizer closed the multi
                local t0 = core.now()
                while select(2, pcall(m.running, m)) == 1 and core.now() - t0 < 10 do
                    m:wait(1)
                end
                m:close()
                h:close()
                other:close()
            end
        end)
    end

    it("frees a large response buffer after a too_large failure", function()
        if ASAN or VALGRIND then return end -- their allocators keep freed memory
        local function rss()
            return tonumber(S.read("/proc/self/statm"):match("^%d+ (%d+)")) * 4096
        end
        local h = core.http{ timeout = 20, max_response = 40 * 1000 * 1000 }
        local res = h:request("GET", base .. "/big/1000")
        assert.are.equal(1000, #res.body)
        local before = rss()
        local r, msg, kind = h:request("GET", base .. "/big/50000000")
        assert.is_nil(r)
        assert.are.equal("too_large", kind, msg)
        assert.is_true(rss() - before < 16 * 1000 * 1000, "the 40 MB buffer is still held")
        h:close()
    end)

    it("refuses CR, LF, NUL and non-token characters in the method", function()
        local h = core.http{ timeout = 5 }
        for _, method in ipairs({
            "PUT /evil HTTP/1.1\r\nInjected: yes\r\nX-Pad:", "GET\n", "GE\0T", "GET X", "",
            "G(E)T",
        }) do
            assert.has_error(function() h:request(method, base .. "/echo", {}, "x") end,
                             "bad argument #1 to 'request' (the method must be an HTTP token)")
        end
        local res = h:request("PATCH", base .. "/echo", {}, "x")
        assert.are.equal(200, res.status)
        h:close()
        assert.is_nil((S.read(logfile) or ""):find("Injected", 1, true))
    end)

    it("refuses CR, LF and NUL in user_agent, and in the URL", function()
        for _, ua in ipairs({ "ua\r\nX-UA-Injected: 1", "ua\n", "u\0a" }) do
            assert.has_error(function() core.http{ user_agent = ua } end,
                             "laaffic.http: option user_agent contains CR, LF or NUL")
        end
        -- curl reads a file or proxy option up to a NUL: a shorter one than given
        assert.has_error(function() core.http{ cafile = "/etc/ssl/ca.pem\0.evil" } end,
                         "laaffic.http: option cafile contains NUL")
        local h = core.http{ timeout = 5, user_agent = "agent/1 (ok)" }
        assert.has_error(function() h:request("GET", base .. "/\0evil") end,
                         "bad argument #2 to 'request' (the URL contains CR, LF or NUL)")
        assert.are.equal(200, h:request("GET", base .. "/").status)
        h:close()
        local log = S.read(logfile) or ""
        assert.is_nil(log:find("X-UA-Injected", 1, true))
        assert.is_truthy(log:find("User-Agent: agent/1 (ok)", 1, true))
    end)
end)
