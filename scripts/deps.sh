#!/usr/bin/env bash
# scripts/deps.sh: install the Debian packages that build, test and benchmark laaffic,
# when they are missing. Runs apt-get update once, only if something must be installed.
# (lua5.1: the interpreter luarocks --lua-version=5.1 wraps the installed laaffic with.)
set -eu
PKGS="gcc make pkg-config procps coreutils python3 lua5.4 liblua5.4-dev lua5.1 luajit2 libluajit2-5.1-dev lua-cjson curl openssl
      lua-busted lua-check cppcheck wrk luarocks libssl-dev libcurl4-openssl-dev valgrind nginx
      libnginx-mod-http-lua lua-resty-core clang-14 libclang-rt-14-dev util-linux"
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
# node and npm run the contract's validators (package.json); any Node.js 18+ will do
command -v node >/dev/null && command -v npm >/dev/null || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
  echo "laaffic: installing missing Debian packages:$missing" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "laaffic: need root (or sudo) to install:$missing" >&2; exit 1; }
    SUDO=sudo
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# npm packages pinned by package-lock.json (Redocly CLI, ajv, Prism), into node_modules/
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "laaffic: installing npm packages (package-lock.json)" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
