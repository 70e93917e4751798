#!/usr/bin/env python3
"""Why KV-CoE does or does not separate right from wrong answers on a selfeval run (issue 15): the AUROC of each
score overall, within answer-length terciles, within each tier of the problems, and of the answer length itself
(a confound: long answers are the many-step problems, more often wrong), plus any extra runs of the same answers with
other --layers. Python standard library only.

Usage: selfeval_analysis.py OUT.md DATA.jsonl RUN_DIR [LABEL=RUN_DIR ...]
  DATA.jsonl  the problems selfeval answered (for their tier), in the same order
  RUN_DIR     a kvlens selfeval --out folder (problems.jsonl); further LABEL=DIR runs add one column each
"""
import json
import sys

SCORES = ["kv_token_r", "kv_token_c", "kv_token_ang", "kv_layer_r", "kv_layer_c", "hidden_r", "hidden_c", "maxprob"]


def auroc(pos, neg):
    """P(score of a right answer > score of a wrong one), ties counted half; None if a class is empty."""
    if not pos or not neg:
        return None
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank_sum, i = 0.0, 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        avg = (i + j + 1) / 2.0  # ranks i+1 .. j
        rank_sum += avg * sum(1 for k in range(i, j) if allv[k][1] == 1)
        i = j
    n1, n0 = len(pos), len(neg)
    return 100.0 * (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def fmt(x, n):
    return "n/a" if x is None else f"{x:.1f} ({n})"


def load(d):
    with open(d + "/problems.jsonl") as f:
        return [json.loads(l) for l in f if l.strip()]


def main():
    out, data, base = sys.argv[1], sys.argv[2], sys.argv[3]
    extra = [a.split("=", 1) for a in sys.argv[4:]]
    with open(data) as f:
        probs = [json.loads(l) for l in f if l.strip()]
    rows = load(base)
    probs = probs[:len(rows)]
    for r, p in zip(rows, probs):
        assert r["question"] == p["question"], "the data file is not the one selfeval answered"
    n_ok = sum(r["correct"] for r in rows)
    md = [f"# KV-CoE analysis: `{base}`", "",
          f"{len(rows)} answers, {n_ok} right ({100 * n_ok / len(rows):.1f}%). AUROC in % (right answers the "
          "positive class; below 50 = the score runs the wrong way), the number of answers in brackets.", ""]

    def col(rs, key):
        if any(key not in r["scores"] for r in rs):
            return "n/a"
        pos = [r["scores"][key] for r in rs if r["correct"]]
        neg = [r["scores"][key] for r in rs if not r["correct"]]
        return fmt(auroc(pos, neg), len(rs))

    toks = sorted(r["tokens"] for r in rows)
    t1, t2 = toks[len(toks) // 3], toks[2 * len(toks) // 3]
    groups = [("all", rows), (f"answer <= {t1} tokens", [r for r in rows if r["tokens"] <= t1]),
              (f"{t1} < answer <= {t2}", [r for r in rows if t1 < r["tokens"] <= t2]),
              (f"answer > {t2} tokens", [r for r in rows if r["tokens"] > t2])]
    for tier in sorted({p.get("tier", "") for p in probs}):
        groups.append((f"tier {tier}", [r for r, p in zip(rows, probs) if p.get("tier", "") == tier]))
    md += ["| subset | accuracy | " + " | ".join(SCORES) + " | -tokens |", "|---" * (len(SCORES) + 3) + "|"]
    for name, rs in groups:
        if not rs:
            continue
        acc = sum(r["correct"] for r in rs) / len(rs)
        short = fmt(auroc([-r["tokens"] for r in rs if r["correct"]], [-r["tokens"] for r in rs if not r["correct"]]),
                    len(rs))
        md.append(f"| {name} | {acc:.3f} | " + " | ".join(col(rs, k) for k in SCORES) + f" | {short} |")
    if extra:
        md += ["", "## Other layer selections (the same greedy answers)", "",
               "| layers | kv_token_r | kv_token_c | kv_token_ang | kv_layer_r | kv_layer_c |", "|---|---|---|---|---|---|"]
        md.append(f"| all (above) | " + " | ".join(col(rows, k) for k in SCORES[:5]) + " |")
        for label, d in extra:
            rs = load(d)
            assert [r["output"] for r in rs] == [r["output"] for r in rows], f"{d}: other answers"
            md.append(f"| {label} | " + " | ".join(col(rs, k) for k in SCORES[:5]) + " |")
    with open(out, "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
