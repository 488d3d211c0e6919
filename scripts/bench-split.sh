#!/usr/bin/env bash
# scripts/bench-split.sh LUA CPATH_DIR [ROWS]: runs bench/split.lua against a sandbox it
# starts and always stops.
set -eu
cd "$(dirname "$0")/.."
LUA_BIN=$1 BUILD=$2 ROWS=${3:-1000000}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-bench.XXXXXX")
trap 'sandbox/laaffic-sandbox stop --dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
sandbox/laaffic-sandbox start --dir "$DIR" >/dev/null 2>&1
set -a; . "$DIR/env"; set +a
LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$BUILD/?.so;;" "$LUA_BIN" bench/split.lua "$ROWS"
