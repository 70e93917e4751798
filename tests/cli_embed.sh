#!/usr/bin/env bash
# kvlens embed / embed-eval on the small fixture models: outputs (.npy header, JSONL, norms), text and token-id
# input giving the same vectors, baselines, truncation, the classification table, and bad input (one-line
# messages, non-zero exits). Texts through the tokenizer and chat template: tests/test_embed_text.c.
set -u
BIN=${KVL_BIN:-build/kvlens}
SRC=${KVL_SRC:-.}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
EXPECT_MAX_LINES=1
. "$(dirname "$0")/testlib.sh" || exit 1
npy_shape() { head -c 128 "$1" | tr -d '\0' | grep -oE "'shape': \([0-9]+, [0-9]+\)"; }
# L2 norm of each JSONL embedding, rounded to 4 decimals
norms() { sed 's/.*\[//; s/\].*//' "$1" | awk -F', ' '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i; printf "%.4f\n", sqrt(s) }'; }

"$BIN" convert "$SRC/tests/fixtures/qwen3/hf" "$T/q3.gguf" --no-vocab --type f32 >/dev/null 2>&1 || { echo "convert failed"; exit 1; }
"$BIN" convert "$SRC/tests/fixtures/qwen3_tied/hf" "$T/q4.gguf" --no-vocab --type f32 >/dev/null 2>&1 || { echo "convert failed"; exit 1; }
M=$T/q3.gguf # 3 layers, 2 KV heads of 48

"$BIN" embed --help | grep -q "usage: kvlens embed"
expect_eq "embed --help" $? 0
"$BIN" embed-eval --help | grep -q "usage: kvlens embed-eval"
expect_eq "embed-eval --help" $? 0

printf '5,6,7,8\n9,10\n11,12,13,14,15\n' >"$T/ids.txt"
# defaults (last 4 layers, kv_cat, mean/mean/mean, L2) on the 4-layer model: 2 * head_dim = 128
"$BIN" embed -m "$T/q4.gguf" --input "$T/ids.txt" --format ids -o "$T/d" 2>/dev/null
expect_eq "default .npy" "$(npy_shape "$T/d.npy")" "'shape': (3, 128)"
"$BIN" embed -m "$M" --input "$T/ids.txt" --format ids --layers last:2 --heads flatten --layer-agg flatten -o "$T/f.npy" 2>/dev/null
expect_eq "flatten dims" "$(npy_shape "$T/f.npy")" "'shape': (3, 384)"
"$BIN" embed -m "$M" --input "$T/ids.txt" --format ids --layers 2,0 --kv-part k -o "$T/e.jsonl" --output-format jsonl 2>/dev/null
expect_eq "jsonl rows" "$(wc -l <"$T/e.jsonl")" 3
expect_eq "jsonl dims" "$(sed -n 2p "$T/e.jsonl" | sed 's/.*\[//; s/\].*//' | awk -F', ' '{print NF}')" 48
expect_eq "L2 norms" "$(norms "$T/e.jsonl" | sort -u)" "1.0000"
"$BIN" embed -m "$M" --input "$T/ids.txt" --format ids --layers 2,0 --kv-part k --no-normalize -o "$T/r.jsonl" --output-format jsonl 2>/dev/null
[ "$(norms "$T/r.jsonl" | sort -u)" != "1.0000" ] && ok || bad "--no-normalize still normalises"
"$BIN" embed -m "$M" --input "$T/ids.txt" --format ids --layers last:2 --source hidden -o - --output-format jsonl >"$T/h.jsonl" 2>/dev/null
expect_eq "hidden dims (n_embd)" "$(head -1 "$T/h.jsonl" | sed 's/.*\[//; s/\].*//' | awk -F', ' '{print NF}')" 128
# random: the same text gives the same vector, another text another one
printf '5,6,7,8\n9,10\n5,6,7,8\n' >"$T/rep.txt"
"$BIN" embed -m "$M" --input "$T/rep.txt" --format ids --layers last:2 --source random -o - --output-format jsonl >"$T/rnd.jsonl" 2>/dev/null
expect_eq "random reproducible" "$(sed -n 1p "$T/rnd.jsonl" | sed 's/.*\[//')" "$(sed -n 3p "$T/rnd.jsonl" | sed 's/.*\[//')"
[ "$(sed -n 1p "$T/rnd.jsonl" | sed 's/.*\[//')" != "$(sed -n 2p "$T/rnd.jsonl" | sed 's/.*\[//')" ] && ok || bad "random: two texts, one vector"
expect_eq "random norm" "$(norms "$T/rnd.jsonl" | sort -u)" "1.0000"
# JSONL input with ids arrays equals the ids format
printf '{"text": [5,6,7,8]}\n{"text": [9,10]}\n{"text": [11,12,13,14,15]}\n' >"$T/ids.jsonl"
"$BIN" embed -m "$M" --input "$T/ids.jsonl" --format jsonl --layers 2,0 --kv-part k -o "$T/e2.jsonl" --output-format jsonl 2>/dev/null
cmp -s "$T/e.jsonl" "$T/e2.jsonl" && ok || bad "jsonl ids differ from the ids format"
# truncation: left keeps the last 3 tokens, right the first 3
printf '5,6,7,8,9\n' >"$T/long.txt"
printf '7,8,9\n' >"$T/tail.txt"
"$BIN" embed -m "$M" --input "$T/long.txt" --format ids --layers last:2 -c 3 --truncate left -o "$T/tl.jsonl" --output-format jsonl 2>/dev/null
"$BIN" embed -m "$M" --input "$T/tail.txt" --format ids --layers last:2 -o "$T/t3.jsonl" --output-format jsonl 2>/dev/null
cmp -s "$T/tl.jsonl" "$T/t3.jsonl" && ok || bad "--truncate left is not the last tokens"
printf '5,6,7\n' >"$T/head.txt"
"$BIN" embed -m "$M" --input "$T/long.txt" --format ids --layers last:2 -c 3 --truncate right -o "$T/tr.jsonl" --output-format jsonl 2>/dev/null
"$BIN" embed -m "$M" --input "$T/head.txt" --format ids --layers last:2 -o "$T/h3.jsonl" --output-format jsonl 2>/dev/null
cmp -s "$T/tr.jsonl" "$T/h3.jsonl" && ok || bad "--truncate right is not the first tokens"
# bench on random weights
"$BIN" embed --shape qwen3-0.6b --type q8_0 --input "$T/ids.txt" --format ids --bench -t 1 >"$T/bench" 2>/dev/null
grep -q "texts/s" "$T/bench" && grep -q "of the prefill" "$T/bench" && ok || bad "--bench output: $(cat "$T/bench")"

