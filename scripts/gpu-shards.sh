#!/usr/bin/env bash
# On the GPU machine, from a pack made by `scripts/gpu-test.sh pack REPO/.cuda-dev` (a folder in the repository's
# root, so that ../models and ../data are the repository's): test_cuda, then two shards of a slow-mode solve run
# sharing one GPU at once, merged, against one unsharded run on the same GPU (rows equal but for timing fields).
# Device call: carry [".cuda-dev"], command `OUT=$OUT bash .cuda-dev/gpu-shards.sh`.
set -u
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export KVL_SRC=$PWD/src KVL_PROGRESS=0
O=${OUT:-/tmp/out}; mkdir -p "$O"
timeout 120 ./test_cuda >"$O/test_cuda.log" 2>&1; echo "test_cuda rc=$?"
grep -E "q4_K|q6_K|worst|checks|CHECK" "$O/test_cuda.log" | head -20
M=../models/kvlens-think-2-q8_0.gguf
T=$(mktemp -d); head -48 ../data/easy.jsonl >"$T/d.jsonl"
S="./kvlens solve -m $M --data $T/d.jsonl --think slow --max-tokens 400 --backend cuda --gpu 0 --json"
timeout 120 $S --out "$T/one.jsonl" >"$O/one.json" 2>"$O/one.err"; echo "one rc=$?"
timeout 120 $S --shard 0/2 --out "$T/s.jsonl" >"$O/s0.json" 2>"$O/s0.err" & p0=$!
timeout 120 $S --shard 1/2 --out "$T/s.jsonl" >"$O/s1.json" 2>"$O/s1.err" & p1=$!
wait $p0; r0=$?; wait $p1; r1=$?; echo "shards rc=$r0,$r1"
timeout 60 ./kvlens merge "$T/s.jsonl" >"$O/merged.json" 2>"$O/merge.err"; echo "merge rc=$?"
cp "$T"/*.jsonl "$O/" 2>/dev/null
python3 - "$T/one.jsonl" "$T/s.jsonl" <<'PY'
import json, sys
drop = ("time", "tok_s", "prompt_tokens")
def clean(l):
    r = json.loads(l)
    return {k: v for k, v in r.items() if not any(d in k for d in drop)}
a = [clean(l) for l in open(sys.argv[1])]; b = [clean(l) for l in open(sys.argv[2])]
diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
print("rows one %d merged %d, differing rows %s" % (len(a), len(b), diff[:10]))
PY
head -c 600 "$O/one.json"; echo; head -c 600 "$O/merged.json"; echo; tail -2 "$O"/*.err
