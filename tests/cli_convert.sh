#!/usr/bin/env bash
# kvlens convert from the command line: usage errors (exit 2), a successful conversion of a tiny checkpoint built
# here, and bad input (exit 1 with exactly one line on stderr naming the problem, no output file left).
set -u
BIN=${KVL_BIN:-build/kvlens}
[ -x "$BIN" ] || { echo "SKIP: no kvlens binary at $BIN"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
. "$(dirname "$0")/testlib.sh" || exit 1

# 8-byte little-endian integer
le64() {
    local n=$1 i
    for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(((n >> (8 * i)) & 255)))"; done
}

# st_file PATH DTYPE "name:d0,d1" ...   a safetensors file whose tensors are all zero
st_file() {
    local path=$1 dtype=$2 size=4 hdr="{" off=0 sep="" spec name dims n d
    shift 2
    [ "$dtype" = F32 ] || size=2
    for spec in "$@"; do
        name=${spec%%:*} dims=${spec#*:} n=1
        for d in ${dims//,/ }; do n=$((n * d)); done
        hdr+="$sep\"$name\":{\"dtype\":\"$dtype\",\"shape\":[$dims],\"data_offsets\":[$off,$((off + n * size))]}"
        off=$((off + n * size)) sep=","
    done
    hdr+="}"
    { le64 ${#hdr}; printf '%s' "$hdr"; head -c "$off" /dev/zero; } >"$path"
}

# A llama checkpoint: 1 layer, hidden 32, 2 heads, ff 64, vocab 16.
make_llama() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/config.json" <<'EOF'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1,
 "num_attention_heads": 2, "num_key_value_heads": 2, "intermediate_size": 64, "vocab_size": 16,
 "max_position_embeddings": 128, "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": true}
EOF
    st_file "$dir/model.safetensors" BF16 model.embed_tokens.weight:16,32 model.norm.weight:32 \
        model.layers.0.input_layernorm.weight:32 model.layers.0.post_attention_layernorm.weight:32 \
        model.layers.0.self_attn.q_proj.weight:32,32 model.layers.0.self_attn.k_proj.weight:32,32 \
        model.layers.0.self_attn.v_proj.weight:32,32 model.layers.0.self_attn.o_proj.weight:32,32 \
        model.layers.0.mlp.gate_proj.weight:64,32 model.layers.0.mlp.up_proj.weight:64,32 \
        model.layers.0.mlp.down_proj.weight:32,64
}

# expect_fail WHAT NEEDLE ARGS...: exit 1, one stderr line containing NEEDLE, no output file
expect_fail() {
    local what=$1 needle=$2
    shift 2
    rm -f "$T/out.gguf"
    "$BIN" convert "$@" >"$T/stdout" 2>"$T/stderr"
    local rc=$? lines
    lines=$(wc -l <"$T/stderr")
    [ $rc -eq 1 ] && ok || bad "$what: exit $rc, expected 1"
    [ "$lines" -eq 1 ] && ok || bad "$what: $lines stderr lines: $(cat "$T/stderr")"
    grep -qF -- "$needle" "$T/stderr" && ok || bad "$what: stderr lacks '$needle': $(cat "$T/stderr")"
    [ ! -e "$T/out.gguf" ] && [ ! -e "$T/out.gguf.partial" ] && ok || bad "$what: output file left behind"
}

# --help and usage errors
"$BIN" convert --help >"$T/help" && grep -q "usage: kvlens convert" "$T/help" && ok || bad "--help"
"$BIN" convert >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "no arguments should exit 2"
"$BIN" convert a b --type q4_0 >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "unknown --type should exit 2"
"$BIN" convert a b --bogus >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "unknown option should exit 2"
"$BIN" convert a b --vocab-only --no-vocab >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "conflicting flags should exit 2"

# a good conversion
make_llama "$T/good"
if "$BIN" convert "$T/good" "$T/good.gguf" --no-vocab --type q8_0 >"$T/stdout" 2>"$T/stderr"; then
    ok
    [ "$(head -c 4 "$T/good.gguf")" = GGUF ] && ok || bad "output does not start with GGUF"
    grep -q "wrote .*good.gguf: 11 tensors" "$T/stdout" && ok || bad "summary: $(cat "$T/stdout")"
    "$BIN" convert "$T/good" "$T/good2.gguf" --no-vocab --type q8_0 >/dev/null 2>&1
    cmp -s "$T/good.gguf" "$T/good2.gguf" && ok || bad "conversion is not deterministic"
else
    bad "good conversion failed: $(cat "$T/stderr")"
fi
# the tokenizer is required unless --no-vocab (this directory has none)
expect_fail "no tokenizer" "tokenizer" "$T/good" "$T/out.gguf"

# bad inputs
expect_fail "missing directory" "not a directory" "$T/nope" "$T/out.gguf" --no-vocab

make_llama "$T/len"
{ le64 100000; printf '{}'; } >"$T/len/model.safetensors"
expect_fail "header length past end" "exceeds the file" "$T/len" "$T/out.gguf" --no-vocab

make_llama "$T/json"
{ le64 12; printf '{"a":{"dtype"'; } >"$T/json/model.safetensors"
expect_fail "broken header JSON" "not valid JSON" "$T/json" "$T/out.gguf" --no-vocab

make_llama "$T/dtype"
h='{"model.norm.weight":{"dtype":"X9","shape":[32],"data_offsets":[0,64]}}'
{ le64 ${#h}; printf '%s' "$h"; head -c 64 /dev/zero; } >"$T/dtype/model.safetensors"
expect_fail "bad dtype" "unknown dtype 'X9'" "$T/dtype" "$T/out.gguf" --no-vocab

make_llama "$T/range"
h='{"model.norm.weight":{"dtype":"BF16","shape":[32],"data_offsets":[0,64]}}'
{ le64 ${#h}; printf '%s' "$h"; head -c 10 /dev/zero; } >"$T/range/model.safetensors"
expect_fail "offsets out of range" "outside" "$T/range" "$T/out.gguf" --no-vocab

make_llama "$T/cfg"
printf '{"architectures": ["LlamaForCausalLM"], "hidden_size": 32,' >"$T/cfg/config.json"
expect_fail "malformed config.json" "config.json" "$T/cfg" "$T/out.gguf" --no-vocab

make_llama "$T/arch"
sed -i 's/LlamaForCausalLM/GPTNeoXForCausalLM/' "$T/arch/config.json"
expect_fail "unsupported architecture" "unsupported architecture GPTNeoXForCausalLM" "$T/arch" "$T/out.gguf" --no-vocab

make_llama "$T/missing"
st_file "$T/missing/model.safetensors" BF16 model.embed_tokens.weight:16,32 model.norm.weight:32
expect_fail "missing tensor" "lacks tensor 'model.layers.0.input_layernorm.weight'" "$T/missing" "$T/out.gguf" --no-vocab

make_llama "$T/unwritable"
expect_fail "unwritable output" "cannot create" "$T/unwritable" "$T/no/such/dir/out.gguf" --no-vocab

echo "cli_convert: $checks checks, $fails failed"
[ $fails -eq 0 ]
