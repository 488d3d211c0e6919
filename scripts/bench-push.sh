#!/usr/bin/env bash
# scripts/bench-push.sh [LUA] [CPATH_DIR]: push-receiver throughput under wrk (bench/push.lua).
# The nginx under test runs LuaJIT whatever LUA is; LUA only drives it (default luajit with
# build/luajit). Needs nginx + libnginx-mod-http-lua (scripts/deps.sh) and wrk.
set -eu
cd "$(dirname "$0")/.."
LUA_BIN=${1:-luajit} BUILD=${2:-build/luajit}
if ! command -v wrk >/dev/null 2>&1; then
  echo "laaffic: bench-push needs wrk (apt-get install wrk)" >&2
  exit 1
fi
[ -f build/luajit/laaffic/core.so ] || make -s --no-print-directory LUA=luajit all
[ -f "$BUILD/laaffic/core.so" ] || { echo "laaffic: $BUILD/laaffic/core.so missing: make LUA=..." >&2; exit 1; }
LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$BUILD/?.so;;" "$LUA_BIN" bench/push.lua
