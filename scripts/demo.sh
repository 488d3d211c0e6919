#!/usr/bin/env bash
# scripts/demo.sh: `make demo`. Starts the sandbox, creates a task through the SDK, shows
# what the sandbox recorded, and stops the sandbox whatever happens.
set -eu
cd "$(dirname "$0")/.."
DIR=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-demo.XXXXXX")
stop() { bin/laaffic-sandbox stop --dir "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap stop EXIT
echo "== starting the sandbox (nginx + this project's Lua handlers, HTTPS on 127.0.0.1)"
bin/laaffic-sandbox start --dir "$DIR" >/dev/null
# shellcheck disable=SC1091
. "$DIR/env"
export LAAFFIC_BASE_URL="$LAAFFIC_SANDBOX_HTTPS" LAAFFIC_CAFILE="$LAAFFIC_SANDBOX_CA"
export LAAFFIC_KEY="$LAAFFIC_SANDBOX_KEY" LAAFFIC_SECRET="$LAAFFIC_SANDBOX_SECRET"
export LAAFFIC_APP_ID="$LAAFFIC_SANDBOX_APP_ID"
echo "   $LAAFFIC_BASE_URL (CA $LAAFFIC_CAFILE)"
echo "== examples/create_task.lua"
LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 examples/create_task.lua
echo "== what the sandbox recorded (GET /_sandbox/tasks)"
curl -sS --cacert "$LAAFFIC_CAFILE" "$LAAFFIC_SANDBOX_HTTPS/_sandbox/tasks"; echo
echo "== stopping the sandbox"
