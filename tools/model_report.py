#!/usr/bin/env python3
"""Tables of tools/model_tables.sh. Python standard library only.

  model_report.py WORK OUT      behaviour: WORK/<bench>_<mode>.jsonl (kvlens solve --out) with WORK/<bench>.jsonl
                                (the problems, for tier and level) -> OUT/behaviour.md, OUT/behaviour.json
  model_report.py --embed DIR   Table 1: DIR/<task>.json (kvlens embed-eval --json) -> DIR/table1.md
"""
import json
import os
import sys


def rows(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def cell(rs):
    if not rs:
        return "", None
    acc = sum(bool(r["correct"]) for r in rs) / len(rs)
    tok = sum(r["tokens"] for r in rs) / len(rs)
    return f"{acc:.3f} / {tok:.0f}", {"n": len(rs), "accuracy": round(acc, 4), "mean_tokens": round(tok, 1)}


def behaviour(work, out):
    md = ["# kvlens-think-2: behaviour with the C engine", "",
          "`kvlens solve`, greedy, the q8_0 file; accuracy / mean generated tokens (every token after the prompt, "
          "the end-of-turn token included). Made by `tools/model_tables.sh`.", ""]
    js = {}
    for bench, group in (("easy", "tier"), ("hard", "tier"), ("natural", "hard")):
        path = os.path.join(work, f"{bench}.jsonl")
        if not os.path.exists(path):
            continue
        probs = rows(path)
        res = {m: rows(os.path.join(work, f"{bench}_{m}.jsonl")) for m in ("fast", "slow")
               if os.path.exists(os.path.join(work, f"{bench}_{m}.jsonl"))}
        if len(res) < 2:
            continue
        for m in res:
            assert len(res[m]) == len(probs), (bench, m, len(res[m]), len(probs))
        js[bench] = {}
        md += [f"## {bench} ({len(probs)} problems)", "", "| subset | n | fast | slow | slow/fast tokens |",
               "|---|---|---|---|---|"]

        def line(label, idx):
            cf, jf = cell([res["fast"][i] for i in idx])
            cs, jsl = cell([res["slow"][i] for i in idx])
            ratio = jsl["mean_tokens"] / jf["mean_tokens"] if jf and jf["mean_tokens"] else 0
            md.append(f"| {label} | {len(idx)} | {cf} | {cs} | {ratio:.1f}x |")
            js[bench][label] = {"fast": jf, "slow": jsl}

        line("all", list(range(len(probs))))
        keys = sorted({str(p.get(group)) for p in probs})
        for k in keys:
            name = {"True": "hard (a two-digit multiplier)", "False": "not hard"}.get(k, k)
            line(name, [i for i, p in enumerate(probs) if str(p.get(group)) == k])
        for lv in sorted({p["level"] for p in probs}):
            line(f"level {lv}", [i for i, p in enumerate(probs) if p["level"] == lv])
        md.append("")
    with open(os.path.join(out, "behaviour.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "behaviour.json"), "w") as f:
        json.dump(js, f, indent=1)
    print("\n".join(md))


def embed(d):
    md = ["# Table 1 on kvlens-think-2: KV against hidden-state and random embeddings", "",
          "`kvlens embed-eval` (logistic regression, 5 seeds, 30% stratified test split; defaults: last 4 layers, "
          "mean over positions and heads, K and V concatenated, L2-normalised). Accuracy and macro-F1 in %, "
          "mean +- std over the seeds. Made by `tools/model_tables.sh`.", "",
          "| task | rows | classes | KV acc | KV F1 | hidden acc | hidden F1 | random acc | random F1 |",
          "|---|---|---|---|---|---|---|---|---|"]
    names = {"tier": "difficulty tier (easy/hard/extreme)", "shape": "story shape (4)", "steps": "steps (1-2/3-4/5+)",
             "topic": "topic of the hand-written set (10)"}
    for task in ("tier", "shape", "steps", "topic"):
        p = os.path.join(d, task + ".json")
        if not os.path.exists(p):
            continue
        with open(p) as f:
            r = json.load(f)
        by = {x["source"]: x for x in r["results"]}
        cells = []
        for src in ("kv", "hidden", "random"):
            x = by[src]
            cells += [f"{100 * x['accuracy']:.1f} +- {100 * x['accuracy_std']:.1f}",
                      f"{100 * x['macro_f1']:.1f} +- {100 * x['macro_f1_std']:.1f}"]
        md.append(f"| {names[task]} | {r['rows']} | {r['labels']} | " + " | ".join(cells) + " |")
    with open(os.path.join(d, "table1.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    if sys.argv[1] == "--embed":
        embed(sys.argv[2])
    else:
        behaviour(sys.argv[1], sys.argv[2])
