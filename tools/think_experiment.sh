#!/usr/bin/env bash
# The adaptive-thinking experiment of issue 7 on the shipped model: difficulty labels on training problems, probes
# for three (window, layers) configurations, then the paper's Table 3 on a slice of the test file (fast-only,
# slow-only, one-step, two-step: accuracy, mean generated tokens, wall time, reduction against slow-only), a --delta
# sweep and the configurations under both controllers; tools/think_report.py writes the tables and the SVG.
#
# Everything is resumable: labels continue where they stopped, finished runs are kept. Small results go to
# results/think/; labels, probes and per-problem outputs to $WORK. The main probe is copied to
# models/kvlens-think-9m-probe.bin.
#
#   N_TRAIN  training problems to label (default 3000 of data/train.jsonl)
#   N_TEST   test problems (default 400: the first 400 of data/test.jsonl, 50 per level)
#   BOUND    --short-bound for the labels (default 16: the model's median fast answer is 16-17 tokens; the paper's
#            128 for Qwen3-8B sits at ~0.6 of its mean fast length of ~211)
#   MAIN     the (window:layers) configuration of Table 3 (default 32:4)
#   THREADS  threads per command (default 1)
set -eu
BIN=${BIN:-build/kvlens}
MODEL=${MODEL:-models/kvlens-think-9m-q8_0.gguf}
N_TRAIN=${N_TRAIN:-3000}
N_TEST=${N_TEST:-400}
BOUND=${BOUND:-16}
MAIN=${MAIN:-32:4}
T=${THREADS:-1}
WORK=${WORK:-build/think-exp}
OUT=${OUT:-results/think}
CONFIGS="32:4 64:2 128:1" # the paper's (32,8), (64,4), (128,2) for 36 layers, halved for this 8-layer model
mkdir -p "$WORK" "$OUT"
head -n "$N_TEST" data/test.jsonl >"$WORK/test.jsonl"

echo "== labels"
"$BIN" label -m "$MODEL" --data data/train.jsonl --limit "$N_TRAIN" --short-bound "$BOUND" -o "$WORK/labels_train.jsonl" -t "$T" | tee "$OUT/labels_train.txt"
"$BIN" label -m "$MODEL" --data "$WORK/test.jsonl" --short-bound "$BOUND" -o "$WORK/labels_test.jsonl" -t "$T" | tee "$OUT/labels_test.txt"

echo "== probes"
for cfg in $CONFIGS; do
    W=${cfg%:*} L=${cfg#*:}
    P=$WORK/probe_w${W}_l${L}.bin
    [ -f "$P" ] || "$BIN" probe train -m "$MODEL" --labels "$WORK/labels_train.jsonl" --window "$W" --layers "last:$L" \
        -o "$P" -t "$T" | tee "$OUT/probe_w${W}_l${L}.train.txt"
    "$BIN" probe eval -m "$MODEL" --labels "$WORK/labels_test.jsonl" --probe "$P" --json -t "$T" >"$OUT/probe_w${W}_l${L}.eval.json"
    cat "$OUT/probe_w${W}_l${L}.eval.json"
done
MW=${MAIN%:*} ML=${MAIN#*:}
mkdir -p models
cp "$WORK/probe_w${MW}_l${ML}.bin" models/kvlens-think-9m-probe.bin

echo "== solve runs"
run() { # name, solve options...
    local name=$1
    shift
    [ -s "$WORK/$name.sum.json" ] && return 0
    echo "-- $name: $*"
    "$BIN" solve -m "$MODEL" --data "$WORK/test.jsonl" --max-tokens 1024 --json --out "$WORK/$name.jsonl" -t "$T" "$@" \
        >"$WORK/$name.sum.json.part" && mv "$WORK/$name.sum.json.part" "$WORK/$name.sum.json"
    cat "$WORK/$name.sum.json"
}
run fast --think fast
run slow --think slow
for cfg in $CONFIGS; do
    W=${cfg%:*} L=${cfg#*:}
    run "auto1_w${W}_l${L}" --think auto1 --probe "$WORK/probe_w${W}_l${L}.bin"
    run "auto2_w${W}_l${L}_d20" --think auto2 --probe "$WORK/probe_w${W}_l${L}.bin" --delta 20
done
for d in 10 30 40; do
    run "auto2_w${MW}_l${ML}_d$d" --think auto2 --probe "$WORK/probe_w${MW}_l${ML}.bin" --delta "$d"
done
cp "$WORK"/*.sum.json "$OUT/" 2>/dev/null || true
python3 tools/think_report.py "$WORK" "$OUT" "$MAIN"
