#!/usr/bin/env bash
# Shards, resume and merge of the dataset commands (solve, label, selfeval, embed, score --data), against the unsharded run of the
# same command as the reference:
#   - sharded (--shard I/3, each shard alone) + kvlens merge equals the unsharded run: the rows byte for byte, the
#     summaries, tables and plots byte for byte, except the fields that time the run or name its device (time_s, tok_s, prompt_tokens
#     evaluated, generation/score time), which are removed before comparing;
#   - a run killed mid-way (KVL_TEST_KILL_AFTER=k: SIGKILL after k rows, plus a torn last line appended, as a kill in
#     the middle of a write leaves) and started again with the same arguments equals an uninterrupted run;
#   - outputs that are not the run's own are refused and left byte for byte as they were; merge refuses missing,
#     duplicate, incomplete shards and shards of different runs, naming them; bad --shard values and shard
#     environments (Slurm array, Kubernetes indexed job) are errors naming the problem.
# selfeval runs with --parallel 1: its scores depend on which answers share a batch in the last bits (batched
# matrix products), so byte equality is asked of runs that batch alike. The model is the shipped one (skips, 77,
# without it); embed uses a converted fixture model.
set -u
BIN=${KVL_BIN:-build/kvlens}
SRC=${KVL_SRC:-.}
MODEL=$SRC/models/kvlens-think-2-q8_0.gguf
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
. "$(dirname "$0")/testlib.sh" || exit 1
# expect CODE PATTERN -- command...: exit status CODE, stderr matching PATTERN
expect() {
    local code=$1 pat=$2
    shift 3
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" -eq "$code" ] && grep -qE -- "$pat" "$T/err"; then ok; else
        bad "$* -> rc $rc (want $code), stderr: $(head -c 400 "$T/err")"
    fi
}
same() { # what fileA fileB: byte-identical
    if cmp -s "$2" "$3"; then ok; else bad "$1: $2 and $3 differ: $(diff "$2" "$3" | head -c 600)"; fi
}
# the fields that time a run, removed before comparing
untimed() { sed -E 's/"(time_s|tok_s|prompt_tokens|generation_time_s|score_time_s|score_time_fraction)": ([0-9.e+-]+|null)//g; s/"device": ("[^"]*"|null)//g; s/\([0-9]+ new, [0-9.]+ s\)//; /^device  /d' "$1"; }
same_untimed() { # what fileA fileB
    if cmp -s <(untimed "$2") <(untimed "$3"); then ok; else bad "$1: $2 and $3 differ: $(diff <(untimed "$2") <(untimed "$3") | head -c 600)"; fi
}
export KVL_PROGRESS=0
unset SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_COUNT SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_MAX SLURM_ARRAY_TASK_STEP \
    JOB_COMPLETION_INDEX KVL_SHARD_COUNT

# --- bad --shard values and environments (no model needed: checked before anything is read)
for v in 3/3 1/0 x/2 -1/2 1/ 2 1/2/3; do
    expect 2 "bad --shard '$v'" -- "$BIN" solve -m x.gguf --data x.jsonl --out "$T/x" --shard "$v"
done
expect 2 "I must be in 0..N-1" -- "$BIN" label -m x.gguf --data x.jsonl -o "$T/x" --shard 5/5
expect 2 "needs --out" -- "$BIN" solve -m x.gguf --data x.jsonl --shard 0/2
expect 2 "bad SLURM_ARRAY_TASK_ID='x'" -- env SLURM_ARRAY_TASK_ID=x "$BIN" solve -m x.gguf --data x.jsonl --out "$T/x"
expect 2 "shard index 3 is not below the shard count 3" -- \
    env SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_COUNT=3 "$BIN" solve -m x.gguf --data x.jsonl --out "$T/x"
