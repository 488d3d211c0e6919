#!/usr/bin/env bash
# scripts/demo.sh: `make demo`. The whole loop on 127.0.0.1:
#   1. the OpenResty example (examples/openresty: nginx running laaffic.push.handler
#      behind a random token) and the sandbox (nginx + this project's API handlers, HTTPS),
#      told to push call reports to it: examples/openresty/run.sh up;
#   2. examples/create_task.lua creates a task through the SDK;
#   3. the sandbox pushes a report per number; the app writes each to logs/pushes.log.
# Everything it starts is stopped on exit, whatever happens.
set -eu
cd "$(dirname "$0")/.."
DIR=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-demo.XXXXXX")
stop() {
  examples/openresty/run.sh down "$DIR"
  sleep 0.2; rm -rf "$DIR"
}
trap stop EXIT

echo "== starting the sandbox (nginx + this project's Lua handlers, HTTPS on 127.0.0.1) and"
echo "   a push receiver (examples/openresty/nginx.conf: nginx + laaffic.push.handler)"
APP=$(examples/openresty/run.sh up "$DIR")
echo "   receiver $APP"
# shellcheck disable=SC1091
. "$DIR/sandbox/env"
export LAAFFIC_BASE_URL="$LAAFFIC_SANDBOX_HTTPS" LAAFFIC_CAFILE="$LAAFFIC_SANDBOX_CA"
export LAAFFIC_API_KEY="$LAAFFIC_SANDBOX_KEY" LAAFFIC_API_SECRET="$LAAFFIC_SANDBOX_SECRET"
export LAAFFIC_APP_ID="$LAAFFIC_SANDBOX_APP_ID"
echo "   $LAAFFIC_BASE_URL (CA $LAAFFIC_CAFILE)"

echo "== examples/create_task.lua"
LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 examples/create_task.lua

echo "== what the sandbox recorded (GET /_sandbox/tasks)"
curl -sS --cacert "$LAAFFIC_CAFILE" "$LAAFFIC_SANDBOX_HTTPS/_sandbox/tasks"; echo

echo "== call reports pushed by the sandbox (waiting for them)"
examples/openresty/run.sh wait-pushes "$DIR"
echo "== what the receiver got (its logs/pushes.log; duplicates dropped by voiceId)"
cat "$DIR/app/logs/pushes.log" 2>/dev/null || echo "  (none)"
echo "== the laaffic command: a 450-number CSV sent as tasks of at most 200 numbers"
{ echo "calleeNumber,text1"; for i in $(seq 1 450); do printf '9198%08d,caller %d\n' "$i" "$i"; done; } \
  > "$DIR/calls.csv"
printf '{"taskName":"demo-csv-%s","agentId":110}\n' "$(date +%s)" > "$DIR/task.json"
echo "   laaffic send --task task.json --numbers calls.csv --max-rows 200   (credentials from the environment)"
bin/laaffic send --task "$DIR/task.json" --numbers "$DIR/calls.csv" --max-rows 200 || true
echo "== stopping everything"
