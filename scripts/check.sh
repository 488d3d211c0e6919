#!/usr/bin/env bash
# scripts/check.sh [--quick]: everything `make check` runs, ending with "N passed, N failed".
#   1. build laaffic.core for Lua 5.4 and for LuaJIT (warnings are errors)
#   2. every spec under Lua 5.4 and under LuaJIT (spec/63 installs the rock into a
#      temporary tree and runs its sandbox, send --sandbox and a script from outside)
#   3. the spec suite under valgrind (memory errors and definite/indirect leaks fail),
#      and the core-safety specs against the core built with ASan + UBSan (make asan-specs)
#   4. the README's install section as written: `luarocks make` into temporary trees (Lua 5.4,
#      LuaJIT), then the installed `laaffic` and a script from outside the checkout
#      (scripts/install-check.sh)
#   5. luacheck over lua/, sandbox/lua/, spec/, bench/, examples/, bin/laaffic; a tiny run of the
#      stall benchmark (scripts/bench-stall.sh); cppcheck over src/;
#      doc/openapi.yaml: Redocly lint, and ajv on what the encoder writes (scripts/contract.sh)
#   6. a short run of each libFuzzer harness (make fuzz-short)
# --quick runs 1 and 2 for Lua 5.4 only (make test).
set -u
cd "$(dirname "$0")/.."
QUICK=0; [ "${1:-}" = "--quick" ] && QUICK=1
PASSED=0; FAILED=0
LOG=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-check.XXXXXX")
trap 'rm -rf "$LOG"' EXIT
SPEC_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua"

ok()   { PASSED=$((PASSED + 1)); echo "ok: $*"; }
bad()  { FAILED=$((FAILED + 1)); echo "FAILED: $*"; }

# one busted run: its TAP lines are counted one by one
run_specs() { # label, command...
  local label=$1; shift
  echo "== specs: $label"
  "$@" -o TAP spec > "$LOG/tap" 2>&1
  local rc=$? p f
  p=$(grep -c '^ok ' "$LOG/tap"); f=$(grep -c '^not ok ' "$LOG/tap")
  grep -A12 '^not ok ' "$LOG/tap" | head -150
  echo "   $label: $p passed, $f failed"
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
  if [ "$p" -eq 0 ] || { [ $rc -ne 0 ] && [ "$f" -eq 0 ]; }; then
    tail -30 "$LOG/tap"; bad "$label: busted exited $rc"
  fi
}

echo "== build"
for lua in lua5.4 luajit; do
  [ $QUICK = 1 ] && [ $lua = luajit ] && continue
  if make --no-print-directory -s LUA=$lua > "$LOG/build" 2>&1; then ok "build for $lua"
  else cat "$LOG/build"; bad "build for $lua"; fi
done

LAAFFIC_CONTRACT_LOG="$LOG/contract-specs.jsonl" LUA_PATH="$SPEC_PATH;;" LUA_CPATH="build/lua5.4/?.so;;" \
  run_specs "Lua 5.4" lua5.4 /usr/bin/busted
if [ $QUICK = 0 ]; then
  LUA_PATH="$SPEC_PATH;;" LUA_CPATH="build/luajit/?.so;;" run_specs "LuaJIT" luajit /usr/bin/busted

  echo "== valgrind"
  LUA_PATH="$SPEC_PATH;;" LUA_CPATH="build/lua5.4/?.so;;" LAAFFIC_VALGRIND=1 \
    run_specs "Lua 5.4 under valgrind" valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
      --log-file="$LOG/valgrind.%p" lua5.4 /usr/bin/busted --exclude-tags=slow
  if cat "$LOG"/valgrind.* 2>/dev/null | grep -q '=='; then
    cat "$LOG"/valgrind.* | head -80; bad "valgrind reported memory errors or leaks"
  else ok "valgrind: no memory error, no leak"; fi

  echo "== AddressSanitizer + UBSan"
  if make --no-print-directory -s asan-specs > "$LOG/asan" 2>&1; then
    ok "asan-specs: the core-safety specs under ASan + UBSan, no report"
  else tail -60 "$LOG/asan"; bad "asan-specs (reports in build/asan/report.*)"; fi

  echo "== luarocks make into temporary trees, as README.md's install section says"
  if scripts/install-check.sh > "$LOG/rocks.log" 2>&1; then
    ok "README install: luarocks make into a tree (Lua 5.4, LuaJIT), laaffic and a script run from outside"
  else cat "$LOG/rocks.log"; bad "README install (scripts/install-check.sh)"; fi

  echo "== luacheck"
  if luacheck -q lua sandbox/lua spec bench examples bin/laaffic; then ok "luacheck lua/ sandbox/lua/ spec/ bench/ examples/ bin/laaffic"; else bad "luacheck"; fi

  echo "== the stall benchmark's harness (scripts/bench-stall.sh: 2,000 rows, 1 round; no timing judged)"
  if STALL_ROWS=2000 STALL_ROUNDS=1 scripts/bench-stall.sh > "$LOG/stall" 2>&1 &&
     [ "$(grep -c '^| .* | .*slice_rows.* | .* |$' "$LOG/stall")" -eq 10 ] &&
     ! pgrep -f 'nginx .*laaffic-stall\.' > /dev/null; then
    ok "bench-stall harness: ten table lines, both nginx stopped"
  else cat "$LOG/stall"; bad "bench-stall harness (scripts/bench-stall.sh)"; fi

  echo "== contract (doc/openapi.yaml): Redocly lint, ajv on 10,000 generated tasks and the specs' encodes"
  if scripts/contract.sh 10000 "$LOG/contract-specs.jsonl"; then ok "contract: lint and ajv differential"
  else bad "contract (scripts/contract.sh)"; fi

  echo "== cppcheck"
  if cppcheck --quiet --enable=warning,performance,portability --std=c99 --error-exitcode=1 \
       --inline-suppr --suppress=missingIncludeSystem -I src src/; then ok "cppcheck src/"
  else bad "cppcheck"; fi

  echo "== fuzz (libFuzzer + ASan/UBSan, fixed runs from a fixed seed)"
  if make --no-print-directory -s fuzz-short > "$LOG/fuzz" 2>&1; then ok "fuzz-short: encode, encode_gc, push, csv, http"
  else tail -40 "$LOG/fuzz"; bad "fuzz-short (inputs in build/fuzz/artifacts/)"; fi
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
