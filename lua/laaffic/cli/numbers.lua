-- laaffic.cli.numbers: the number list of send and validate (--numbers FILE.csv and its
-- options, or the task's own numberInfoList) and the --rejects file of the rows left out.

local laaffic = require "laaffic"
local util = require "laaffic.cli.util"
local args = require "laaffic.cli.args"

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local pcall = pcall
local format = string.format
local floor = math.floor

local core = laaffic.core
local csv = laaffic.csv
local EXIT, die, int = util.EXIT, util.die, util.int

local _M = {}

local FIELDS = { calleeNumber = "calleeNumber" }
for k = 1, 10 do FIELDS["text" .. k] = "text" .. k end

local function csv_options(opts)
    local o = {}
    local columns
    for _, spec in ipairs(opts.column) do
        local field, value = spec:match("^([^=]+)=(.*)$")
        local key = field and (FIELDS[field] or FIELDS[field:lower() == "calleenumber" and
                                                          "calleeNumber" or field:lower()])
        if not key then
            die(EXIT.USAGE, "--column takes FIELD=HEADER or FIELD=N, FIELD one of " ..
                "calleeNumber, text1 ... text10")
        end
        columns = columns or {}
        if value == "" then
            columns[key] = false
        elseif value:match("^%d+$") then
            local n = tonumber(value)
            if n < 1 then die(EXIT.USAGE, "--column " .. key .. "=N: N counts from 1") end
            columns[key] = n
        else
            columns[key] = value
        end
    end
    o.columns = columns
    if opts.delimiter then
        local d = opts.delimiter
        if d == "tab" or d == "\\t" then d = "\t" end
        if #d ~= 1 or d == '"' or d == "\n" or d == "\r" then
            die(EXIT.USAGE, "--delimiter must be one character (\"tab\" for a tab), not a quote")
        end
        o.delimiter = d
    end
    if opts.no_header then o.header = false end
    if opts.normalize then o.normalize = true end
    if opts.dedupe then o.dedupe = true end
    return o
end

-- The list source: returns make() -> a fresh list (a table, or a new CSV source each time),
-- and the name that messages show.
local function number_source(opts, task, taskname)
    if not opts.numbers then
        for k in pairs(args.CSV_OPTS) do
            local key = k:gsub("%-", "_")
            if key ~= "numbers" and key ~= "require_texts" and key ~= "no_truncate" and
               key ~= "rejects" and key ~= "max_rejects" and
               (key == "column" and #opts.column > 0 or key ~= "column" and opts[key]) then
                die(EXIT.USAGE, "--" .. k .. " is for the CSV list: give --numbers FILE")
            end
        end
        local list = task.numberInfoList
        return function() return list end, taskname
    end
    local path = opts.numbers
    local copts = csv_options(opts)
    local function make()
        local ok, src, err = pcall(csv.open, path, copts)
        if not ok then
            die(EXIT.USAGE, "--numbers: " .. tostring(src):gsub("^.-laaffic%.csv%.open: ", ""))
        end
        if not src then
            local line = err.line
            -- the reader's message may name the file already: name it once
            local msg = tostring(err.message)
            local at = path .. (line and (":" .. int(line)) or "") .. ": "
            if msg:sub(1, #at) == at then
                msg = msg:sub(#at + 1)
            elseif msg:sub(1, #path + 2) == path .. ": " then
                msg = msg:sub(#path + 3)
            end
            local text = at .. msg
            die(EXIT.INVALID, text, { problems = { { file = path, line = line,
                message = msg, text = text } } })
        end
        return src
    end
    make():close()      -- fail early, before anything else
    return make, path
end

-- CSV field quoting (RFC 4180)
local function csv_field(v)
    if v == nil then return "" end
    v = tostring(v)
    if v:find('[,"\r\n]') then
        return '"' .. v:gsub('"', '""') .. '"'
    end
    return v
end

-- A name for a temporary file beside path (same directory: the rename is atomic).
local function temp_beside(path)
    local f = io.open("/dev/urandom", "rb")
    local r = f and f:read(6)
    if f then f:close() end
    local hex = r and r:gsub(".", function(c) return format("%02x", c:byte()) end) or
                format("%x%x", os.time(), floor(core.now() * 1e6) % 0x1000000)
    local dir, base = path:match("^(.*/)([^/]*)$")
    return (dir or "") .. "." .. (base or path) .. ".laaffic-" .. hex
end

-- --rejects FILE must never be a file the command reads: it is replaced at the end.
-- Compared by device and inode, so another spelling or a link is caught too.
local function check_rejects_path(opts, cfg)
    if not opts.rejects then return end
    local id = core.file_id(opts.rejects)
    if id then
        for _, input in ipairs({ { opts.numbers, "number list" },
                                 { opts.task ~= "-" and opts.task, "task file" },
                                 { cfg.config_path, "config file" } }) do
            if type(input[1]) == "string" and core.file_id(input[1]) == id then
                die(EXIT.USAGE, format("--rejects %s is the %s (%s): it would be overwritten; " ..
                    "give another file", opts.rejects, input[2], input[1]))
            end
        end
    end
    -- fail now, not after the send, when the directory cannot take the file
    local tmp = temp_beside(opts.rejects)
    local f, err = io.open(tmp, "wb")
    if not f then die(EXIT.USAGE, "--rejects: cannot write beside " .. opts.rejects .. ": " ..
                      tostring(err)) end
    f:close()
    os.remove(tmp)
end

-- Writes the rejects to a temporary file renamed over path at the end: path is never
-- truncated first, and holds either its old content or the whole new list.
local function write_rejects(path, rejects)
    local tmp = temp_beside(path)
    local f, err = io.open(tmp, "wb")
    if not f then return nil, err end
    local ok, werr = f:write("line,column,field,message\n")
    for _, r in ipairs(rejects) do
        if not ok then break end
        ok, werr = f:write(csv_field(r.line and int(r.line)), ",",
            csv_field(r.column and int(r.column)), ",", csv_field(r.field), ",",
            csv_field(r.message), "\n")
    end
    local closed, cerr = f:close()
    if ok and closed then
        ok, werr = os.rename(tmp, path)
    else
        ok, werr = nil, werr or cerr
    end
    if not ok then
        os.remove(tmp)
        return nil, werr
    end
    return true
end


_M.source = number_source
_M.check_rejects_path = check_rejects_path
_M.write_rejects = write_rejects

return _M
