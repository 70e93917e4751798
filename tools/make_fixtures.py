#!/usr/bin/env python3
"""Reference fixtures for kvlens' parity tests, made with Hugging Face transformers.

Runs on the GPU machine (device tool), or anywhere with torch + transformers + safetensors + numpy.
For each architecture it builds a small model with random weights (GQA, explicit head_dim, biases, tied/untied
embeddings, llama3 rope scaling, random norm weights), saves it as a Hugging Face directory in bf16 safetensors, and
records, computed in float64 from exactly those bf16 weights:
  tokens.npy  int32 [T]                 the prompt
  logits.npy  float32 [T, V]
  k.npy/v.npy float32 [L, n_kv, T, hd]  past_key_values as transformers holds them
  hidden.npy  float32 [L+1, T, H]       output_hidden_states
  greedy.npy  int32 [N]                 greedy continuation of the first P tokens
  margin.npy  float32 [N]               top-1 minus top-2 logit at each greedy step
Usage: make_fixtures.py OUTDIR
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import load_file

OUT = sys.argv[1] if len(sys.argv) > 1 else "fixtures"
T = 24          # prompt length for logits/cache
P = 8           # prompt length for the greedy continuation
N_GEN = 16

BASE = dict(vocab_size=384, hidden_size=128, intermediate_size=160, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
            rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2)

MODELS = {
    # llama: untied output, llama3 rope scaling, head_dim = hidden / heads
    "llama": ("LlamaConfig", "LlamaForCausalLM",
              dict(BASE, tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
                   rope=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                             high_freq_factor=4.0, original_max_position_embeddings=64))),
    # qwen2: q/k/v biases, tied embeddings, sharded safetensors
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM",
              dict(BASE, tie_word_embeddings=True, rope=dict(rope_type="default", rope_theta=1000000.0))),
    # qwen3: per-head q/k norm, head_dim (48) != hidden/heads (32), untied
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM",
              dict(BASE, head_dim=48, tie_word_embeddings=False, attention_bias=False,
                   rope=dict(rope_type="default", rope_theta=1000000.0))),
    # qwen3 tied (like Qwen3-0.6B), more layers
    "qwen3_tied": ("Qwen3Config", "Qwen3ForCausalLM",
                   dict(BASE, num_hidden_layers=4, head_dim=64, tie_word_embeddings=True, attention_bias=False,
                        rope=dict(rope_type="default", rope_theta=1000000.0))),
}


def make_config(cls_name, kw):
    cls = getattr(transformers, cls_name)
    kw = dict(kw)
    rope = kw.pop("rope")
    try:  # transformers >= 5: rope_parameters
        cfg = cls(**kw, rope_parameters=dict(rope))
        if getattr(cfg, "rope_parameters", None) is None:
            raise TypeError
    except TypeError:
        scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
        cfg = cls(**kw, rope_theta=rope["rope_theta"],
                  rope_scaling=None if scaling.get("rope_type") == "default" else scaling)
    return cfg


def randomize(model, gen):
    """Weights large enough that logits are peaked (greedy decisions are then well separated)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=gen) * (1.5 / fan_in ** 0.5))


def cache_kv(pkv, layer):
    if hasattr(pkv, "layers"):
        return pkv.layers[layer].keys, pkv.layers[layer].values
    if hasattr(pkv, "key_cache"):
        return pkv.key_cache[layer], pkv.value_cache[layer]
    return pkv[layer][0], pkv[layer][1]


def main():
    os.makedirs(OUT, exist_ok=True)
    meta = {"transformers": transformers.__version__, "torch": torch.__version__, "models": {}}
    for i, (name, (cfg_cls, model_cls, kw)) in enumerate(MODELS.items()):
        gen = torch.Generator().manual_seed(1234 + i)
        cfg = make_config(cfg_cls, kw)
        model = getattr(transformers, model_cls)(cfg)
        randomize(model, gen)
        if cfg.tie_word_embeddings:
            model.tie_weights()
        model = model.to(torch.bfloat16)
        d = os.path.join(OUT, name)
        hf = os.path.join(d, "hf")
        shard = "40KB" if name == "qwen2" else "1GB"
        model.save_pretrained(hf, safe_serialization=True, max_shard_size=shard)
        # Reload exactly what was saved, compute in float64 on the CPU.
        ref = getattr(transformers, model_cls).from_pretrained(hf, torch_dtype=torch.float64,
                                                               attn_implementation="eager")
        ref.eval()
        tokens = torch.randint(3, cfg.vocab_size, (T,), generator=gen)
        captured = []
        hook = ref.model.layers[-1].register_forward_hook(
            lambda mod, inp, outp: captured.append(outp[0] if isinstance(outp, tuple) else outp))
        with torch.no_grad():
            out = ref(tokens[None], use_cache=True, output_hidden_states=True)
        hook.remove()
        # Does transformers report the last hidden state after the final norm (or the raw residual stream)?
        last_is_normed = bool(torch.allclose(ref.model.norm(captured[0]), out.hidden_states[-1]))
        L = cfg.num_hidden_layers
        k = np.stack([cache_kv(out.past_key_values, l)[0][0].float().numpy() for l in range(L)])
        v = np.stack([cache_kv(out.past_key_values, l)[1][0].float().numpy() for l in range(L)])
        hidden = np.stack([h[0].float().numpy() for h in out.hidden_states])
        np.save(os.path.join(d, "tokens.npy"), tokens.numpy().astype(np.int32))
        np.save(os.path.join(d, "logits.npy"), out.logits[0].float().numpy())
        np.save(os.path.join(d, "k.npy"), k.astype(np.float32))
        np.save(os.path.join(d, "v.npy"), v.astype(np.float32))
        np.save(os.path.join(d, "hidden.npy"), hidden.astype(np.float32))
        # Greedy continuation, step by step with the cache, recording the top-2 margin.
        seq = tokens[:P].tolist()
        greedy, margins = [], []
        with torch.no_grad():
            o = ref(torch.tensor([seq]), use_cache=True)
            pkv = o.past_key_values
            logits = o.logits[0, -1]
            for _ in range(N_GEN):
                top2 = torch.topk(logits, 2)
                nxt = int(top2.indices[0])
                greedy.append(nxt)
                margins.append(float(top2.values[0] - top2.values[1]))
                o = ref(torch.tensor([[nxt]]), past_key_values=pkv, use_cache=True)
                pkv = o.past_key_values
                logits = o.logits[0, -1]
        np.save(os.path.join(d, "greedy.npy"), np.array(greedy, dtype=np.int32))
        np.save(os.path.join(d, "margin.npy"), np.array(margins, dtype=np.float32))
        meta["models"][name] = {"prompt_for_greedy": P, "n_layer": L,
                                "config": json.loads(cfg.to_json_string()),
                                "last_hidden_is_final_norm": last_is_normed}
        print(name, "logits", out.logits.shape, "k", k.shape, "hidden", hidden.shape,
              "min margin", min(margins), flush=True)
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
