#!/usr/bin/env bash
# scripts/demo.sh: `make demo`. The whole loop on 127.0.0.1:
#   1. a push receiver: nginx running laaffic.push.handler behind a random token;
#   2. the sandbox (nginx + this project's API handlers, HTTPS), told to push call reports
#      to that receiver;
#   3. examples/create_task.lua creates a task through the SDK;
#   4. the sandbox pushes a report per number; the receiver shows what it got.
# Everything it starts is stopped on exit, whatever happens.
set -eu
cd "$(dirname "$0")/.."
DIR=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-demo.XXXXXX")
RECV="$DIR/receiver"
stop() {
  sandbox/laaffic-sandbox stop --dir "$DIR/sandbox" >/dev/null 2>&1 || true
  [ -f "$RECV/nginx.pid" ] && kill -QUIT "$(cat "$RECV/nginx.pid")" 2>/dev/null || true
  sleep 0.2; rm -rf "$DIR"
}
trap stop EXIT

PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
TOKEN=$(openssl rand -hex 16)
mkdir -p "$RECV"
# the token reaches the receiver through a file only its owner reads, not argv
umask 077; printf 'return "%s"\n' "$TOKEN" > "$RECV/token.lua"; umask 022
# the receiver's part of the nginx.conf that the sandbox and the specs use too
sandbox/nginx-conf "$RECV" --log-level error > "$RECV/nginx.conf" <<CONF
  lua_shared_dict push_dedup 4m;
  lua_shared_dict received 1m;
  init_by_lua_block {
    RECEIVE = require("laaffic.push").handler{
      token = dofile("$RECV/token.lua"), dict = "push_dedup",
      on_record = function(rec)
        local d = ngx.shared.received
        local outcome = rec.terminationCode == 0 and "answered" or
                        (rec.intent == "99999" and "not connected (99999)" or "failed")
        d:incr("records", 1, 0)
        d:incr("outcome:" .. outcome, 1, 0)
        d:set("last", string.format("%s  %s  %s  intent=%s  billPeriod=%s  callTime=%s (unix %s)",
          rec.voiceId, rec.callee, outcome, rec.intent, tostring(rec.billPeriod),
          tostring(rec.callTime), tostring(rec.callTime_unix)))
      end,
    }
  }
  server {
    listen 127.0.0.1:$PORT;
    location /push/ { content_by_lua_block { RECEIVE() } }
    location = /received {
      content_by_lua_block {
        local d = ngx.shared.received
        ngx.say("  records handled once each: ", d:get("records") or 0)
        for _, k in ipairs(d:get_keys()) do
          if k:find("^outcome:") then ngx.say("    ", k:sub(9), ": ", d:get(k)) end
        end
        ngx.say("  last record: ", d:get("last") or "none")
      }
    }
  }
CONF
echo "== starting a push receiver (nginx + laaffic.push.handler) on 127.0.0.1:$PORT"
nginx -p "$RECV/" -c "$RECV/nginx.conf"

echo "== starting the sandbox (nginx + this project's Lua handlers, HTTPS on 127.0.0.1)"
LAAFFIC_SANDBOX_PUSH_URL="http://127.0.0.1:$PORT/push/$TOKEN" \
  sandbox/laaffic-sandbox start --dir "$DIR/sandbox" >/dev/null
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
for _ in $(seq 1 100); do
  pushes=$(curl -sS "$LAAFFIC_SANDBOX_HTTP/_sandbox/pushes")
  case "$pushes" in *'"records":0,'*) ;; *'"active":0'*) break ;; esac
  sleep 0.1
done
echo "  sandbox: $pushes"
echo "== what the receiver got (duplicates dropped by voiceId)"
curl -sS "http://127.0.0.1:$PORT/received"
echo "== the laaffic command: a 450-number CSV sent as tasks of at most 200 numbers"
{ echo "calleeNumber,text1"; for i in $(seq 1 450); do printf '9198%08d,caller %d\n' "$i" "$i"; done; } \
  > "$DIR/calls.csv"
printf '{"taskName":"demo-csv-%s","agentId":110}\n' "$(date +%s)" > "$DIR/task.json"
echo "   laaffic send --task task.json --numbers calls.csv --max-rows 200   (credentials from the environment)"
bin/laaffic send --task "$DIR/task.json" --numbers "$DIR/calls.csv" --max-rows 200 || true
echo "== stopping everything"
