#!/usr/bin/env bash
# kvlens bench runs on a file and on a random shape and prints the JSON fields people script against.
# (No timing is asserted: only that the figures are present and positive.)
set -u
BIN=${KVL_BIN:-build/kvlens}
SRC=${KVL_SRC:-.}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
"$BIN" convert "$SRC/tests/fixtures/llama/hf" "$T/m.gguf" --no-vocab --type q8_0 >/dev/null 2>&1 || { echo "convert failed"; exit 1; }
check() { # file: all keys present with positive values
  for k in pp_tok_s tg_tok_s tg_bandwidth_fraction pp_flop_fraction bandwidth_gbs peak_gflops; do
    grep -qE "\"$k\": [0-9.]*[1-9][0-9.]*(e[-+]?[0-9]+)?[,}]" "$1" || { echo "FAIL: $k missing or not positive in $(cat "$1")"; fail=1; }
  done
}
"$BIN" bench -m "$T/m.gguf" -p 32 -n 8 -r 1 -t 2 --json >"$T/a.json" 2>"$T/err" || { echo "FAIL: bench -m"; cat "$T/err"; fail=1; }
check "$T/a.json"
"$BIN" bench --shape qwen3-0.6b --type q4_K -p 4 -n 2 -r 1 --json >"$T/b.json" 2>"$T/err" || { echo "FAIL: bench --shape"; cat "$T/err"; fail=1; }
check "$T/b.json"
grep -q '"type": "q4_K"' "$T/b.json" || { echo "FAIL: type"; fail=1; }
"$BIN" bench --shape nosuch -r 1 >/dev/null 2>"$T/err"; [ $? -eq 1 ] && grep -q "unknown shape" "$T/err" || { echo "FAIL: unknown shape"; fail=1; }
"$BIN" bench --shape qwen3-0.6b --type q5_K >/dev/null 2>"$T/err"; [ $? -eq 2 ] || { echo "FAIL: unknown type"; fail=1; }
# --batch: one valid JSON object per value with the batched fields; bad values refused with exit status 2
"$BIN" bench -m "$T/m.gguf" --batch 1,3 -p 8 -n 2 -r 1 -t 2 --json >"$T/c.json" 2>"$T/err" || { echo "FAIL: bench --batch"; cat "$T/err"; fail=1; }
python3 - "$T/c.json" <<'PY' || fail=1
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
ok = len(lines) == 2
for l, b in zip(lines, (1, 3)):
    d = json.loads(l)
    ok &= d["batch"] == b and d["n_prompt"] == 8 and d["n_gen"] == 2
    for k in ("pp_tok_s", "tg_tok_s", "tg_tok_s_per_seq", "pp_flop_fraction", "tg_bandwidth_fraction", "bandwidth_gbs",
              "peak_gflops"):
        ok &= isinstance(d.get(k), (int, float)) and d[k] > 0
if not ok:
    print("FAIL: --batch JSON", open(sys.argv[1]).read())
    sys.exit(1)
PY
"$BIN" bench -m "$T/m.gguf" --batch 2 -p 4 -n 2 -r 1 -t 1 >"$T/d.txt" 2>"$T/err" && grep -qE '^2 +[0-9.]+' "$T/d.txt" || { echo "FAIL: --batch table"; cat "$T/d.txt" "$T/err"; fail=1; }
for bad in 0 -1 x 4,,8 257 1,2, ""; do
  "$BIN" bench -m "$T/m.gguf" --batch "$bad" -r 1 >/dev/null 2>"$T/err"; rc=$?
  [ $rc -eq 2 ] && grep -q "bad --batch" "$T/err" || { echo "FAIL: --batch '$bad' gave $rc: $(cat "$T/err")"; fail=1; }
done
"$BIN" bench -m "$T/m.gguf" --batch >/dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL: --batch without a value"; fail=1; }
[ $fail -eq 0 ] && echo "cli_bench: 10 passed, 0 failed" || echo "cli_bench: failed"
exit $fail
