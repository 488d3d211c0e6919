-- The command-line tool bin/laaffic, run as a separate process under the interpreter this
-- spec runs under (lua5.4 or luajit), against a real sandbox (sandbox/laaffic-sandbox).
--
-- The sandbox gets a random key and secret. No test prints the secret or a Sign: they
-- are looked for with string.find and a failure says only where one was found.
local laaffic = require("laaffic")
local core = require("laaffic.core")
local cjson = require("cjson")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")
local sh, q, write, read = SB.sh, SB.q, SB.write, SB.read

local ROOT = sh("cd " .. q(H.root) .. " && pwd"):match("^([^\n]+)")
local LUA = type(rawget(_G, "jit")) == "table" and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local API = "/v3/voice/group/call/send/agent"
local CLEAN_ENV = "unset LAAFFIC_API_KEY LAAFFIC_API_SECRET LAAFFIC_APP_ID LAAFFIC_BASE_URL " ..
                  "LAAFFIC_CAFILE LAAFFIC_CONFIG LAAFFIC_SANDBOX_DIR LAAFFIC_SANDBOX_BIN"

math.randomseed(os.time() + math.floor(os.clock() * 1e6))
local function random_hex(n)
    local t = {}
    for i = 1, n do t[i] = ("%x"):format(math.random(0, 15)) end
    return table.concat(t)
end

local KEY = "k" .. random_hex(11)
local SECRET = "s" .. random_hex(23)
local APP_ID = "a" .. random_hex(7)

