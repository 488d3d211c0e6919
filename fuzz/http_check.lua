-- fuzz/http_check.lua - one lifecycle sequence for the core's HTTP objects, from bytes to
-- verdict. Driven by fuzz/http_fuzz.c, which runs the server on 127.0.0.1 (see there for
-- its paths) and checks what the server saw.
--
--   local H = dofile("fuzz/http_check.lua")
--   local ok, why = H.run(core, bytes, port)
--
-- The bytes are operations, one byte each followed by its arguments (running out of
-- bytes reads zeros), at most MAX_OPS of them, on three handle slots, two multi slots
-- and three body slots: make a handle (options from a list, among them a user agent
-- with CR/LF), make a multi, make a body (core.encode_body, small or 200 KiB, or a plain
-- string), m:add, h:request, m:wait, m:running, close a body, a handle or a multi, drop
-- a slot (and collect), a collector step, and finalizers that close, reuse or add
-- while a wait runs (timed as fuzz/encode_gc.lua times its finalizers). Misuse may raise
-- (a closed handle, a busy one, a closed body):
-- that is caught. What must hold:
--   * results have the documented shapes: a response { status, body, headers, ... } or
--     nil, message, kind, sent; a wait's entries name a handle that was added;
--   * m:running() is the number of handles added and neither reported by a wait nor
--     closed nor taken out by the multi's close (a model kept here);
--   * at the end, with every handle closed, each open multi runs none;
--   * memory safety (ASan, UBSan, LeakSanitizer at exit) and, in the harness, no header
--     line the caller did not ask for reaches the server.
local H = {}

local MAX_OPS = 48
H.debug = os.getenv("LAAFFIC_FUZZ_DEBUG") -- each request's and wait's outcome on stderr
local PATHS = { "/", "/500", "/big", "/empty", "/slow", "/close", "/q?a=1&b=%20" }
local METHODS = { "POST", "POST", "GET", "PUT", "DELETE",
                  "PUT /evil HTTP/1.1\r\nX-Injected: yes\r\nX-Pad:" }
local AGENTS = { false, "laaffic-fuzz/1", "ua\r\nX-Injected: 1" }
local HEADERS = { false, { ["Content-Type"] = "application/json", Sign = "s" },
                  { ["X-Bad"] = "a\r\nX-Injected: 1" }, { [""] = "x" }, { ["X-N"] = "\0" } }

local function reader(s)
    local pos = 0
    return function()
        pos = pos + 1
        return s:byte(pos) or 0
    end, function() return pos < #s end
end

local function task_of(rows)
    local list = {}
    for i = 1, rows do
        list[i] = { calleeNumber = string.format("9197776%05d", i), text1 = "name " .. i,
                    text2 = "some longer text for the body" }
    end
    return { appId = "2Xql9RBI", taskName = "fuzz", agentId = 1, numberInfoList = list }
end

local function pack(...) return { n = select("#", ...), ... } end

-- a response table, or nil, message, kind, sent
local function check_result(r, what, path)
    if r[1] == nil then
        if type(r[2]) ~= "string" or type(r[3]) ~= "string" or type(r[4]) ~= "boolean" then
            return false, what .. ": a failure is not nil, message, kind, sent"
        end
        return true
    end
    local res = r[1]
    if type(res) ~= "table" or math.type(res.status) ~= "integer" or type(res.body) ~= "string"
        or type(res.headers) ~= "table" or type(res.time) ~= "table" then
        return false, what .. ": a response without status, body, headers and time"
    end
    if path and path:find("^/500") and res.status ~= 500 then
        return false, what .. ": /500 answered " .. res.status
    end
    if path == "/" and res.status ~= 200 then return false, what .. ": / answered " .. res.status end
    return true
end