# bad input
printf '1,2\n\n3\n' >"$T/empty_line.txt"
expect 1 "empty_line.txt:2: the line is empty" -- "$BIN" embed -m "$M" --input "$T/empty_line.txt" --format ids --layers last:2 -o "$T/x"
printf '{"text": "a"}\n{"text": ""}\n' >"$T/empty_text.jsonl"
expect 1 'empty_text.jsonl:2: empty text' -- "$BIN" embed -m "$M" --input "$T/empty_text.jsonl" --format jsonl --layers last:2 -o "$T/x"
printf '{"body": "a"}\n' >"$T/nofield.jsonl"
expect 1 'nofield.jsonl:1: no "text" field' -- "$BIN" embed -m "$M" --input "$T/nofield.jsonl" --format jsonl --layers last:2 -o "$T/x"
printf '{"text": "a"\n' >"$T/badjson.jsonl"
expect 1 'badjson.jsonl:1: not a JSON object' -- "$BIN" embed -m "$M" --input "$T/badjson.jsonl" --format jsonl --layers last:2 -o "$T/x"
printf '1,x\n' >"$T/badids.txt"
expect 1 'badids.txt:1: expected comma-separated token ids' -- "$BIN" embed -m "$M" --input "$T/badids.txt" --format ids --layers last:2 -o "$T/x"
printf '1,999\n' >"$T/oov.txt"
expect 1 'line 1: token id 999' -- "$BIN" embed -m "$M" --input "$T/oov.txt" --format ids --layers last:2 -o "$T/x"
: >"$T/none.txt"
expect 1 'holds no texts' -- "$BIN" embed -m "$M" --input "$T/none.txt" --format ids --layers last:2 -o "$T/x"
expect 1 'cannot open .*missing.txt' -- "$BIN" embed -m "$M" --input "$T/missing.txt" --layers last:2 -o "$T/x"
expect 1 'line 1: 5 tokens, more than the context.s 3 positions .give --truncate' -- "$BIN" embed -m "$M" --input "$T/long.txt" --format ids --layers last:2 -c 3 -o "$T/x"
expect 2 'layer 7 is out of range: the model has layers 0..2' -- "$BIN" embed -m "$M" --input "$T/ids.txt" --format ids --layers 0,7 -o "$T/x"
expect 2 'layers last:4, but the model has 3 layers' -- "$BIN" embed -m "$M" --input "$T/ids.txt" --format ids -o "$T/x"
expect 2 "unknown pos_agg 'max' \(expected mean\|sum\|last\|cls\)" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --pool max -o "$T/x"
expect 2 "unknown kv_part 'kv'" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --kv-part kv -o "$T/x"
expect 2 "unknown head_agg 'sum'" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --heads sum -o "$T/x"
expect 2 "unknown layer_agg 'max'" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --layer-agg max -o "$T/x"
expect 2 "bad layers 'last:0'" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --layers last:0 -o "$T/x"
expect 2 "bad window 'abc'" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --window abc -o "$T/x"
expect 2 "unknown source 'logits'" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --source logits -o "$T/x"
expect 2 "unknown --format 'xml'" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --format xml -o "$T/x"
expect 2 "unknown --truncate 'middle'" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --truncate middle -o "$T/x"
expect 2 "unknown --output-format 'csv'" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --output-format csv -o "$T/x"
expect 2 "-o OUT is required" -- "$BIN" embed -m "$M" --input "$T/ids.txt"
expect 2 "--input FILE is required" -- "$BIN" embed -m "$M" -o "$T/x"
expect 2 "exactly one of -m MODEL and --shape" -- "$BIN" embed --input "$T/ids.txt" -o "$T/x"
expect 2 "--chat needs texts" -- "$BIN" embed -m "$M" --input "$T/ids.txt" --format ids --layers last:2 --chat -o "$T/x"
expect 1 "cannot tokenize the texts: .*no tokenizer" -- "$BIN" embed -m "$M" --input "$T/head.txt" --layers last:2 -o "$T/x"

