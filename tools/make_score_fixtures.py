#!/usr/bin/env python3
"""Reference self-evaluation scores for kvlens' parity test (tests/test_selfeval.c), per docs/METHOD.md section 4.

For each fixture checkpoint FIXTURES/<name>/hf (made by tools/make_fixtures.py) this loads the model with
transformers in float64 with eager attention and, for fixed prompt/continuation splits of FIXTURES/<name>/tokens.npy,
teacher-forces prompt + continuation[:-1] once (output_hidden_states, past_key_values, logits). An independent numpy
implementation of the method then computes, over the answer span (positions n-1 .. n+m-2 for a prompt of n tokens
and an answer of m tokens):
  - KV-CoE on the token axis and on the layer axis for the layer selections "all", "last:2" and "L-1,0",
  - the hidden-state CoE (x_l = mean over the span of hidden_states[l], l = 0..L),
  - MaxProb, PPL (exp of the mean negative log top-1 probability) and its score 1 / (mean negative log top-1
    probability), Entropy (mean entropy in bits) and its score 1 / (mean entropy),
with the project's conventions for degenerate trajectories (fewer than 2 steps: every score 0; a zero distance
D or angle A between the ends: those steps count as 0; a zero vector: its angles count as 0), each with its warning
bit. The token-axis, layer-axis and hidden trajectories of the first split with all layers are saved too.
Writes OUT/<name>/score/scores.json and traj_token.npy, traj_layer.npy, traj_hidden.npy (float32).
Usage: make_score_fixtures.py FIXTURES_DIR [OUT_DIR (default: FIXTURES_DIR)]
"""
import json
import os
import sys

import numpy as np
import torch
import transformers

# (prompt tokens n, answer tokens m): a regular answer, a two-token answer (one step: degenerate on the token axis)
# and a one-token answer (a single point).
SPLITS = [(10, 14), (20, 2), (23, 1)]

WARN_SHORT, WARN_ZERO_DIST, WARN_ZERO_ANGLE, WARN_ZERO_VECTOR = 1, 2, 4, 8
ZERO_DIST_REL = 1e-9    # D counts as zero below this fraction of the larger end's norm
ZERO_ANGLE = 1e-6       # A counts as zero below this many radians


def angle(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0, True
    return float(np.arccos(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))), False


def coe(X):
    """X: [N+1, d] float64, the trajectory x_0 .. x_N."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0] - 1
    if n < 2:
        return dict(mag=0.0, ang=0.0, r=0.0, c=0.0, warn=WARN_SHORT)
    warn = 0
    D = float(np.linalg.norm(X[-1] - X[0]))
    A, z = angle(X[-1], X[0])
    if z:
        warn |= WARN_ZERO_VECTOR
    steps = np.linalg.norm(X[1:] - X[:-1], axis=1)
    angs = np.empty(n)
    for i in range(n):
        angs[i], z = angle(X[i + 1], X[i])
        if z:
            warn |= WARN_ZERO_VECTOR
    scale = max(np.linalg.norm(X[0]), np.linalg.norm(X[-1]))
    if D <= ZERO_DIST_REL * scale:
        M = np.zeros(n)
        warn |= WARN_ZERO_DIST
    else:
        M = steps / D
    if A <= ZERO_ANGLE:
        G = np.zeros(n)
        warn |= WARN_ZERO_ANGLE
    else:
        G = angs / A
    mag, ang = float(M.mean()), float(G.mean())
    c = float(np.hypot((M * np.cos(G)).mean(), (M * np.sin(G)).mean()))
    return dict(mag=mag, ang=ang, r=mag - ang, c=c, warn=warn)


def resolve_layers(spec, L):
    if spec == "all":
        return list(range(L))
    if spec.startswith("last:"):
        k = int(spec[5:])
        return list(range(L - k, L))
    return [int(x) for x in spec.split(",")]


def kv_rows(K, V, l, span):
    """[len(span), 2 * n_kv * hd]: per position, K of every head in order, then V of every head."""
    k = K[l][:, span, :].transpose(1, 0, 2).reshape(len(span), -1)
    v = V[l][:, span, :].transpose(1, 0, 2).reshape(len(span), -1)
    return np.concatenate([k, v], axis=1)


def token_trajectory(K, V, layers, span):
    return np.mean([kv_rows(K, V, l, span) for l in layers], axis=0)


def layer_trajectory(K, V, layers, span):
    return np.stack([kv_rows(K, V, l, span).mean(axis=0) for l in layers])


def output_scores(logits, span):
    top, ent = [], []
    for t in span:
        z = logits[t] - logits[t].max()
        p = np.exp(z) / np.exp(z).sum()
        top.append(p.max())
        nz = p[p > 0]
        ent.append(float(-(nz * np.log2(nz)).sum()))
    top = np.array(top)
    nl = float(-np.log(top).mean())
    h = float(np.mean(ent))
    return dict(maxprob=float(top.mean()), ppl=float(np.exp(nl)), ppl_score=1.0 / max(nl, 1e-12),
                entropy=h, entropy_score=1.0 / max(h, 1e-12))


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
    return K, V, Hs, out.logits[0].numpy()


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    dst = sys.argv[2] if len(sys.argv) > 2 else src
    for name in sorted(os.listdir(src)):
        hf = os.path.join(src, name, "hf")
        if not os.path.isdir(hf):
            continue
        tokens = np.load(os.path.join(src, name, "tokens.npy")).astype(np.int64)
        out = os.path.join(dst, name, "score")
        os.makedirs(out, exist_ok=True)
        cases = []
        for si, (n, m) in enumerate(SPLITS):
            seq = tokens[:n + m - 1]        # the last answer token is never run: nothing in the span depends on it
            K, V, Hs, logits = run_model(hf, seq)
            L = K.shape[0]
            span = list(range(n - 1, n + m - 1))
            hidden_traj = np.stack([Hs[l, span, :].mean(axis=0) for l in range(L + 1)])
            base = dict(n_prompt=n, n_answer=m, hidden=coe(hidden_traj), **output_scores(logits, span))
            for spec in ["all", "last:2", "%d,0" % (L - 1)]:
                layers = resolve_layers(spec, L)
                tok = token_trajectory(K, V, layers, span)
                lay = layer_trajectory(K, V, layers, span)
                cases.append(dict(base, layers=spec, kv_token=coe(tok), kv_layer=coe(lay)))
                if si == 0 and spec == "all":
                    np.save(os.path.join(out, "traj_token.npy"), tok.astype(np.float32))
                    np.save(os.path.join(out, "traj_layer.npy"), lay.astype(np.float32))
                    np.save(os.path.join(out, "traj_hidden.npy"), hidden_traj.astype(np.float32))
        with open(os.path.join(out, "scores.json"), "w") as f:
            json.dump({"transformers": transformers.__version__, "tokens": tokens.tolist(), "cases": cases}, f,
                      indent=1)
        c0 = cases[0]
        print(name, "kv_token", c0["kv_token"], "kv_layer", c0["kv_layer"], "hidden", c0["hidden"],
              "maxprob %.4f ppl %.4f entropy %.4f" % (c0["maxprob"], c0["ppl"], c0["entropy"]), flush=True)


if __name__ == "__main__":
    main()
