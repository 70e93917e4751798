#!/usr/bin/env python3
"""Reference vectors for kvlens' pooling parity test (tests/test_repr.c), per docs/METHOD.md section 3.

For each fixture checkpoint FIXTURES/<name>/hf (made by tools/make_fixtures.py) this loads the model with
transformers in float64 with eager attention, runs FIXTURES/<name>/tokens.npy once, and pools the resulting
past_key_values (and hidden states) with a plain numpy implementation of the method, written independently of the C
code: every knob combination (kv_part x pos_agg x head_agg x layer_agg x normalize = 3 x 4 x 2 x 4 x 2) for
  - layers "last:2" over all positions,
  - an explicit, out-of-order list "L-1,0" over all positions,
  - layers "last:2" with a window of the last 8 positions,
the last two with normalize off only (normalising is the same final scaling the first set checks, and leaving it
off keeps mean and sum apart; this keeps the fixtures under 1 MB),
plus the hidden-state baseline (hidden_states[l + 1] for layer l; pos_agg x layer_agg x normalize) for "last:2".
Writes OUT/<name>/pool/vectors.npy (float32, every vector concatenated) and OUT/<name>/pool/index.json (one entry
per vector, a string of space-separated fields named by "fields": its knobs, offset and length).
Usage: make_pool_fixtures.py FIXTURES_DIR [OUT_DIR (default: FIXTURES_DIR)]
"""
import itertools
import json
import os
import sys

import numpy as np
import torch
import transformers

KV_PARTS = ["k", "v", "kv_cat"]
POS_AGGS = ["mean", "sum", "last", "cls"]
HEAD_AGGS = ["mean", "flatten"]
LAYER_AGGS = ["mean", "sum", "flatten", "last"]
WINDOW = 8


def resolve_layers(spec, n_layer):
    if spec.startswith("last:"):
        n = int(spec[5:])
        return list(range(n_layer - n, n_layer))
    return [int(x) for x in spec.split(",")]


def over_positions(x, how):
    """x: [..., T, d]; aggregate the position axis."""
    if how == "mean":
        return x.mean(axis=-2)
    if how == "sum":
        return x.sum(axis=-2)
    if how == "last":
        return x[..., -1, :]
    if how == "cls":
        return x[..., 0, :]
    raise ValueError(how)


def over_layers(rows, how):
    """rows: [n_selected, d] in selection order."""
    if how == "mean":
        return rows.mean(axis=0)
    if how == "sum":
        return rows.sum(axis=0)
    if how == "flatten":
        return rows.reshape(-1)
    if how == "last":
        return rows[-1]
    raise ValueError(how)


def l2(x, on):
    if not on:
        return x
    n = np.sqrt((x * x).sum())
    return x / n if n > 0 else x


def kv_vector(K, V, layers, t0, t1, kv_part, pos, head, layer_agg, normalize):
    """K, V: [L, n_kv, T, hd] float64 (past_key_values layout)."""
    rows = []
    for l in layers:
        k = over_positions(K[l, :, t0:t1, :], pos)          # [n_kv, hd]
        v = over_positions(V[l, :, t0:t1, :], pos)
        per_head = {"k": k, "v": v, "kv_cat": np.concatenate([k, v], axis=1)}[kv_part]
        rows.append(per_head.mean(axis=0) if head == "mean" else per_head.reshape(-1))
    return l2(over_layers(np.stack(rows), layer_agg), normalize)


def hidden_vector(Hs, layers, t0, t1, pos, layer_agg, normalize):
    """Hs: [L+1, T, H]; layer l's hidden state is the residual stream after block l, index l + 1."""
    rows = np.stack([over_positions(Hs[l + 1, t0:t1, :], pos) for l in layers])
    return l2(over_layers(rows, layer_agg), normalize)


def cache_kv(pkv, layer):
    if hasattr(pkv, "layers"):
        return pkv.layers[layer].keys, pkv.layers[layer].values
    if hasattr(pkv, "key_cache"):
        return pkv.key_cache[layer], pkv.value_cache[layer]
    return pkv[layer][0], pkv[layer][1]


def run_model(hf_dir, tokens):
    cfg = transformers.AutoConfig.from_pretrained(hf_dir)
    cls = getattr(transformers, cfg.architectures[0])
    model = cls.from_pretrained(hf_dir, torch_dtype=torch.float64, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor(tokens[None].astype(np.int64)), use_cache=True, output_hidden_states=True)
    L = cfg.num_hidden_layers
    K = np.stack([cache_kv(out.past_key_values, l)[0][0].numpy() for l in range(L)])
    V = np.stack([cache_kv(out.past_key_values, l)[1][0].numpy() for l in range(L)])
    Hs = np.stack([h[0].numpy() for h in out.hidden_states])
    return K, V, Hs


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    dst = sys.argv[2] if len(sys.argv) > 2 else src
    total = 0
    for name in sorted(os.listdir(src)):
        hf = os.path.join(src, name, "hf")
        if not os.path.isdir(hf):
            continue
        tokens = np.load(os.path.join(src, name, "tokens.npy"))
        K, V, Hs = run_model(hf, tokens)
        L, T = K.shape[0], K.shape[2]
        sets = [("last:2", 0, False), ("%d,0" % (L - 1), 0, True), ("last:2", WINDOW, True)]
        vecs, entries, off = [], [], 0

        def add(vec, source, layers, window, pos_agg, layer_agg, normalize, kv_part="-", head_agg="-"):
            nonlocal off
            vecs.append(vec.astype(np.float32))
            entries.append(" ".join(str(x) for x in (source, layers, window, kv_part, pos_agg, head_agg, layer_agg,
                                                      int(normalize), off, vec.size)))
            off += vec.size

        for spec, window, only_raw in sets:
            layers = resolve_layers(spec, L)
            t0 = T - window if window else 0
            for kv_part, pos, head, lagg, norm in itertools.product(KV_PARTS, POS_AGGS, HEAD_AGGS, LAYER_AGGS,
                                                                    [False, True]):
                if only_raw and norm:
                    continue
                add(kv_vector(K, V, layers, t0, T, kv_part, pos, head, lagg, norm), source="kv", layers=spec,
                    window=window, kv_part=kv_part, pos_agg=pos, head_agg=head, layer_agg=lagg, normalize=norm)
        for pos, lagg, norm in itertools.product(POS_AGGS, LAYER_AGGS, [False, True]):
            add(hidden_vector(Hs, resolve_layers("last:2", L), 0, T, pos, lagg, norm), source="hidden",
                layers="last:2", window=0, pos_agg=pos, layer_agg=lagg, normalize=norm)
        out = os.path.join(dst, name, "pool")
        os.makedirs(out, exist_ok=True)
        np.save(os.path.join(out, "vectors.npy"), np.concatenate(vecs))
        with open(os.path.join(out, "index.json"), "w") as f:
            json.dump({"n_layer": L, "n_tokens": T, "transformers": transformers.__version__,
                       "fields": "source layers window kv_part pos_agg head_agg layer_agg normalize offset dim",
                       "entries": entries}, f, indent=0)
        size = os.path.getsize(os.path.join(out, "vectors.npy")) + os.path.getsize(os.path.join(out, "index.json"))
        total += size
        print(name, len(entries), "vectors,", off, "floats,", size, "bytes", flush=True)
    print("total", total, "bytes")


if __name__ == "__main__":
    main()
