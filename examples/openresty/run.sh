#!/usr/bin/env bash
# examples/openresty/run.sh: `make example-openresty`. Runs examples/openresty/nginx.conf
# against the local sandbox on 127.0.0.1: starts the sandbox (told to push call reports to
# the app) and the app, creates a task from the app's content handler and one from its
# timer, shows the pushes the app received (its logs/pushes.log), and stops everything it
# started, whatever happens. Needs nginx with the lua module (libnginx-mod-http-lua), and
# `make LUA=luajit` (the Makefile target builds it).
#
#   examples/openresty/run.sh            the whole run above
#   examples/openresty/run.sh up DIR     only start the sandbox and the app under DIR (made
#                                        if missing), print the app's URL; for `make demo`
#   examples/openresty/run.sh down DIR   stop what `up DIR` started (DIR is kept)
#
# The app's prefix, DIR/app, is laid out as nginx.conf's header says: links to this
# directory's nginx.conf and app.lua, the checkout's lua/, build/luajit and nginx/laaffic.conf,
# the sandbox's CA, and an upstream laaffic_api pointing at the sandbox.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# up DIR: sandbox in DIR/sandbox, app in DIR/app; DIR/app.env holds the app's URL
up() {
  local dir=$1 app=$1/app port token
  mkdir -p "$app/logs" "$app/tmp"
  port=$(free_port)
  token=$(openssl rand -hex 16)
  LAAFFIC_SANDBOX_PUSH_URL="http://127.0.0.1:$port/laaffic/push/$token" \
    "$ROOT/sandbox/laaffic-sandbox" start --dir "$dir/sandbox" >/dev/null || return 1
  # shellcheck disable=SC1091
  . "$dir/sandbox/env"
  local sb_port=${LAAFFIC_SANDBOX_HTTPS##*:}
  ln -sfn "$ROOT/lua" "$app/lua"
  ln -sfn "$ROOT/build/luajit" "$app/lib"
  ln -sf "$HERE/app.lua" "$app/app.lua"
  ln -sf "$ROOT/nginx/laaffic.conf" "$app/laaffic.conf"
  ln -sf "$LAAFFIC_SANDBOX_CA" "$app/ca.pem"
  # the sandbox instead of nginx/laaffic-upstream.conf's api.laaffic.com
  printf 'upstream laaffic_api { server 127.0.0.1:%s; keepalive 8; }\n' "$sb_port" \
    > "$app/api-upstream.conf"
  # the example's own file, only its listen port changed
  sed "s/listen 127.0.0.1:8080;/listen 127.0.0.1:$port;/" "$HERE/nginx.conf" > "$app/nginx.conf"
  # credentials reach nginx through its environment (nginx.conf's `env` lines), not argv
  local user=()
  [ "$(id -u)" = 0 ] && user=(-g "user $(id -un) $(id -gn);")
  LAAFFIC_API_KEY=$LAAFFIC_SANDBOX_KEY LAAFFIC_API_SECRET=$LAAFFIC_SANDBOX_SECRET \
    LAAFFIC_APP_ID=$LAAFFIC_SANDBOX_APP_ID LAAFFIC_BASE_URL=$LAAFFIC_SANDBOX_HTTPS \
    LAAFFIC_RESOLVE="localhost:$sb_port:127.0.0.1" LAAFFIC_PUSH_TOKEN=$token \
    nginx -p "$app/" -c "$app/nginx.conf" "${user[@]}" || return 1
  # (`|| return`: a caller's `$(up DIR) || exit` turns set -e off in here)
  local i
  for i in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/campaigns/last" && break
    [ "$i" = 100 ] && { echo "run.sh: the app does not answer on $port" >&2; return 1; }
    sleep 0.05
  done
  echo "APP=http://127.0.0.1:$port" > "$dir/app.env"
  echo "http://127.0.0.1:$port"
}

down() {
  local dir=$1 pid
  if [ -f "$dir/app/nginx.pid" ]; then
    pid=$(cat "$dir/app/nginx.pid")
    kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  "$ROOT/sandbox/laaffic-sandbox" stop --dir "$dir/sandbox" >/dev/null 2>&1 || true
}

# wait_pushes DIR: until the sandbox has pushed every report it planned
wait_pushes() {
  local pushes=""
  # shellcheck disable=SC1091
  . "$1/sandbox/env"
  for _ in $(seq 1 100); do
    pushes=$(curl -sS "$LAAFFIC_SANDBOX_HTTP/_sandbox/pushes")
    case "$pushes" in *'"records":0,'*) ;; *'"active":0'*) break ;; esac
    sleep 0.1
  done
  echo "  sandbox: $pushes"
}

run() {
  local dir app name
  dir=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-example.XXXXXX")
  # shellcheck disable=SC2064
  trap "down '$dir'; rm -rf '$dir'" EXIT
  echo "== starting the sandbox and the app (examples/openresty/nginx.conf)"
  app=$(up "$dir") || exit 1
  echo "   app $app, prefix $dir/app"
  name="example-$(date +%s)"
  echo "== POST /campaigns/start?name=$name-now   (content handler: the subrequest)"
  curl -sS -X POST "$app/campaigns/start?name=$name-now"
  echo "== POST /campaigns/schedule?name=$name-timer   (a timer: cosockets)"
  curl -sS -X POST "$app/campaigns/schedule?name=$name-timer"
  for _ in $(seq 1 100); do
    case "$(curl -sS "$app/campaigns/last")" in "nothing yet") sleep 0.1 ;; *) break ;; esac
  done
  echo "== GET /campaigns/last   (what the timer did)"
  curl -sS "$app/campaigns/last"
  echo "== call reports pushed by the sandbox (waiting for them)"
  wait_pushes "$dir"
  echo "== what the app received (logs/pushes.log: one line per voiceId)"
  cat "$dir/app/logs/pushes.log" 2>/dev/null || echo "  (none)"
  echo "== stopping everything"
}

case "${1:-}" in
  up) up "${2:?up DIR}" ;;
  down) down "${2:?down DIR}" ;;
  wait-pushes) wait_pushes "${2:?wait-pushes DIR}" ;;
  "") run ;;
  *) echo "usage: run.sh [up DIR | down DIR | wait-pushes DIR]" >&2; exit 2 ;;
esac
