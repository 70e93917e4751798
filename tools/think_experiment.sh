#!/usr/bin/env bash
# The paper's Table 3 (adaptive thinking) on the shipped model, on both benchmarks: difficulty labels on training
# problems (with the answers' token traces), probes for three (window, layers) configurations trained on the
# prompts and on windows along the traces, then on data/easy.jsonl and data/hard.jsonl: fast-only, slow-only,
# one-step, two-step (every token counted), a --delta sweep and the configurations under both controllers;
# tools/think_report.py writes the tables and the SVG of each benchmark.
#
# Everything is resumable: labels continue where they stopped, finished runs are kept. Small results go to
# results/think/ (one folder per benchmark); labels, probes and per-problem outputs to $WORK. The main probe is
# copied to models/$NAME-probe.bin.
#
#   N_TRAIN  training problems to label (default 2000 of data/train.jsonl)
#   N_TEST   problems of each benchmark (default 400)
#   BOUND    --short-bound for the labels (default 55: the model's median fast answer on training problems)
#   WINDOWS  --trace-windows of probe training (default 16)
#   MAIN     the (window:layers) configuration of Table 3 (default 32:4)
#   THREADS  threads per command (default 2)
#   TEST_LABELS  1 (default): also label each benchmark slice and evaluate the probes on it (a fast and a slow
#            answer per problem again); 0: skip that
#   REUSE    a folder holding <bench>_fast and <bench>_slow solve runs of the same slice (tools/model_tables.sh's
#            work folder): used instead of solving them again
set -eu
BIN=${BIN:-build/kvlens}
NAME=${NAME:-kvlens-think-2}
MODEL=${MODEL:-models/$NAME-q8_0.gguf}
N_TRAIN=${N_TRAIN:-2000}
N_TEST=${N_TEST:-400}
BOUND=${BOUND:-55}
WINDOWS=${WINDOWS:-16}
MAIN=${MAIN:-32:4}
T=${THREADS:-2}
MAXTOK=${MAXTOK:-1600}
WORK=${WORK:-build/think-exp}
OUT=${OUT:-results/think}
BENCHES=${BENCHES:-easy hard}
# the paper's (32,8), (64,4), (128,2) for 36 layers: windows kept, layers halved as the window doubles
CONFIGS=${CONFIGS:-32:4 64:2 128:1}
mkdir -p "$WORK" "$OUT"

echo "== labels"
"$BIN" label -m "$MODEL" --data data/train.jsonl --limit "$N_TRAIN" --short-bound "$BOUND" --traces \
    --max-tokens "$MAXTOK" -o "$WORK/labels_train.jsonl" -t "$T" | tee "$OUT/labels_train.txt"

echo "== probes"
for cfg in $CONFIGS; do
    W=${cfg%:*} L=${cfg#*:}
    P=$WORK/probe_w${W}_l${L}.bin
    [ -f "$P" ] || "$BIN" probe train -m "$MODEL" --labels "$WORK/labels_train.jsonl" --window "$W" --layers "last:$L" \
        --trace-windows "$WINDOWS" -o "$P" -t "$T" | tee "$OUT/probe_w${W}_l${L}.train.txt"
done
MW=${MAIN%:*} ML=${MAIN#*:}
mkdir -p models
cp "$WORK/probe_w${MW}_l${ML}.bin" "models/$NAME-probe.bin"

for B in $BENCHES; do
    BW=$WORK/$B BO=$OUT/$B
    mkdir -p "$BW" "$BO"
    head -n "$N_TEST" "data/$B.jsonl" >"$BW/test.jsonl"
    if [ "${TEST_LABELS:-1}" = 1 ]; then
    echo "== $B: labels of the test slice (probe evaluation only)"
    "$BIN" label -m "$MODEL" --data "$BW/test.jsonl" --short-bound "$BOUND" --traces --max-tokens "$MAXTOK" \
        -o "$BW/labels_test.jsonl" -t "$T" | tee "$BO/labels_test.txt"
    for cfg in $CONFIGS; do
        W=${cfg%:*} L=${cfg#*:}
        "$BIN" probe eval -m "$MODEL" --labels "$BW/labels_test.jsonl" --probe "$WORK/probe_w${W}_l${L}.bin" \
            --trace-windows "$WINDOWS" --json -t "$T" >"$BO/probe_w${W}_l${L}.eval.json"
        cp "$OUT/probe_w${W}_l${L}.train.txt" "$BO/" 2>/dev/null || true
    done
    fi
    for M in fast slow; do # the fixed modes from another run of the same slice
        R=${REUSE:-}/${B}_$M
        if [ -n "${REUSE:-}" ] && [ -s "$R.sum.json" ] && [ ! -s "$BW/$M.sum.json" ] && cmp -s "$BW/test.jsonl" "$REUSE/$B.jsonl"; then
            cp "$R.jsonl" "$BW/$M.jsonl" && cp "$R.sum.json" "$BW/$M.sum.json"
        fi
    done
    echo "== $B: solve runs"
    run() { # name, solve options...
        local name=$1
        shift
        [ -s "$BW/$name.sum.json" ] && return 0
        echo "-- $B $name: $*"
        "$BIN" solve -m "$MODEL" --data "$BW/test.jsonl" --max-tokens "$MAXTOK" --json --out "$BW/$name.jsonl" \
            -t "$T" "$@" >"$BW/$name.sum.json.part" && mv "$BW/$name.sum.json.part" "$BW/$name.sum.json"
        cat "$BW/$name.sum.json"
    }
    # a rerun starts from clean outputs of unfinished runs (a finished one is kept above)
    for f in "$BW"/*.sum.json.part; do [ -e "$f" ] && rm -f "${f%.sum.json.part}.jsonl" "${f%.sum.json.part}.jsonl.kvlens-run.json" "$f"; done
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
    cp "$BW"/*.sum.json "$BO/" 2>/dev/null || true
    MODEL_NAME=$NAME BENCH=$B python3 tools/think_report.py "$BW" "$BO" "$MAIN"
done
