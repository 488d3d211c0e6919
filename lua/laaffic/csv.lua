-- laaffic.csv: call lists from CSV files, read by the C core straight into request bodies.
--
--   local laaffic = require "laaffic"
--   local src = assert(laaffic.csv.open("april.csv", { normalize = true, dedupe = true }))
--   local result, err = client:create_tasks{ taskName = "april", agentId = 110,
--                                            numberInfoList = src }
--
-- A source is a laaffic.csv userdata (laaffic.core.csv_file / csv_string). Give it as a
-- task's numberInfoList: client:build_task takes the next part of it (at most max_rows
-- rows, default 200,000), client:create_tasks all of it. No Lua table is built per row.
--
-- The file: a header row naming calleeNumber and any of text1..text10 (case does not
-- matter; other columns are ignored), then one call per record. RFC 4180 quoting, UTF-8
-- with or without a byte order mark, CRLF or LF line ends; blank lines are skipped, an
-- empty text cell is left out of the request.
--
-- Options (all optional):
--   columns    map fields to other headers or to column numbers:
--              { calleeNumber = "phone", text1 = "name", text2 = 4, text3 = false }
--              (false: ignore a column that would match by name)
--   header     false: the file has no header row; columns are then calleeNumber, text1,
--              ... in order, or as opts.columns numbers them
--   delimiter  one character, default ","; e.g. ";" or "\t"
--   normalize  true: strip spaces, tabs, "+" and "-" from numbers ("+91 97776-54321")
--   dedupe     true: drop a row whose number (after normalize) came earlier in the file;
--              info.duplicates counts them. Costs 16 bytes per distinct number.
--   name       the file name errors show (default: the path, or "<string>")
local core = require "laaffic.core"
local lerror = require "laaffic.error"

local type = type
local pairs = pairs
local tostring = tostring
local error = error
local pcall = pcall
local format = string.format

local _M = {}

local OPTIONS = { columns = true, header = true, delimiter = true, normalize = true,
                  dedupe = true, name = true }

local function check_opts(fn, opts)
    if opts == nil then
        return
    end
    if type(opts) ~= "table" then
        error("laaffic.csv." .. fn .. ": opts must be a table, got " .. type(opts), 3)
    end
    for k in pairs(opts) do
        if not OPTIONS[k] then
            error("laaffic.csv." .. fn .. ": unknown option '" .. tostring(k) .. "'", 3)
        end
    end
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
