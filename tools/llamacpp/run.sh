#!/bin/bash
# kvlens against llama.cpp release v0.5.0 (the issue's peer) on this machine:
#  1. interchange, both ways:
#     a. llama.cpp runs the GGUF files `kvlens convert` writes from the transformers fixtures, and its logits are
#        compared with transformers' (tools/llamacpp/parity.c);
#     b. llama.cpp's own writer (llama-quantize: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_M) rewrites them, and kvlens runs them: its
#        logits are compared with llama.cpp's on the same file and with transformers';
#  2. speed (BENCH=N rounds, default 3; BENCH=0 skips): llama-bench and `kvlens bench -m` on the same Qwen3-0.6B-shaped
#     GGUF files (random weights, tools/make_shape_checkpoint.py; Q8_0 and BF16 by kvlens convert, Q4_K_M by
#     llama-quantize), alternating, 2 threads.
#
#   tools/llamacpp/run.sh [WORK_DIR]      (after `make`; needs npm, cmake, g++, and ../shared/tokenizers/qwen3 for 2)
#
# llama.cpp's source comes from the npm registry: node-llama-cpp 3.22.1 carries the v0.5.0 release as a git bundle.
# It is built natively (-march=native) with OpenMP, as the issue's peer figures were.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
work=${1:-/tmp/kvl-llamacpp}
rounds=${BENCH:-3}
kvlens=$src/build/kvlens
[ -x "$kvlens" ] || { echo "build kvlens first (make)"; exit 2; }
mkdir -p "$work"

# --- llama.cpp v0.5.0, native build with OpenMP
lc=$work/llama.cpp
if [ ! -x "$lc/build/bin/llama-bench" ] || [ ! -x "$lc/build/bin/llama-quantize" ]; then
    (cd "$here" && npm install --no-audit --no-fund --ignore-scripts >/dev/null)
    [ -d "$lc" ] || git clone -q "$here/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$lc"
    cmake -S "$lc" -B "$lc/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
    cmake --build "$lc/build" --target llama-bench llama-quantize llama -j"$(nproc)" >/dev/null
fi
libdir=$(dirname "$(find "$lc/build" -name 'libllama.so' | head -1)")
gcc -std=c11 -O2 -Wall -Wextra -I"$lc/include" -I"$lc/ggml/include" -I"$src/src" -I"$src/include" -I"$src/tests" \
    "$here/parity.c" "$src/build/libkvlens.a" -L"$libdir" -Wl,-rpath,"$libdir" -lllama -lm -o "$work/parity"

