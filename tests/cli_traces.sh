#!/usr/bin/env bash
# Traces for the thinking probe on the shipped model (models/kvlens-think-2-q8_0.gguf; skipped, 77, without it or
# without python3): kvlens label --traces on a few problems of data/train.jsonl, checked against independent paths:
#   - fast_ids / slow_ids decoded (kvlens detokenize) equal the outputs of kvlens solve --think fast / slow on the same
#     problems, and their lengths equal solve's token counts;
#   - slow_answer_at against a regular-expression search over decoded prefixes (the prefix of slow_answer_at tokens
#     states the reference after '=' or 'answer is' with the next character known, the one of one token fewer does
#     not; -1 exactly when the thinking never does or slow is wrong);
#   - probe train / eval --trace-windows 4: the window counts per kind recomputed from the labels file by the rule in
#     the help (computed here from the token ids, the tag ids from kvlens tokenize); --trace-windows 0 trains the same
#     probe as no option, byte for byte;
#   - corrupted traces refused with a message naming them (by probe train, and by label when resuming);
#   - a killed label --traces run continues to the same file; shards + merge equal the unsharded file.
set -u
BIN=${KVL_BIN:-build/kvlens}
SRC=${KVL_SRC:-.}
MODEL=${KVL_THINK_MODEL:-$SRC/models/kvlens-think-2-q8_0.gguf}
[ -f "$MODEL" ] || { echo "SKIP: no $MODEL"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
. "$(dirname "$0")/testlib.sh" || exit 1
K="-t 1"
N=8
head -n $N "$SRC/data/train.jsonl" >"$T/d.jsonl"
if ldd "$BIN" 2>/dev/null | grep -q libasan; then # a sanitizer build: four one-step problems, short answers
    N=4
    grep '"level": 1, "tier": "easy"' "$SRC/data/train.jsonl" | head -n $N >"$T/d.jsonl"
fi
L=("$BIN" label -m "$MODEL" --data "$T/d.jsonl" --short-bound 16 --traces $K)

"${L[@]}" -o "$T/lab.jsonl" >"$T/l.sum" 2>"$T/err"
expect_eq "label --traces rc" $? 0
expect_eq "rows" "$(grep -c '"fast_ids":\[' "$T/lab.jsonl")" $N
for mode in fast slow; do
    "$BIN" solve -m "$MODEL" --data "$T/d.jsonl" --think $mode --json --out "$T/$mode.jsonl" $K >/dev/null 2>"$T/err" ||
        bad "solve $mode: $(cat "$T/err")"
done

# Decode the traces, the slow thinking and its prefixes of slow_answer_at and one token fewer (kvlens detokenize),
# then compare in python.
mkdir -p "$T/dec"
open_id=$(printf '<think>' | "$BIN" tokenize -m "$MODEL" | tr -d '[] ')
close_id=$(printf '</think>' | "$BIN" tokenize -m "$MODEL" | tr -d '[] ')
python3 - "$T/lab.jsonl" "$T/dec" "$close_id" <<'PY' || bad "writing id lists"
import json, sys
close_id = int(sys.argv[3])
for i, line in enumerate(open(sys.argv[1])):
    r = json.loads(line)
    ids = r["slow_ids"]
    nt = ids.index(close_id) if close_id in ids else len(ids)
    lists = {"fast": r["fast_ids"], "fast-1": r["fast_ids"][:-1], "slow": ids, "slow-1": ids[:-1], "think": ids[:nt]}
    if r["slow_answer_at"] >= 0:
        lists["at"] = ids[: r["slow_answer_at"]]
        lists["at-1"] = ids[: r["slow_answer_at"] - 1]
    for name, l in lists.items():
        json.dump(l, open(f"{sys.argv[2]}/{i}.{name}.ids", "w"))
PY
for f in "$T"/dec/*.ids; do "$BIN" detokenize -m "$MODEL" <"$f" >"${f%.ids}.txt" || bad "detokenize $f"; done
res=$(python3 - "$T/lab.jsonl" "$T/dec" "$T/fast.jsonl" "$T/slow.jsonl" "$T/d.jsonl" "$open_id" "$close_id" <<'PY'
import json, math, os, re, sys
lab, dec, fast, slow, data = sys.argv[1:6]
open_id, close_id = int(sys.argv[6]), int(sys.argv[7])
rows = [json.loads(l) for l in open(lab)]
solved = {m: [json.loads(l) for l in open(p)] for m, p in (("fast", fast), ("slow", slow))}
refs = [json.loads(l)["answer"].split("####")[-1].strip().replace(",", "") for l in open(data)]
txt = lambda name: open(f"{dec}/{name}.txt", encoding="utf-8", errors="surrogateescape").read()
errors, n_at = [], 0
# a complete number after '=' or 'answer is', with the characters after it that decide where it ends
NUM = re.compile(r"(?:=|answer is) *(-?\d+(?:,\d{3})*(?:\.\d+)?)(?=[^\d.,]|\.[^\d]|,[^\d]|,\d{1,2}[^\d]|,\d{4})", re.I)
def states(text, ref, ended):
    if ended: text += "<"  # the end of the thinking decides the last number
    ref = float(ref)
    return any(abs(float(m.group(1).replace(",", "")) - ref) <= 1e-6 * max(1, abs(ref)) for m in NUM.finditer(text))
for i, r in enumerate(rows):
    for mode in ("fast", "slow"):
        s = solved[mode][r["index"]]
        ids = r[mode + "_ids"]
        if len(ids) != s["tokens"]: errors.append(f"row {i} {mode}: {len(ids)} ids, solve generated {s['tokens']}")
        text = txt(f"{i}.{mode}-1" if s["stop"] == "eog" else f"{i}.{mode}")  # solve's output leaves out the end token
        if text != s["output"]: errors.append(f"row {i} {mode}: decoded ids {text[-60:]!r} != solve's {s['output'][-60:]!r}")
    at, ids = r["slow_answer_at"], r["slow_ids"]
    ended = close_id in ids
    nt = ids.index(close_id) if ended else len(ids)
    ref = refs[r["index"]]
    if at >= 0:  # the prefix of `at` tokens states it, the one of at - 1 does not
        n_at += 1
        if not r["slow_correct"]: errors.append(f"row {i}: slow is wrong but slow_answer_at is {at}")
        if not (1 <= at <= nt and states(txt(f"{i}.at"), ref, ended and at == nt)):
            errors.append(f"row {i}: the first {at} slow tokens do not state {ref}: {txt(f'{i}.at')[-50:]!r}")
        if states(txt(f"{i}.at-1"), ref, False):
            errors.append(f"row {i}: the first {at - 1} slow tokens already state {ref}")
    elif r["slow_correct"] and states(txt(f"{i}.think"), ref, ended):
        errors.append(f"row {i}: slow_answer_at -1 but the thinking states {ref}")
# windows by the rule of the help, N = 4
W = 4
def ends(ids, stop):
    K = len(ids) - 1
    if stop in ids: K = min(K, ids.index(stop))
    if K < 1: return []
    step = -(-K // W)
    e = []
    for j in range(1, W + 1):
        if e and e[-1] >= K: break
        e.append(min(j * step, K))
    return e
nf = ns = na = 0
for r in rows:
    nf += len(ends(r["fast_ids"], open_id))
    for k in ends(r["slow_ids"], close_id):
        if r["slow_answer_at"] >= 0 and k >= r["slow_answer_at"]: na += 1
        else: ns += 1
print("ERR " + " | ".join(errors) if errors else "OK", n_at, nf + ns + na, nf, ns, na)
PY
)
read -r verdict n_at n_win n_fast n_slow n_ans <<<"$res"
[ "$verdict" = OK ] && ok || bad "traces vs solve / prefix search: $res"
[ "${n_at:-0}" -ge 3 ] && ok || bad "only ${n_at:-0} rows state the answer: the check of slow_answer_at is too weak"
grep -q "^traces     the slow thinking states the answer in $n_at of $N problems" "$T/l.sum" && ok ||
    bad "label summary: $(grep traces "$T/l.sum")"
echo "label --traces: $N rows, $n_at with slow_answer_at >= 0; windows by the rule: $n_win ($n_fast fast, $n_slow slow, $n_ans answered)"

# probe train / eval with windows: counts as the rule says; 0 = no option, byte for byte
B=("$BIN" probe train -m "$MODEL" --hidden 16 --epochs 5 $K)
P=("${B[@]}" --labels "$T/lab.jsonl")
"${P[@]}" --trace-windows 4 -o "$T/pw.bin" >"$T/pw" 2>"$T/err" || bad "probe train --trace-windows: $(cat "$T/err")"
grep -q "windows    $n_win from the traces of $N questions: $n_fast fast (the row's label), $n_slow slow before the answer (the row's label), $n_ans slow at or after it (label 0)" "$T/pw" &&
    ok || bad "window counts: $(grep windows "$T/pw") (want $n_win: $n_fast, $n_slow, $n_ans)"
"${P[@]}" -o "$T/p0.bin" >"$T/p0" 2>/dev/null
"${P[@]}" --trace-windows 0 -o "$T/p00.bin" >"$T/p00" 2>/dev/null
cmp -s "$T/p0.bin" "$T/p00.bin" && ok || bad "--trace-windows 0 trains another probe than no option"
expect_eq "--trace-windows 0: the same report" "$(grep -v '^time' "$T/p00")" "$(grep -v '^time' "$T/p0" | sed "s|p0.bin|p00.bin|")"
"$BIN" probe eval -m "$MODEL" --labels "$T/lab.jsonl" --probe "$T/pw.bin" --trace-windows 4 --json --scores "$T/sc.jsonl" $K \
    >"$T/pe" 2>"$T/err" || bad "probe eval --trace-windows: $(cat "$T/err")"
grep -q "\"windows\": {\"n\": $n_win," "$T/pe" && grep -q "\"both\": {\"n\": $((2 * N))," "$T/pe" && ok || bad "eval: $(cat "$T/pe")"
expect_eq "score rows" "$(wc -l <"$T/sc.jsonl")" $((2 * N + n_win))
expect_eq "window score rows" "$(grep -c '"at": ' "$T/sc.jsonl")" "$n_win"

# answers cut off by --max-tokens 12 (before the thinking computes anything, so their last number is not the answer):
# slow wrong, so slow_answer_at -1 (the rule), and traces without a close tag read
"${L[@]}" --max-tokens 12 -o "$T/cut.jsonl" >/dev/null 2>"$T/err" || bad "label --max-tokens 12: $(cat "$T/err")"
cut=$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(sum(not r["slow_correct"] for r in rows), sum(not r["slow_correct"] and r["slow_answer_at"] != -1 for r in rows))' "$T/cut.jsonl")
[ "${cut% *}" -ge 1 ] && [ "${cut#* }" -eq 0 ] && ok || bad "cut answers: [wrong slow rows, of them with an answer position] = [$cut]"
"${B[@]}" --labels "$T/cut.jsonl" --trace-windows 3 -o "$T/pc.bin" >"$T/pc" 2>"$T/err" && grep -q "^windows " "$T/pc" && ok ||
    bad "probe train on cut traces: $(cat "$T/err")"

# bad values and corrupted traces
expect 2 "bad --trace-windows '-1'" -- "$BIN" probe train -m "$MODEL" --labels "$T/lab.jsonl" --trace-windows -1 -o "$T/x.bin"
expect 2 "bad --trace-windows 'many'" -- "$BIN" probe eval -m "$MODEL" --labels "$T/lab.jsonl" --probe "$T/pw.bin" --trace-windows many
"$BIN" label -m "$MODEL" --data "$T/d.jsonl" --limit 2 --short-bound 16 -o "$T/plain.jsonl" $K >/dev/null 2>&1
expect 1 "needs labels written with kvlens label --traces" -- "$BIN" probe train -m "$MODEL" --labels "$T/plain.jsonl" --trace-windows 2 -o "$T/x.bin" $K
sed '2s/,"slow_answer_at":-\?[0-9]*//' "$T/lab.jsonl" >"$T/c1.jsonl"
expect 1 "c1.jsonl:2: traces need all of fast_ids, slow_ids and slow_answer_at" -- "${B[@]}" --labels "$T/c1.jsonl" --trace-windows 2 -o "$T/x.bin"
sed '3s/"slow_ids":\[\([0-9]*\),/"slow_ids":[/' "$T/lab.jsonl" >"$T/c2.jsonl" # one id fewer than slow_tokens
expect 1 "c2.jsonl:3: slow_ids holds [0-9]+ tokens but slow_tokens is" -- "${B[@]}" --labels "$T/c2.jsonl" -o "$T/x.bin"
sed '1s/"fast_ids":\[[0-9]*,/"fast_ids":[99999,/' "$T/lab.jsonl" >"$T/c3.jsonl" # not a token of this model
expect 1 "label row 1: fast_ids\[0\] = 99999 is not a token of this model" -- "${B[@]}" --labels "$T/c3.jsonl" --trace-windows 2 -o "$T/x.bin"
sed '1s/"slow_answer_at":-\?[0-9]*/"slow_answer_at":100000/' "$T/lab.jsonl" >"$T/c4.jsonl"
expect 1 "c4.jsonl:1: slow_answer_at 100000 is past the" -- "${B[@]}" --labels "$T/c4.jsonl" -o "$T/x.bin"
sed '2s/"fast_ids":\[/"fast_ids":[-1,/' "$T/lab.jsonl" >"$T/c5.jsonl"
expect 1 "c5.jsonl:2: field \"fast_ids\": element 0 is not a token id" -- "${B[@]}" --labels "$T/c5.jsonl" -o "$T/x.bin"

# resume: killed after 3 rows (a torn line added), continued with the same arguments: the same file
KVL_TEST_KILL_AFTER=3 "${L[@]}" -o "$T/k.jsonl" >/dev/null 2>&1
expect_eq "killed after 3 rows" "$(grep -c . "$T/k.jsonl")" 3
head -c 60 "$T/lab.jsonl" | sed 's/"index":0/"index":3/' | tr -d '\n' >>"$T/k.jsonl"
"${L[@]}" -o "$T/k.jsonl" >/dev/null 2>"$T/err" || bad "label --traces resume: $(cat "$T/err")"
grep -q "3 of $N problems already labelled" "$T/err" && ok || bad "resume note: $(cat "$T/err")"
cmp -s "$T/k.jsonl" "$T/lab.jsonl" && ok || bad "killed + resumed differs: $(diff "$T/k.jsonl" "$T/lab.jsonl" | head -c 300)"
expect 1 "other arguments" -- "$BIN" label -m "$MODEL" --data "$T/d.jsonl" --short-bound 16 -o "$T/k.jsonl" $K
# a resumed file whose trace was damaged: refused, left as it was
cp "$T/k.jsonl" "$T/k.orig"
sed -i '2s/"fast_ids":\[/"fast_ids":[-1,/' "$T/k.jsonl"
cp "$T/k.jsonl" "$T/k.bad"
expect 1 "k.jsonl:2: field \"fast_ids\": element 0 is not a token id.*left as it is" -- "${L[@]}" -o "$T/k.jsonl"
cmp -s "$T/k.jsonl" "$T/k.bad" && ok || bad "label changed a damaged labels file"
# shards + merge
for i in 0 1; do "${L[@]}" -o "$T/m.jsonl" --shard $i/2 >/dev/null 2>"$T/err" || bad "shard $i: $(cat "$T/err")"; done
"$BIN" merge "$T/m.jsonl" >"$T/m.sum" 2>"$T/err" || bad "merge: $(cat "$T/err")"
expect_eq "merged summary: traces" "$(grep '^traces' "$T/m.sum")" "$(grep '^traces' "$T/l.sum")"
cmp -s "$T/m.jsonl" "$T/lab.jsonl" && ok || bad "sharded + merged differs from the unsharded file"

echo "cli_traces: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
