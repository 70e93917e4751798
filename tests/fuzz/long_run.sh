#!/usr/bin/env bash
# A longer fuzzing run: every harness given (default: all that are built) fuzzes for SECONDS at once, one process
# per harness, each on its own corpus copy seeded from the committed corpus and regression inputs. Bounded: the
# whole run ends after about SECONDS + 30 s. Writes into OUTDIR (default build-fuzz/long):
#   <name>.log            libFuzzer's output (the final statistics included)
#   corpus/<name>/        the inputs it kept (not copied back into the repo)
#   artifacts/<name>/     crashes, leaks, timeouts and out-of-memory inputs, if any
#   summary.tsv           harness, seconds, executions, exec/s, coverage (edges) and features at the seeds and at
#                         the end, peak RSS, findings
#   tests/fuzz/long_run.sh SECONDS [fuzz_name...]      env: FUZZ_BUILD (build-fuzz), OUTDIR, NICE (0)
# It also runs away from the repository (the device machine): FUZZ_BUILD holds the harnesses, KVL_SRC the source
# tree whose models/ and tests/fuzz/ it reads.
set -uo pipefail
SECS=${1:?usage: long_run.sh SECONDS [fuzz_name...]}
shift
SRC=${KVL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${FUZZ_BUILD:-$SRC/build-fuzz}
OUT=${OUTDIR:-$B/long}
export KVL_SRC=$SRC
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  for f in "$B"/fuzz_*; do [ -x "$f" ] && [ -f "$f" ] && harnesses+=("$(basename "$f")"); done
fi
[ ${#harnesses[@]} -gt 0 ] || { echo "long_run: no harnesses in $B" >&2; exit 1; }
mkdir -p "$OUT/corpus" "$OUT/artifacts"
pids=()
for h in "${harnesses[@]}"; do
  name=${h#fuzz_}
  [ -x "$B/$h" ] || { echo "long_run: $B/$h is not built" >&2; exit 1; }
  mkdir -p "$OUT/corpus/$name" "$OUT/artifacts/$name"
  for d in "$SRC/tests/fuzz/corpus/$name" "$SRC/tests/fuzz/regress/$name"; do
    [ -d "$d" ] && cp -n "$d"/* "$OUT/corpus/$name/" 2>/dev/null
  done
  # -timeout: an input running longer is a finding (hang); -rss_limit_mb: one using more memory is one too
  nice -n "${NICE:-0}" "$B/$h" -max_total_time="$SECS" -timeout=20 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$name/" "$OUT/corpus/$name" >"$OUT/$name.log" 2>&1 &
  pids+=($!)
done
echo "long_run: ${#harnesses[@]} harnesses for ${SECS} s each, at once, into $OUT"
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done

# statistics from libFuzzer's own lines: "#N INITED cov: C ft: F ...", "#N DONE cov: ...",
# "stat::number_of_executed_units: N", "stat::average_exec_per_sec: N", "stat::peak_rss_mb: N"
printf 'harness\tseconds\texecutions\texec_per_s\tcov_seeds\tcov_end\tft_seeds\tft_end\tpeak_rss_mb\tfindings\n' \
  >"$OUT/summary.tsv"
for h in "${harnesses[@]}"; do
  name=${h#fuzz_}
  log=$OUT/$name.log
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  field() { grep -E "^#[0-9]+[[:space:]]+$1 " "$log" | head -1 | sed -n "s/.* $2: \([0-9]*\).*/\1/p"; }
  last() { grep -E "^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|DONE) " "$log" | tail -1 | sed -n "s/.* $1: \([0-9]*\).*/\1/p"; }
  findings=$(find "$OUT/artifacts/$name" -type f | wc -l)
  # a harness that never reached its final statistics (did not start, was killed) is a failure, not "0 findings"
  if [ -z "$(stat number_of_executed_units)" ]; then findings="did-not-finish"; rc=1; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$h" "$SECS" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "$(field INITED cov)" "$(last cov)" "$(field INITED ft)" "$(last ft)" \
    "$(stat peak_rss_mb)" "$findings" >>"$OUT/summary.tsv"
  [ "$findings" = 0 ] || rc=1
done
column -t -s $'\t' "$OUT/summary.tsv" 2>/dev/null || cat "$OUT/summary.tsv"
exit $rc
