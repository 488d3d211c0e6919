-- CSV call lists: laaffic.core.csv_file / csv_string read by the encoder straight into the
-- request body. RFC 4180 quoting, BOM, CRLF, errors with file:line:column, rejects,
-- normalize, dedupe, column mapping, and lists split into parts with derived names.
local laaffic = require("laaffic")
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local S = dofile(H.root .. "/spec/shell.lua")

local function task(list, extra)
    local t = { taskName = "csv-spec", agentId = 110, appId = "app", numberInfoList = list }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
end

-- encodes a CSV text; returns the decoded body and info, or nil, message, field, code, where
local function enc(text, csv_opts, opts, extra)
    local src, err = core.csv_string(text, csv_opts)
    if not src then return nil, err end
    local body, info, field, code, where = core.encode(task(src, extra), opts)
    if not body then return nil, info, field, code, where end
    return cjson.decode(body), info, body
end

local function numbers(doc)
    local out = {}
    for i, row in ipairs(doc.numberInfoList) do out[i] = row.calleeNumber end
    return out
end

local tmpdir
setup(function()
    tmpdir = assert(S.sh("mktemp -d /tmp/laaffic-spec18.XXXXXX")):match("^(%S+)")
end)
teardown(function()
    if tmpdir then S.sh("rm -rf " .. S.q(tmpdir)) end
end)