expect 2 "without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX" -- env SLURM_ARRAY_TASK_ID=0 "$BIN" solve -m x.gguf --data x.jsonl --out "$T/x"
expect 2 "no KVL_SHARD_COUNT" -- env JOB_COMPLETION_INDEX=1 "$BIN" selfeval -m x.gguf --data x.jsonl --out "$T/x"
expect 2 "bad KVL_SHARD_COUNT='0'" -- env JOB_COMPLETION_INDEX=0 KVL_SHARD_COUNT=0 "$BIN" selfeval -m x.gguf --data x.jsonl --out "$T/x"
"$BIN" merge --help | grep -q "usage: kvlens merge" && ok || bad "merge --help"
expect 1 "no shard outputs next to" -- "$BIN" merge "$T/nothing.jsonl"

[ -f "$MODEL" ] || { echo "SKIP: no $MODEL"; exit 77; }
small=${KVL_SHARD_SMALL:-0}
if ldd "$BIN" 2>/dev/null | grep -q libasan; then small=1; fi # sanitizer builds are ~50x slower: fewer rows
if [ "$small" = 1 ]; then rows=5 mt=16; else rows=10 mt=40; fi
head -n "$rows" "$SRC/data/easy.jsonl" >"$T/d.jsonl"
K="-t 1"

# --- solve
S0=("$BIN" solve -m "$MODEL" --data "$T/d.jsonl" --think fast --json $K)
S=("${S0[@]}" --max-tokens "$mt")
mkdir -p "$T/s"
"${S[@]}" --out "$T/s/ref.jsonl" >"$T/s.sum" 2>"$T/err" || bad "solve: $(cat "$T/err")"
mkdir -p "$T/s3"
for i in 0 1 2; do
    "${S[@]}" --out "$T/s3/all.jsonl" --shard $i/3 >"$T/s3/sum$i" 2>"$T/err" || bad "solve shard $i: $(cat "$T/err")"
    grep -q "\"shard\": {\"index\": $i, \"count\": 3}" "$T/s3/sum$i" && ok || bad "solve shard summary: $(cat "$T/s3/sum$i")"
done
"$BIN" merge "$T/s3/all.jsonl" >"$T/s3.sum" 2>"$T/err" || bad "merge solve: $(cat "$T/err")"
same_untimed "solve rows, sharded + merged" "$T/s/ref.jsonl" "$T/s3/all.jsonl"
same_untimed "solve summary, sharded + merged" "$T/s.sum" "$T/s3.sum"
expect_rows=$(grep -c . "$T/s/ref.jsonl")
[ "$expect_rows" -eq "$rows" ] && ok || bad "solve wrote $expect_rows rows of $rows"
# killed after 2 rows, a torn line added, started again
KVL_TEST_KILL_AFTER=2 "${S[@]}" --out "$T/s/k.jsonl" >/dev/null 2>&1
rc=$?
[ $rc -eq 137 ] && [ "$(grep -c . "$T/s/k.jsonl")" -eq 2 ] && ok || bad "solve kill: rc $rc, $(grep -c . "$T/s/k.jsonl") rows"
printf '{"index": 2, "question": "Nora' >>"$T/s/k.jsonl"
"${S[@]}" --out "$T/s/k.jsonl" >"$T/k.sum" 2>"$T/err" || bad "solve resume: $(cat "$T/err")"
grep -q "dropped an incomplete last line" "$T/err" && grep -q "2 of $rows problems already in" "$T/err" && ok ||
    bad "solve resume notes: $(cat "$T/err")"
same_untimed "solve rows, killed + resumed" "$T/s/ref.jsonl" "$T/s/k.jsonl"
same_untimed "solve summary, killed + resumed" "$T/s.sum" "$T/k.sum"
# not its own output: refused, left as it was
cp "$T/s/k.jsonl" "$T/s/k.orig"
expect 1 "another run's output .written with other arguments" -- "${S0[@]}" --out "$T/s/k.jsonl" --max-tokens 7
same "solve: another run's file untouched" "$T/s/k.orig" "$T/s/k.jsonl"
printf 'my notes\nno newline' >"$T/s/notes.txt"
cp "$T/s/notes.txt" "$T/s/notes.orig"
expect 1 "not the output of an interrupted kvlens solve run" -- "${S[@]}" --out "$T/s/notes.txt"
same "solve: a file that is not an output untouched" "$T/s/notes.orig" "$T/s/notes.txt"
cp "$T/s3/all.shard-1-of-3.jsonl.kvlens-run.json" "$T/s/x.jsonl.kvlens-run.json"
cp "$T/s3/all.shard-1-of-3.jsonl" "$T/s/x.jsonl"
expect 1 "another run's output .written for shard 1/3, not 0/1" -- "${S[@]}" --out "$T/s/x.jsonl"