# embed-eval: two labels told apart by which tokens their sequences use (ids 3..8 vs 193..198)
awk 'BEGIN { s = 7; for (i = 0; i < 60; i++) { lab = i % 2; printf "{\"text\": ["; for (j = 0; j < 8; j++) {
    s = (s * 1103515245 + 12345) % 2147483648; printf "%s%d", j ? "," : "", 3 + lab * 190 + int(s / 65536) % 6 }
    printf "], \"label\": \"%s\"}\n", lab ? "high" : "low" } }' >"$T/lab.jsonl"
"$BIN" embed-eval -m "$M" -t 1 --data "$T/lab.jsonl" --layers last:2 --seeds 3 --json >"$T/ev.json" 2>"$T/ev.err"
expect_eq "embed-eval rc" $? 0
for src in kv hidden random; do grep -q "\"source\": \"$src\"" "$T/ev.json" && ok || bad "embed-eval: no $src row"; done
acc() { grep -oE "\"source\": \"$1\", \"dim\": [0-9]+, \"n_train\": [0-9]+, \"n_test\": [0-9]+, \"accuracy\": [0-9.]+" "$T/ev.json" | grep -oE '[0-9.]+$'; }
awk -v k="$(acc kv)" -v r="$(acc random)" 'BEGIN { exit !(k >= 0.9 && r <= 0.75) }' && ok || bad "kv accuracy $(acc kv), random $(acc random)"
grep -q '"n_train": 42, "n_test": 18' "$T/ev.json" && ok || bad "stratified 30% split: $(cat "$T/ev.json")"
"$BIN" embed-eval -m "$M" -t 1 --data "$T/lab.jsonl" --layers last:2 --seeds 2 --source kv >"$T/table" 2>/dev/null
grep -q "^| kv | 96 | 42 | 18 | " "$T/table" && ! grep -q "| hidden |" "$T/table" && ok || bad "table: $(cat "$T/table")"
sed 's/"label": "high"/"label": "low"/' "$T/lab.jsonl" >"$T/one.jsonl"
expect 1 "1 distinct label.s. in \"label\": need at least 2" -- "$BIN" embed-eval -m "$M" --data "$T/one.jsonl" --layers last:2
printf '{"text": [5,6], "label": "a"}\n{"text": [7]}\n' >"$T/nolab.jsonl"
expect 1 'nolab.jsonl:2: no label' -- "$BIN" embed-eval -m "$M" --data "$T/nolab.jsonl" --layers last:2
printf '{"text": [5,6], "label": "a", "split": "train"}\n{"text": [7], "label": "b"}\n' >"$T/halfsplit.jsonl"
expect 1 'halfsplit.jsonl:2: no "split" field' -- "$BIN" embed-eval -m "$M" --data "$T/halfsplit.jsonl" --layers last:2
expect 2 "bad --source 'kv,kv'" -- "$BIN" embed-eval -m "$M" --data "$T/lab.jsonl" --source kv,kv
expect 2 "bad --test-fraction '1.5'" -- "$BIN" embed-eval -m "$M" --data "$T/lab.jsonl" --test-fraction 1.5

echo "cli_embed: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