describe("CSV reading", function()
    it("reads a header row and records, LF or CRLF, with or without a BOM", function()
        for _, text in ipairs{
            "calleeNumber,text1\n919777654321,David\n919777654322,Maria\n",
            "calleeNumber,text1\r\n919777654321,David\r\n919777654322,Maria\r\n",
            "\239\187\191calleeNumber,text1\r\n919777654321,David\r\n919777654322,Maria",
            "calleeNumber,text1\r919777654321,David\r919777654322,Maria\r",
        } do
            local doc, info = enc(text)
            assert.is_table(doc, info)
            assert.same({ { calleeNumber = "919777654321", text1 = "David" },
                          { calleeNumber = "919777654322", text1 = "Maria" } }, doc.numberInfoList)
            assert.equal(2, info.rows)
        end
    end)

    it("matches header names ignoring case and surrounding spaces, in any order, and ignores other columns", function()
        local doc = enc(" Text2 ,id,CALLEENUMBER , text1\n5000,7,919777654321,David\n")
        assert.same({ { calleeNumber = "919777654321", text1 = "David", text2 = "5000" } },
                    doc.numberInfoList)
    end)

    it("handles RFC 4180 quoting: delimiters, line breaks and doubled quotes inside quotes", function()
        local doc = enc('calleeNumber,text1,text2\n"919777654321","a, b","say ""hi""\nbye"\n')
        assert.same({ calleeNumber = "919777654321", text1 = "a, b", text2 = 'say "hi"\nbye' },
                    doc.numberInfoList[1])
    end)

    it("keeps a quote inside an unquoted field as it is", function()
        local doc = enc('calleeNumber,text1\n919777654321,5" screen\n')
        assert.equal('5" screen', doc.numberInfoList[1].text1)
    end)

    it("skips blank lines and leaves empty text cells out of the request", function()
        local doc, info = enc("calleeNumber,text1,text2\n\n919777654321,,x\n\r\n919777654322,y,\n\n")
        assert.same({ { calleeNumber = "919777654321", text2 = "x" },
                      { calleeNumber = "919777654322", text1 = "y" } }, doc.numberInfoList)
        assert.equal(2, info.rows)
    end)

    it("counts lines across quoted line breaks in its error positions", function()
        local _, msg, field, code, where = enc('calleeNumber,text1\n919777654321,"two\nlines"\n12345,x\n')
        assert.equal("<string>:4:1: calleeNumber: must be 6 to 18 digits (country code + number), got \"12345\"", msg)
        assert.equal("calleeNumber", field)
        assert.equal(-21, code)
        assert.same({ file = "<string>", line = 4, column = 1 }, where)
    end)

    it("names the column of the bad field, counted from 1", function()
        local _, msg, _, _, where = enc("a,b,calleeNumber,text1\n1,2,919777654321,\"\255\"\n",
                                        { name = "list.csv" })
        assert.matches("^list%.csv:2:4: text1: invalid UTF%-8", msg)
        assert.same({ file = "list.csv", line = 2, column = 4 }, where)
    end)

    it("reports text after a closing quote, and an unterminated quote at the line it opens", function()
        local _, msg = enc('calleeNumber,text1\n919777654321,"a"b\n')
        assert.matches("^<string>:2:2: text after a closing quote", msg)
        _, msg = enc('calleeNumber,text1\n919777654321,ok\n919777654322,"open\n\n')
        assert.matches("^<string>:3:2: a quoted field is never closed", msg)
    end)

    it("refuses a file without a calleeNumber column, naming the columns it has", function()
        local src, msg, kind, line = core.csv_string("phone,name\n919777654321,x\n")
        assert.is_nil(src)
        assert.equal('<string>:1: the header row has no calleeNumber column (it has: "phone", "name"); ' ..
                     'map one with opts.columns = { calleeNumber = "<name>" }', msg)
        assert.equal("invalid", kind)
        assert.equal(1, line)
    end)

    it("refuses an empty file, a UTF-16 file and duplicate columns", function()
        assert.matches("the file is empty", select(2, core.csv_string("")))
        assert.matches("UTF%-16", select(2, core.csv_string("\255\254c\0a\0")))
        assert.matches("columns 1 and 2 are both calleeNumber",
                       select(2, core.csv_string("calleeNumber,calleenumber\n1,2\n")))
    end)

    -- the pages give numberInfoList a maximum only: an empty list is a warning, as it is
    -- for a Lua list, and an error only with strict
    it("encodes a list with a header and no rows as an empty list, with a warning", function()
        local doc, info = enc("calleeNumber,text1\n\n")
        assert.same({}, doc.numberInfoList)
        assert.equal(0, info.rows)
        assert.equal(1, #info.warnings)
        assert.equal("numberInfoList", info.warnings[1].field)
        assert.matches("is empty: no number to call", info.warnings[1].message)
        local _, msg, field = enc("calleeNumber,text1\n\n", nil, { strict = true })
        assert.equal("numberInfoList", field)
        assert.matches("is empty: no number to call", msg)
    end)

    it("maps columns by header name, by number, or turns a column off", function()
        local doc = enc("phone,name,text1\n919777654321,David,ignored\n",
                        { columns = { calleeNumber = "phone", text1 = "name" } })
        assert.same({ calleeNumber = "919777654321", text1 = "David" }, doc.numberInfoList[1])
        doc = enc("x,y,z\n919777654321,a,b\n", { columns = { calleeNumber = 1, text2 = 3 } })
        assert.same({ calleeNumber = "919777654321", text2 = "b" }, doc.numberInfoList[1])
        doc = enc("calleeNumber,text1\n919777654321,a\n", { columns = { text1 = false } })
        assert.same({ calleeNumber = "919777654321" }, doc.numberInfoList[1])
        local src, msg = core.csv_string("calleeNumber\n1\n", { columns = { text1 = "nope" } })
        assert.is_nil(src)
        assert.matches('opts.columns maps text1 to "nope", but the header row has no such column', msg)
    end)

    it("reads a file without a header row when told", function()
        local doc = enc("919777654321,David\n919777654322,Maria\n", { header = false })
        assert.same({ calleeNumber = "919777654322", text1 = "Maria" }, doc.numberInfoList[2])
        doc = enc("x;919777654321\n", { header = false, delimiter = ";", columns = { calleeNumber = 2 } })
        assert.same({ { calleeNumber = "919777654321" } }, doc.numberInfoList)
    end)

    it("takes another delimiter", function()
        local doc = enc("calleeNumber\ttext1\n919777654321\ta,b\n", { delimiter = "\t" })
        assert.equal("a,b", doc.numberInfoList[1].text1)
    end)

    it("raises on misuse of its options", function()
        assert.has_error(function() core.csv_string("x", { delimiter = '"' }) end)
        assert.has_error(function() core.csv_string("x", { columns = { phone = "x" } }) end)
        assert.has_error(function() core.csv_string("x", { header = "no" }) end)
        assert.has_error(function() core.csv_string("x", { header = false, columns = { calleeNumber = "a" } }) end)
        assert.has_error(function() laaffic.csv.from_string("x", { bogus = 1 }) end)
        assert.has_error(function() laaffic.csv.open(42) end)
    end)
end)

describe("CSV validation is the table path's", function()
    -- random rows: UTF-8, quotes, commas, line breaks, texts over 30 characters
    local pieces = { "a", "Z", ",", '"', "\n", " ", "é", "日本", "\240\159\152\128", "\\", "\t", "x" }
    local function rand_text(rnd)
        local n = rnd(0, 45)
        local t = {}
        for i = 1, n do t[i] = pieces[rnd(1, #pieces)] end
        return table.concat(t)
    end
    local function csv_cell(s)
        if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
        return s
    end

    it("gives the same rows, truncation count and rejections as the same rows as a table", function()
        local seed = os.time()
        math.randomseed(seed)
        local rnd = math.random
        for _ = 1, 20 do
            local lines, list = { "calleeNumber,text1,text2,text3" }, {}
            for i = 1, rnd(1, 40) do
                local row = { calleeNumber = tostring(rnd(100000, 999999)) .. tostring(rnd(0, 999999)) }
                local cells = { row.calleeNumber }
                for k = 1, 3 do
                    local s = rand_text(rnd)
                    if s ~= "" then row["text" .. k] = s end
                    cells[#cells + 1] = csv_cell(s)
                end
                list[i] = row
                lines[#lines + 1] = table.concat(cells, ",")
            end
            local text = table.concat(lines, "\r\n")
            local a, ainfo = core.encode(task(list))
            local b, binfo = core.encode(task(assert(core.csv_string(text))))
            assert.is_string(a, "seed " .. seed)
            assert.is_string(b, "seed " .. seed .. ": " .. tostring(binfo))
            assert.same(cjson.decode(a), cjson.decode(b), "seed " .. seed)
            assert.equal(ainfo.truncated, binfo.truncated)
            assert.equal(#a, #b)
        end
    end)

    it("applies require_texts and truncate = false to CSV rows", function()
        local _, msg = enc("calleeNumber,text1\n919777654321,\n", nil, { require_texts = { 1 } })
        assert.matches("^<string>:2:2: text1: is required", msg)
        _, msg = enc("calleeNumber,text1\n919777654321,\n", nil, { require_texts = { 2 } })
        assert.matches("^<string>:2: text2: is required", msg) -- no text2 column: no column number
        _, msg = enc("calleeNumber,text1\n919777654321," .. ("x"):rep(31) .. "\n", nil, { truncate = false })
        assert.matches("^<string>:2:2: text1: must be at most 30 characters, got more %(31 bytes%)", msg)
    end)

    it("keeps the task's other fields and writes taskName after the list", function()
        local _, _, body = enc("calleeNumber\n919777654321\n", nil, nil,
            { recallFlow = laaffic.recall.by_intent{ intents = { "99999" }, interval = 1,
                                                     rounds = 1, agent_id = 110 },
              calloutRate = 3 })
        local doc = cjson.decode(body)
        assert.equal(3, doc.calloutRate)
        assert.equal(1, doc.recallFlow.recallNum)
        assert.equal("csv-spec", doc.taskName)
        assert.equal('"taskName":"csv-spec"}', body:sub(-22))
    end)
end)

describe("CSV options", function()
    it("normalize strips spaces, tabs, '+' and '-' from numbers", function()
        local text = "calleeNumber\n+91 97776-54321\n\t919777654322\n"
        local doc = enc(text, { normalize = true })
        assert.same({ "919777654321", "919777654322" }, numbers(doc))
        local _, msg = enc(text)
        assert.matches('^<string>:2:1: calleeNumber: must be 6 to 18 digits', msg)
    end)

    it("dedupe drops a number seen earlier, after normalizing, and counts it", function()
        local doc, info = enc("calleeNumber,text1\n919777654321,a\n+91 9777654321,b\n919777654322,c\n919777654321,d\n",
                              { normalize = true, dedupe = true })
        assert.same({ "919777654321", "919777654322" }, numbers(doc))
        assert.equal("a", doc.numberInfoList[1].text1)  -- the first one wins
        assert.equal(2, info.duplicates)
        assert.equal(2, info.rows)
        -- numbers that differ only in a leading zero are different numbers
        doc = enc("calleeNumber\n0919777654321\n919777654321\n", { dedupe = true })
        assert.equal(2, #doc.numberInfoList)
    end)

    it("rejects collects bad rows with line, column, field and message, and sends the rest", function()
        local rejects = {}
        local doc, info = enc('calleeNumber,text1\n919777654321,ok\nabc,x\n919777654322,"\255"\n' ..
                              '919777654323,"a"b\n919777654324,fine\n', nil, { rejects = rejects })
        assert.same({ "919777654321", "919777654324" }, numbers(doc))
        assert.equal(3, info.rejected)
        assert.equal(3, #rejects)
        assert.same({ line = 3, column = 1, field = "calleeNumber", code = -21,
                      message = 'must be 6 to 18 digits (country code + number), got "abc"' }, rejects[1])
        assert.equal(4, rejects[2].line)
        assert.equal(2, rejects[2].column)
        assert.equal("text1", rejects[2].field)
        assert.matches("invalid UTF%-8", rejects[2].message)
        assert.equal(5, rejects[3].line)
        assert.equal("record", rejects[3].field)
        assert.matches("text after a closing quote", rejects[3].message)
    end)

    it("stops when more rows are rejected than opts.max_rejects", function()
        local _, msg = enc("calleeNumber\nx1\nx2\nx3\n", nil, { rejects = {}, max_rejects = 2 })
        assert.matches("more than 2 rows were rejected %(opts.max_rejects%); the last: must be 6 to 18 digits", msg)
    end)

    it("warns that a list with only bad rows has no valid entries", function()
        local rejects = {}
        local doc, info = enc("calleeNumber\nx1\n", nil, { rejects = rejects })
        assert.same({}, doc.numberInfoList)
        assert.equal(1, #rejects)
        assert.matches("is empty: no valid entries %(1 rejected, 0 duplicates%)",
                       info.warnings[1].message)
        local list = { taskName = "tt", agentId = 1, appId = "a",
                       numberInfoList = { { calleeNumber = "x1" }, { calleeNumber = "x2" } } }
        local body, linfo = core.encode(list, { rejects = {} })
        assert.matches('"numberInfoList":%[%]', body)
        assert.matches("is empty: no valid entries %(2 rejected, 0 duplicates%)",
                       linfo.warnings[1].message)
        assert.is_nil(core.encode(list, { rejects = {}, strict = true }))
    end)
end)

describe("CSV files", function()
    it("reads a file in blocks: records across block boundaries come out as from a string", function()
        local lines = { "calleeNumber,text1,text2" }
        for i = 1, 20000 do
            lines[#lines + 1] = ("%d,\"name %d, with \"\"quotes\"\"\nand a break\",%s"):format(
                919000000000 + i, i, ("é"):rep(i % 40))
        end
        local text = table.concat(lines, "\r\n") .. "\r\n"
        local path = tmpdir .. "/big.csv"
        S.write(path, text)
        local a, ainfo = core.encode(task(assert(core.csv_file(path))))
        local b = core.encode(task(assert(core.csv_string(text))))
        assert.is_string(a, ainfo)
        assert.equal(20000, ainfo.rows)
        assert.truthy(#text > 1024 * 1024)
        assert.equal(b, a)
    end)

    it("gives kind io for a missing file or a directory, and invalid for a bad header", function()
        local src, err = laaffic.csv.open(tmpdir .. "/none.csv")
        assert.is_nil(src)
        assert.equal("io", err.kind)
        assert.matches("none%.csv: No such file or directory", err.message)
        src, err = laaffic.csv.open(tmpdir)
        assert.is_nil(src)
        assert.equal("io", err.kind)
        assert.matches("is a directory", err.message)
        S.write(tmpdir .. "/bad.csv", "phone\n1\n")
        src, err = laaffic.csv.open(tmpdir .. "/bad.csv")
        assert.is_nil(src)
        assert.equal("invalid", err.kind)
        assert.equal(1, err.line)
        assert.matches("^laaffic: invalid task: .*bad%.csv:1: the header row has no calleeNumber", tostring(err))
    end)

    it("errors carry err.file: the path, or opts.name", function()
        local path = tmpdir .. "/none.csv"
        local _, err = laaffic.csv.open(path)
        assert.equal(path, err.file)
        S.write(tmpdir .. "/bad2.csv", "phone\n1\n")
        _, err = laaffic.csv.open(tmpdir .. "/bad2.csv", { name = "shown.csv" })
        assert.equal("shown.csv", err.file)
        assert.equal(1, err.line)
        _, err = laaffic.csv.from_string("phone\n1\n")
        assert.equal("<string>", err.file)
    end)

    it("refuses a path with a NUL byte (C would open the part before it)", function()
        S.write(tmpdir .. "/calls.csv", "calleeNumber\n919777654321\n")
        local src, err = laaffic.csv.open(tmpdir .. "/calls.csv\0junk")
        assert.is_nil(src)
        assert.equal("io", err.kind)
        assert.matches("NUL", err.message)
        assert.equal(tmpdir .. "/calls.csv\0junk", err.file)
        assert.is_nil(tostring(err):find("\0", 1, true))
    end)

    it("option errors name the public function and the option, not the C function", function()
        local function raises(pattern, fn)
            local ok, e = pcall(fn)
            assert.is_false(ok)
            assert.matches(pattern, e)
            assert.matches("18%-csv_spec%.lua:%d+: ", e)
            assert.is_nil(e:find("csv_file", 1, true), e)
            assert.is_nil(e:find("csv_string", 1, true), e)
            assert.is_nil(e:find("bad argument", 1, true), e)
        end
        S.write(tmpdir .. "/calls.csv", "calleeNumber\n919777654321\n")
        raises("laaffic%.csv%.open: opts%.delimiter must be one character", function()
            return laaffic.csv.open(tmpdir .. "/calls.csv", { delimiter = "ab" })
        end)
        raises("laaffic%.csv%.open: opts%.columns", function()
            return laaffic.csv.open(tmpdir .. "/calls.csv", { columns = { calleeNumber = 0 } })
        end)
        raises("laaffic%.csv%.from_string: opts%.normalize must be a boolean", function()
            return laaffic.csv.from_string("calleeNumber\n1\n", { normalize = 5 })
        end)
        raises("^spec/18%-csv_spec%.lua:%d+: laaffic%.csv%.open: unknown option 'delimeter'$", function()
            local src = laaffic.csv.open(tmpdir .. "/calls.csv", { delimeter = ";" })
            return src
        end)
        raises("^spec/18%-csv_spec%.lua:%d+: laaffic%.csv%.from_string: options table expected, got string$", function()
            local src = laaffic.csv.from_string("calleeNumber\n1\n", ";")
            return src
        end)
    end)

    it("describes itself, reports progress and can be closed", function()
        local path = tmpdir .. "/small.csv"
        S.write(path, "calleeNumber\n919777654321\n919777654322\n")
        local src = assert(laaffic.csv.open(path))
        assert.truthy(laaffic.csv.is(src))
        assert.falsy(laaffic.csv.is({}))
        assert.equal("laaffic.csv (" .. path .. ", line 2)", tostring(src))
        local i = src:info()
        assert.equal(path, i.name)
        assert.equal(39, i.size)
        assert.equal(13, i.bytes)
        assert.same({ calleeNumber = 1 }, i.columns)
        assert.is_false(i.done)
        assert.is_string((core.encode(task(src))))
        i = src:info()
        assert.equal(39, i.bytes)
        assert.equal(2, i.rows)
        assert.is_true(i.done)
        src:close()
        src:close()
        assert.equal("laaffic.csv (closed)", tostring(src))
        assert.has_error(function() src:info() end)
        local body, msg = core.encode(task(src))
        assert.is_nil(body)
        assert.matches("the CSV source is closed", msg)
    end)
end)

describe("a CSV file that changes while it is read", function()
    local text = "calleeNumber,text1\n919000000001,a\n919000000002,b\n"
    local function fresh(name)
        local path = tmpdir .. "/" .. name .. ".csv"
        S.write(path, text)
        return path, assert(laaffic.csv.open(path))
    end

    it("src:check() is true while the file is the one opened, and for a string", function()
        local _, src = fresh("same")
        assert.is_true(src:check())
        local info = src:info()
        assert.is_string(info.identity)
        assert.equal(core.file_id(info.name), info.file_id)
        src:close()
        assert.is_true(assert(laaffic.csv.from_string(text)):check())
    end)

    it("says what changed: truncated, appended to, rewritten at the same size, replaced, removed", function()
        local path, src = fresh("cut")
        S.sh("printf 'calleeNumber\\n' >" .. S.q(path))
        local ok, why = src:check()
        assert.is_nil(ok)
        assert.matches("size changed from 49 to 13 bytes", why, 1, true)
        path, src = fresh("grow")
        S.sh("printf '919000000003\\n' >>" .. S.q(path))
        assert.matches("size changed", select(2, src:check()), 1, true)
        path, src = fresh("rewrite")
        S.write(path, (text:gsub("a", "c")))
        assert.matches("modified", select(2, src:check()), 1, true)
        path, src = fresh("replace")
        S.write(path .. ".new", text)
        assert(os.rename(path .. ".new", path))
        assert.matches("replaced", select(2, src:check()), 1, true)
        path, src = fresh("remove")
        os.remove(path)
        assert.matches("no longer names it", select(2, src:check()), 1, true)
    end)

    it("core.file_id is the same for two spellings and a symlink, and differs for a copy", function()
        local path = fresh("id")
        assert(S.sh("ln -s " .. S.q(path) .. " " .. S.q(tmpdir .. "/id-link.csv")))
        S.write(tmpdir .. "/id-copy.csv", text)
        local id = assert(core.file_id(path))
        assert.equal(id, core.file_id(tmpdir .. "/./id.csv"))
        assert.equal(id, core.file_id(tmpdir .. "/id-link.csv"))
        assert.are_not.equal(id, core.file_id(tmpdir .. "/id-copy.csv"))
        local none, err = core.file_id(tmpdir .. "/nosuch.csv")
        assert.is_nil(none)
        assert.matches("No such file", err, 1, true)
    end)

    it("create_tasks stops before the part read after a change, saying which went out", function()
        local path, src = fresh("send")
        local n = 0
        local c = laaffic.new{ api_key = "k", api_secret = "s", app_id = "a",
            transport = function()
                n = n + 1
                if n == 1 then S.write(path, (text:gsub("b", "d"))) end
                return { status = 200, headers = {}, body = '{"status":"0","data":' .. n .. '}' }
            end }
        local result, err = c:create_tasks({ taskName = "chg", agentId = 1, numberInfoList = src },
                                           { max_rows = 1 })
        assert.equal(1, n)
        assert.equal(1, result.created)
        assert.equal("io", err.kind)
        assert.equal(2, err.part)
        assert.matches("changed while it was being sent", err.message, 1, true)
        assert.matches("part 2 and the parts after it were not sent", err.message, 1, true)
    end)
end)

describe("parts of a long list", function()
    local function csv_of(n, first)
        local lines = { "calleeNumber" }
        for i = 1, n do lines[#lines + 1] = tostring((first or 919000000000) + i) end
        return table.concat(lines, "\n") .. "\n"
    end

    it("a CSV source gives one part per call, named taskName-part-N, until it is read", function()
        local src = assert(core.csv_string(csv_of(7)))
        local got = {}
        for p = 1, 3 do
            local body, info = core.encode(task(src), { max_rows = 3 })
            assert.is_string(body, info)
            local doc = cjson.decode(body)
            got[p] = { doc.taskName, #doc.numberInfoList, info.part, info.more, info.task_name }
        end
        assert.same({ { "csv-spec-part-1", 3, 1, true, "csv-spec-part-1" },
                      { "csv-spec-part-2", 3, 2, true, "csv-spec-part-2" },
                      { "csv-spec-part-3", 1, 3, false, "csv-spec-part-3" } }, got)
        local body, msg = core.encode(task(src), { max_rows = 3 })
        assert.is_nil(body)
        assert.matches("has no rows left: its 3 part%(s%) were all read", msg)
    end)

    it("keeps taskName as it is when the whole list fits in one part", function()
        local body, info = core.encode(task(assert(core.csv_string(csv_of(3)))), { max_rows = 3 })
        assert.equal("csv-spec", cjson.decode(body).taskName)
        assert.equal(1, info.part)
        assert.is_false(info.more)
    end)

    it("splits the same way every time: a re-run makes the same names and bodies", function()
        local text = csv_of(10) .. "bad\n" .. csv_of(3, 919000000000) -- a reject, then duplicates
        local function run()
            local src = assert(core.csv_string(text, { dedupe = true }))
            local out = {}
            repeat
                local body, info = core.encode(task(src), { max_rows = 4, rejects = {} })
                out[#out + 1] = body
            until not info.more
            return out
        end
        local a, b = run(), run()
        assert.equal(3, #a)
        assert.same(a, b)
        local total = 0
        for _, body in ipairs(a) do total = total + #cjson.decode(body).numberInfoList end
        assert.equal(10, total)
    end)

    it("does not count a row past the part twice when it is read ahead", function()
        -- the 4th valid row is read to learn that more follows, then given back
        local src = assert(core.csv_string(csv_of(4) .. "919000000004\n", { dedupe = true }))
        local _, info1 = core.encode(task(src), { max_rows = 3 })
        local body2, info2 = core.encode(task(src), { max_rows = 3 })
        assert.is_true(info1.more)
        assert.same({ "919000000004" }, numbers(cjson.decode(body2)))
        assert.equal(1, info2.duplicates)
        assert.is_false(info2.more)
        assert.equal(4, src:info().rows)
    end)

    it("a table list gives part k of max_rows rows with opts.part", function()
        local list = {}
        for i = 1, 7 do list[i] = { calleeNumber = tostring(919000000000 + i) } end
        local names, sizes = {}, {}
        for p = 1, 3 do
            local body, info = core.encode(task(list), { part = p, max_rows = 3 })
            local doc = cjson.decode(body)
            names[p], sizes[p] = doc.taskName, #doc.numberInfoList
            assert.equal(p < 3, info.more)
        end
        assert.same({ "csv-spec-part-1", "csv-spec-part-2", "csv-spec-part-3" }, names)
        assert.same({ 3, 3, 1 }, sizes)
        local body, msg = core.encode(task(list), { part = 4, max_rows = 3 })
        assert.is_nil(body)
        assert.matches("has 7 entries, so there is no part 4", msg)
        body = core.encode(task(list), { part = 1 })
        assert.equal("csv-spec", cjson.decode(body).taskName)
    end)

    it("refuses a taskName too long for its part suffix, saying how long it may be", function()
        local name = ("n"):rep(60)
        local body, msg, field = core.encode(task(assert(core.csv_string(csv_of(2))), { taskName = name }),
                                             { max_rows = 1 })
        assert.is_nil(body)
        assert.equal("taskName", field)
        assert.matches('is 60 characters, and the list is split into tasks named "<taskName>%-part%-1"', msg)
        assert.matches("shorten it to 57", msg)
    end)

    it("refuses a 1-character taskName whether or not the list is split", function()
        local list = { { calleeNumber = "919777654321" }, { calleeNumber = "919777654322" } }
        for _, opts in ipairs({ {}, { max_rows = 1, part = 1 }, { max_rows = 1, part = 2 } }) do
            local body, msg, field = core.encode(task(list, { taskName = "a" }), opts)
            assert.is_nil(body)
            assert.equal("taskName", field)
            assert.equal("taskName: must be 2 to 64 characters long, got 1", msg)
        end
        local src = assert(core.csv_string(csv_of(2)))
        local body, _, field = core.encode(task(src, { taskName = "a" }), { max_rows = 1 })
        assert.is_nil(body)
        assert.equal("taskName", field)
    end)

    it("max_rows without part still refuses a longer table list, pointing at create_tasks", function()
        local list = { { calleeNumber = "919777654321" }, { calleeNumber = "919777654322" } }
        local _, msg = core.encode(task(list), { max_rows = 1 })
        assert.matches("must have 1 to 1 entries, got 2: split the list into several tasks " ..
                       "%(client:create_tasks does%)", msg)
    end)

    it("opts.rejects works for table lists too, naming the entry", function()
        local rejects = {}
        local list = { { calleeNumber = "919777654321" }, { calleeNumber = "x" }, "row",
                       { calleeNumber = "919777654322", text1 = function() end } }
        local body, info = core.encode(task(list), { rejects = rejects })
        assert.same({ "919777654321" }, numbers(cjson.decode(body)))
        assert.equal(3, info.rejected)
        assert.same({ 2, 3, 4 }, { rejects[1].index, rejects[2].index, rejects[3].index })
        assert.equal("numberInfoList[2].calleeNumber", rejects[1].field)
        assert.equal("numberInfoList[3]", rejects[2].field)
        assert.equal("numberInfoList[4].text1", rejects[3].field)
        assert.equal(-22, rejects[3].code)
    end)
end)

describe("client:build_task and create_task with a CSV source", function()
    local client = laaffic.new{ api_key = "bDqJFiq9", api_secret = "7bz1lzh9", app_id = "2Xql9RBI",
                                transport = function() error("must not send") end }

    it("builds a request whose error carries file, line and column", function()
        local src = assert(laaffic.csv.from_string("calleeNumber\n919777654321\nbad\n", { name = "l.csv" }))
        local req, err = client:build_task({ taskName = "b", agentId = 1, numberInfoList = src })
        assert.is_nil(req)
        assert.equal("invalid", err.kind)
        assert.same({ "l.csv", 3, 1, "calleeNumber", -21 }, { err.file, err.line, err.column, err.field, err.code })
        assert.equal('laaffic: invalid task: l.csv:3:1: calleeNumber: must be 6 to 18 ' ..
                     'digits ' ..
                     '(country code + number), got "bad" (status -21 invalid_data)', tostring(err))
    end)

    it("create_task refuses a list that needs several tasks, before sending anything", function()
        local src = assert(laaffic.csv.from_string("calleeNumber\n919777654321\n919777654322\n"))
        local key, err = client:create_task({ taskName = "bb", agentId = 1, numberInfoList = src }, { max_rows = 1 })
        assert.is_nil(key)
        assert.equal("invalid", err.kind)
        assert.matches("client:create_tasks splits it", err.message)
    end)
end)
