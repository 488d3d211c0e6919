-- doc/openapi.yaml checked by tools laaffic did not write (scripts/contract.sh): Redocly
-- lints it, ajv judges the encoder's output against it. These specs show that the check can
-- fail: a rule changed in the C encoder alone (a copy of src/ with one bound moved, built
-- here) makes the differential run report disagreements, in both directions.
-- Needs node and the npm packages (make deps); runs once, from the Lua 5.4 suite.
local S = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "shell.lua")
local H = dofile((debug.getinfo(1, "S").source:sub(2):match("^(.*[/\\])") or "./") .. "helpers.lua")
local q, sh_all = S.q, S.sh_all

local root = H.root
local have_tools = S.sh("test -x " .. q(root .. "/node_modules/.bin/redocly") ..
                        " && command -v node >/dev/null && echo yes"):find("yes") ~= nil

-- Builds laaffic.core for Lua 5.4 from a copy of src/ with `from` replaced by `to` in
-- src/rules.h (every bound is stated there once); returns the LUA_CPATH of the build.
local function mutant(dir, from, to)
  local out, rc = sh_all("mkdir -p " .. q(dir .. "/fuzz") .. " && touch " .. q(dir .. "/fuzz/fuzz.mk") ..
    " && cp -r " .. q(root .. "/src") .. " " .. q(root .. "/Makefile") .. " " ..
    q(root .. "/rockspec") .. " " .. q(dir))
  assert(rc == 0, out)
  local src = assert(S.read(dir .. "/src/rules.h"))
  local a, b = src:find(from, 1, true)
  assert(a and not src:find(from, b + 1, true), "the rule to change is not in rules.h once: " .. from)
  S.write(dir .. "/src/rules.h", src:sub(1, a - 1) .. to .. src:sub(b + 1))
  out, rc = sh_all("make -s -C " .. q(dir) .. " LUA=lua5.4")
  assert(rc == 0, out)
  return dir .. "/build/lua5.4/?.so;;"
end

local function differential(cpath, n)
  return sh_all("cd " .. q(root) .. " && LUA_CPATH=" .. q(cpath) .. " scripts/contract.sh " .. n)
end

describe("the contract (doc/openapi.yaml)", function()
  if H.is_luajit or not have_tools or os.getenv("LAAFFIC_VALGRIND") then
    pending("runs in the Lua 5.4 suite when node and the npm packages are installed")
    return
  end
  local tmp
  setup(function() tmp = S.sh("mktemp -d /tmp/laaffic-spec90.XXXXXX"):match("^(%S+)") end)
  teardown(function() if tmp then S.sh("rm -rf " .. q(tmp)) end end)

  it("lints clean and agrees with the encoder on the seeds and 2,000 generated tasks", function()
    local out, rc = differential(root .. "/build/lua5.4/?.so;;", 2000)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("redocly lint: doc/openapi.yaml is valid", 1, true), out)
    local n, bad = out:match("contract: (%d+) bodies.-(%d+) disagreements")
    assert.truthy(tonumber(n) > 1500, out)
    assert.are.equal("0", bad)
  end)

  it("fails when the encoder refuses more than the pages (maxCalls up to 998)", function()
    local cpath = mutant(tmp .. "/stricter", "#define LF_MAXCALLS_MAX 999\n",
                         "#define LF_MAXCALLS_MAX 998\n")
    local out, rc = differential(cpath, 2000)
    assert.are_not.equal(0, rc, out)
    assert.truthy(out:find("laaffic refuses (maxCalls: maxCalls: must be an integer from", 1, true), out)
    assert.truthy(out:find("the contract accepts", 1, true), out)
  end)

  it("fails when the encoder lets through what the pages forbid (maxRingingTime from 9)", function()
    local cpath = mutant(tmp .. "/looser", "#define LF_RINGING_MIN 10 ",
                         "#define LF_RINGING_MIN 9 ")
    local out, rc = differential(cpath, 2000)
    assert.are_not.equal(0, rc, out)
    assert.truthy(out:find("laaffic accepts, the contract refuses: /maxRingingTime must be >= 10",
                           1, true), out)
  end)
end)

describe("the contract's push (webhook statusReport)", function()
  if H.is_luajit or not have_tools or os.getenv("LAAFFIC_VALGRIND") then
    pending("runs in the Lua 5.4 suite when node and the npm packages are installed")
    return
  end
  package.path = root .. "/sandbox/lua/?.lua;" .. package.path
  local records = require("laaffic_sandbox.records")
  local cjson = require("cjson")

  it("holds the sandbox's pushes, in all three shapes; a record without voiceId is not", function()
    local job = { key_id = 100001, submit = 1775000000.25, display_json = '"123456"',
                  script_json = '"41"', name_json = '"spec90"', recording = true,
                  token = "0123456789ab" }
    local recs = {}
    for i = 1, 30 do recs[i] = records.record_json(job, i, "46320000" .. i) end
    local list = "[" .. table.concat(recs, ",") .. "]"
    local cases = {
      { source = "a list", accepted = true, body = list },
      { source = "wrapped", accepted = true, body = '{"array":' .. list .. "}" },
      { source = "one record", accepted = true, body = recs[7] },
      { source = "no voiceId", accepted = false,
        body = cjson.encode({ { callee = "463200001", terminationCode = 0 } }) },
    }
    local f = os.tmpname()
    local out = assert(io.open(f, "w"))
    for _, c in ipairs(cases) do out:write(cjson.encode(c), "\n") end
    out:close()
    local res, rc = sh_all("cd " .. q(root) .. " && node scripts/contract-check.js --schema " ..
                           "StatusReportBody doc/openapi.yaml " .. q(f))
    os.remove(f)
    assert.are.equal(0, rc, res)
    assert.truthy(res:find("contract: 4 bodies (3 accepted, 1 refused by laaffic), 0 disagreements",
                           1, true), res)
  end)
end)
