#!/usr/bin/env bash
# kvlens solve with the shipped model (models/kvlens-think-2-q8_0.gguf) on slices of the two benchmarks
# (data/easy.jsonl, data/hard.jsonl): the behaviour the model was trained for (issue 15), greedy, checked on the
# first 24 problems of each with a tolerance for the small slice (the whole files are measured in models/README.md):
#   easy, fast and slow accuracy         checked >= 0.70 each
#   easy, |fast - slow| accuracy         target <= 0.05 (whole file)   checked <= 0.17
#   easy, slow/fast mean tokens          target >= 6                   checked >= 5
#   hard, fast accuracy                  target <= 0.50                checked <= 0.35
#   hard, slow accuracy                  checked >= 0.45
#   easy, one-step switching with the shipped probe against slow-only: accuracy at most 0.10 below, and at most
#   half the tokens (target on the whole benchmark: within 0.02 with at least 2x fewer tokens)
# plus usage and bad-input errors. A sanitizer build (the binary links libasan; or KVL_SOLVE_SMALL=1) is about 50
# times slower: it solves only 2 problems per mode, checking that the solve path runs clean and the outputs have
# their shape, and leaves the accuracy checks to the release build. One thread: for a model this small a second
# one costs more than it brings on a busy two-core machine. Skips (77) when the model file is absent.
set -u
BIN=${KVL_BIN:-build/kvlens}
SRC=${KVL_SRC:-.}
MODEL=$SRC/models/kvlens-think-2-q8_0.gguf
DATA=$SRC/data/easy.jsonl
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
. "$(dirname "$0")/testlib.sh" || exit 1
expect_rc() { # what rc want
    if [ "$2" -eq "$3" ]; then ok; else bad "$1: exit $2, want $3"; fi
}
# field NAME JSON: the first numeric value of "NAME" (the summary's own, before the per-level ones)
field() { grep -o "\"$1\": [0-9.]*" <<<"$2" | head -n 1 | awk '{print $2}'; }
expect_cmp() { # what value op bound
    if awk -v a="$2" -v b="$4" "BEGIN { exit !(a $3 b) }"; then ok; else bad "$1: $2, want $3 $4"; fi
}

# Usage errors need no model.
"$BIN" solve --help | grep -q "usage: kvlens solve"
expect_rc "--help" $? 0
"$BIN" solve --data x.jsonl >/dev/null 2>&1
expect_rc "no -m" $? 2
"$BIN" solve -m x.gguf >/dev/null 2>&1
expect_rc "no --data" $? 2
"$BIN" solve -m x.gguf --data x.jsonl --format gsm9k 2>"$T/err" >/dev/null
expect_rc "bad --format" $? 2
grep -q "gsm9k" "$T/err" && ok || bad "bad --format message: $(cat "$T/err")"
"$BIN" solve -m x.gguf --data x.jsonl --think medium >/dev/null 2>&1
expect_rc "bad --think" $? 2
for np in 0 -1 x 5000; do
    "$BIN" solve -m x.gguf --data x.jsonl --parallel "$np" >/dev/null 2>&1
    expect_rc "bad --parallel $np" $? 2
done
"$BIN" solve -m x.gguf --data "$T/missing.jsonl" 2>"$T/err" >/dev/null
expect_rc "missing data file" $? 1

[ -f "$MODEL" ] || { echo "SKIP: no $MODEL"; exit 77; }
[ -f "$DATA" ] || { echo "SKIP: no $DATA"; exit 77; }

# Bad rows name the file and line.
printf '{"question": "1+1?", "answer": "#### 2"}\nnot json\n' >"$T/bad.jsonl"
"$BIN" solve -m "$MODEL" --data "$T/bad.jsonl" --think fast 2>"$T/err" >/dev/null
expect_rc "bad JSON line" $? 1
grep -q "bad.jsonl:2:" "$T/err" && ok || bad "bad line message: $(cat "$T/err")"
printf '{"en": "Is it?", "answer": "True"}\n' >"$T/tqa.jsonl"
"$BIN" solve -m "$MODEL" --data "$T/tqa.jsonl" --format theoremqa 2>"$T/err" >/dev/null
expect_rc "theoremqa without answer_type" $? 1
grep -q "answer_type" "$T/err" && ok || bad "answer_type message: $(cat "$T/err")"

small=${KVL_SOLVE_SMALL:-0}
if ldd "$BIN" 2>/dev/null | grep -q libasan; then small=1; fi
if [ "$small" = 1 ]; then n_mix=2; else n_mix=24; fi
head -n $n_mix "$DATA" >"$T/mix.jsonl"
head -n $n_mix "$SRC/data/hard.jsonl" >"$T/hard.jsonl"
grep '"level": 1,' "$DATA" | head -n 1 >"$T/l1.jsonl"

run() { # name think file -> summary JSON in $T/name.json, results in $T/name.out
    KVL_PROGRESS=0 "$BIN" solve -m "$MODEL" --data "$3" --think "$2" --max-tokens 1600 -t 1 --json --out "$T/$1.out" \
        >"$T/$1.json" 2>"$T/$1.err"
    local rc=$?
    expect_rc "solve $1 ($(cat "$T/$1.err"))" $rc 0
}
run slow slow "$T/mix.jsonl"
# Many problems at once (the default) against one at a time: greedy results are identical, row by row, in order.
KVL_PROGRESS=0 "$BIN" solve -m "$MODEL" --data "$T/mix.jsonl" --think slow --max-tokens 1600 -t 1 --parallel 1 --json \
    --out "$T/slow1.out" >"$T/slow1.json" 2>"$T/slow1.err"
