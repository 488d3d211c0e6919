#!/usr/bin/env bash
# scripts/bench-stall.sh: the stall benchmark (`make bench-stall`, part of `make bench`).
# Starts the sandbox and a single-worker nginx running bench/stall_app.lua (LuaJIT, the
# config from sandbox/nginx-conf), writes a CSV file of STALL_ROWS rows, and runs
# bench/stall.py, which pings the worker every millisecond while it creates a task of
# STALL_ROWS numbers (content handler with auto's subrequest and with the cosocket
# transport, timer, CSV source both ways; sliced and one-call encode) and prints the ping
# latencies. Stops both nginx instances on any exit.
#
#   STALL_ROWS    numbers per task (default 200000)
#   STALL_ROUNDS  rounds; each figure is the median over them (default 5)
#   STALL_SLICE_ROWS  slice_rows of the sliced runs (default: the client's own default)
#   STALL_TRACE   N: list each send's pings slower than N ms
# Needs nginx + libnginx-mod-http-lua and python3 (scripts/deps.sh).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROWS=${STALL_ROWS:-200000} ROUNDS=${STALL_ROUNDS:-5}
[ -f build/luajit/laaffic/core.so ] || make -s --no-print-directory LUA=luajit all
DIR=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-stall.XXXXXX")

# the app's nginx: QUIT, then KILL the master and the workers it had if they linger
stop_app() {
  local pid workers
  [ -f "$DIR/app/nginx.pid" ] || return 0
  pid=$(cat "$DIR/app/nginx.pid")
  workers=$(pgrep -P "$pid" || true)
  kill -QUIT "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  # shellcheck disable=SC2086
  kill -KILL "$pid" $workers 2>/dev/null || true
}
cleanup() {
  [ -z "${CLIENT:-}" ] || kill "$CLIENT" 2>/dev/null || true
  stop_app
  sandbox/laaffic-sandbox stop --dir "$DIR/sandbox" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

sandbox/laaffic-sandbox start --dir "$DIR/sandbox" >/dev/null 2>"$DIR/sandbox.err" ||
  { cat "$DIR/sandbox.err" >&2; exit 1; }
set -a; . "$DIR/sandbox/env"; set +a
# the same rows as bench/stall_app.lua's table (and bench/send.lua's)
awk -v n="$ROWS" 'BEGIN { print "calleeNumber,text1,text2,text3";
  for (i = 1; i <= n; i++) printf "9197%08d,%s,%d,2026-04-10\n", i, (i % 2 == 0) ? "David" : "Oliver",
    1000 + (i * 37) % 9000 }' > "$DIR/calls.csv"

PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
mkdir -p "$DIR/app"
printf 'env %s;\n' LAAFFIC_SANDBOX_HTTPS LAAFFIC_SANDBOX_KEY LAAFFIC_SANDBOX_SECRET \
  LAAFFIC_SANDBOX_APP_ID STALL_ROWS STALL_CSV STALL_SLICE_ROWS > "$DIR/main.part"
sandbox/nginx-conf "$DIR/app" --workers 1 --main "$DIR/main.part" > "$DIR/app/nginx.conf" <<EOF
    lua_ssl_trusted_certificate $LAAFFIC_SANDBOX_CA;
    lua_ssl_verify_depth 4;
    upstream laaffic_api { server 127.0.0.1:${LAAFFIC_SANDBOX_HTTPS##*:}; keepalive 8; }
    init_by_lua_block { stall = dofile("$ROOT/bench/stall_app.lua") }
    init_worker_by_lua_block { stall.init_worker() }
    server {
        listen 127.0.0.1:$PORT;
        keepalive_requests 10000000;
        keepalive_timeout 600s;
        proxy_ssl_trusted_certificate $LAAFFIC_SANDBOX_CA;
        include $ROOT/nginx/laaffic.conf;
        location = /ping { return 200 "pong\n"; }
        location = /send { content_by_lua_block { stall.send() } }
        location = /info { content_by_lua_block { stall.info() } }
    }
EOF
STALL_ROWS=$ROWS STALL_CSV=$DIR/calls.csv nginx -p "$DIR/app/" -c "$DIR/app/nginx.conf"
# in the background: a signal to this script runs the trap at once, not after the client
python3 bench/stall.py "http://127.0.0.1:$PORT" "$ROUNDS" "$DIR/app/logs/error.log" &
CLIENT=$!
wait "$CLIENT"
