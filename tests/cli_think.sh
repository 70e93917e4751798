#!/usr/bin/env bash
# Adaptive thinking end to end on the shipped model (models/kvlens-think-2-q8_0.gguf, skipped when absent): kvlens
# label on a small slice of data/train.jsonl (and resuming: an interrupted file continues, an incomplete last line
# is dropped), probe train and eval, solve and run with --think auto1 / auto2 (the per-problem record: decision,
# trajectory, switch, every token counted), and bad input: labels with unknown fields, a probe for another model,
# a damaged probe, a model without a tokenizer. One thread: the model is tiny and the machine is shared.
set -u
BIN=${KVL_BIN:-build/kvlens}
SRC=${KVL_SRC:-.}
MODEL=${KVL_THINK_MODEL:-$SRC/models/kvlens-think-2-q8_0.gguf}
[ -f "$MODEL" ] || { echo "SKIP: no $MODEL"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
. "$(dirname "$0")/testlib.sh" || exit 1
K="-t 1"
# A sanitizer build (the binary links libasan) is tens of times slower: it labels the shortest training problems
# (one step each) so that every path still runs; the release build takes the first rows of the file as they come.
TRAIN=$SRC/data/train.jsonl
if ldd "$BIN" 2>/dev/null | grep -q libasan; then
    TRAIN=$T/train1.jsonl
    grep '"level": 1, "tier": "easy"' "$SRC/data/train.jsonl" | head -n 10 >"$TRAIN"
fi

# Labels: 6 problems, then 10 (the first 6 are skipped), then a damaged last line is dropped and redone.
"$BIN" label -m "$MODEL" --data "$TRAIN" --limit 6 --short-bound 16 -o "$T/lab.jsonl" $K >"$T/l1" 2>/dev/null
expect_eq "label rc" $? 0
expect_eq "6 labels" "$(wc -l <"$T/lab.jsonl")" 6
"$BIN" label -m "$MODEL" --data "$TRAIN" --limit 10 --short-bound 16 -o "$T/lab.jsonl" $K >"$T/l2" 2>"$T/l2e"
expect_eq "10 labels" "$(wc -l <"$T/lab.jsonl")" 10
grep -q "6 of 10 problems already labelled" "$T/l2e" && ok || bad "resume note: $(cat "$T/l2e")"
grep -q "(4 new" "$T/l2" && ok || bad "resume: $(head -1 "$T/l2")"
expect_eq "indices once each" "$(grep -o '"index":[0-9]*' "$T/lab.jsonl" | sort -u | wc -l)" 10
head -c -40 "$T/lab.jsonl" >"$T/cut.jsonl" # the last line loses its end: an interrupted write
"$BIN" label -m "$MODEL" --data "$TRAIN" --limit 10 --short-bound 16 -o "$T/cut.jsonl" $K >/dev/null 2>"$T/ce"
grep -q "dropped an incomplete last line" "$T/ce" && ok || bad "incomplete line: $(cat "$T/ce")"
cmp -s "$T/cut.jsonl" "$T/lab.jsonl" && ok || bad "the redone line differs from the original"
# The same 10 labels one problem at a time (the runs above decode several at once, the slow answer copying the fast
# one's prefix): identical files.
"$BIN" label -m "$MODEL" --data "$TRAIN" --limit 10 --short-bound 16 -o "$T/lab1.jsonl" $K \
    --parallel 1 >/dev/null 2>&1
cmp -s "$T/lab1.jsonl" "$T/lab.jsonl" && ok || bad "labels with --parallel 1 differ: $(diff "$T/lab1.jsonl" "$T/lab.jsonl" | head -4)"
# A file that is not a labels file is refused and left exactly as it was (no truncation, even of a last line
# without a newline), and so is one holding a NUL byte.
printf 'my notes\nnot json, no newline at the end' >"$T/notes.txt"
cp "$T/notes.txt" "$T/notes.orig"
expect 1 "notes.txt:1" -- "$BIN" label -m "$MODEL" --data "$TRAIN" --limit 2 -o "$T/notes.txt" $K
cmp -s "$T/notes.txt" "$T/notes.orig" && ok || bad "label changed a file that is not a labels file"
printf '{"question": "x", "label": 0}\n\0\n' >"$T/nul.jsonl"
cp "$T/nul.jsonl" "$T/nul.orig"
expect 1 "NUL byte" -- "$BIN" label -m "$MODEL" --data "$TRAIN" --limit 2 -o "$T/nul.jsonl" $K
cmp -s "$T/nul.jsonl" "$T/nul.orig" && ok || bad "label changed a file holding a NUL byte"
# every label follows from its outcomes (the parser checks it), and the distribution adds up
n=$(awk '/^label /{s += $3} END {print s}' "$T/l2")
expect_eq "distribution total" "$n" 10
expect 1 "other arguments: '--short-bound 16' there, '--short-bound 99' here" -- "$BIN" label -m "$MODEL" --data "$TRAIN" --limit 10 --short-bound 99 -o "$T/lab.jsonl" $K
expect 1 "another data file" -- "$BIN" label -m "$MODEL" --data "$SRC/data/easy.jsonl" --limit 10 --short-bound 16 -o "$T/lab.jsonl" $K

# Probe: train (both views), eval.
"$BIN" probe train -m "$MODEL" --labels "$T/lab.jsonl" --window 16 --layers last:2 --hidden 32 --epochs 20 \
    --val 0.2 -o "$T/p.bin" $K >"$T/pt" 2>/dev/null
expect_eq "probe train rc" $? 0
grep -q "rows       16 train, 4 validation (10 questions, views both)" "$T/pt" && ok || bad "train summary: $(cat "$T/pt")"
head -c 8 "$T/p.bin" | grep -q KVLPROBE && ok || bad "probe magic"
"$BIN" probe eval -m "$MODEL" --labels "$T/lab.jsonl" --probe "$T/p.bin" --json --scores "$T/sc.jsonl" $K >"$T/pe" 2>/dev/null
expect_eq "probe eval rc" $? 0
grep -q '"template": {"n": 10' "$T/pe" && grep -q '"both": {"n": 20' "$T/pe" && ok || bad "eval: $(cat "$T/pe")"
expect_eq "score rows" "$(wc -l <"$T/sc.jsonl")" 20

# Controllers in solve: the record of every problem, every token counted.
for mode in auto1 auto2; do
    every=""; [ $mode = auto2 ] && every="--every 2" # --every applies to the two-step controller only
    "$BIN" solve -m "$MODEL" --data "$SRC/data/easy.jsonl" --limit 6 --think $mode --probe "$T/p.bin" $every \
        --max-tokens 200 --out "$T/$mode.jsonl" --json $K >"$T/$mode.sum" 2>/dev/null
    expect_eq "solve $mode rc" $? 0
    expect_eq "solve $mode rows" "$(grep -c '"think": {"initial": "[a-z]*", "initial_score": [-0-9.]*' "$T/$mode.jsonl")" 6
    grep -q '"initial_slow": [0-9]*, "switches": [0-9]*' "$T/$mode.sum" && ok || bad "$mode summary: $(cat "$T/$mode.sum")"
    # tokens = sampled + inserted on every line
    bad_lines=$(sed -E 's/.*"tokens": ([0-9]+).*"sampled": ([0-9]+), "inserted": ([0-9]+).*/\1 \2 \3/' "$T/$mode.jsonl" |
        awk '$1 != $2 + $3' | wc -l)
    expect_eq "$mode: tokens = sampled + inserted" "$bad_lines" 0
done
expect_eq "auto1: no trajectory" "$(grep -c '"scores": \[\]' "$T/auto1.jsonl")" 6
# auto2 with --every 2: trajectory positions 0, 2, 4, ...
grep -o '"scores": \[\[0, [-0-9.]*\], \[2, ' "$T/auto2.jsonl" | head -1 | grep -q . && ok || bad "auto2 trajectory: $(head -c 600 "$T/auto2.jsonl")"

# run: one-shot, JSON
"$BIN" run -m "$MODEL" -p "Mia has 4 apples and buys 3 more. How many apples does she have?" --think auto2 \
    --probe "$T/p.bin" -n 120 --json $K >"$T/run.json" 2>/dev/null
expect_eq "run rc" $? 0
grep -q '"think": {"initial"' "$T/run.json" && ok || bad "run json: $(cat "$T/run.json")"

# Bad input.
printf '{"question": "x", "label": 0, "lable": 1}\n' >"$T/badlab.jsonl"
expect 1 'badlab.jsonl:1: unknown field "lable"' -- "$BIN" probe train -m "$MODEL" --labels "$T/badlab.jsonl" -o "$T/x.bin" $K
printf '{"question": "x", "label": 60}\n' >"$T/badlab2.jsonl"
expect 1 "label 60 is not one of 0, 25, 75, 100" -- "$BIN" probe eval -m "$MODEL" --labels "$T/badlab2.jsonl" --probe "$T/p.bin" $K
sed 's/"n_layer":10/"n_layer":11/' "$T/p.bin" >"$T/other.bin" # the same bytes but for an 11-layer model
expect 1 "the probe was trained for qwen3 .*11 layers" -- "$BIN" solve -m "$MODEL" --data "$SRC/data/easy.jsonl" --limit 1 --think auto1 --probe "$T/other.bin" $K
head -c 300 "$T/p.bin" >"$T/short.bin"
expect 1 "short.bin: " -- "$BIN" run -m "$MODEL" -p "hi" --think auto1 --probe "$T/short.bin" $K
expect 2 "go together" -- "$BIN" solve -m "$MODEL" --data "$SRC/data/easy.jsonl" --think auto2
expect 2 "--think takes" -- "$BIN" run -m "$MODEL" -p "hi" --think auto3 --probe "$T/p.bin"
"$BIN" convert "$SRC/tests/fixtures/qwen3/hf" "$T/novocab.gguf" --no-vocab --type f32 >/dev/null 2>&1
expect 1 "tokenizer" -- "$BIN" label -m "$T/novocab.gguf" --data "$TRAIN" --limit 1 -o "$T/nl.jsonl"
expect 1 "tokenizer" -- "$BIN" run -m "$T/novocab.gguf" -p "hi" --think auto1 --probe "$T/p.bin"

echo "cli_think: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
