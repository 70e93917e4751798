#!/usr/bin/env python3
"""Write a Hugging Face-style checkpoint with random bf16 weights and a real model's shape, for speed comparisons
with other engines on the same file (kvlens convert turns it into GGUF; `kvlens bench --shape` needs no file).

    tools/make_shape_checkpoint.py OUT_DIR TOKENIZER_DIR [--shape qwen3-0.6b]

TOKENIZER_DIR holds tokenizer.json and tokenizer_config.json (copied into OUT_DIR). Standard library only: the
weights are random bytes whose exponent bits are fixed so every value is a normal float of magnitude 2^-7..2^-5
(signs random); norm weights are 1. About 1.2 GB for qwen3-0.6b.
"""
import argparse
import json
import os
import shutil
import struct

SHAPES = {
    # the published Qwen3-0.6B config.json values that matter for the weights and the forward pass
    "qwen3-0.6b": dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", hidden_size=1024,
                       intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, vocab_size=151936, rms_norm_eps=1e-6,
                       rope_theta=1000000.0, max_position_embeddings=40960, tie_word_embeddings=True,
                       hidden_act="silu", torch_dtype="bfloat16", bos_token_id=151643, eos_token_id=151645,
                       attention_bias=False),
}


def tensors(c):
    """(name, shape, is_norm) in checkpoint order."""
    H, F, hd = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    yield "model.embed_tokens.weight", [c["vocab_size"], H], False
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", [H], True
        yield p + "post_attention_layernorm.weight", [H], True
        yield p + "self_attn.q_proj.weight", [q, H], False
        yield p + "self_attn.k_proj.weight", [kv, H], False
        yield p + "self_attn.v_proj.weight", [kv, H], False
        yield p + "self_attn.o_proj.weight", [H, q], False
        if c["model_type"] == "qwen3":
            yield p + "self_attn.q_norm.weight", [hd], True
            yield p + "self_attn.k_norm.weight", [hd], True
        yield p + "mlp.gate_proj.weight", [F, H], False
        yield p + "mlp.up_proj.weight", [F, H], False
        yield p + "mlp.down_proj.weight", [H, F], False
    yield "model.norm.weight", [H], True
    if not c["tie_word_embeddings"]:
        yield "lm_head.weight", [c["vocab_size"], H], False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("tokenizer_dir")
    ap.add_argument("--shape", default="qwen3-0.6b", choices=sorted(SHAPES))
    a = ap.parse_args()
    c = SHAPES[a.shape]
    os.makedirs(a.out, exist_ok=True)
    header, off, plan = {}, 0, []
    for name, shape, norm in tensors(c):
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}
        plan.append((n, norm))
        off += n
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    # high byte of each bf16: keep the random sign, fix the top exponent bits (the low byte's top bit and the
    # mantissa stay random)
    high = bytes((x & 0x80) | 0x3c for x in range(256))
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for n, norm in plan:
            if norm:
                f.write(b"\x80\x3f" * (n // 2))  # 1.0
                continue
            for start in range(0, n, 1 << 26):
                buf = bytearray(os.urandom(min(1 << 26, n - start)))
                buf[1::2] = bytes(buf[1::2]).translate(high)
                f.write(buf)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.tokenizer_dir, fn), os.path.join(a.out, fn))
    print(f"{a.out}: {off / 1e9:.2f} GB of bf16 weights, shape {a.shape}")


if __name__ == "__main__":
    main()
