-- scripts/contract-gen.lua N SEED: writes to stdout one JSON line per encode of the
-- seeds' examples and N generated tasks (spec/contract.lua), for scripts/contract-check.js.
-- The laaffic.core it encodes with comes from LUA_CPATH (a mutant build in spec/90).
package.path = "spec/?.lua;" .. package.path
local core = require("laaffic.core")
local C = require("contract")

local n, seed = tonumber(arg[1] or "10000"), tonumber(arg[2] or "20261129")
local written = 0
C.generate(n, seed, function(source, task)
  local json, msg, field = core.encode(task)
  if C.record(io.stdout, source, task, nil, json, json == nil and msg or nil, field) then
    written = written + 1
  end
end)
io.stderr:write(("contract-gen: %d of %d encodes written\n"):format(written, n + 2))