describe("the laaffic command-line tool (" .. LUA .. ")", function()
    local sb, tmp, home
    local n = 0
    local seq = 0

    local function file(name)
        n = n + 1
        return ("%s/%d-%s"):format(tmp, n, name)
    end
    local function name(prefix)
        seq = seq + 1
        return ("%s-%d-%d"):format(prefix or "spec70", os.time() % 100000, seq)
    end

    -- An env file exporting vars (sourced by the shell: credentials never go into argv).
    local function env_file(vars)
        local lines = {}
        for k, v in pairs(vars) do lines[#lines + 1] = "export " .. k .. "=" .. q(v) end
        local f = file("env.sh")
        write(f, table.concat(lines, "\n") .. "\n")
        return f
    end

    -- The environment of the sandbox's credentials as LAAFFIC_* variables.
    local function creds(extra)
        local e = {
            LAAFFIC_API_KEY = KEY, LAAFFIC_API_SECRET = SECRET, LAAFFIC_APP_ID = APP_ID,
            LAAFFIC_BASE_URL = sb.env.LAAFFIC_SANDBOX_HTTPS, LAAFFIC_CAFILE = sb.env.LAAFFIC_SANDBOX_CA,
        }
        for k, v in pairs(extra or {}) do e[k] = v ~= false and v or nil end
        return e
    end

    -- The shell command that runs laaffic with args (shell words), in a clean environment
    -- (no LAAFFIC_* variables, HOME without a config) plus o.env (sourced from a file).
    local function command(args, o)
        o = o or {}
        local parts = { "cd " .. q(ROOT), CLEAN_ENV, "export HOME=" .. q(o.home or home) }
        if o.env then parts[#parts + 1] = ". " .. q(env_file(o.env)) end
        parts[#parts + 1] = (o.lua or LUA) .. " " .. (o.bin or "bin/laaffic") .. " " .. args
        return table.concat(parts, " && ")
    end

    -- Runs laaffic; returns { code, out, err }.
    local function run(args, o)
        o = o or {}
        local out, err = file("out"), file("err")
        local _, rc = sh("{ " .. command(args, o) .. "\n} >" .. q(out) .. " 2>" .. q(err) .. " <" ..
                         q(o.stdin or "/dev/null"))
        return { code = rc, out = read(out) or "", err = read(err) or "" }
    end

    -- Runs laaffic with stdout and stderr on a pseudo-terminal (script from util-linux);
    -- o.stdout_file: stdout goes to a file instead. Returns { code, tty, out }.
    local function run_pty(args, o)
        o = o or {}
        local tty, outf = file("tty"), file("stdout")
        local inner = command(args, o) .. (o.stdout_file and (" >" .. q(outf)) or "")
        local _, rc = sh("script -qec " .. q(inner) .. " /dev/null >" .. q(tty) .. " 2>&1 </dev/null")
        return { code = rc, tty = read(tty) or "", out = read(outf) or "" }
    end

    local function has_script()
        local _, rc = sh("command -v script >/dev/null 2>&1")
        return rc == 0
    end

    -- text with the secret and recent Signs (and the fixed-timestamp one) blanked, for
    -- failure messages
    local function redact(text)
        local function blank(s, what)
            local i, j = s:find(what, 1, true)
            while i do
                s = s:sub(1, i - 1) .. "<redacted>" .. s:sub(j + 1)
                i, j = s:find(what, 1, true)
            end
            return s
        end
        text = blank(tostring(text), SECRET)
        text = blank(text, core.sign(KEY, SECRET, 1630468800))
        local now = os.time()
        for ts = now - 120, now + 5 do text = blank(text, core.sign(KEY, SECRET, ts)) end
        return text
    end

    local function decode(s)
        local ok, v = pcall(cjson.decode, s)
        assert(ok and type(v) == "table", "not one JSON document: " .. redact(tostring(s):sub(1, 300)))
        return v
    end

    -- No secret and no Sign of the last minutes in any of the texts (a failure names where
    -- one was found, never the value).
    local function assert_no_credentials(texts, label)
        local now = os.time()
        for where, text in pairs(texts) do
            assert(not text:find(SECRET, 1, true), (label or "") .. ": the API secret appears in " .. where)
            for ts = now - 120, now + 5 do
                if text:find(core.sign(KEY, SECRET, ts), 1, true) then
                    error((label or "") .. ": a Sign value appears in " .. where, 2)
                end
            end
        end
    end

    local function task_json(task_name, extra)
        local t = { taskName = task_name, agentId = 110,
                    numberInfoList = { { calleeNumber = "919777654321", text1 = "David" } } }
        for k, v in pairs(extra or {}) do t[k] = v end
        local f = file("task.json")
        write(f, cjson.encode(t))
        return f
    end

    local function csv_file(lines)
        local f = file("list.csv")
        write(f, table.concat(lines, "\n") .. "\n")
        return f
    end

    -- the sandbox's tasks whose names start with prefix, by name
    local function created(prefix)
        local out, count = {}, 0
        for _, t in ipairs(sb:tasks()) do
            if t.taskName:sub(1, #prefix) == prefix then
                out[t.taskName] = t
                count = count + 1
            end
        end
        return out, count
    end

    setup(function()
        tmp = sh("mktemp -d /tmp/laaffic-spec70.XXXXXX"):match("^(%S+)")
        home = tmp .. "/home"
        sh("mkdir -p " .. q(home))
        sb = SB.Sandbox.start({ LAAFFIC_SANDBOX_KEY = KEY, LAAFFIC_SANDBOX_SECRET = SECRET,
                                LAAFFIC_SANDBOX_APP_ID = APP_ID })
    end)
    teardown(function()
        if sb then sb:stop() end
        if tmp then sh("rm -rf " .. q(tmp)) end
    end)

    ---------------------------------------------------------------------------------------
    describe("usage", function()
        it("--version prints laaffic._VERSION", function()
            local r = run("--version")
            assert.equals(0, r.code)
            assert.equals("laaffic " .. laaffic._VERSION .. "\n", redact(r.out))
        end)

        it("--help lists the commands, the credentials' sources and every exit code", function()
            local r = run("--help")
            assert.equals(0, r.code)
            for _, w in ipairs({ "send", "validate", "sign", "sandbox", "LAAFFIC_API_SECRET",
                                 "chmod 600", "exit codes:" }) do
                assert.truthy(r.out:find(w, 1, true), "--help lacks " .. w)
            end
            for code = 0, 6 do
                assert.truthy(r.out:find("\n  " .. code .. "  ", 1, true), "--help lacks exit code " .. code)
            end
        end)

        it("<command> --help and help <command> describe the command's options", function()
            local r = run("send --help")
            assert.equals(0, r.code)
            for _, w in ipairs({ "--task", "--numbers", "--max-rows", "--concurrency", "--rejects",
                                 "--column", "--sandbox" }) do
                assert.truthy(r.out:find(w, 1, true), "send --help lacks " .. w)
            end
            assert.truthy(run("help validate").out:find("--max-rejects", 1, true))
            assert.truthy(run("sign --help").out:find("--show", 1, true))
            assert.truthy(run("sandbox --help").out:find("LAAFFIC_SANDBOX_BIN", 1, true))
        end)

        it("exits 2 on an unknown command or option, and without --task", function()
            local r = run("frobnicate")
            assert.equals(2, r.code)
            assert.truthy(r.err:find("unknown command", 1, true))
            r = run("send --task x.json --frob")
            assert.equals(2, r.code)
            assert.truthy(r.err:find("unknown option --frob", 1, true))
            r = run("validate")
            assert.equals(2, r.code)
            assert.truthy(r.err:find("--task FILE is required", 1, true))
            r = run("send --task x.json --max-rows 0")
            assert.equals(2, r.code)
            r = run("")
            assert.equals(2, r.code)
            assert.truthy(r.err:find("usage: laaffic", 1, true))
        end)

        it("--json reports a usage error as one JSON document", function()
            local r = run("--json send")
            assert.equals(2, r.code)
            local doc = decode(r.out)
            assert.is_false(doc.ok)
            assert.equals(2, doc.exit_code)
            assert.equals("usage", doc.error.kind)
        end)

        it("refuses a credential given as an option, explains env/config, never echoes it", function()
            local value = "v" .. random_hex(15)
            for _, args in ipairs({ "send --task t.json --api-secret=" .. value,
                                    "send --secret " .. value, "sign --api-key=" .. value,
                                    "--api_secret " .. value .. " sign", "sign --key=" .. value }) do
                local r = run(args)
                assert.equals(2, r.code, args)
                assert.truthy(r.err:find("never taken from the command line", 1, true), args)
                assert.truthy(r.err:find("LAAFFIC_API_SECRET", 1, true), args)
                assert.truthy(r.err:find("config file", 1, true), args)
                assert.falsy((r.out .. r.err):find(value, 1, true), "the value was echoed: " .. args)
            end
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("send", function()
        it("sends a JSON task with credentials from the environment and prints its keyId", function()
            local tn = name("spec70-json")
            local r = run("send --task " .. q(task_json(tn)), { env = creds() })
            assert.equals(0, r.code, redact(r.err))
            local key_id = tonumber(r.out:match("created, keyId (%d+)"))
            assert.is_number(key_id, redact(r.out))
            local rec = sb:task_record(key_id)
            assert.is_table(rec)
            assert.equals(tn, rec.taskName)
            assert.equals(APP_ID, rec.appId)
            assert.equals(1, rec.rows)
            assert_no_credentials({ stdout = r.out, stderr = r.err })
        end)

        it("sends a task with warnings, printing them; --strict sends nothing", function()
            local tn = name("spec70-warn")
            local task = task_json(tn, { sendTime = "2026-04-01T09:00:00", appId = APP_ID })
            local r = run("send --strict --task " .. q(task), { env = creds() })
            assert.equals(3, r.code, redact(r.out .. r.err))
            assert.truthy((r.out .. r.err):find("sendTime", 1, true), redact(r.out .. r.err))
            r = run("send --task " .. q(task), { env = creds() })
            assert.equals(0, r.code, redact(r.err))
            assert.truthy(r.err:find(": warning: sendTime: ", 1, true), redact(r.err))
            local key_id = tonumber(r.out:match("created, keyId (%d+)"))
            assert.equals(tn, sb:task_record(key_id).taskName)
            r = run("send --json --task " .. q(task_json(tn .. "-j", { recallFlow = {} })),
                    { env = creds() })
            assert.equals(0, r.code, redact(r.err))
            local doc = cjson.decode(r.out)
            assert.equals(1, #doc.warnings)
            assert.equals("recallFlow", doc.warnings[1].field)
        end)

        it("accepts the vendor's // comments in a JSON task", function()
            local tn = name("spec70-comment")
            local f = file("task.json")
            write(f, '{\n  // the vendor example has comments\n  "taskName": "' .. tn ..
                     '", /* agent */ "agentId": 110,\n  "numberInfoList": [{"calleeNumber": "919777654321"}]\n}\n')
            local r = run("send --task " .. q(f), { env = creds() })
            assert.equals(0, r.code, redact(r.err))
            local _, count = created(tn)
            assert.equals(1, count)
        end)

        it("sends a Lua task that uses laaffic.recall, with numbers from a CSV", function()
            local tn = name("spec70-lua")
            local task = file("task.lua")
            write(task, ([[
local t = { taskName = %q, agentId = 110 }
t.recallFlow = laaffic.recall.by_intent{ intents = { "99999" }, interval = 1, rounds = 2,
                                         agent_id = 110 }
t.sendTime = laaffic.null
return t
]]):format(tn))
            local list = csv_file({ "id,phone,name", "1,+91 97776-54321,David", "2,919777654322,Ann",
                                    "3,91 9777 654321,David again" })
            local r = run("send --task " .. q(task) .. " --numbers " .. q(list) ..
                          " --column calleeNumber=phone --column text1=name --normalize --dedupe --json",
                          { env = creds() })
            assert.equals(0, r.code, redact(r.err))
            local doc = decode(r.out)
            assert.is_true(doc.ok)
            assert.equals(1, doc.created)
            assert.equals(2, doc.rows)
            assert.equals(1, doc.duplicates)
            local rec = sb:task_record(doc.parts[1].key_id)
            assert.equals(tn, rec.taskName)
            assert.equals(2, rec.rows)
        end)

        it("loads a Lua task without io, os, require or load", function()
            for _, body in ipairs({ 'io.open("/etc/passwd")', 'os.execute("true")',
                                    'require("laaffic")', 'load("return 1")' }) do
                local task = file("task.lua")
                write(task, body .. "\nreturn { taskName = 'never', agentId = 1 }\n")
                local r = run("send --task " .. q(task), { env = creds() })
                assert.equals(3, r.code, body)
                assert.truthy(r.err:find("a nil value", 1, true), body .. ": " .. redact(r.err))
            end
            -- precompiled chunks are refused too
            local task = file("task.lua")
            write(task, "\27Lua")
            assert.equals(3, run("validate --task " .. q(task)).code)
        end)

        it("splits a list with --max-rows, and a re-run finds every part existing", function()
            local tn = name("spec70-split")
            local task = task_json(tn)
            local rows = { "calleeNumber,text1" }
            for i = 1, 5 do rows[#rows + 1] = ("91900000000%d,n%d"):format(i, i) end
            local list = csv_file(rows)
            local args = "send --task " .. q(task) .. " --numbers " .. q(list) .. " --max-rows 2"
            local r = run(args .. " --concurrency 2", { env = creds() })
            assert.equals(0, r.code, redact(r.out .. r.err))
            for k = 1, 3 do
                local head = ('part %d "%s-part-%d" (%d %s): created, keyId ')
                    :format(k, tn, k, k < 3 and 2 or 1, k < 3 and "rows" or "row")
                assert.truthy(r.out:find(head, 1, true), "missing " .. head .. " in:\n" .. r.out)
            end
            local tasks, count = created(tn)
            assert.equals(3, count)
            assert.equals(2, tasks[tn .. "-part-1"].rows)
            assert.equals(1, tasks[tn .. "-part-3"].rows)

            -- the same command again: nothing is created twice
            r = run(args .. " --json", { env = creds() })
            assert.equals(1, r.code)
            local doc = decode(r.out)
            assert.is_false(doc.ok)
            assert.equals(0, doc.created)
            assert.equals(3, doc.existing)
            assert.equals(0, doc.failed)
            assert.equals(3, #doc.parts)
            for k, p in ipairs(doc.parts) do
                assert.equals(k, p.part)
                assert.equals(tn .. "-part-" .. k, p.task_name)
                assert.equals("exists", p.status)
                assert.equals("already_exists", p.error.kind)
                assert.equals(-41, p.error.code)
            end
            -- --existing-ok: the parts that exist count as done
            r = run(args .. " --existing-ok", { env = creds() })
            assert.equals(0, r.code)
            assert.truthy(r.out:find("3 already existed", 1, true), redact(r.out))
            local _, after = created(tn)
            assert.equals(3, after)
        end)

        it("--json has ok, parts (part, task_name, rows, key_id), created, existing, failed, rows, " ..
           "rejected, duplicates, time", function()
            local tn = name("spec70-jsonout")
            local r = run("send --json --task " .. q(task_json(tn)), { env = creds() })
            assert.equals(0, r.code, redact(r.err))
            local doc = decode(r.out)
            assert.is_true(doc.ok)
            assert.equals(0, doc.exit_code)
            assert.equals(1, #doc.parts)
            local p = doc.parts[1]
            assert.equals(1, p.part)
            assert.equals(tn, p.task_name)
            assert.equals(1, p.rows)
            assert.is_number(p.key_id)
            assert.equals("created", p.status)
            assert.equals(1, doc.created)
            assert.equals(0, doc.existing)
            assert.equals(0, doc.failed)
            assert.equals(1, doc.rows)
            assert.equals(0, doc.rejected)
            assert.equals(0, doc.duplicates)
            assert.is_number(doc.time)
            assert.equals(tn, sb:task_record(p.key_id).taskName)
        end)

        it("checks the whole list first: an invalid row sends nothing and exits 3", function()
            local tn = name("spec70-blocked")
            local rows = { "calleeNumber,text1" }
            for i = 1, 6 do rows[#rows + 1] = ("91900000001%d,n"):format(i) end
            rows[#rows + 1] = "12345,too short"          -- line 8: in the 4th part
            local list = csv_file(rows)
            local r = run("send --task " .. q(task_json(tn)) .. " --numbers " .. q(list) ..
                          " --max-rows 2", { env = creds() })
            assert.equals(3, r.code)
            assert.truthy(r.out:find(list .. ":8:1: calleeNumber: ", 1, true), redact(r.out))
            assert.truthy(r.err:find("nothing was sent", 1, true), redact(r.err))
            assert.truthy(r.err:find("--rejects", 1, true), redact(r.err))
            local _, count = created(tn)
            assert.equals(0, count)
        end)

        it("--rejects FILE skips bad rows, sends the rest and writes line,column,field,message", function()
            local tn = name("spec70-rejects")
            local list = csv_file({ "calleeNumber,text1", "919000000101,a", "12,b", "919000000102,c",
                                    "abcdefghij,d", "919000000103,e" })
            local rej = file("rejects.csv")
            local r = run("send --json --task " .. q(task_json(tn)) .. " --numbers " .. q(list) ..
                          " --rejects " .. q(rej), { env = creds() })
            assert.equals(0, r.code, redact(r.out .. r.err))
            local doc = decode(r.out)
            assert.equals(3, doc.rows)
            assert.equals(2, doc.rejected)
            assert.equals(3, sb:task_record(doc.parts[1].key_id).rows)
            local report = read(rej)
            local lines = {}
            for l in report:gmatch("[^\n]+") do lines[#lines + 1] = l end
            assert.equals("line,column,field,message", lines[1])
            assert.equals(3, #lines)
            assert.truthy(lines[2]:find("^3,1,calleeNumber,"), lines[2])
            assert.truthy(lines[3]:find("^5,1,calleeNumber,"), lines[3])
        end)

        it("--rejects refuses the number list, the task or the config itself, by any spelling or link", function()
            local tn = name("spec70-rejself")
            local list = csv_file({ "calleeNumber,text1", "919000000111,a", "12,b" })
            local text = read(list)
            local task = task_json(tn)
            local link = list .. ".link"
            sh("ln -s " .. q(list) .. " " .. q(link))
            local dir, base = list:match("^(.*)/([^/]+)$")
            for _, rej in ipairs({ list, dir .. "/./" .. base, dir .. "/../" .. dir:match("[^/]+$") ..
                                   "/" .. base, link, task }) do
                for _, cmd in ipairs({ "send", "validate" }) do
                    local r = run(cmd .. " --task " .. q(task) .. " --numbers " .. q(list) ..
                                  " --rejects " .. q(rej), { env = creds() })
                    assert.equals(2, r.code, cmd .. " --rejects " .. rej .. ": " .. redact(r.out .. r.err))
                    assert.truthy(r.err:find("--rejects", 1, true), redact(r.err))
                    assert.equals(text, read(list))
                end
            end
            assert.truthy(read(task):find(tn, 1, true))
            local _, count = created(tn)
            assert.equals(0, count)
        end)

        it("--rejects FILE is written whole at the end: an existing one keeps its content until then", function()
            local tn = name("spec70-rejtmp")
            local dir = tmp .. "/rejdir-" .. tn
            sh("mkdir -p " .. q(dir))
            local rej = dir .. "/rejects.csv"
            write(rej, "old\n")
            local list = csv_file({ "calleeNumber", "919000000121", "12" })
            sb:fault({ mode = "delay", ms = 1500 })
            local before = sb:requests().total
            local rcf = file("rc")
            sh("( " .. command("send -q --task " .. q(task_json(tn)) .. " --numbers " .. q(list) ..
               " --rejects " .. q(rej), { env = creds() }) .. " >/dev/null 2>&1 </dev/null; echo $? >" ..
               q(rcf) .. ".tmp; mv " .. q(rcf) .. ".tmp " .. q(rcf) .. " ) >/dev/null 2>&1 &")
            local deadline = os.time() + 20
            while sb:requests().total <= before do
                assert(os.time() < deadline, "the send never reached the sandbox")
                sh("sleep 0.05")
            end
            assert.equals("old\n", read(rej))         -- not truncated first
            while not read(rcf) do
                assert(os.time() < deadline + 20, "laaffic send did not end")
                sh("sleep 0.05")
            end
            assert.equals("0", read(rcf):match("%d+"))
            assert.truthy(read(rej):find("^line,column,field,message\n3,1,calleeNumber,"), read(rej))
            assert.equals("rejects.csv\n", (sh("ls -A " .. q(dir))))   -- no temporary file left
            -- a send that stops before the end leaves no rejects file behind, not even empty
            local r = run("send --task " .. q(task_json(tn, { maxCalls = 5000 })) .. " --numbers " ..
                          q(list) .. " --rejects " .. q(dir .. "/new.csv"), { env = creds() })
            assert.equals(3, r.code, redact(r.out .. r.err))
            assert.equals("rejects.csv\n", (sh("ls -A " .. q(dir))))
        end)

        it("-v logs each request and answer on stderr, never the secret or a Sign", function()
            local tn = name("spec70-verbose")
            local r = run("send -v --task " .. q(task_json(tn)), { env = creds() })
            assert.equals(0, r.code, redact(r.err))
            assert.truthy(r.err:find("laaffic: POST " .. sb.env.LAAFFIC_SANDBOX_HTTPS .. API, 1, true), redact(r.err))
            assert.truthy(r.err:find("laaffic: HTTP 200", 1, true), redact(r.err))
            assert_no_credentials({ stdout = r.out, stderr = r.err }, "-v")
            -- -q: nothing on success
            r = run("send -q --task " .. q(task_json(name("spec70-quiet"))), { env = creds() })
            assert.equals(0, r.code)
            assert.equals("", redact(r.out))
            assert.equals("", redact(r.err))
        end)

        it("--sandbox DIR takes the URL, CA and credentials from the sandbox's env file", function()
            local tn = name("spec70-sbflag")
            local r = run("send --sandbox " .. q(sb.dir) .. " --task " .. q(task_json(tn)))
            assert.equals(0, r.code, redact(r.err))
            local _, count = created(tn)
            assert.equals(1, count)
            r = run("send --sandbox " .. q(tmp .. "/nonexistent") .. " --task " .. q(task_json(tn)))
            assert.equals(4, r.code)
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("validate", function()
        -- BOM, CRLF, a quoted field spanning two lines: line numbers are the file's lines
        local function messy_csv()
            local f = file("messy.csv")
            write(f, table.concat({
                "\239\187\191calleeNumber,text1,text2",
                '919000000001,"two\r\nlines",x',                       -- lines 2-3
                "12,short number,x",                                   -- line 4
                "919000000002,ok,x",                                   -- line 5
                "919000000003," .. ("y"):rep(31) .. ",x",              -- line 6: text1 too long
                "abc,letters,x",                                       -- line 7
                "919000000002,duplicate,x",                            -- line 8
                "919000000004,,x",                                     -- line 9: no text1
            }, "\r\n") .. "\r\n")
            return f
        end

        it("prints warnings, exits 0; --strict makes them problems (exit 3)", function()
            local task = task_json("spec70-warnings", { sendTime = "2026-04-01T09:00:00",
                                                       maxCalls = 0, appId = APP_ID })
            local r = run("validate --task " .. q(task))
            assert.equals(0, r.code, r.out .. r.err)
            assert.truthy(r.out:find(task .. ": warning: sendTime: ", 1, true), r.out)
            assert.truthy(r.out:find(task .. ": warning: maxCalls: ", 1, true), r.out)
            assert.truthy(r.out:find("valid: .*2 warnings %(%-%-strict makes them errors%)"), r.out)
            r = run("validate --json --task " .. q(task))
            local doc = cjson.decode(r.out)
            assert.is_true(doc.ok)
            assert.equals(2, #doc.warnings)
            assert.equals(0, #doc.problems)
            r = run("validate --strict --task " .. q(task))
            assert.equals(3, r.code, r.out)
            assert.truthy(r.out:find(task .. ": sendTime: ", 1, true), r.out)
            assert.truthy(r.out:find("INVALID: 2 problems", 1, true), r.out)
            -- an empty list: a warning, nothing to check
            r = run("validate --task " .. q(task_json("spec70-empty", { numberInfoList = {},
                                                                      appId = APP_ID })))
            assert.equals(0, r.code, r.out .. r.err)
            assert.truthy(r.out:find("warning: numberInfoList: is empty", 1, true), r.out)
        end)

        it("prints every bad row as file:line:column and exits 3, with a summary", function()
            local list = messy_csv()
            local r = run("validate --task " .. q(task_json("spec70-validate")) .. " --numbers " ..
                          q(list) .. " --no-truncate --dedupe --require-texts 1",
                          { env = { LAAFFIC_APP_ID = APP_ID } })
            assert.equals(3, r.code, redact(r.err))
            local expect = {
                list .. ":4:1: calleeNumber: ",
                list .. ":6:2: text1: ",
                list .. ":7:1: calleeNumber: ",
                list .. ":9:2: text1: ",
            }
            for _, e in ipairs(expect) do
                assert.truthy(r.out:find(e, 1, true), "missing " .. e .. " in:\n" .. r.out)
            end
            local _, problems = r.out:gsub(list:gsub("%p", "%%%0") .. ":%d+:%d+:", "")
            assert.equals(4, problems)
            assert.truthy(r.out:find("INVALID: 4 problems; 2 rows, 1 task", 1, true), redact(r.out))
            assert.truthy(r.out:find("4 rejected, 1 duplicate", 1, true), redact(r.out))
            assert.equals("", redact(r.err))
        end)

        it("--json lists the problems with file, line, column and field", function()
            local list = messy_csv()
            local r = run("validate --json --task " .. q(task_json("spec70-validate", { appId = APP_ID })) ..
                          " --numbers " .. q(list) .. " --no-truncate --dedupe")
            assert.equals(3, r.code)
            local doc = decode(r.out)
            assert.is_false(doc.ok)
            assert.equals(3, #doc.problems)
            local lines = {}
            for _, p in ipairs(doc.problems) do
                assert.equals(list, p.file)
                lines[#lines + 1] = ("%d:%d:%s"):format(p.line, p.column, p.field)
            end
            assert.same({ "4:1:calleeNumber", "6:2:text1", "7:1:calleeNumber" }, lines)
            assert.equals(3, doc.rows)
            assert.equals(1, doc.parts)
            assert.equals(3, doc.rejected)
            assert.equals(1, doc.duplicates)
        end)

        it("names every bad field of the task itself by its path, rows of a JSON list by index", function()
            local f = file("bad.json")
            write(f, '{"taskName": "x", "agentId": 1.5, "maxRingingTime": 5, "appId": "a1",\n' ..
                     ' "numberInfoList": [{"calleeNumber": "919777654321"}, {"calleeNumber": "12"},\n' ..
                     ' {"text1": "no number"}]}\n')
            local r = run("validate --task " .. q(f))
            assert.equals(3, r.code)
            for _, e in ipairs({ f .. ": taskName: ", f .. ": agentId: ", f .. ": maxRingingTime: ",
                                 f .. ": numberInfoList[2].calleeNumber: ",
                                 f .. ": numberInfoList[3].calleeNumber: is required" }) do
                assert.truthy(r.out:find(e, 1, true), "missing " .. e .. " in:\n" .. r.out)
            end
            assert.truthy(r.out:find("5 problems", 1, true), redact(r.out))
        end)

        it("gives a JSON syntax error's line and column", function()
            local f = file("broken.json")
            write(f, '{\n  "taskName": "abc",\n  "agentId": 110,,\n}\n')
            local r = run("validate --task " .. q(f))
            assert.equals(3, r.code)
            assert.truthy(r.err:find(f .. ":3:18: not valid JSON", 1, true), redact(r.err))
        end)

        it("reads a CSV without header by column numbers, with another delimiter; a task from stdin", function()
            local list = file("semi.csv")
            write(list, "David;919000000401\r\nAnn;+91 900 000 0402\r\nBad;12\r\n")
            local task = task_json("spec70-stdin", { appId = APP_ID })
            local r = run("validate --json --task - --numbers " .. q(list) .. " --no-header " ..
                          "--delimiter ';' --column calleeNumber=2 --column text1=1 --normalize",
                          { stdin = task })
            assert.equals(3, r.code, redact(r.err))
            local doc = decode(r.out)
            assert.equals(2, doc.rows)
            assert.equals(1, #doc.problems)
            assert.equals(3, doc.problems[1].line)
            assert.equals(2, doc.problems[1].column)
            assert.equals("calleeNumber", doc.problems[1].field)
            -- a --column for a field that does not exist is a usage error
            r = run("validate --task " .. q(task) .. " --numbers " .. q(list) .. " --column phone=2")
            assert.equals(2, r.code)
            -- CSV options without a CSV
            r = run("validate --task " .. q(task) .. " --dedupe")
            assert.equals(2, r.code)
            assert.truthy(r.err:find("--numbers", 1, true))
        end)

        it("exits 0 for a valid task and counts the parts a send would make, without network", function()
            local rows = { "calleeNumber" }
            for i = 1, 5 do rows[#rows + 1] = "91900000020" .. i end
            -- no credentials at all, and the base URL points nowhere: validate needs neither
            local r = run("validate --json --task " .. q(task_json("spec70-valid")) .. " --numbers " ..
                          q(csv_file(rows)) .. " --max-rows 2",
                          { env = { LAAFFIC_APP_ID = "x1", LAAFFIC_BASE_URL = "https://127.0.0.1:1" } })
            assert.equals(0, r.code, redact(r.out .. r.err))
            local doc = decode(r.out)
            assert.is_true(doc.ok)
            assert.equals(5, doc.rows)
            assert.equals(3, doc.parts)
            assert.equals("spec70-valid-part-3", doc.tasks[3].task_name)
            assert.equals(0, #doc.problems)
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("sign", function()
        it("prints curl config lines whose Sign is md5(key .. secret .. timestamp)", function()
            local r = run("sign --timestamp 1630468800", { env = creds() })
            assert.equals(0, r.code, redact(r.err))
            assert.truthy(r.out:find('header = "Api-Key: ' .. KEY .. '"', 1, true))
            assert.truthy(r.out:find('header = "Timestamp: 1630468800"', 1, true))
            assert.truthy(r.out:find('header = "Content-Type: application/json;charset=UTF-8"', 1, true))
            local sign = r.out:match('header = "Sign: (%x+)"\n')
            assert(sign ~= nil, "no Sign line in sign's output")
            assert(sign == core.sign(KEY, SECRET, 1630468800),
                   "the Sign differs from laaffic.core.sign (values not shown)")
            assert.equals("", redact(r.err))
        end)

        it("works as `laaffic sign | curl -K -` against the sandbox", function()
            local tn = name("spec70-curl")
            local body = file("body.json")
            write(body, cjson.encode({ appId = APP_ID, taskName = tn, agentId = 110,
                                       numberInfoList = { { calleeNumber = "919777654321" } } }))
            local resp = file("resp")
            local r = run("sign | curl -sS -K - --cacert " .. q(sb.env.LAAFFIC_SANDBOX_CA) ..
                          " --data-binary @" .. q(body) .. " -o " .. q(resp) .. " " ..
                          q(sb.env.LAAFFIC_SANDBOX_HTTPS .. API), { env = creds() })
            assert.equals(0, r.code, redact(r.err))
            local answer = decode(read(resp))
            assert.equals("0", answer.status)
            assert.equals(tn, sb:task_record(answer.data).taskName)
        end)

        it("--json prints the headers as one object", function()
            local r = run("sign --json --timestamp 1630468800", { env = creds() })
            assert.equals(0, r.code)
            local doc = decode(r.out)
            assert.equals(KEY, doc["Api-Key"])
            assert.equals("1630468800", doc.Timestamp)
            assert(doc.Sign == core.sign(KEY, SECRET, 1630468800), "wrong Sign (values not shown)")
        end)

        it("never writes the Sign to stderr, even with -v", function()
            local r = run("-v sign", { env = creds() })
            assert.equals(0, r.code)
            assert_no_credentials({ stderr = r.err }, "sign -v")
        end)

        it("refuses to write the Sign to a terminal unless --show", function()
            if not has_script() then
                pending("script (util-linux) is not installed")
                return
            end
            local r = run_pty("sign", { env = creds() })
            assert.equals(2, r.code)
            assert.truthy(r.tty:find("pipe it", 1, true), redact(r.tty))
            assert.truthy(r.tty:find("--show", 1, true))
            assert_no_credentials({ terminal = r.tty }, "sign on a tty")
            r = run_pty("sign --show --timestamp 1630468800", { env = creds() })
            assert.equals(0, r.code)
            assert(r.tty:find(core.sign(KEY, SECRET, 1630468800), 1, true),
                   "sign --show did not write the Sign to the terminal")
            -- stdout a file, stderr the terminal: written, and nothing on the terminal
            r = run_pty("sign --timestamp 1630468800", { env = creds(), stdout_file = true })
            assert.equals(0, r.code)
            assert(r.out:find(core.sign(KEY, SECRET, 1630468800), 1, true), "no Sign in the file")
            assert.equals("", redact(r.tty))
        end)

        it("exits 4 without credentials", function()
            local r = run("sign")
            assert.equals(4, r.code)
            assert.truthy(r.err:find("LAAFFIC_API_KEY", 1, true), redact(r.err))
            assert.equals("", redact(r.out))
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("credentials", function()
        local function config(text, mode)
            local f = file("config")
            write(f, text)
            sh("chmod " .. mode .. " " .. q(f))
            return f
        end
        local function full_config()
            return table.concat({
                "# laaffic config", "api_key = " .. KEY, 'api_secret = "' .. SECRET .. '"',
                "app_id = " .. APP_ID, "base_url = " .. sb.env.LAAFFIC_SANDBOX_HTTPS,
                "cafile = " .. sb.env.LAAFFIC_SANDBOX_CA, "timeout = 20", "" }, "\n")
        end

        it("come from --config FILE, $LAAFFIC_CONFIG or ~/.config/laaffic/config", function()
            local cfg = config(full_config(), "600")
            local tn = name("spec70-cfg")
            local r = run("send --config " .. q(cfg) .. " --task " .. q(task_json(tn .. "a")))
            assert.equals(0, r.code, redact(r.err))
            r = run("send --task " .. q(task_json(tn .. "b")), { env = { LAAFFIC_CONFIG = cfg } })
            assert.equals(0, r.code, redact(r.err))
            local h = file("home")
            sh("mkdir -p " .. q(h .. "/.config/laaffic") .. " && cp -p " .. q(cfg) .. " " ..
               q(h .. "/.config/laaffic/config"))
            r = run("send --task " .. q(task_json(tn .. "c")), { home = h })
            assert.equals(0, r.code, redact(r.err))
            local _, count = created(tn)
            assert.equals(3, count)
        end)

        it("the environment wins over the config file", function()
            local text = full_config()
            local at = text:find(SECRET, 1, true)
            local cfg = config(text:sub(1, at - 1) .. "wrong" .. text:sub(at + #SECRET), "600")
            local tn = name("spec70-envwins")
            local r = run("send --config " .. q(cfg) .. " --task " .. q(task_json(tn)),
                          { env = { LAAFFIC_API_SECRET = SECRET } })
            assert.equals(0, r.code, redact(r.err))
            -- and without the variable the config's wrong secret is used: the API says -1
            r = run("send --config " .. q(cfg) .. " --task " .. q(task_json(name("spec70-wrong"))))
            assert.equals(1, r.code)
            assert.truthy(r.out:find("status %-1"), redact(r.out))
        end)

        it("refuses a config file holding api_secret that group or others can read", function()
            for _, mode in ipairs({ "640", "604", "644" }) do
                local cfg = config(full_config(), mode)
                local tn = name("spec70-perm")
                local r = run("send --config " .. q(cfg) .. " --task " .. q(task_json(tn)))
                assert.equals(4, r.code, mode)
                assert.truthy(r.err:find("chmod 600", 1, true), redact(r.err))
                assert_no_credentials({ stdout = r.out, stderr = r.err }, "mode " .. mode)
                local _, count = created(tn)
                assert.equals(0, count)
            end
            -- a config without the secret may be readable
            local cfg = config("app_id = " .. APP_ID .. "\nbase_url = " .. sb.env.LAAFFIC_SANDBOX_HTTPS ..
                               "\n", "644")
            local r = run("send --config " .. q(cfg) .. " --task " .. q(task_json(name("spec70-pub"))),
                          { env = { LAAFFIC_API_KEY = KEY, LAAFFIC_API_SECRET = SECRET,
                                    LAAFFIC_CAFILE = sb.env.LAAFFIC_SANDBOX_CA } })
            assert.equals(0, r.code, redact(r.err))
        end)

        it("exits 4 for a missing, unreadable or malformed config, never quoting its lines", function()
            local r = run("send --config " .. q(tmp .. "/none") .. " --task x.json")
            assert.equals(4, r.code)
            assert.truthy(r.err:find("cannot read the config file", 1, true))
            local cfg = config("api_key = " .. KEY .. "\n" .. SECRET .. "\n", "600")
            r = run("sign --config " .. q(cfg))
            assert.equals(4, r.code)
            assert.truthy(r.err:find(cfg .. ":2: not a `key = value` line", 1, true), redact(r.err))
            assert_no_credentials({ stderr = r.err })
            cfg = config("api_token = x\n", "600")
            assert.equals(4, run("sign --config " .. q(cfg)).code)
            -- a key but no secret
            r = run("send --task " .. q(task_json(name())), { env = { LAAFFIC_API_KEY = KEY } })
            assert.equals(4, r.code)
            assert.truthy(r.err:find("LAAFFIC_API_SECRET", 1, true), redact(r.err))
        end)

        it("the format: an inline # comment, a quote left open, an empty or repeated key is " ..
           "refused with its line, never read as another credential", function()
            local ts = 1630468800
            for _, case in ipairs({
                { "api_key = " .. KEY .. "\napi_secret = " .. SECRET .. "   # prod secret\n", 2 },
                { "api_key = " .. KEY .. "\napi_secret = " .. SECRET .. "\t#prod\n", 2 },
                { "api_key = " .. KEY .. '\n\napi_secret = "' .. SECRET .. '" # prod\n', 3 },
                { "api_key = " .. KEY .. '\napi_secret = "' .. SECRET .. "\n", 2 },
                { "api_key = " .. KEY .. "\napi_secret = " .. SECRET .. "'\n", 2 },
                { "api_key = " .. KEY .. "\napi_secret =\n", 2 },
                { "api_secret = " .. SECRET .. "\napi_key = " .. KEY .. "\napi_secret = x\n", 3 },
            }) do
                local cfg = config(case[1], "600")
                local r = run("sign --timestamp " .. ts .. " --config " .. q(cfg))
                assert.equals(4, r.code, redact(case[1]) .. " => " .. redact(r.out .. r.err))
                assert.truthy(r.err:find(cfg .. ":" .. case[2] .. ": ", 1, true), redact(r.err))
                assert_no_credentials({ stdout = r.out, stderr = r.err }, "config case")
            end
            -- what the format allows: comment lines, blanks around "=", a quoted value
            -- taken whole (spaces and # inside)
            local odd = "s3cr #et x"
            local cfg = config("# a comment\n  api_key=" .. KEY .. "  \n\n  # another\n" ..
                               "api_secret = '" .. odd .. "'\n", "600")
            local r = run("sign --timestamp " .. ts .. " --config " .. q(cfg))
            assert.equals(0, r.code, r.err)
            assert.truthy(r.out:find("Sign: " .. core.sign(KEY, odd, ts), 1, true))
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("bad input: a clear error, never a hang or an echo", function()
        local function lua_task(body)
            local f = file("task.lua")
            write(f, body)
            return f
        end

        it("a .lua task file that never ends is stopped, with a clear error #slow", function()
            for _, body in ipairs({ "while true do end",
                                    "while true do pcall(function() while true do end end) end",
                                    "local function f() return f() end return f()" }) do
                local started = os.time()
                local r = run("validate --task " .. q(lua_task(body)), { lua = "timeout 60 " .. LUA })
                assert.equals(3, r.code, body .. ": " .. r.err)
                assert.truthy(r.err:find("instructions", 1, true), body .. ": " .. r.err)
                assert.truthy(os.time() - started < 30, body .. " took too long")
            end
        end)

        it("a task file raising a table or nothing says so, not table: 0x...", function()
            local r = run("validate --task " .. q(lua_task('error({ code = 5, message = "bad agent" })')))
            assert.equals(3, r.code)
            assert.falsy(r.err:find("table: 0x", 1, true), r.err)
            assert.truthy(r.err:find("bad agent", 1, true), r.err)
            r = run("validate --task " .. q(lua_task("error({ 1, 2 })")))
            assert.equals(3, r.code)
            assert.falsy(r.err:find("table: 0x", 1, true), r.err)
            assert.truthy(r.err:find("raised a table", 1, true), r.err)
            r = run("validate --task " .. q(lua_task("error()")))
            assert.equals(3, r.code)
            assert.truthy(r.err:find("raised an error without a message", 1, true), r.err)
        end)

        it("never echoes a stray argument (it may be a credential)", function()
            local stray = "bDqJFiq9"
            local task = q(task_json(name()))
            for _, args in ipairs({ "send --task " .. task .. " " .. stray,
                                    "validate --task " .. task .. " -- " .. stray,
                                    stray .. " send --task " .. task,
                                    "sandbox " .. stray, "sandbox status " .. stray }) do
                local r = run(args, { env = creds() })
                assert.equals(2, r.code, args)
                assert.falsy((r.out .. r.err):find(stray, 1, true), args .. ": " .. r.out .. r.err)
            end
        end)

        it("says the task file is missing before asking for credentials", function()
            local r = run("send --task " .. q(tmp .. "/nosuch.json"))
            assert.equals(3, r.code, r.err)
            assert.truthy(r.err:find("nosuch.json", 1, true), r.err)
            assert.falsy(r.err:find("API key", 1, true), r.err)
        end)

        it("a task file must be .json or .lua (or JSON without either)", function()
            local list = csv_file({ "calleeNumber", "919000000001" })
            local r = run("validate --task " .. q(list))
            assert.equals(2, r.code, r.err)
            assert.truthy(r.err:find("must be a .json or .lua file", 1, true), r.err)
            local f = file("task")
            write(f, read(task_json(name(), { appId = APP_ID })))
            assert.equals(0, run("validate --task " .. q(f)).code)
        end)

        it("names a missing or bad number list once", function()
            local missing = tmp .. "/nosuch-list.csv"
            local r = run("validate --task " .. q(task_json(name())) .. " --numbers " .. q(missing))
            assert.equals(3, r.code)
            local _, times = r.err:gsub(missing:gsub("%p", "%%%0"), "")
            assert.equals(1, times, r.err)
            local bad = csv_file({ "phone", "919000000001" })
            r = run("validate --task " .. q(task_json(name())) .. " --numbers " .. q(bad))
            assert.equals(3, r.code)
            _, times = (r.out .. r.err):gsub(bad:gsub("%p", "%%%0"), "")
            assert.equals(1, times, r.out .. r.err)
        end)

        it("shows bytes outside printable ASCII escaped, not as ?", function()
            local f = file("bom.csv")
            write(f, "\239\187\191\239\187\191calleeNumber\n919000000001\n")
            local r = run("validate --task " .. q(task_json(name())) .. " --numbers " .. q(f))
            assert.equals(3, r.code)
            assert.truthy(r.err:find("\\xEF\\xBB\\xBFcalleeNumber", 1, false) or
                          r.err:find("\\xEF\\xBB\\xBFcalleeNumber", 1, true), r.err)
            assert.falsy(r.err:find("?calleeNumber", 1, true), r.err)
            local t = file("t.json")
            write(t, '{"taskName":"ok-name","agentId":1,"appId":"a","numberInfoList":' ..
                     '[{"calleeNumber":"91\195\169\255"}]}')
            r = run("validate --task " .. q(t))
            assert.equals(3, r.code)
            assert.truthy((r.out .. r.err):find('"91\\xC3\\xA9\\xFF"', 1, true), r.out .. r.err)
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("exit codes", function()
        it("1: the API refused the task (a name that exists)", function()
            local task = task_json(name("spec70-exists"))
            assert.equals(0, run("send --task " .. q(task), { env = creds() }).code)
            local r = run("send --task " .. q(task), { env = creds() })
            assert.equals(1, r.code)
            assert.truthy(r.out:find("already exists", 1, true), redact(r.out))
        end)

        it("1: a -20 \"Data existing\" answer is not \"already exists\", even with --existing-ok", function()
            local tn = name("spec70-data-exists")
            sb:fault({ mode = "status", status = -20 })
            local r = run("send --existing-ok --json --task " .. q(task_json(tn)), { env = creds() })
            assert.equals(1, r.code, redact(r.out .. r.err))
            local doc = decode(r.out)
            assert.is_false(doc.ok)
            assert.equals(0, doc.created)
            assert.equals(0, doc.existing)
            assert.equals(1, doc.failed)
            local p = doc.parts[1]
            assert.equals("failed", p.status)
            assert.equals("status", p.error.kind)
            assert.equals(-20, p.error.code)
            -- says the task may exist and how to find out, never that it does
            assert.truthy(p.error.message:find("may already exist", 1, true), p.error.message)
            assert.truthy(p.error.message:find(tn, 1, true), p.error.message)
            sb:fault({ mode = "status", status = -20 })
            r = run("send --existing-ok --task " .. q(task_json(tn)), { env = creds() })
            assert.equals(1, r.code)
            assert.falsy(r.out:find("already exists (", 1, true), redact(r.out))
            assert.truthy(r.out:find("FAILED", 1, true), redact(r.out))
            local _, count = created(tn)
            assert.equals(0, count)
        end)

        it("3: an unreadable task or number list", function()
            assert.equals(3, run("send --task " .. q(tmp .. "/missing.json"), { env = creds() }).code)
            local r = run("send --task " .. q(task_json(name())) .. " --numbers " .. q(tmp .. "/missing.csv"),
                          { env = creds() })
            assert.equals(3, r.code)
            r = run("validate --task " .. q(task_json(name())) .. " --numbers " ..
                    q(csv_file({ "phone,name", "919000000001,a" })))
            assert.equals(3, r.code)
            assert.truthy(r.err:find("no calleeNumber column", 1, true), redact(r.err))
        end)

        it("5: the server cannot be reached (nothing was sent)", function()
            local r = run("send --json --task " .. q(task_json(name("spec70-down"))),
                          { env = creds({ LAAFFIC_BASE_URL = "https://127.0.0.1:1" }) })
            assert.equals(5, r.code)
            local doc = decode(r.out)
            assert.equals("transport", doc.parts[1].error.kind)
        end)

        it("6: the answer was lost after the request went out, and a re-run says it exists", function()
            local tn = name("spec70-lost")
            local task = task_json(tn)
            sb:fault({ mode = "drop_after_create" })
            local r = run("send --task " .. q(task), { env = creds() })
            assert.equals(6, r.code)
            assert.truthy(r.err:find("Run the same command again", 1, true), redact(r.err))
            local _, count = created(tn)
            assert.equals(1, count)
            r = run("send --existing-ok --task " .. q(task), { env = creds() })
            assert.equals(0, r.code)
            assert.truthy(r.out:find("already exists", 1, true))
            local _, again = created(tn)
            assert.equals(1, again)
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("a number list that changes during a send", function()
        -- Sends a 5-row list as 3 parts, one at a time, part 1 answered 1.5 s late; while
        -- it waits, change(list) alters the file. Returns { code, out, err }, the doc of
        -- --json and the task name.
        local function send_changing(change)
            local tn = name("spec70-changes")
            local rows = { "calleeNumber,text1" }
            for i = 1, 5 do rows[#rows + 1] = ("91900000070%d,n%d"):format(i, i) end
            local list = csv_file(rows)
            local before = sb:requests().total
            sb:fault({ mode = "delay", ms = 1500 })
            local out, err, rcf = file("out"), file("err"), file("rc")
            sh("( { " .. command("send --json --task " .. q(task_json(tn)) .. " --numbers " ..
               q(list) .. " --max-rows 2 --concurrency 1", { env = creds() }) .. "\n} >" ..
               q(out) .. " 2>" .. q(err) .. " </dev/null; echo $? >" .. q(rcf) .. ".tmp; mv " ..
               q(rcf) .. ".tmp " .. q(rcf) .. " ) >/dev/null 2>&1 &")
            local deadline = os.time() + 20
            while sb:requests().total <= before do
                assert(os.time() < deadline, "part 1 never reached the sandbox")
                sh("sleep 0.05")
            end
            change(list)
            while not read(rcf) do
                assert(os.time() < deadline + 20, "laaffic send did not end")
                sh("sleep 0.05")
            end
            local r = { code = tonumber(read(rcf):match("%d+")), out = read(out) or "",
                        err = read(err) or "" }
            return r, decode(r.out), tn
        end

        -- what every change must give: part 1 sent, parts 2 and 3 not, and the counts of
        -- the check (3 parts, 5 rows)
        local function assert_stopped(r, doc, tn)
            assert.equals(1, r.code, redact(r.out .. r.err))
            assert.is_false(doc.ok)
            assert.equals(3, #doc.parts, redact(r.out))
            assert.equals(5, doc.rows)
            assert.equals(1, doc.created)
            assert.equals("created", doc.parts[1].status)
            assert.equals("failed", doc.parts[2].status)
            assert.equals("io", doc.parts[2].error.kind)
            assert.truthy(doc.parts[2].error.message:find("changed", 1, true),
                          doc.parts[2].error.message)
            assert.equals("not_sent", doc.parts[3].status)
            assert.equals(tn .. "-part-3", doc.parts[3].task_name)
            assert.equals(2, doc.not_sent)
            assert.truthy(doc.error.message:find("part 1 was sent", 1, true), doc.error.message)
            assert.truthy(doc.error.message:find("parts 2 to 3 were not", 1, true), doc.error.message)
            local tasks, count = created(tn)
            assert.equals(1, count)
            assert.equals(2, tasks[tn .. "-part-1"].rows)
        end

        it("truncated after part 1: stops, says which parts were sent", function()
            assert_stopped(send_changing(function(list)
                sh("head -n 2 " .. q(list) .. " >" .. q(list .. ".x") .. " && cat " ..
                   q(list .. ".x") .. " >" .. q(list))
            end))
        end)

        it("replaced (renamed over) after part 1: stops", function()
            assert_stopped(send_changing(function(list)
                sh("sed 's/n/m/' " .. q(list) .. " >" .. q(list .. ".new") .. " && mv " ..
                   q(list .. ".new") .. " " .. q(list))
            end))
        end)

        it("rewritten at the same size after part 1: stops", function()
            assert_stopped(send_changing(function(list)
                local text = read(list)
                write(list, (text:gsub("n(%d)", "m%1")))
                assert.equals(#text, #read(list))
            end))
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("progress bar", function()
        local function slow_send(tn, pty)
            local rows = { "calleeNumber" }
            for i = 1, 5 do rows[#rows + 1] = "91900000030" .. i end
            sb:fault({ mode = "delay", ms = 600, count = 3 })
            local args = "send --task " .. q(task_json(tn)) .. " --numbers " .. q(csv_file(rows)) ..
                         " --max-rows 2 --concurrency 1"
            if pty then return run_pty(args, { env = creds() }) end
            return run(args, { env = creds() })
        end

        it("is drawn on a terminal when a send takes over a second, and cleared #slow", function()
            if not has_script() then
                pending("script (util-linux) is not installed")
                return
            end
            local tn = name("spec70-bar")
            local r = slow_send(tn, true)
            assert.equals(0, r.code, redact(r.tty))
            local first = r.tty:find("\r\27[Ksending [", 1, true)
            assert.truthy(first, "no progress bar in: " .. r.tty:gsub("\27", "^["))
            assert.truthy(r.tty:find("of ~?%d parts? done, %d+ rows"), redact(r.tty))
            -- cleared before the results: the first result line follows "\r\27[K"
            local part1 = r.tty:find('part 1 "', 1, true)
            assert.truthy(part1 and part1 > first)
            assert.equals("\r\27[K", r.tty:sub(part1 - 4, part1 - 1))
            local _, count = created(tn)
            assert.equals(3, count)
        end)

        it("is absent when stderr is not a terminal #slow", function()
            local tn = name("spec70-nobar")
            local r = slow_send(tn, false)
            assert.equals(0, r.code, redact(r.err))
            assert.equals("", redact(r.err))
            assert.falsy(r.out:find("\27", 1, true))
            local _, count = created(tn)
            assert.equals(3, count)
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("sandbox", function()
        it("start, status, send --sandbox DIR, stop", function()
            local dir = tmp .. "/own-sandbox"
            local r = run("sandbox start --dir " .. q(dir) .. " --ttl 120")
            assert.equals(0, r.code, redact(r.err))
            local https = r.out:match("https%s+(https://localhost:%d+)")
            assert.truthy(https, redact(r.out))
            assert.falsy(r.out:find("SECRET", 1, true))
            r = run("sandbox status --dir " .. q(dir))
            assert.equals(0, r.code)
            assert.truthy(r.out:find("running: pid %d+"))
            local tn = name("spec70-own")
            r = run("send --json --sandbox " .. q(dir) .. " --task " .. q(task_json(tn)))
            assert.equals(0, r.code, redact(r.err))
            assert.equals(tn, decode(r.out).parts[1].task_name)
            r = run("sandbox stop --dir " .. q(dir))
            assert.equals(0, r.code, redact(r.err))
            r = run("sandbox status --dir " .. q(dir))
            assert.equals(1, r.code)
            assert.truthy(r.out:find("not running", 1, true))
        end)

        it("--ttl: when the time runs out, its directory (the env file with credentials) goes too", function()
            local dir = tmp .. "/ttl-sandbox"
            local r = run("sandbox start --dir " .. q(dir) .. " --ttl 2")
            assert.equals(0, r.code, redact(r.err))
            assert.truthy(read(dir .. "/env"))
            local deadline = os.time() + 30
            while read(dir .. "/env") or sh("test -d " .. q(dir) .. " && echo yes") ~= "" do
                assert(os.time() < deadline, "the sandbox's directory is still there 30 s later")
                sh("sleep 0.2")
            end
            r = run("sandbox status --dir " .. q(dir))
            assert.equals(1, r.code)
        end)

        it("says what is missing when the sandbox's files are not beside the script", function()
            local r = run("sandbox status", { env = { LAAFFIC_SANDBOX_BIN = tmp .. "/nowhere/laaffic-sandbox" } })
            assert.equals(4, r.code)
            assert.truthy(r.err:find("source checkout", 1, true), redact(r.err))
            assert.equals(2, run("sandbox restart").code)
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("--json output and the task's fields", function()
        it("writes [] for an empty list, every digit of an integer, and only UTF-8", function()
            local r = run("validate --json --task " .. q(task_json(name(), { appId = APP_ID })))
            assert.equals(0, r.code, r.out .. r.err)
            assert.truthy(r.out:find('"problems":[]', 1, true), r.out)
            assert.truthy(r.out:find('"warnings":[]', 1, true), r.out)
            -- a file name that is not UTF-8 is in the message: the document stays UTF-8
            r = run("validate --json --task " .. q(tmp .. "/caf\233-\255.json"))
            assert.equals(3, r.code, r.out .. r.err)
            assert.is_true(H.utf8_valid(r.out), r.out)
            assert.truthy(decode(r.out).error.message:find("caf\239\191\189-\239\191\189.json", 1, true))
            -- lua-cjson 2.1.0 writes 14 significant digits: a keyId has up to 16 below 2^53
            local json = require("laaffic.cli.output").json
            local out = json({ key_id = 9007199254740991, n = -123456789012345, t = 0.25 })
            assert.same({ key_id = 9007199254740991, n = -123456789012345, t = 0.25 }, cjson.decode(out))
            assert.truthy(out:find("9007199254740991", 1, true), out)
            assert.equals("[]", json(require("laaffic.cli.output").array()))
        end)

        it("names every bad field once, a key that is not a name too", function()
            local f = file("task.lua")
            write(f, 'return { [1] = "x", taskName = "x", agentId = 1.5, appId = "a1", ' ..
                     'maxRingingTime = 5, numberInfoList = { { calleeNumber = "919777654321" } } }\n')
            local r = run("validate --json --task " .. q(f))
            assert.equals(3, r.code, r.out .. r.err)
            local fields = {}
            for _, p in ipairs(decode(r.out).problems) do fields[#fields + 1] = p.field end
            assert.same({ "task", "agentId", "maxRingingTime", "taskName" }, fields)
        end)
    end)

    ---------------------------------------------------------------------------------------
    describe("installed with luarocks", function()
        it("runs from the rock tree, its sandbox script too #slow", function()
            if LUA ~= "lua5.4" then
                pending("the rock is built for Lua 5.4 only")
                return
            end
            local t = tmp .. "/rock"
            local out, rc = SB.sh("mkdir -p " .. q(t .. "/src") .. " && cd " .. q(ROOT) ..
                " && cp -r src lua rockspec bin sandbox doc " .. q(t .. "/src/") .. " && cd " .. q(t .. "/src") ..
                " && luarocks --lua-version=5.4 make --deps-mode=none --tree=" .. q(t .. "/tree") ..
                " rockspec/laaffic-*.rockspec >" .. q(t .. "/log") .. " 2>&1")
            assert.equals(0, rc, (read(t .. "/log") or "") .. out)
            local paths = "export LUA_PATH=" .. q(t .. "/tree/share/lua/5.4/?.lua;" .. t ..
                "/tree/share/lua/5.4/?/init.lua;/usr/share/lua/5.4/?.lua") ..
                " LUA_CPATH=" .. q(t .. "/tree/lib/lua/5.4/?.so;/usr/lib/x86_64-linux-gnu/lua/5.4/?.so")
            local function installed(args, env)
                local o = file("iout")
                local _, code = sh(command(args, { env = env, lua = paths .. " && cd / &&",
                                                   bin = q(t .. "/tree/bin/laaffic") }) ..
                                   " >" .. q(o) .. " 2>&1 </dev/null")
                return code, read(o) or ""
            end
            local code, text = installed("--version")
            assert.equals(0, code, text)
            assert.equals("laaffic " .. laaffic._VERSION .. "\n", text)
            code, text = installed("sign --timestamp 1630468800", creds())
            assert.equals(0, code, redact(text))
            assert(text:find("Sign: " .. core.sign(KEY, SECRET, 1630468800), 1, true), "wrong Sign")
            -- the rock's own copy of the sandbox (spec/63 starts one from it)
            code, text = installed("sandbox status --dir " .. q(sb.dir))
            assert.equals(0, code, text)
            assert.truthy(text:find("running", 1, true))
            code, text = installed("sandbox status --dir " .. q(t .. "/none"))
            assert.equals(1, code, text)
            assert.truthy(text:find("not running", 1, true))
        end)
    end)
end)
