std = "max"
max_line_length = 120
files["spec/"] = { std = "+busted" }
exclude_files = { "build/" }
-- the sandbox runs inside nginx's lua module (ngx is its API table)
files["sandbox/lua/"] = { globals = { "ngx" } }
-- the push receiver's handler runs inside nginx's lua module too (parse does not use ngx)
files["lua/laaffic/push.lua"] = { globals = { "ngx" } }
-- wrk's script API: the globals wrk calls and the table it provides (tid: set by setup())
files["bench/push_wrk.lua"] = { globals = { "wrk", "setup", "init", "request", "response", "done", "tid" } }
-- the OpenResty example runs inside nginx's lua module
files["examples/openresty/"] = { globals = { "ngx" } }
-- the stall benchmark's app runs inside nginx's lua module
files["bench/stall_app.lua"] = { globals = { "ngx" } }