# --- merge refusals
mkdir -p "$T/m" && cp "$T/s3"/all.shard-* "$T/m/"
rm "$T/m/all.shard-1-of-3.jsonl" "$T/m/all.shard-1-of-3.jsonl.kvlens-run.json"
expect 1 "1 of 3 shards are missing .index 1 of 3" -- "$BIN" merge "$T/m/all.jsonl"
expect 1 "shard 0/3 is given twice" -- "$BIN" merge "$T/m/all.jsonl" "$T/m/all.shard-0-of-3.jsonl" "$T/m/all.shard-0-of-3.jsonl" "$T/m/all.shard-2-of-3.jsonl"
"${S0[@]}" --max-tokens 8 --out "$T/m/all.jsonl" --shard 1/3 >/dev/null 2>&1
expect 1 "shards of different runs: other arguments" -- "$BIN" merge "$T/m/all.jsonl"
rm "$T/m/all.shard-1-of-3.jsonl"*
KVL_TEST_KILL_AFTER=1 "${S[@]}" --out "$T/m/all.jsonl" --shard 1/3 >/dev/null 2>&1
expect 1 "shard 1/3 .* is not complete" -- "$BIN" merge "$T/m/all.jsonl"
"${S[@]}" --out "$T/m/all.jsonl" --shard 1/3 >/dev/null 2>&1 # it continues
"$BIN" merge "$T/m/all.jsonl" >/dev/null 2>"$T/err" && ok || bad "merge after the shard finished: $(cat "$T/err")"
same_untimed "solve rows, a shard killed and resumed, merged" "$T/s/ref.jsonl" "$T/m/all.jsonl"
expect 1 "all.jsonl exists" -- "$BIN" merge "$T/m/all.jsonl"
# shards from the environment: a Slurm array task (COUNT, or MIN/MAX) and a Kubernetes indexed job
mkdir -p "$T/e"
SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=3 "${S[@]}" --out "$T/e/all.jsonl" >/dev/null 2>"$T/err"
grep -q "shard 0/3 from the environment: SLURM_ARRAY_TASK_ID=0" "$T/err" && [ -s "$T/e/all.shard-0-of-3.jsonl" ] && ok ||
    bad "Slurm shard: $(cat "$T/err")"
SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_MIN=4 SLURM_ARRAY_TASK_MAX=6 "${S[@]}" --out "$T/e/all.jsonl" >/dev/null 2>"$T/err"
grep -q "shard 1/3 from the environment" "$T/err" && [ -s "$T/e/all.shard-1-of-3.jsonl" ] && ok || bad "Slurm MIN/MAX shard: $(cat "$T/err")"
JOB_COMPLETION_INDEX=2 KVL_SHARD_COUNT=3 "${S[@]}" --out "$T/e/all.jsonl" >/dev/null 2>"$T/err"
grep -q "shard 2/3 from the environment: JOB_COMPLETION_INDEX=2" "$T/err" && ok || bad "indexed-job shard: $(cat "$T/err")"
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 "$BIN" merge "$T/e/all.jsonl" >"$T/e.sum" 2>"$T/err" || bad "merge env shards: $(cat "$T/err")"
same_untimed "solve rows, environment shards merged" "$T/s/ref.jsonl" "$T/e/all.jsonl"
same_untimed "solve summary, environment shards merged" "$T/s.sum" "$T/e.sum"

