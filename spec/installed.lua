-- spec/installed.lua [TREE]: ~/app.lua of scripts/install-check.sh, run as README.md says after
-- `luarocks make --tree "$TREE"` and `eval "$(luarocks ... path)"`: no LUA_PATH of its own,
-- only what that gives. Fails unless laaffic, its modules and its C core load
-- from TREE and sign and build a task there.
local tree = assert(arg[1] or os.getenv("TREE"), "usage: installed.lua TREE (or TREE in the environment)")
local laaffic = require("laaffic")
local core_path = package.searchpath("laaffic.core", package.cpath)
assert(core_path and core_path:sub(1, #tree) == tree, "laaffic.core not loaded from the tree: " .. tostring(core_path))
assert(package.searchpath("laaffic", package.path):sub(1, #tree) == tree, "laaffic not loaded from the tree")
assert(laaffic.core.sign("bDqJFiq9", "7bz1lzh9", 1630468800) == "05d7a50893e22a5c4bb3216ae3396c7c")
local client = laaffic.new{ api_key = "bDqJFiq9", api_secret = "7bz1lzh9", app_id = "2Xql9RBI" }
local req = assert(client:build_task{ taskName = "installed", agentId = 41,
  numberInfoList = { { calleeNumber = "463200000007" } } })
assert(tostring(req.body):find('"calleeNumber":"463200000007"', 1, true))
-- every module the package ships is in the tree (laaffic.transport.ngx needs nginx to load)
for _, m in ipairs{ "laaffic.recall", "laaffic.status", "laaffic.error", "laaffic.push",
                    "laaffic.http1", "laaffic.ngx_body",
                    "laaffic.transport.curl", "laaffic.transport.ngx", "laaffic.transport.ngx_socket",
                    "laaffic.transport.resty_http", "laaffic.csv",
                    "laaffic.cli", "laaffic.cli.util", "laaffic.cli.help", "laaffic.cli.args",
                    "laaffic.cli.config", "laaffic.cli.task", "laaffic.cli.numbers",
                    "laaffic.cli.output", "laaffic.cli.validate", "laaffic.cli.send",
                    "laaffic.cli.sandbox", "laaffic.cli.sandbox_core",
                    "laaffic.date", "laaffic.options", "laaffic.answer", "laaffic.tasks",
                    "laaffic.push_parse", "laaffic.push_values" } do
    local p = package.searchpath(m, package.path)
    assert(p and p:sub(1, #tree) == tree, m .. " is not installed in the tree")
end
local src = assert(laaffic.csv.from_string("calleeNumber\n463200000007\n"))
assert(tostring(assert(client:build_task{ taskName = "installed-csv", agentId = 41,
  numberInfoList = src }).body):find('"463200000007"', 1, true))
print("laaffic " .. laaffic._VERSION .. " from " .. core_path)
-- LAAFFIC_SANDBOX_ENV: the env file of a sandbox started by the installed `laaffic sandbox
-- start` (spec/63): create a task there over HTTPS with the sandbox's CA and credentials
local env_file = os.getenv("LAAFFIC_SANDBOX_ENV")
if env_file then
    local f = assert(io.open(env_file, "rb"))
    local e = require("laaffic.cli.config").parse_env(f:read("*a"))
    f:close()
    local sandbox = laaffic.new{ api_key = e.LAAFFIC_SANDBOX_KEY, api_secret = e.LAAFFIC_SANDBOX_SECRET,
                                 app_id = e.LAAFFIC_SANDBOX_APP_ID, base_url = e.LAAFFIC_SANDBOX_HTTPS,
                                 cafile = e.LAAFFIC_SANDBOX_CA }
    local key_id, err = sandbox:create_task{ taskName = "installed-sandbox", agentId = 110,
                                             numberInfoList = { { calleeNumber = "919777654321" } } }
    assert(key_id, tostring(err))
    print(("sandbox keyId %d"):format(key_id))
end
