#!/usr/bin/env bash
# `make fuzz-check`: build the libFuzzer harnesses with clang in build-fuzz/, run every harness once over its
# committed seed corpus and regression inputs (tests/fuzz/corpus/<name>, tests/fuzz/regress/<name>; any crash,
# leak, sanitizer report or broken property fails), then fuzz each one for FUZZ_SECONDS (default 10) on one core.
# Bounded: about 10 x FUZZ_SECONDS plus the build. New inputs go to build-fuzz/corpus/, crashes to
# build-fuzz/artifacts/<name>/ (the committed corpora are never written).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${FUZZ_BUILD:-build-fuzz}
SECS=${FUZZ_SECONDS:-10}
JOBS=${JOBS:-$(nproc)}
CC_FUZZ=${CC_FUZZ:-$(command -v clang-14 || command -v clang || true)}
if [ -z "$CC_FUZZ" ]; then
  echo "fuzz-check: clang is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
cmake -S tests/fuzz -B "$B" -DCMAKE_C_COMPILER="$CC_FUZZ" >/dev/null
cmake --build "$B" -j "$JOBS"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fail=0
harnesses=()
for f in tests/fuzz/fuzz_*.c; do harnesses+=("$(basename "$f" .c)"); done

echo "== fuzz-check: corpus and regression inputs"
for h in "${harnesses[@]}"; do
  name=${h#fuzz_}
  inputs=()
  for d in tests/fuzz/corpus/$name tests/fuzz/regress/$name; do
    [ -d "$d" ] && while IFS= read -r -d '' f; do inputs+=("$f"); done < <(find "$d" -type f -print0 | sort -z)
  done
  if [ ${#inputs[@]} -eq 0 ]; then echo "$h: no inputs"; fail=1; continue; fi
  # file arguments: each input runs once, nothing is written next to them
  if "$B/$h" -rss_limit_mb=2048 -timeout=20 "${inputs[@]}" > "$B/$h.replay.log" 2>&1; then
    echo "$h: ${#inputs[@]} inputs ok"
  else
    echo "$h: FAILED on the committed inputs (log: $B/$h.replay.log)"; tail -30 "$B/$h.replay.log"; fail=1
  fi
done
[ $fail -eq 0 ] || exit 1

echo "== fuzz-check: ${SECS}s of fuzzing per harness, one core"
for h in "${harnesses[@]}"; do
  name=${h#fuzz_}
  mkdir -p "$B/corpus/$name" "$B/artifacts/$name"
  seeds=(tests/fuzz/corpus/$name)
  [ -d tests/fuzz/regress/$name ] && seeds+=(tests/fuzz/regress/$name)
  if timeout $((SECS + 60)) "$B/$h" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=20 \
       -max_len=8192 -print_final_stats=1 -artifact_prefix="$B/artifacts/$name/" "$B/corpus/$name" "${seeds[@]}" \
       > "$B/$h.fuzz.log" 2>&1; then
    echo "$h: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$B/$h.fuzz.log" | tail -1 | sed -E 's/^#([0-9]+)[[:space:]]+DONE[[:space:]]+(cov: [0-9]+).*/\1 runs, \2/')"
  else
    echo "$h: FAILED while fuzzing (log: $B/$h.fuzz.log, inputs: $B/artifacts/$name/)"; tail -40 "$B/$h.fuzz.log"; fail=1
  fi
done
exit $fail