# --- label (two answers per row; rows whose prompt does not fit would be left out, none here)
L=("$BIN" label -m "$MODEL" --data "$T/d.jsonl" --max-tokens "$mt" --short-bound 16 $K)
mkdir -p "$T/l" "$T/lr" # the summary names the output: the reference in another directory, under the same name
"${L[@]}" -o "$T/lr/all.jsonl" >"$T/l.sum" 2>"$T/err" || bad "label: $(cat "$T/err")"
cp "$T/lr/all.jsonl" "$T/l/ref.jsonl"
sed -i "s|$T/lr/|$T/l/|" "$T/l.sum"
for i in 0 1 2; do "${L[@]}" -o "$T/l/all.jsonl" --shard $i/3 >/dev/null 2>"$T/err" || bad "label shard $i: $(cat "$T/err")"; done
"$BIN" merge "$T/l/all.jsonl" >"$T/l3.sum" 2>"$T/err" || bad "merge label: $(cat "$T/err")"
same "label rows, sharded + merged" "$T/l/ref.jsonl" "$T/l/all.jsonl"
same_untimed "label summary, sharded + merged" "$T/l.sum" "$T/l3.sum"
KVL_TEST_KILL_AFTER=3 "${L[@]}" -o "$T/l/k.jsonl" >/dev/null 2>&1
head -c 30 "$T/l/ref.jsonl" | sed 's/"index":0/"index":3/' | tr -d '\n' >>"$T/l/k.jsonl"
"${L[@]}" -o "$T/l/k.jsonl" >"$T/lk.sum" 2>"$T/err" || bad "label resume: $(cat "$T/err")"
grep -q "3 of $rows problems already labelled" "$T/err" && ok || bad "label resume note: $(cat "$T/err")"
same "label rows, killed + resumed" "$T/l/ref.jsonl" "$T/l/k.jsonl"

# --- selfeval (a directory: problems.jsonl, summary.json, table.md, roc.svg, trajectories.svg)
E=("$BIN" selfeval -m "$MODEL" --data "$T/d.jsonl" --think fast --max-tokens "$mt" --boot 200 --parallel 1 $K)
"${E[@]}" --out "$T/se" >/dev/null 2>"$T/err" || bad "selfeval: $(cat "$T/err")"
for i in 0 1 2; do
    "${E[@]}" --out "$T/se3" --shard $i/3 >/dev/null 2>"$T/err" || bad "selfeval shard $i: $(cat "$T/err")"
    grep -q "\"shard\": {\"index\": $i, \"count\": 3}" "$T/se3.shard-$i-of-3/summary.json" && ok || bad "selfeval shard summary"
done
"$BIN" merge "$T/se3" >/dev/null 2>"$T/err" || bad "merge selfeval: $(cat "$T/err")"
KVL_TEST_KILL_AFTER=2 "${E[@]}" --out "$T/sek" >/dev/null 2>&1
printf '{"index": 2, "question": "x' >>"$T/sek/problems.jsonl"
"${E[@]}" --out "$T/sek" >/dev/null 2>"$T/err" || bad "selfeval resume: $(cat "$T/err")"
grep -q "2 of $rows problems already in" "$T/err" && ok || bad "selfeval resume note: $(cat "$T/err")"
for d in se3 sek; do
    same_untimed "selfeval problems.jsonl ($d)" "$T/se/problems.jsonl" "$T/$d/problems.jsonl"
    same_untimed "selfeval summary.json ($d)" "$T/se/summary.json" "$T/$d/summary.json"
    for f in table.md roc.svg trajectories.svg; do
        if [ -f "$T/se/$f" ] || [ -f "$T/$d/$f" ]; then same "selfeval $f ($d)" "$T/se/$f" "$T/$d/$f"; fi
    done
done
grep -q '"auroc_ci"' "$T/se3/summary.json" && ok || bad "merged summary without bootstrap intervals"

# --- embed (.npy and JSONL) on a fixture model
"$BIN" convert "$SRC/tests/fixtures/qwen3/hf" "$T/q3.gguf" --no-vocab --type f32 >/dev/null 2>&1 || bad "convert"
awk 'BEGIN { s = 3; for (i = 0; i < 23; i++) { printf "%d", 5 + i % 7; for (j = 0; j < 3 + i % 5; j++) {
    s = (s * 1103515245 + 12345) % 2147483648; printf ",%d", 3 + int(s / 65536) % 150 } printf "\n" } }' >"$T/ids.txt"
