-- laaffic.csv: call lists from CSV files, read by the C core straight into request bodies.
--
-- A source (a laaffic.csv userdata) is given as a task's numberInfoList: build_task takes
-- its next part, create_tasks all of it, with no Lua table built per row. This module
-- checks the options and turns the core's failures into laaffic.error objects. The file
-- format and the options: README.md ("laaffic.csv").
local core = require "laaffic.core"
local lerror = require "laaffic.error"
local options = require "laaffic.options"

local type = type
local tostring = tostring
local error = error
local pcall = pcall
local format = string.format

local _M = {}

-- The options; their values are checked by the core (laaffic.options finds unknown ones).
local OPTIONS = options.spec{ { "columns" }, { "header" }, { "delimiter" }, { "normalize" },
                              { "dedupe" }, { "name" } }

local function check_opts(fn, opts)
    -- check_opts (1) <- laaffic.csv.<fn> (2) <- its caller (3)
    options.check("laaffic.csv." .. fn, opts, OPTIONS, 3, true)
end

-- Runs core.csv_file / csv_string (fn) for laaffic.csv.<fname>; file is the name errors
-- carry. The core rejects a malformed option with "bad argument #2 to 'csv_file'
-- (opts.delimiter must be ...)": that is raised again naming the public function, at the
-- caller of laaffic.csv.<fname>.
local function run(fname, fn, arg, opts, file)
    local ok, src, msg, kind, line = pcall(fn, arg, opts)
    if not ok then
        local what = tostring(src):match("bad argument #%d+ to '[^']*' %((.*)%)$")
        error(what and ("laaffic.csv." .. fname .. ": " .. what) or src, what and 3 or 0)
    end
    if src then
        return src
    end
    return nil, lerror.new{ kind = kind == "io" and "io" or "invalid", message = msg,
                            file = file, line = (line and line > 0) and line or nil }
end

local function name_of(opts, default)
    local name = type(opts) == "table" and opts.name
    return type(name) == "string" and name or default
end

-- laaffic.csv.open(path [, opts]) -> source | nil, err
-- Opens the file and reads its header row. err has kind "io" (cannot open or read, or a
-- path with a NUL byte, which C would cut short) or "invalid" (no calleeNumber column,
-- UTF-16, a mapped header that is missing...); err.file is the path (or opts.name).
-- Misuse (an unknown option, a bad option value) raises.
function _M.open(path, opts)
    if type(path) ~= "string" then
        error("laaffic.csv.open: path must be a string, got " .. type(path), 2)
    end
    check_opts("open", opts)
    local file = name_of(opts, path)
    if path:find("\0", 1, true) then
        return nil, lerror.new{ kind = "io", file = file,
                                message = format("%q: the path contains a NUL byte", path) }
    end
    return run("open", core.csv_file, path, opts, file)
end

-- laaffic.csv.from_string(s [, opts]) -> source | nil, err
-- The same, over CSV text in memory (the string is referenced, not copied).
function _M.from_string(s, opts)
    if type(s) ~= "string" then
        error("laaffic.csv.from_string: s must be a string, got " .. type(s), 2)
    end
    check_opts("from_string", opts)
    return run("from_string", core.csv_string, s, opts, name_of(opts, "<string>"))
end

-- laaffic.csv.is(v) -> true when v is a source made by open or from_string.
_M.is = core.is_csv

return _M