-- Returns true | false, why.
function H.run(core, bytes, port)
    local u8, more = reader(bytes)
    local base = "http://127.0.0.1:" .. port
    local hs, ms, bs = {}, {}, {}
    local model = {}     -- model[m] = { [h] = true, ... }: added, not reported, not closed
    local owner = {}     -- owner[h] = m while h runs in m
    local closed = {}    -- closed[m]: m:close() was called
    local fail

    local function pick(list) return list[u8() % #list + 1] end
    local function slot(n) return u8() % n + 1 end
    local function count(set)
        local n = 0
        for _ in pairs(set) do n = n + 1 end
        return n
    end
    local function release(h) -- h is no longer in any multi
        local m = owner[h]
        if m then model[m][h] = nil end
        owner[h] = nil
    end
    local function check_running(m, what)
        local ok, n = pcall(m.running, m)
        if ok and model[m] and n ~= count(model[m]) then
            fail = string.format("%s: running() is %s, but %d handle(s) were added and are "
                                 .. "neither reported nor closed", what, tostring(n), count(model[m]))
        end
    end
    local function wait(m, timeout)
        local ok, list = pcall(m.wait, m, timeout)
        if not ok then return end
        if type(list) ~= "table" then fail = "wait: not a list" return end
        if H.debug then io.stderr:write(("wait -> %d entries\n"):format(#list)) end
        for _, e in ipairs(list) do
            if type(e) ~= "table" or (model[m] and owner[e.handle] ~= m) then
                fail = "wait: an entry names a handle that is not running in this multi"
                return
            end
            local rok, why = check_result(e.response and { e.response } or { nil, e.error, e.kind, e.sent },
                                          "wait")
            if not rok then fail = why return end
            release(e.handle)
        end
        check_running(m, "after wait")
    end
    local function close_handle(h) -- (a fix may refuse to close a running handle)
        if pcall(h.close, h) then release(h) end
    end
    local function forget(m) -- the model stops following m (closed, dropped, or untracked)
        for h, o in pairs(owner) do if o == m then owner[h] = nil end end
        model[m] = nil
    end
    local function close_multi(m)
        pcall(m.close, m)
        forget(m)
        closed[m] = true
    end

    local OPS = {
        function() -- a handle
            local o = { timeout = 2, connect_timeout = 1, http2 = false }
            local k = u8()
            if k % 2 == 1 then o.max_response = 1024 end
            if k % 4 >= 2 then o.reuse = false end
            o.user_agent = AGENTS[math.floor(k / 4) % #AGENTS + 1] or nil
            local i = slot(3)
            local ok, h = pcall(core.http, o)
            if ok then hs[i] = h end
        end,
        function() -- a multi (the one it replaces is left to the collector)
            local m, i = core.multi(), slot(2)
            if ms[i] then forget(ms[i]) end
            ms[i] = m
            model[m] = {}
        end,
        function() -- a body: small, 200 KiB (several sends), or a string
            local k, i = u8() % 4, slot(3)
            if k == 3 then bs[i] = '{"plain":"string"}' return end
            local body = core.encode_body(task_of(k == 2 and 3000 or k + 1))
            bs[i] = body
        end,
        function() -- m:add
            local m, h, b = ms[slot(2)], hs[slot(3)], bs[slot(3)]
            local method, path, headers = pick(METHODS), pick(PATHS), pick(HEADERS) or nil
            if not m or not h then return end
            local ok = pcall(m.add, m, h, method, base .. path, headers, b)
            if ok then
                if owner[h] then fail = "m:add took a handle that is already running" return end
                if closed[m] then fail = "m:add worked on a closed multi" return end
                if model[m] then model[m][h], owner[h] = true, m end
            end
            check_running(m, "after add")
        end,
        function() -- h:request
            local h, b = hs[slot(3)], bs[slot(3)]
            local method, path, headers = pick(METHODS), pick(PATHS), pick(HEADERS) or nil
            if not h then return end
            local r = pack(pcall(h.request, h, method, base .. path, headers, b))
            if H.debug then
                io.stderr:write(("request %s %s -> %s %s %s\n"):format(method:sub(1, 8), path, tostring(r[2]),
                    type(r[2]) == "table" and r[2].status or tostring(r[3]), tostring(r[4])))
            end
            if r[1] then
                if owner[h] then fail = "h:request ran a handle that is busy in a multi" return end
                local ok, why = check_result({ table.unpack(r, 2, r.n) }, "request", path)
                if not ok then fail = why end
            end
        end,
        function() -- m:wait
            local m, t = ms[slot(2)], (u8() % 6) / 100
            if m then wait(m, t) end
        end,
        function() -- m:running
            local m = ms[slot(2)]
            if m then check_running(m, "running") end
        end,
        function() -- close a body (one a transfer is sending may be refused or deferred)
            local b = bs[slot(3)]
            if type(b) == "userdata" then pcall(b.close, b) end
        end,
        function() -- close a handle
            local h = hs[slot(3)]
            if h then close_handle(h) end
        end,
        function() -- close a multi
            local m = ms[slot(2)]
            if m then close_multi(m) end
        end,
        function() -- drop a slot, then collect (a multi's __gc closes it)
            local k, i = u8() % 3, slot(3)
            if k == 0 then hs[i] = nil
            elseif k == 1 then
                local m = ms[(i - 1) % 2 + 1]
                if m then
                    ms[(i - 1) % 2 + 1] = nil
                    forget(m)
                end
            else bs[i] = nil end
            collectgarbage()
        end,
        function() -- a collector step
            collectgarbage("step", u8() % 4)
        end,
        function() -- a finalizer that acts during a wait, at its first, second, ... GC step
            local k, h, m = u8() % 4, hs[slot(3)], ms[slot(2)]
            local target, delay = ms[slot(2)], u8() % 8
            local waiting = false
            local function act()
                if H.debug then
                    io.stderr:write(("finalizer %d %s a wait\n"):format(k, waiting and "during" or "outside"))
                end
                if k == 0 and h then pcall(h.close, h)
                elseif k == 1 and m then pcall(m.close, m)
                elseif k == 2 and h then pcall(h.request, h, "POST", base .. "/", nil, "{}")
                elseif h and m then pcall(m.add, m, h, "POST", base .. "/", nil, "{}") end
            end
            -- the model cannot follow what it does: the running() checks stop for the
            -- multis involved (memory safety is what this operation is about)
            if m then forget(m) end
            if target then forget(target) end
            if h and owner[h] then forget(owner[h]) end -- (h may run in a third multi)
            -- as fuzz/encode_gc.lua arms its finalizers: created dead with the collector
            -- stopped, then stepped until the newest batch of 10 has run; each GC step of
            -- the wait then runs the next 10 (`delay` batches of no-ops, then act)
            local armed = false
            collectgarbage("stop")
            setmetatable({}, { __gc = act })
            for _ = 1, delay * 10 + 9 do setmetatable({}, { __gc = function() end }) end
            setmetatable({}, { __gc = function() armed = true end })
            collectgarbage("incremental", 1, 1020, 1)
            for _ = 1, 1000000 do
                collectgarbage("step", 0)
                if armed then break end
            end
            collectgarbage("incremental", 1, 40, 1)
            collectgarbage("restart")
            waiting = true
            if target then pcall(target.wait, target, 0.05) end
            waiting = false
            collectgarbage("incremental", 200, 100, 13)
            collectgarbage()
        end,
        function() -- tostring and length of everything
            for i = 1, 3 do
                if hs[i] then tostring(hs[i]) end
                local b = bs[i]
                if type(b) == "userdata" and #b ~= #tostring(b) then fail = "#body ~= #tostring(body)" end
            end
        end,
    }

    local n = 0
    while more() and n < MAX_OPS and not fail do
        n = n + 1
        OPS[u8() % #OPS + 1]()
    end
    if fail then return false, fail end
    -- the end: close every handle; then an open multi runs none
    for i = 1, 3 do if hs[i] then close_handle(hs[i]) end end
    for i = 1, 2 do
        local m = ms[i]
        if m and model[m] then
            check_running(m, "with every handle closed")
            if fail then return false, fail end
            wait(m, 0)
            if fail then return false, fail end
        end
        if m then close_multi(m) end
    end
    for i = 1, 3 do
        local b = bs[i]
        if type(b) == "userdata" then
            b:close()
            if #b ~= 0 or tostring(b) ~= "" then return false, "a closed body is not empty" end
        end
    end
    return true
end

return H
