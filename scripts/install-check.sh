#!/usr/bin/env bash
# scripts/install-check.sh: the README's install section, run as written. Each ```sh
# block of "## Install" that starts with TREE= (a tree of one's own: Lua 5.4, and LuaJIT
# for OpenResty) or with a `luarocks ... --local` line (~/.luarocks) runs in a fresh shell from a copy of the checkout, with HOME a temporary
# directory (so $HOME/... and `cd ~` are outside the checkout) and spec/installed.lua as
# ~/app.lua. Then, from ~, the installed `laaffic` must be the tree's and validate a task.
# Exit 0 when every block passed. Run by scripts/check.sh (make check).
set -u
cd "$(dirname "$0")/.."
T=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-install.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/src"
cp -r src lua rockspec bin sandbox doc "$T/src/"   # the rockspec's copy_directories too

# the blocks: ```sh ... ``` under "## Install" (up to the next "## "), first line TREE= or
# a --local install (the system tree's needs root: not run)
awk '/^## Install/ { on = 1; next } on && /^## / { exit }
     on && /^```sh$/ { inblock = 1; n++; first = 1; next }
     inblock && /^```$/ { inblock = 0; next }
     inblock { if (first && $0 !~ /^TREE=/ && $0 !~ /^luarocks .* --local /) { skip[n] = 1 } first = 0
               if (!skip[n]) print > (dir "/block." n ".sh") }' dir="$T" README.md
failed=0 ran=0
for block in "$T"/block.*.sh; do
  [ -f "$block" ] || continue
  ran=$((ran + 1))
  home="$T/home.$ran"; mkdir -p "$home"
  cp spec/installed.lua "$home/app.lua"
  printf '{"taskName":"installed","agentId":110,"numberInfoList":[{"calleeNumber":"919777654321"}]}\n' \
    > "$home/task.json"
  echo "-- README install block $ran:"; sed 's/^/   /' "$block"
  # TREE is exported so that app.lua (spec/installed.lua) knows the tree the block chose
  # shellcheck disable=SC1090
  if (cd "$T/src" && export HOME="$home" TREE="" && set -e && . "$block" &&
      [ "$(command -v laaffic)" = "$TREE/bin/laaffic" ] &&
      laaffic validate --task "$HOME/task.json") > "$T/log" 2>&1; then
    sed -n '/^laaffic .* from /p' "$T/log"
  else
    cat "$T/log"; echo "README install block $ran failed"; failed=1
  fi
done
[ $ran -ge 3 ] || { echo "install-check: found $ran --local and TREE= blocks under ## Install in README.md"; exit 1; }
exit $failed
