#!/usr/bin/env bash
# The shipped model's behaviour and the paper's Tables 1 and 2 on it, with the C engine (issue 15):
#   behaviour  kvlens solve, greedy, fast and slow, on data/easy.jsonl, data/hard.jsonl (first N_TEST) and the
#              hand-written data/natural.jsonl (all): results/model/<bench>_<mode>.sum.json and per-tier/level
#              tables in results/model/behaviour.md (tools/model_report.py)
#   Table 2    kvlens selfeval on answer sets whose accuracy is between 30% and 80%: slow mode on the hard
#              benchmark, fast mode on data/dev.jsonl (the training mix): results/selfeval_<set>/
#   Table 1    kvlens embed-eval (KV against hidden-state and random embeddings) on classification tasks the
#              model's domain allows: the tier (easy/hard/extreme) and the story shape of generated questions,
#              the number of steps, and the topic of the hand-written set: results/embed/
# Resumable: finished runs are kept.
#   N_TEST   problems of each benchmark (default 300)      THREADS  threads per command (default 2)
set -eu
BIN=${BIN:-build/kvlens}
NAME=${NAME:-kvlens-think-2}
MODEL=${MODEL:-models/$NAME-q8_0.gguf}
N_TEST=${N_TEST:-300}
T=${THREADS:-2}
MAXTOK=${MAXTOK:-1600}
WORK=${WORK:-build/model-tables}
OUT=${OUT:-results}
mkdir -p "$WORK" "$OUT/model" "$OUT/embed"

echo "== behaviour"
head -n "$N_TEST" data/easy.jsonl >"$WORK/easy.jsonl"
head -n "$N_TEST" data/hard.jsonl >"$WORK/hard.jsonl"
cp data/natural.jsonl "$WORK/natural.jsonl"
for b in easy hard natural; do
    for mode in fast slow; do
        s=$WORK/${b}_$mode
        [ -s "$s.sum.json" ] || { "$BIN" solve -m "$MODEL" --data "$WORK/$b.jsonl" --think $mode --max-tokens "$MAXTOK" \
            --json --out "$s.jsonl" -t "$T" >"$s.sum.json.part" && mv "$s.sum.json.part" "$s.sum.json"; }
        cp "$s.sum.json" "$OUT/model/"
    done
done
python3 tools/model_report.py "$WORK" "$OUT/model"

echo "== Table 2 (self-evaluation)"
se() { # name data think
    [ -s "$OUT/selfeval_$1/summary.json" ] && return 0
    "$BIN" selfeval -m "$MODEL" --data "$2" --think "$3" --max-tokens "$MAXTOK" --out "$OUT/selfeval_$1" -t "$T"
}
se hard_slow "$WORK/hard.jsonl" slow
se dev_fast data/dev.jsonl fast

echo "== Table 1 (embeddings)"
python3 - "$WORK" <<'EOF'
import json, sys
work = sys.argv[1]
def rows(p):
    return [json.loads(l) for l in open(p) if l.strip()]
gen = rows("data/dev.jsonl") + rows("data/easy.jsonl")[:300] + rows("data/hard.jsonl")[:300]
def write(name, items):
    with open(f"{work}/emb_{name}.jsonl", "w") as f:
        for text, label in items:
            f.write(json.dumps({"text": text, "label": label}) + "\n")
write("tier", [(r["question"], r["tier"]) for r in gen])
write("shape", [(r["question"], r["shape"]) for r in gen])
write("steps", [(r["question"], "1-2" if r["level"] <= 2 else "3-4" if r["level"] <= 4 else "5+") for r in gen])
write("topic", [(r["question"], r["topic"]) for r in rows("data/natural.jsonl")])
EOF
for task in tier shape steps topic; do
    [ -s "$OUT/embed/$task.json" ] && continue
    "$BIN" embed-eval -m "$MODEL" --data "$WORK/emb_$task.jsonl" --seeds 5 --json -t "$T" >"$OUT/embed/$task.json.part"
    mv "$OUT/embed/$task.json.part" "$OUT/embed/$task.json"
done
python3 tools/model_report.py --embed "$OUT/embed"
