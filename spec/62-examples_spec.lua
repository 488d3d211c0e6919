-- The examples in examples/, run as a user would, as separate processes:
--   examples/campaign.lua under the interpreter this spec runs under (lua5.4 or luajit),
--     against a real sandbox: each part's outcome (created, already exists, ambiguous);
--   examples/openresty/run.sh (`make example-openresty`): the app of
--     examples/openresty/nginx.conf against the sandbox, with pushes, everything stopped.
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local SB = dofile(H.root .. "/spec/sandbox.lua")
local sh, q, write, read = SB.sh, SB.q, SB.write, SB.read

local ROOT = sh("cd " .. q(H.root) .. " && pwd"):match("^([^\n]+)")
local JIT = type(rawget(_G, "jit")) == "table"
local LUA = JIT and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
local BUILD = ROOT .. "/build/" .. (JIT and "luajit" or LUA)

describe("examples/campaign.lua (" .. LUA .. ")", function()
    local sb, csv450, csv150, envfile

    setup(function()
        sb = SB.Sandbox.start()
        local rows = { "calleeNumber,text1" }
        for i = 1, 450 do rows[#rows + 1] = ("9198%08d,caller %d"):format(i, i) end
        rows[#rows + 1] = "+91 98 00000001,again"    -- normalized: a duplicate of row 1
        csv450 = sb.tmp .. "/calls450.csv"
        write(csv450, table.concat(rows, "\n", 1, 452) .. "\n")
        csv150 = sb.tmp .. "/calls150.csv"
        write(csv150, table.concat(rows, "\n", 1, 151) .. "\n")
        -- the credentials reach the script through its environment, as its header says
        local e = sb.env
        envfile = sb.tmp .. "/campaign.env"
        write(envfile, table.concat({ "set -a",
            "LAAFFIC_BASE_URL=" .. q(e.LAAFFIC_SANDBOX_HTTPS),
            "LAAFFIC_CAFILE=" .. q(e.LAAFFIC_SANDBOX_CA),
            "LAAFFIC_API_KEY=" .. q(e.LAAFFIC_SANDBOX_KEY),
            "LAAFFIC_API_SECRET=" .. q(e.LAAFFIC_SANDBOX_SECRET),
            "LAAFFIC_APP_ID=" .. q(e.LAAFFIC_SANDBOX_APP_ID),
            "LUA_PATH=" .. q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
            "LUA_CPATH=" .. q(BUILD .. "/?.so;;") }, "\n") .. "\n")
    end)
    teardown(function() if sb then sb:stop() end end)

    -- runs the script from outside the checkout; returns stdout, stderr, exit code
    local function campaign(...)
        local args = {}
        for i, a in ipairs({ ... }) do args[i] = q(a) end
        local err = sb.tmp .. "/campaign.err"
        local out, rc = sh("cd / && . " .. q(envfile) .. " && " .. LUA .. " " ..
                           q(ROOT .. "/examples/campaign.lua") .. " " .. table.concat(args, " ") ..
                           " 2>" .. q(err))
        return out, read(err) or "", rc
    end

    it("sends a CSV list as parts and lists each one created; a re-run finds them existing", function()
        local out, err, rc = campaign(csv450, "camp-a", "200")
        assert.are.equal(0, rc, out .. err)
        for i, rows in ipairs({ 200, 200, 50 }) do
            assert.truthy(out:find(("camp%%-a%%-part%%-%d  %d numbers  created keyId %%d+"):format(i, rows)),
                          out)
        end
        assert.truthy(out:find("3 created, 0 already existing, 0 failed; 450 numbers, 1 duplicates dropped",
                               1, true), out)
        assert.truthy(err:find("parts 3/3", 1, true), err)       -- progress on stderr
        assert.are.equal(3, #sb:tasks())

        out, err, rc = campaign(csv450, "camp-a", "200")
        assert.are.equal(0, rc, out .. err)
        local _, existing = out:gsub("already exists %(an earlier run created it%)", "")
        assert.are.equal(3, existing, out)
        assert.are.equal(3, #sb:tasks())                          -- nothing created twice
    end)

    it("says a part is ambiguous (exit 6); the same command again finds it created", function()
        sb:fault({ mode = "drop_after_create", count = 1 })
        local out, err, rc = campaign(csv150, "camp-b")
        assert.are.equal(6, rc, out .. err)
        assert.truthy(out:find("camp-b  150 numbers  ambiguous: may exist; run the same command again",
                               1, true), out)
        out, err, rc = campaign(csv150, "camp-b")
        assert.are.equal(0, rc, out .. err)
        assert.truthy(out:find("camp-b  150 numbers  already exists", 1, true), out)
        assert.are.equal(1, select(2, sb:tasks("camp-b")))
    end)

    it("stops at a bad row and sends nothing (exit 1)", function()
        local bad = sb.tmp .. "/bad.csv"
        write(bad, "calleeNumber\n919800000001\n12ab\n")
        local out, err, rc = campaign(bad, "camp-c")
        assert.are.equal(1, rc, out .. err)
        assert.truthy(err:find("bad.csv:3:1: calleeNumber", 1, true), err)
        assert.are.equal(0, select(2, sb:tasks("camp-c")))
    end)
end)

describe("make example-openresty (examples/openresty/run.sh)", function()
    it("creates a task from the content handler and from a timer, shows the pushes, stops all",
       function()
        local out, rc = sh("cd " .. q(ROOT) .. " && examples/openresty/run.sh 2>&1")
        assert.are.equal(0, rc, out)
        local prefix = out:match("prefix (/%S+)/app")
        assert.truthy(prefix, out)
        -- the content handler's answer, then the timer's result
        assert.truthy(out:find("%-now[^\n]*\ncreated keyId %d+"), out)
        assert.truthy(out:find("%-timer: created keyId %d+"), out)
        -- 3 numbers per task, each pushed report written once (the sandbox re-sends some)
        local section = out:match("logs/pushes.log: one line per voiceId%)\n(.-)== stopping")
        assert.truthy(section, out)
        local voice_ids = {}
        for id in section:gmatch("(%d+%-%d%-%x+) 9197776543") do
            assert.is_nil(voice_ids[id], "handled twice: " .. id)
            voice_ids[id] = true
        end
        local n = 0
        for _ in pairs(voice_ids) do n = n + 1 end
        assert.are.equal(6, n, section)
        assert.truthy(section:find("not connected intent=99999", 1, true), section)
        -- nothing it started is left: no process names its directory, which is gone
        -- ("[/]tmp...": the pattern does not match the shell that runs pgrep)
        local left = sh("pgrep -f " .. q("[" .. prefix:sub(1, 1) .. "]" .. prefix:sub(2)) .. " || true")
        assert.are.equal("", left:gsub("%s", ""), "still running: " .. left)
        assert.is_nil(read(prefix .. "/app/nginx.conf"))
    end)
end)

describe("the README's nginx snippets", function()
    -- every line of every ```nginx block in README.md is a line of the example that
    -- spec/62 runs, so the README shows nothing that was not run
    local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

    it("are lines of examples/openresty/nginx.conf, and the first one is complete", function()
        local conf = {}
        for line in assert(read(ROOT .. "/examples/openresty/nginx.conf")):gmatch("[^\n]+") do
            conf[trim(line)] = true
        end
        local readme = assert(read(ROOT .. "/README.md"))
        local blocks = {}
        for block in readme:gmatch("\n```nginx\n(.-)\n```") do blocks[#blocks + 1] = block end
        assert.is_true(#blocks >= 2, "no ```nginx blocks found")
        for i, block in ipairs(blocks) do
            for line in block:gmatch("[^\n]+") do
                assert.is_true(conf[trim(line)] or false,
                               ("README nginx block %d: not in the example: %s"):format(i, line))
            end
        end
        for _, needed in ipairs({ "load_module /usr/share/nginx/modules/ndk_http_module.so;",
                                  "load_module /usr/share/nginx/modules/ngx_http_lua_module.so;",
                                  "env LAAFFIC_API_SECRET;", "lua_package_path ", "lua_package_cpath ",
                                  "lua_ssl_trusted_certificate ca.pem;",
                                  "proxy_ssl_trusted_certificate ca.pem;", "include laaffic.conf;" }) do
            assert.truthy(blocks[1]:find(needed, 1, true), "README's first nginx block lacks " .. needed)
        end
    end)
end)
