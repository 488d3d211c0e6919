std = "max"
max_line_length = 120
files["spec/"] = { std = "+busted" }
exclude_files = { "build/" }
-- the sandbox handler runs inside nginx's lua module (ngx is its API table)
files["lua/laaffic/sandbox/"] = { globals = { "ngx" } }
