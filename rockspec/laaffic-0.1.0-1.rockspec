-- The version lives here and only here: the Makefile and the C core read it from this file.
rockspec_format = "3.0"
package = "laaffic"
version = "0.1.0-1"
source = {
   url = "git+https://github.com/laaffic/laaffic.git",
   tag = "v0.1.0",
}
description = {
   summary = "Lua SDK (C core) for the LAAFFIC AI Agent group-call API",
   detailed = [[
Validate, sign and send LAAFFIC AI Agent group-call tasks from Lua 5.4 or OpenResty.
The C core signs with OpenSSL, validates and encodes 200,000-number tasks in one pass,
and sends them with libcurl.
]],
   license = "MIT",
   labels = { "api", "voice", "openresty", "json" },
}
dependencies = {
   "lua >= 5.1",
   "lua-cjson >= 2.1.0",
}
external_dependencies = {
   OPENSSL = { header = "openssl/evp.h", library = "crypto" },
   -- library only: Debian keeps curl/curl.h in the multiarch include directory, which the
   -- compiler searches by default but luarocks' header probe does not
   CURL = { library = "curl" },
}
build = {
   type = "builtin",
   modules = {
      ["laaffic.core"] = {
         sources = { "src/core.c", "src/sign.c", "src/encode.c", "src/json.c", "src/rules.c",
                     "src/rows.c", "src/rows_csv.c", "src/rows_jit.c", "src/body.c",
                     "src/http.c", "src/csv.c", "src/csv_row.c", "src/csv_source.c",
                     "src/sys.c", "src/multi.c" },
         defines = { "LAAFFIC_VERSION=\"" .. version:match("^[^-]+") .. "\"" },
         incdirs = { "$(OPENSSL_INCDIR)", "$(CURL_INCDIR)" },
         libdirs = { "$(OPENSSL_LIBDIR)", "$(CURL_LIBDIR)" },
         libraries = { "curl", "crypto" },
      },
      ["laaffic"] = "lua/laaffic/init.lua",
      ["laaffic.recall"] = "lua/laaffic/recall.lua",
      ["laaffic.status"] = "lua/laaffic/status.lua",
      ["laaffic.error"] = "lua/laaffic/error.lua",
      ["laaffic.date"] = "lua/laaffic/date.lua",
      ["laaffic.options"] = "lua/laaffic/options.lua",
      ["laaffic.answer"] = "lua/laaffic/answer.lua",
      ["laaffic.tasks"] = "lua/laaffic/tasks.lua",
      ["laaffic.push"] = "lua/laaffic/push.lua",
      ["laaffic.http1"] = "lua/laaffic/http1.lua",
      ["laaffic.ngx_body"] = "lua/laaffic/ngx_body.lua",
      ["laaffic.push_parse"] = "lua/laaffic/push_parse.lua",
      ["laaffic.push_values"] = "lua/laaffic/push_values.lua",
      ["laaffic.transport.curl"] = "lua/laaffic/transport/curl.lua",
      ["laaffic.transport.ngx"] = "lua/laaffic/transport/ngx.lua",
      ["laaffic.transport.ngx_socket"] = "lua/laaffic/transport/ngx_socket.lua",
      ["laaffic.transport.resty_http"] = "lua/laaffic/transport/resty_http.lua",
      ["laaffic.csv"] = "lua/laaffic/csv.lua",
      ["laaffic.jit_rows"] = "lua/laaffic/jit_rows.lua",
      ["laaffic.cli"] = "lua/laaffic/cli/init.lua",
      ["laaffic.cli.util"] = "lua/laaffic/cli/util.lua",
      ["laaffic.cli.help"] = "lua/laaffic/cli/help.lua",
      ["laaffic.cli.args"] = "lua/laaffic/cli/args.lua",
      ["laaffic.cli.config"] = "lua/laaffic/cli/config.lua",
      ["laaffic.cli.task"] = "lua/laaffic/cli/task.lua",
      ["laaffic.cli.numbers"] = "lua/laaffic/cli/numbers.lua",
      ["laaffic.cli.output"] = "lua/laaffic/cli/output.lua",
      ["laaffic.cli.validate"] = "lua/laaffic/cli/validate.lua",
      ["laaffic.cli.send"] = "lua/laaffic/cli/send.lua",
      ["laaffic.cli.sandbox"] = "lua/laaffic/cli/sandbox.lua",
      ["laaffic.cli.sandbox_core"] = "lua/laaffic/cli/sandbox_core.lua",
   },
   -- the command-line tool (bin/laaffic); luarocks wraps it to run with this rock's Lua
   install = {
      bin = { laaffic = "bin/laaffic" },
   },
   -- into the rock's directory (lib/luarocks/rocks-<ver>/laaffic/<version>/): the sandbox,
   -- and the core's sources, which `laaffic sandbox start` compiles for nginx's LuaJIT on
   -- first use with the module above's sources, defines and libraries (this list only)
   copy_directories = { "doc", "sandbox", "src" },
}