expect_rc "solve --parallel 1 ($(cat "$T/slow1.err"))" $? 0
same=$(paste -d '\n' <(sed 's/"time_s": [0-9.]*//' "$T/slow.out") <(sed 's/"time_s": [0-9.]*//' "$T/slow1.out") |
    awk 'NR % 2 { a = $0; next } { n++; s += (a == $0) } END { print s + 0 "/" n + 0 }')
expect_cmp "rows identical with --parallel 1 and the default ($same)" "${same%/*}" "==" "$n_mix"
expect_cmp "parallel in the summary" "$(field parallel "$(cat "$T/slow.json")")" ">" 1
run fast fast "$T/mix.jsonl"
hfast={} hslow={}
if [ "$small" != 1 ]; then # the hard slice only in release builds: its slow answers are long
    run hfast fast "$T/hard.jsonl"
    run hslow slow "$T/hard.jsonl"
    hfast=$(cat "$T/hfast.json") hslow=$(cat "$T/hslow.json")
fi
auto1={}
PROBE=$SRC/models/kvlens-think-2-probe.bin
if [ "$small" != 1 ] && [ -f "$PROBE" ]; then
    KVL_PROGRESS=0 "$BIN" solve -m "$MODEL" --data "$T/mix.jsonl" --think auto1 --probe "$PROBE" --max-tokens 1600 -t 1 \
        --json --out "$T/auto1.out" >"$T/auto1.json" 2>"$T/auto1.err"
    expect_rc "solve auto1 ($(cat "$T/auto1.err"))" $? 0
    auto1=$(cat "$T/auto1.json")
fi
slow=$(cat "$T/slow.json") fast=$(cat "$T/fast.json")

ratio=$(awk -v s="$(field mean_tokens "$slow")" -v f="$(field mean_tokens "$fast")" 'BEGIN { print (f > 0 ? s / f : 0) }')
if [ "$small" != 1 ]; then
    expect_cmp "easy: slow accuracy ($n_mix problems)" "$(field accuracy "$slow")" ">=" 0.70
    expect_cmp "easy: fast accuracy" "$(field accuracy "$fast")" ">=" 0.70
    gap=$(awk -v s="$(field accuracy "$slow")" -v f="$(field accuracy "$fast")" 'BEGIN { d = s - f; print d < 0 ? -d : d }')
    expect_cmp "easy: |fast - slow| accuracy" "$gap" "<=" 0.17
    expect_cmp "easy: slow/fast mean tokens" "$ratio" ">=" 5
    expect_cmp "hard: fast accuracy" "$(field accuracy "$hfast")" "<=" 0.35
    expect_cmp "hard: slow accuracy" "$(field accuracy "$hslow")" ">=" 0.45
    if [ -f "$PROBE" ]; then
        expect_cmp "easy: one-step accuracy - slow accuracy" "$(awk -v a="$(field accuracy "$auto1")" -v s="$(field accuracy "$slow")" 'BEGIN { print a - s }')" ">=" -0.10
        expect_cmp "easy: slow tokens / one-step tokens" "$(awk -v a="$(field mean_tokens "$auto1")" -v s="$(field mean_tokens "$slow")" 'BEGIN { print (a > 0 ? s / a : 0) }')" ">=" 2
    fi
fi
expect_cmp "problems solved" "$(field n "$slow")" "==" "$n_mix"

# The per-problem file agrees with the summary, and slow outputs close their thinking before the answer.
lines=$(wc -l <"$T/slow.out")
expect_cmp "result lines" "$lines" "==" "$n_mix"
right=$(grep -c '"correct": true' "$T/slow.out")
expect_cmp "correct lines" "$right" "==" "$(field correct "$slow")"
closed=$(grep -c '</think>' "$T/slow.out")
expect_cmp "slow outputs with </think>" "$closed" "==" "$n_mix"
grep -q '"extracted": "[0-9-]' "$T/fast.out" && ok || bad "no extracted answers in $T/fast.out"
KVL_PROGRESS=0 "$BIN" solve -m "$MODEL" --data "$T/l1.jsonl" --limit 1 --think fast -t 1 --show >"$T/show" 2>&1
expect_rc "--show" $? 0
grep -q '^=> .*, reference .*: \(RIGHT\|WRONG\), [0-9]* tokens' "$T/show" && ok || bad "--show output: $(cat "$T/show")"

echo "cli_solve: $checks checks, $fails failed (--parallel vs 1: $same rows identical; easy slow $(field accuracy "$slow") fast $(field accuracy "$fast"), token ratio $ratio; hard slow $(field accuracy "$hslow") fast $(field accuracy "$hfast"); easy one-step $(field accuracy "$auto1") with $(field mean_tokens "$auto1") tokens against slow $(field mean_tokens "$slow"))"
[ $fails -eq 0 ]