B=("$BIN" embed -m "$T/q3.gguf" --input "$T/ids.txt" --format ids --layers last:2 $K)
mkdir -p "$T/em"
"${B[@]}" -o "$T/em/ref" 2>"$T/err" || bad "embed: $(cat "$T/err")"
"${B[@]}" -o "$T/em/ref.jsonl" --output-format jsonl 2>"$T/err" || bad "embed jsonl: $(cat "$T/err")"
for i in 0 1 2; do
    "${B[@]}" -o "$T/em/all" --shard $i/3 --parallel 4 2>"$T/err" || bad "embed shard $i: $(cat "$T/err")"
    "${B[@]}" -o "$T/em/all.jsonl" --output-format jsonl --shard $i/3 2>"$T/err" || bad "embed jsonl shard $i: $(cat "$T/err")"
done
"$BIN" merge "$T/em/all" 2>"$T/err" || bad "merge embed: $(cat "$T/err")"
"$BIN" merge "$T/em/all.jsonl" 2>"$T/err" || bad "merge embed jsonl: $(cat "$T/err")"
same "embed .npy, sharded + merged" "$T/em/ref.npy" "$T/em/all.npy"
same "embed JSONL, sharded + merged" "$T/em/ref.jsonl" "$T/em/all.jsonl"
KVL_TEST_KILL_AFTER=2 "${B[@]}" -o "$T/em/k" --parallel 4 >/dev/null 2>&1
head -c 7 "$T/em/ref.npy" >>"$T/em/k.npy" # a torn row
"${B[@]}" -o "$T/em/k" --parallel 4 2>"$T/err" || bad "embed resume: $(cat "$T/err")"
grep -q "8 of 23 texts already in" "$T/err" && grep -q "dropped an unfinished row" "$T/err" && ok || bad "embed resume notes: $(cat "$T/err")"
same "embed .npy, killed + resumed" "$T/em/ref.npy" "$T/em/k.npy"
KVL_TEST_KILL_AFTER=1 "${B[@]}" -o "$T/em/k.jsonl" --output-format jsonl --parallel 5 >/dev/null 2>&1
"${B[@]}" -o "$T/em/k.jsonl" --output-format jsonl --parallel 5 2>"$T/err" || bad "embed jsonl resume: $(cat "$T/err")"
same "embed JSONL, killed + resumed" "$T/em/ref.jsonl" "$T/em/k.jsonl"
cp "$T/em/k.npy" "$T/em/k.orig"
expect 1 "another run's output .written with other arguments" -- "${B[@]}" -o "$T/em/k" --pool last
same "embed: another run's array untouched" "$T/em/k.orig" "$T/em/k.npy"

# --- embed-eval's embedding step: kvlens embed per source, sharded and merged, then embed-eval --vectors; the
# classification results equal embed-eval's own embedding (all but the timing and the representation's description)
awk 'BEGIN { s = 7; for (i = 0; i < 30; i++) { lab = i % 2; printf "{\"text\": ["; for (j = 0; j < 6; j++) {
    s = (s * 1103515245 + 12345) % 2147483648; printf "%s%d", j ? "," : "", 3 + lab * 150 + int(s / 65536) % 8 }
    printf "], \"label\": \"%s\"}\n", lab ? "high" : "low" } }' >"$T/lab.jsonl"
"$BIN" embed-eval -m "$T/q3.gguf" --data "$T/lab.jsonl" --layers last:2 --seeds 3 --json $K >"$T/ev.json" 2>"$T/err" ||
    bad "embed-eval: $(cat "$T/err")"
vec=""
for src in kv hidden random; do
    for i in 0 1 2; do
        "$BIN" embed -m "$T/q3.gguf" --input "$T/lab.jsonl" --format jsonl --source $src --layers last:2 $K \
            -o "$T/em/$src" --shard $i/3 2>"$T/err" || bad "embed --source $src shard $i: $(cat "$T/err")"
    done
    "$BIN" merge "$T/em/$src" 2>"$T/err" || bad "merge embed $src: $(cat "$T/err")"
    vec="$vec${vec:+,}$src=$T/em/$src.npy"
