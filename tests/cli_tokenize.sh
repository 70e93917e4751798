#!/usr/bin/env bash
# kvlens tokenize / detokenize / chat-template on vocab-only GGUFs converted from the real tokenizers in
# ../shared/tokenizers. Expected ids and renderings are Hugging Face's (from tests/data/*_ref.json); the library's
# own exhaustive comparisons are in test_tokenizer and test_chat. Skips (77) without ../shared.
set -u
BIN=${KVL_BIN:-build/kvlens}
SHARED=${KVL_SHARED:-../shared}
[ -f "$SHARED/tokenizers/qwen3/tokenizer.json" ] || { echo "SKIP: no $SHARED/tokenizers"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
. "$(dirname "$0")/testlib.sh" || exit 1
expect_eq() { # what got want
    if [ "$2" == "$3" ]; then ok; else bad "$1: got [$2] want [$3]"; fi
}
expect_rc() { # what rc want
    if [ "$2" -eq "$3" ]; then ok; else bad "$1: exit $2, want $3"; fi
}

for name in qwen3 llama3_1; do
    "$BIN" convert "$SHARED/tokenizers/$name" "$T/$name.gguf" --vocab-only >/dev/null 2>"$T/err"
    expect_rc "convert $name" $? 0
done
Q=$T/qwen3.gguf L=$T/llama3_1.gguf

for cmd in tokenize detokenize chat-template; do
    "$BIN" $cmd --help | grep -q "usage: kvlens $cmd"
    expect_rc "$cmd --help" $? 0
    "$BIN" $cmd </dev/null >/dev/null 2>&1
    expect_rc "$cmd without -m" $? 2
done

# ids from Hugging Face tokenizers (tests/data/tokenizer_ref.json)
expect_eq "qwen3 Hello world" "$(printf 'Hello world' | "$BIN" tokenize -m "$Q")" "[9707, 1879]"
expect_eq "llama Hello world" "$(printf 'Hello world' | "$BIN" tokenize -m "$L")" "[9906, 1917]"
expect_eq "llama --add-bos" "$(printf 'Hello world' | "$BIN" tokenize -m "$L" --add-bos)" "[128000, 9906, 1917]"
expect_eq "qwen3 --add-bos (no BOS)" "$(printf 'Hello world' | "$BIN" tokenize -m "$Q" --add-bos)" "[9707, 1879]"
expect_eq "qwen3 digits" "$(printf '1234567' | "$BIN" tokenize -m "$Q")" "[16, 17, 18, 19, 20, 21, 22]"
expect_eq "llama digits" "$(printf '1234567' | "$BIN" tokenize -m "$L")" "[4513, 10961, 22]"
expect_eq "qwen3 specials" "$(printf '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' | "$BIN" tokenize -m "$Q")" \
    "[151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198]"
expect_eq "qwen3 <think>" "$(printf '<think>\nreasoning\n</think>\n\nanswer' | "$BIN" tokenize -m "$Q")" \
    "[151667, 198, 19895, 287, 198, 151668, 271, 9217]"
expect_eq "empty input" "$(printf '' | "$BIN" tokenize -m "$Q")" "[]"

# round trips through both commands, byte for byte
printf 'Mixed: caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd\r\n\ttabs  <|eot_id|> 12345\n' >"$T/in.txt"
for m in "$Q" "$L"; do
    "$BIN" tokenize -m "$m" <"$T/in.txt" | "$BIN" detokenize -m "$m" >"$T/out.txt"
    if cmp -s "$T/in.txt" "$T/out.txt"; then ok; else bad "round trip through $(basename "$m")"; fi
done
expect_eq "detokenize specials" "$(echo '[151644, 872, 198, 13048, 151645]' | "$BIN" detokenize -m "$Q")" \
    "$(printf '<|im_start|>user\nHi<|im_end|>')"

# errors: one line naming the problem, exit 1
printf 'bad \xff byte' | "$BIN" tokenize -m "$Q" >/dev/null 2>"$T/err"
expect_rc "invalid UTF-8" $? 1
grep -q "UTF-8" "$T/err" && ok || bad "invalid UTF-8 message: $(cat "$T/err")"
echo '[1, 999999999]' | "$BIN" detokenize -m "$Q" >/dev/null 2>"$T/err"
expect_rc "id out of range" $? 1
grep -q "outside the vocabulary" "$T/err" && ok || bad "range message: $(cat "$T/err")"
echo '[1, "x"]' | "$BIN" detokenize -m "$Q" >/dev/null 2>"$T/err"
expect_rc "non-numeric id" $? 1
echo 'not json' | "$BIN" detokenize -m "$Q" >/dev/null 2>&1
expect_rc "not JSON" $? 1
printf 'x' | "$BIN" tokenize -m "$T/missing.gguf" >/dev/null 2>"$T/err"
expect_rc "missing model" $? 1
[ "$(wc -l <"$T/err")" -eq 1 ] && ok || bad "missing model: not one line: $(cat "$T/err")"
printf 'not a gguf' >"$T/junk.gguf"
printf 'x' | "$BIN" tokenize -m "$T/junk.gguf" >/dev/null 2>&1
expect_rc "junk model" $? 1

# chat-template: renderings from Hugging Face's Jinja (tests/data/chat_ref.json)
cat >"$T/conv.json" <<'EOF'
[{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "What is 2+2?"}]
EOF
Q_HEAD=$'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n'
"$BIN" chat-template -m "$Q" --messages "$T/conv.json" >"$T/r.txt"
expect_eq "qwen3 default" "$(cat "$T/r.txt"; echo .)" "$Q_HEAD."
"$BIN" chat-template -m "$Q" --messages "$T/conv.json" --think off >"$T/r.txt"
expect_eq "qwen3 --think off" "$(cat "$T/r.txt"; echo .)" "$Q_HEAD"$'<think>\n\n</think>\n\n.'
"$BIN" chat-template -m "$Q" --messages "$T/conv.json" --think on >"$T/r.txt"
expect_eq "qwen3 --think on" "$(cat "$T/r.txt"; echo .)" "$Q_HEAD."
"$BIN" chat-template -m "$Q" --messages "$T/conv.json" --think slow >"$T/r.txt"
expect_eq "qwen3 --think slow" "$(cat "$T/r.txt"; echo .)" "$Q_HEAD"$'<think>\n.'
"$BIN" chat-template -m "$Q" --messages "$T/conv.json" --think fast >"$T/r.txt"
expect_eq "qwen3 --think fast" "$(cat "$T/r.txt"; echo .)" "$Q_HEAD"$'<think>\n\n</think>\n\n.'
"$BIN" chat-template -m "$Q" --messages "$T/conv.json" --no-generation-prompt >"$T/r.txt"
expect_eq "qwen3 no generation prompt" "$(cat "$T/r.txt"; echo .)" \
    $'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n.'
"$BIN" chat-template -m "$L" --messages "$T/conv.json" >"$T/r.txt"
expect_eq "llama3" "$(cat "$T/r.txt"; echo .)" \
    $'<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n.'
expect_eq "kind qwen3" "$("$BIN" chat-template -m "$Q" --kind)" "qwen3"
expect_eq "kind llama3" "$("$BIN" chat-template -m "$L" --kind)" "llama3"
expect_eq "kind override" "$("$BIN" chat-template -m "$L" --kind --template "$SHARED/tokenizers/templates/meta-llama-Llama-3.1-8B-Instruct.jinja")" "llama3.1"
"$BIN" chat-template -m "$L" --messages "$T/conv.json" --template "$SHARED/tokenizers/templates/meta-llama-Llama-3.1-8B-Instruct.jinja" --date "26 Jul 2024" >"$T/r.txt"
expect_eq "llama3.1 override" "$(cat "$T/r.txt"; echo .)" \
    $'<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n.'

# chat-template errors
"$BIN" chat-template -m "$L" --messages "$T/conv.json" --think fast >/dev/null 2>"$T/err"
expect_rc "llama3 has no fast mode" $? 1
grep -q "no thinking mode" "$T/err" && ok || bad "fast on llama message: $(cat "$T/err")"
"$BIN" chat-template -m "$Q" --messages "$T/conv.json" --think maybe >/dev/null 2>&1
expect_rc "bad --think" $? 2
echo '{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}' >"$T/mistral.jinja"
"$BIN" chat-template -m "$Q" --messages "$T/conv.json" --template "$T/mistral.jinja" >/dev/null 2>"$T/err"
expect_rc "unknown template" $? 1
grep -q "not recognised" "$T/err" && ok || bad "unknown template message: $(cat "$T/err")"
echo '[{"role": "user"}]' >"$T/bad.json"
"$BIN" chat-template -m "$Q" --messages "$T/bad.json" >/dev/null 2>&1
expect_rc "message without content" $? 1
"$BIN" chat-template -m "$Q" >/dev/null 2>&1
expect_rc "no --messages" $? 2

echo "cli_tokenize: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