# --- 1. interchange: f32 files must match transformers to the parity bound of tests/test_parity.c and give the same
# greedy tokens; llama.cpp multiplies bf16 weights with activations rounded to bf16 and q8_0 weights with
# activations quantized to 8 bits (scales rounded to f16), hence looser bounds there (q8_0: test_parity's 1e-1)
# and greedy tokens that may part once a margin is small.
greedy_prompt() { # the fixture's prompt length for its greedy continuation
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['models'][sys.argv[2]]['prompt_for_greedy'])" \
        "$src/tests/fixtures/meta.json" "$1"
}
fail=0
for fx in llama qwen2 qwen3 qwen3_tied; do
    P=$(greedy_prompt "$fx")
    for t in f32:1e-4 bf16:2e-2 q8_0:1e-1; do
        type=${t%%:*} bound=${t#*:}
        "$kvlens" convert "$src/tests/fixtures/$fx/hf" "$work/$fx-$type.gguf" --no-vocab --type "$type" >/dev/null
        rc=0
        "$work/parity" "$src/tests/fixtures/$fx" "$work/$fx-$type.gguf" "$bound" "$P" || rc=$?
        [ $rc = 0 ] || { [ $rc = 3 ] && [ "$type" != f32 ]; } || fail=1
    done
done

# b. files written by llama.cpp, read by kvlens
relerr() { # relative error of float32 .npy $1 against $2 (max |a - b| / max |b|)
    python3 - "$1" "$2" <<'PY'
import array, ast, struct, sys
def load(p):
    d = open(p, "rb").read()
    n = struct.unpack("<H", d[8:10])[0]
    h = ast.literal_eval(d[10:10 + n].decode())
    assert h["descr"] == "<f4"
    return array.array("f", d[10 + n:])
a, b = load(sys.argv[1]), load(sys.argv[2])
assert len(a) == len(b)
print(f"{max(abs(x - y) for x, y in zip(a, b)) / max(abs(y) for y in b):.3g}")
PY
}
for fx in llama qwen2 qwen3 qwen3_tied; do
    P=$(greedy_prompt "$fx")
    ids=$(python3 -c "import array,struct,sys; d=open(sys.argv[1],'rb').read(); n=struct.unpack('<H',d[8:10])[0]; \
print(','.join(map(str, array.array('i', d[10+n:]))))" "$src/tests/fixtures/$fx/tokens.npy")
    for q in Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_M; do
        f=$work/$fx-llamacpp-$q.gguf
        "$lc/build/bin/llama-quantize" "$work/$fx-f32.gguf" "$f" $q >/dev/null 2>&1 || { echo "llama-quantize $q failed"; fail=1; continue; }
        "$work/parity" "$src/tests/fixtures/$fx" "$f" 1 "$P" "$work/lc-logits.npy" >/dev/null || true
        "$kvlens" dump -m "$f" --tokens "$ids" -o "$work/dump" >/dev/null || { echo "kvlens cannot run $f"; fail=1; continue; }
        echo "$f (written by llama.cpp): kvlens logits vs llama.cpp on the same file $(relerr "$work/dump/logits.npy" "$work/lc-logits.npy"), vs transformers $(relerr "$work/dump/logits.npy" "$src/tests/fixtures/$fx/logits.npy")"
    done
done
[ "$fail" = 0 ] && echo "interchange: both directions ran" || echo "interchange: FAILED (see above)"

# --- 2. speed, alternating the engines
[ "$rounds" -gt 0 ] || exit $fail
tok=$src/../shared/tokenizers/qwen3
[ -d "$tok" ] || { echo "no $tok: speed comparison skipped"; exit $fail; }
[ -f "$work/q06/model.safetensors" ] || python3 "$src/tools/make_shape_checkpoint.py" "$work/q06" "$tok" >/dev/null
for type in q8_0 bf16; do
    [ -f "$work/q06-$type.gguf" ] || "$kvlens" convert "$work/q06" "$work/q06-$type.gguf" --type $type >/dev/null
done
# the download most people run: Q4_K_M, made by llama.cpp's own quantizer
[ -f "$work/q06-q4_K_M.gguf" ] ||
    "$lc/build/bin/llama-quantize" "$work/q06-bf16.gguf" "$work/q06-q4_K_M.gguf" Q4_K_M >/dev/null 2>&1
for r in $(seq "$rounds"); do
    for type in q8_0 bf16 q4_K_M; do
        "$lc/build/bin/llama-bench" -m "$work/q06-$type.gguf" -t 2 -p 512 -n 128 -r 3 -o jsonl 2>/dev/null >"$work/lb.jsonl"
        "$kvlens" bench -m "$work/q06-$type.gguf" -t 2 -r 3 --json >"$work/kb.json"
        python3 - "$type" "$work/lb.jsonl" "$work/kb.json" <<'PY'
import json, sys
t = sys.argv[1]
for line in open(sys.argv[2]):
    d = json.loads(line)
    print("llama.cpp", t, "pp" if d["n_prompt"] else "tg", round(d["avg_ts"], 2))
d = json.load(open(sys.argv[3]))
print("kvlens", t, "pp", d["pp_tok_s"])
print("kvlens", t, "tg", d["tg_tok_s"])
PY
    done
done | tee "$work/speed.txt"
echo "medians over $rounds rounds (tok/s, Qwen3-0.6B shape, 2 threads):"
python3 - "$work/speed.txt" <<'PY'
import statistics, sys, collections
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    e, t, k, x = line.split()
    v[(t, k, e)].append(float(x))
for t in ("q8_0", "bf16", "q4_K_M"):
    for k in ("pp", "tg"):
        a, b = v[(t, k, "kvlens")], v[(t, k, "llama.cpp")]
        if a and b:
            print(f"  {t} {k}: kvlens {statistics.median(a):7.2f}  llama.cpp {statistics.median(b):7.2f}  "
                  f"ratio {statistics.median(a) / statistics.median(b):.2f}")
PY
KVLENS=$kvlens ROUNDS=$rounds "$here/batched.sh" "$work" || fail=1 # batched decoding (llama-batched-bench)
exit $fail
