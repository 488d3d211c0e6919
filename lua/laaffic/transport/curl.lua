-- laaffic.transport.curl: the default transport, HTTP(S) through libcurl in the C core.
--
-- A transport is a function(request) -> response | nil, message, kind, sent (README.md,
-- "Transports"); sent is false only when no byte of the request can have reached the
-- server. One easy handle serves every call, so the connection (TLS included) is reused.
-- t:parallel drives several handles with one libcurl multi, for create_tasks' parts.
local core = require "laaffic.core"

local setmetatable = setmetatable
local pairs = pairs
local ipairs = ipairs
local select = select
local error = error
local unpack_list = table.unpack or unpack -- luacheck: ignore 143 (unpack: Lua 5.1/LuaJIT)
local now = core.now

local _M = {}

local options = {
    connect_timeout = true, timeout = true, proxy = true, cafile = true, capath = true,
    user_agent = true, insecure = true, http2 = true, reuse = true, max_response = true,
    resolve = true,
}
_M.options = options

-- The methods of a libcurl transport (its metatable's __index).
local methods = {}

-- t:close(): closes the connection; the transport opens a new one when called again.
function methods.close(self)
    self.handle:close()
end

local function pack(...) return { n = select("#", ...), ... } end

local function yield_send(req) return coroutine.yield("send", req) end
local function yield_sleep(sec) coroutine.yield("sleep", sec) end

-- The state of one t:parallel run: idle handles, the coroutine waiting on each busy
-- handle, the sleeping coroutines and their wake-up times, and each job's ctx and handle.

-- Resumes co with ... and acts on what it does next: ends (done), sends, or sleeps.
local function step(run, co, ...)
    local r = pack(coroutine.resume(co, ...))
    if not r[1] then
        error(r[2], 0)
    end
    local job = run.jobs[co]
    if coroutine.status(co) == "dead" then
        run.idle[#run.idle + 1] = job.handle
        run.jobs[co] = nil
        run.alive = run.alive - 1
        run.done(job.ctx, unpack_list(r, 2, r.n))
    elseif r[2] == "send" then
        local req = r[3]
        run.multi:add(job.handle, req.method, req.url, req.headers, req.body)
        run.by_handle[job.handle] = co
    else -- "sleep"
        run.sleeping[co] = now() + r[3]
    end
end

-- Starts jobs while a handle is idle and next_job has one.
local function start(run)
    while #run.idle > 0 do
        local fn, ctx = run.next_job()
        if not fn then return end
        local co = coroutine.create(fn)
        run.jobs[co] = { ctx = ctx, handle = table.remove(run.idle) }
        run.alive = run.alive + 1
        step(run, co, yield_send, yield_sleep)
    end
end

-- Wakes the sleepers whose time has come; returns the next wake-up time, or nil.
local function wake(run)
    local t, next_wake = now(), nil
    for co, at in pairs(run.sleeping) do
        if at <= t then
            run.sleeping[co] = nil
            step(run, co)
        elseif not next_wake or at < next_wake then
            next_wake = at
        end
    end
    return next_wake
end

-- Waits for transfers (or, with none running, for the next sleeper) until next_wake.
local function await(run, next_wake)
    local multi = run.multi
    if multi:running() > 0 then
        local wait = next_wake and math.max(0, next_wake - now()) or 1
        for _, d in ipairs(multi:wait(wait)) do
            local co = run.by_handle[d.handle]
            run.by_handle[d.handle] = nil
            if d.response then
                step(run, co, d.response)
            else
                step(run, co, nil, d.error, d.kind, d.sent)
            end
        end
    elseif next_wake then
        core.sleep(math.max(0, next_wake - now()))
    end
end

-- t:parallel(n, next_job, done): runs up to n jobs at once, each on an easy handle of its
-- own (this transport's and n - 1 more), all driven by one libcurl multi. next_job() ->
-- fn, ctx | nil (no more jobs): fn(send, sleep) runs in a coroutine, where send(req) is a
-- transport call that waits for its transfer while the others go on, and sleep(s) waits
-- without holding them up; done(ctx, ...) gets what fn returned. next_job is asked again
-- whenever a handle is free. A raise in fn or done is raised again here.
function methods.parallel(self, n, next_job, done)
    local run = { multi = core.multi(), idle = { self.handle }, by_handle = {},
                  sleeping = {}, jobs = {}, alive = 0, next_job = next_job, done = done }
    for _ = 2, n do
        run.idle[#run.idle + 1] = core.http(self.opts)
    end
    while true do
        start(run)
        if run.alive == 0 then break end
        await(run, wake(run))
    end
    run.multi:close()
    for _, h in ipairs(run.idle) do
        if h ~= self.handle then h:close() end
    end
end

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
    local t = setmetatable({ handle = handle, opts = o }, {
        __index = methods,
        __call = function(self, req)
            return self.handle:request(req.method, req.url, req.headers, req.body)
        end,
        __tostring = function() return "laaffic.transport.curl" end,
    })
    return t
end

return _M
