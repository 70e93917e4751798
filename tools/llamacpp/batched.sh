#!/bin/bash
# Batched decoding throughput, kvlens against llama.cpp v0.5.0 (the issue's peer): llama-batched-bench
# -npp 128 -ntg 128 -npl B and `kvlens bench --batch B -p 128 -n 128` on the same Qwen3-0.6B-shaped GGUF files,
# same threads, alternating engine, type and B within each round. Both report aggregate tokens/s over the B
# sequences: pp = B prompts of 128 tokens evaluated together, tg = 128 steps of one new token per sequence
# (llama.cpp with its defaults: f16 KV cache, flash attention auto; kvlens with its default f32 cache unless
# KVL_ARGS says otherwise).
#
#   tools/llamacpp/batched.sh [WORK_DIR]    (run.sh calls it after its own speed runs; it needs what run.sh made in
#                                            WORK_DIR: llama.cpp/build and q06-q8_0.gguf, q06-bf16.gguf)
# env: ROUNDS (default $BENCH or 3), BATCHES (default "1 4 16 64"), TYPES (default "q8_0 bf16"), THREADS (2),
#      KVLENS (default build/kvlens), KVL_ARGS (extra `kvlens bench` options, e.g. --cache-f16).
# Prints every measurement as it comes (also in WORK_DIR/batched.txt), then medians and kvlens / llama.cpp ratios.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
work=${1:-/tmp/kvl-llamacpp}
rounds=${ROUNDS:-${BENCH:-3}}
batches=${BATCHES:-1 4 16 64}
types=${TYPES:-q8_0 bf16}
threads=${THREADS:-2}
kvlens=${KVLENS:-$src/build/kvlens}
lc=$work/llama.cpp
[ -x "$kvlens" ] || { echo "batched.sh: no $kvlens (build kvlens first)"; exit 2; }
[ -d "$lc/build" ] || { echo "batched.sh: no llama.cpp build in $lc (run tools/llamacpp/run.sh first)"; exit 2; }
# llama-batched-bench next to run.sh's targets (an incremental build: the libraries are there already)
[ -x "$lc/build/bin/llama-batched-bench" ] || cmake --build "$lc/build" --target llama-batched-bench -j"$(nproc)" >/dev/null
for type in $types; do
    [ -f "$work/q06-$type.gguf" ] || { echo "batched.sh: no $work/q06-$type.gguf (run.sh makes it)"; exit 2; }
done
out=$work/batched.txt
: >"$out"
for r in $(seq "$rounds"); do
    for type in $types; do
        for B in $batches; do
            # one engine after the other for each (type, B); which goes first alternates with the round
            order="llama kvlens"
            [ $((r % 2)) = 0 ] && order="kvlens llama"
            for e in $order; do
                if [ "$e" = llama ]; then
                    "$lc/build/bin/llama-batched-bench" -m "$work/q06-$type.gguf" -t "$threads" -c $((B * 256)) \
                        -b 2048 -ub 512 -npp 128 -ntg 128 -npl "$B" --output-format jsonl 2>/dev/null |
                        python3 -c "import json,sys
for l in sys.stdin:
    if l.startswith('{'):
        d = json.loads(l); print('llama.cpp $type $B pp', round(d['speed_pp'], 2)); print('llama.cpp $type $B tg', round(d['speed_tg'], 2))"
                else
                    # shellcheck disable=SC2086
                    "$kvlens" bench -m "$work/q06-$type.gguf" -t "$threads" --batch "$B" -p 128 -n 128 -r 1 --json \
                        ${KVL_ARGS:-} | python3 -c "import json,sys
d = json.loads(sys.stdin.readline()); print('kvlens $type $B pp', d['pp_tok_s']); print('kvlens $type $B tg', d['tg_tok_s'])"
                fi
            done
        done
    done
done | tee "$out"
echo "batched decoding, medians over $rounds rounds (aggregate tok/s, Qwen3-0.6B shape, $threads threads, 128-token prompts, 128 generated tokens per sequence):"
python3 - "$out" "$types" "$batches" <<'PY'
import collections, statistics, sys
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    e, t, b, k, x = line.split()
    v[(e, t, int(b), k)].append(float(x))
print(f"  {'type':5} {'B':>3}  {'kvlens pp':>10} {'llama pp':>9} {'ratio':>5}  {'kvlens tg':>10} {'llama tg':>9} {'ratio':>5}")
for t in sys.argv[2].split():
    for b in map(int, sys.argv[3].split()):
        row = f"  {t:5} {b:3d}"
        for k in ("pp", "tg"):
            a, l = v[("kvlens", t, b, k)], v[("llama.cpp", t, b, k)]
            if a and l:
                ma, ml = statistics.median(a), statistics.median(l)
                row += f"  {ma:10.2f} {ml:9.2f} {ma / ml:5.2f}"
            else:
                row += f"  {'-':>10} {'-':>9} {'-':>5}"
        print(row)
PY
