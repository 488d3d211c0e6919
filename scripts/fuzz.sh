#!/usr/bin/env bash
# scripts/fuzz.sh: runs the libFuzzer harnesses built by fuzz/fuzz.mk (make fuzz-build).
#
#   scripts/fuzz.sh run SECONDS      fuzz each harness for SECONDS (make fuzz); adds the
#                                    inputs run to build/fuzz/runs.tsv and prints the totals
#   scripts/fuzz.sh check            a fixed number of runs from a fixed seed, from the seed
#                                    corpus only (make fuzz-short, inside make check): no
#                                    local corpus steers it (Lua's per-state hash seed
#                                    still varies table order a little)
#   scripts/fuzz.sh regressions      run each harness once over fuzz/regressions/<name>/
#
# FUZZ_NAMES (default "encode encode_gc push csv http") picks the harnesses. Each one
# starts from its seed corpus fuzz/corpus/<name>/ and a working corpus in
# build/fuzz/corpus/<name>/ (kept between runs, so coverage accumulates; the seeds in
# fuzz/ are never written to). A crash, leak, timeout or broken promise leaves its input
# in build/fuzz/artifacts/<name>/ and makes the script exit 1, after the other harnesses
# have run. Extra libFuzzer flags: FUZZ_FLAGS="-jobs=2 -workers=2" and so on.
set -u
cd "$(dirname "$0")/.."
OUT=build/fuzz
MODE=${1:-run}
SECONDS_EACH=${2:-60}
NAMES=${FUZZ_NAMES:-"encode encode_gc push $([ -x $OUT/csv_fuzz ] && echo csv) http"}

# -max_len: encode reads its input as a grammar (long strings come from repetition, so
# 4 KiB is plenty); push bodies and CSV text are the input itself. -rss_limit_mb: ASan's
# quarantine and a 200,001-row list fit; anything above is a leak or a blow-up. One
# allocation of 2 GiB is one too (the builder keeps outputs within 16 MiB): an estimate
# gone wrong, as issue 11's 20 GB body buffer.
max_len() { case $1 in encode|encode_gc) echo 4096 ;; push) echo 16384 ;; csv) echo 16384 ;; http) echo 512 ;; *) echo 4096 ;; esac; }
# check mode: 10-25 s each under ASan on these machines (all five within 2 minutes on a
# shared 2-core machine). Random exploration belongs to
# `make fuzz`; a finding there is minimised into fuzz/regressions/, which check replays.
check_runs() { case $1 in encode) echo 6000 ;; encode_gc) echo 2000 ;; push) echo 50000 ;; csv) echo 12000 ;; http) echo 1500 ;; *) echo 10000 ;; esac; }
FUZZ_SEED=${FUZZ_SEED:-20261122}

status=0
for name in $NAMES; do
  bin=$OUT/${name}_fuzz
  if [ ! -x "$bin" ]; then echo "fuzz: $bin is not built (make fuzz-build)"; status=1; continue; fi
  art=$OUT/artifacts/$name/
  mkdir -p "$art" "$OUT/corpus/$name"
  dict=(); [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
  # symbolized reports; UBSan aborts (libFuzzer saves the input); leaks count
  export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  if [ "$MODE" = regressions ]; then
    files=()
    for f in fuzz/regressions/"$name"/*; do
      case $f in *.built.txt|*/README.md) ;; *) [ -f "$f" ] && files+=("$f") ;; esac
    done
    [ ${#files[@]} -gt 0 ] || { echo "== $name: no regression inputs"; continue; }
    echo "== $name: ${#files[@]} regression input(s)"
    for f in "${files[@]}"; do
      if "$bin" -runs=1 -timeout=10 "$f" > "$OUT/$name.regression.log" 2>&1; then
        echo "   ok    $f"
      else
        echo "   CRASH $f"; grep -E 'BROKEN PROMISE|ERROR: |SUMMARY' "$OUT/$name.regression.log" | head -3
        status=1
      fi
    done
    continue
  fi
  if [ "$MODE" = check ]; then
    # a scratch working corpus, so earlier local runs do not change what is tried
    work=$(mktemp -d "${TMPDIR:-/tmp}/laaffic-fuzz.XXXXXX")
    echo "== $name: $(check_runs "$name") runs from seed $FUZZ_SEED (log: $OUT/$name.log)"
    # shellcheck disable=SC2086
    "$bin" -runs="$(check_runs "$name")" -seed="$FUZZ_SEED" -max_len="$(max_len "$name")" \
      -timeout=25 -rss_limit_mb=4096 -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art" \
      "${dict[@]}" ${FUZZ_FLAGS:-} "$work" "fuzz/corpus/$name" > "$OUT/$name.log" 2>&1
    rc=$?
    rm -rf "$work"
  else
    echo "== $name: fuzzing for ${SECONDS_EACH}s (log: $OUT/$name.log)"
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$name")" -timeout=25 \
      -rss_limit_mb=4096 -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art" "${dict[@]}" \
      ${FUZZ_FLAGS:-} "$OUT/corpus/$name" "fuzz/corpus/$name" > "$OUT/$name.log" 2>&1
    rc=$?
  fi
  grep -E '^#[0-9]+ +(INITED|DONE)' "$OUT/$name.log" | tail -2 | sed 's/^/   /'
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$OUT/$name.log" | sed 's/^/   /'
  if [ "$MODE" = run ]; then
    # the running total of this tree's campaigns (build/fuzz/runs.tsv: date, harness,
    # inputs, seconds, exit code), toward the 10 million of fuzz/README.md
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$name.log" | tail -1)
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" "${n:-0}" "$SECONDS_EACH" "$rc" >> "$OUT/runs.tsv"
  fi
  if [ $rc -ne 0 ]; then
    status=1
    echo "   FAILED ($rc): $(grep -E 'BROKEN PROMISE|ERROR: |SUMMARY' "$OUT/$name.log" | head -2 | tr '\n' ' ')"
    echo "   input: $(ls -t "$art" 2>/dev/null | head -1 | sed "s|^|$art|")"
    echo "   minimise: $bin -minimize_crash=1 -runs=20000 -exact_artifact_path=fuzz/regressions/$name/<id> <input>"
  else
    echo "   ok: no crash"
  fi
done
if [ "$MODE" = run ] && [ -f "$OUT/runs.tsv" ]; then
  echo "== inputs run by make fuzz in this tree so far ($OUT/runs.tsv):"
  awk -F'\t' '{ n[$2] += $3; t += $3 } END { for (k in n) printf "   %-10s %12d\n", k, n[k]; printf "   %-10s %12d\n", "total", t }' "$OUT/runs.tsv"
fi
exit $status
