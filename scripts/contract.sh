#!/usr/bin/env bash
# scripts/contract.sh [N] [CASES...]: the checks of doc/openapi.yaml by tools laaffic did
# not write. Redocly CLI lints the contract; ajv validates against it the body laaffic
# writes (or the task it refuses) for the seeds' two examples, N generated tasks (default
# 10,000, from the seed CONTRACT_SEED; spec/contract.lua) and any CASES files (the spec suite's LAAFFIC_CONTRACT_LOG).
# The core is build/lua5.4's unless LUA_CPATH says otherwise. Exits non-zero on a finding.
set -u
cd "$(dirname "$0")/.."
N=${1:-10000}; [ $# -gt 0 ] && shift
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
BIN=node_modules/.bin
[ -x "$BIN/redocly" ] || { echo "contract: npm packages missing (make deps)" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-contract.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
rc=0
if "$BIN/redocly" lint --format=stylish doc/openapi.yaml > "$TMP/lint" 2>&1; then
  echo "contract: redocly lint: doc/openapi.yaml is valid"
else
  grep -v '[║╔╚]' "$TMP/lint"; rc=1
fi
SEED=${CONTRACT_SEED:-20261129}      # make fuzz passes a new one each run
echo "contract: $N generated tasks from seed $SEED"
LUA_CPATH="${LUA_CPATH:-build/lua5.4/?.so;;}" lua5.4 scripts/contract-gen.lua "$N" "$SEED" \
  > "$TMP/gen.jsonl" || exit 1
node scripts/contract-check.js doc/openapi.yaml "$TMP/gen.jsonl" "$@" || rc=1
exit $rc