done
"$BIN" embed-eval --vectors "$vec" --data "$T/lab.jsonl" --seeds 3 --json >"$T/ev2.json" 2>"$T/err" || bad "embed-eval --vectors: $(cat "$T/err")"
results() { grep -o '"results": \[.*\]' "$1"; }
[ -n "$(results "$T/ev.json")" ] && [ "$(results "$T/ev.json")" = "$(results "$T/ev2.json")" ] && ok ||
    bad "embed-eval on merged shard vectors: $(results "$T/ev2.json") vs $(results "$T/ev.json")"
expect 2 "--layers belongs to the embedding step" -- "$BIN" embed-eval --vectors "$vec" --data "$T/lab.jsonl" --layers last:2
head -n 4 "$T/lab.jsonl" >"$T/lab4.jsonl"
expect 1 "expected float32 .4, D. .one row per line" -- "$BIN" embed-eval --vectors "kv=$T/em/kv.npy" --data "$T/lab4.jsonl"

# --- score --data (teacher-forced scores of given answers, one row at a time)
awk -F'"question": "' 'NR <= '"$rows"' { split($2, q, "\""); printf "{\"prompt\": \"%s\", \"answer\": \"The answer is %d.\"}\n", q[1], NR * 7 }' \
    "$T/d.jsonl" >"$T/qa.jsonl"
C=("$BIN" score -m "$MODEL" --data "$T/qa.jsonl" --chat --json $K)
mkdir -p "$T/sc"
"${C[@]}" --out "$T/sc/ref.jsonl" >"$T/sc.sum" 2>"$T/err" || bad "score --data: $(cat "$T/err")"
[ "$(grep -c '"scores": {"kv_coe"' "$T/sc/ref.jsonl")" -eq "$rows" ] && ok || bad "score --data rows: $(head -c 300 "$T/sc/ref.jsonl")"
# row 0 equals kvlens score on the same prompt and answer
q0=$(head -n 1 "$T/d.jsonl" | sed 's/.*"question": "//; s/".*//')
"$BIN" score -m "$MODEL" -p "$q0" --answer "The answer is 7." --chat --json $K >"$T/one.json" 2>"$T/err" || bad "score: $(cat "$T/err")"
[ "$(head -n 1 "$T/sc/ref.jsonl" | sed 's/.*"scores": //; s/}$//')" = "$(cat "$T/one.json")" ] && ok ||
    bad "score --data row 0 differs from kvlens score: $(head -n 1 "$T/sc/ref.jsonl" | head -c 300) vs $(head -c 300 "$T/one.json")"
for i in 0 1 2; do "${C[@]}" --out "$T/sc/all.jsonl" --shard $i/3 >/dev/null 2>"$T/err" || bad "score shard $i: $(cat "$T/err")"; done
"$BIN" merge "$T/sc/all.jsonl" >"$T/sc3.sum" 2>"$T/err" || bad "merge score: $(cat "$T/err")"
same "score rows, sharded + merged" "$T/sc/ref.jsonl" "$T/sc/all.jsonl"
same "score summary, sharded + merged" "$T/sc.sum" "$T/sc3.sum"
KVL_TEST_KILL_AFTER=2 "${C[@]}" --out "$T/sc/k.jsonl" >/dev/null 2>&1
printf '{"index": 2, "prompt_tok' >>"$T/sc/k.jsonl"
"${C[@]}" --out "$T/sc/k.jsonl" >"$T/sck.sum" 2>"$T/err" || bad "score resume: $(cat "$T/err")"
grep -q "2 of $rows rows already in" "$T/err" && ok || bad "score resume note: $(cat "$T/err")"
same "score rows, killed + resumed" "$T/sc/ref.jsonl" "$T/sc/k.jsonl"
expect 2 "--prompt-field, --answer-field and --shard apply to --data" -- "$BIN" score -m "$MODEL" -p x --answer y --shard 0/2
printf '{"prompt": "a"}\n' >"$T/noans.jsonl"
expect 1 'noans.jsonl:1: no "answer"' -- "$BIN" score -m "$MODEL" --data "$T/noans.jsonl" --out "$T/sc/x.jsonl"

echo "cli_shard: $checks checks, $fails failed ($rows rows per command; sharded+merged and killed+resumed compared with the unsharded run)"
[ $fails -eq 0 ]
