#!/usr/bin/env python3
"""Tables and the accuracy/tokens SVG of the adaptive-thinking experiment (tools/think_experiment.sh).

Usage: think_report.py WORK OUT MAIN   (MAIN = "window:layers" of Table 3)
Reads WORK/<run>.sum.json and WORK/<run>.jsonl (kvlens solve --json / --out), OUT/probe_*.eval.json and
OUT/probe_*.train.txt; writes OUT/table3.md, OUT/summary.json, OUT/per_problem.csv, OUT/accuracy_tokens.svg.
Python standard library only.
"""
import glob
import json
import os
import sys


def load_run(work, name):
    with open(os.path.join(work, name + ".sum.json")) as f:
        s = json.load(f)
    rows = []
    with open(os.path.join(work, name + ".jsonl")) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    s["rows"] = rows
    s["wall_s"] = sum(r["time_s"] for r in rows)
    return s


def main():
    work, out, main_cfg = sys.argv[1], sys.argv[2], sys.argv[3]
    mw, ml = main_cfg.split(":")
    tag = f"w{mw}_l{ml}"
    names = sorted(os.path.basename(p)[:-9] for p in glob.glob(os.path.join(work, "*.sum.json")))
    runs = {n: load_run(work, n) for n in names}
    slow = runs["slow"]
    def line(label, r):
        red = slow["mean_tokens"] / r["mean_tokens"] if r["mean_tokens"] else 0
        extra = ""
        if "switches" in r:
            extra = f"{r['initial_slow']}/{r['n']} slow first, {r['switches']} switched"
        return (f"| {label} | {r['accuracy']:.4f} | {r['accuracy'] - slow['accuracy']:+.4f} | {r['mean_tokens']:.1f} | "
                f"{red:.2f}x | {r['wall_s']:.1f} | {extra} |")
    head = ("| method | accuracy | vs slow | mean tokens | reduction vs slow | wall time (s) | controller |\n"
            "|---|---|---|---|---|---|---|")
    model = os.environ.get("MODEL_NAME", "kvlens-think-2")
    bench = os.environ.get("BENCH", "test")
    md = [f"# Adaptive thinking on {model}: {bench} benchmark ({slow['n']} problems)", "",
          f"Table 3 (probe: window {mw}, last {ml} layers; two-step delta 20, re-scored after every token). "
          "Tokens are every token after the prompt, including those before a switch and the inserted "
          "control tokens; wall time is prompt + decoding (probe checks included) summed over the problems, "
          "one thread.", "", head]
    md.append(line("fast-only", runs["fast"]))
    md.append(line("slow-only", slow))
    md.append(line("one-step", runs[f"auto1_{tag}"]))
    md.append(line("two-step", runs[f"auto2_{tag}_d20"]))
    md += ["", "## --delta sweep (two-step, main probe)", "", head]
    for n in sorted((n for n in runs if n.startswith(f"auto2_{tag}_d")), key=lambda n: int(n.split("_d")[-1])):
        md.append(line(f"two-step delta {n.split('_d')[-1]}", runs[n]))
    md += ["", "## (window, layers) configurations", "", head]
    for n in names:
        if n.startswith("auto1_") or (n.startswith("auto2_") and n.endswith("_d20")):
            kind = "one-step" if n.startswith("auto1") else "two-step"
            w, l = n.split("_")[1][1:], n.split("_")[2][1:]
            md.append(line(f"{kind} ({w}, {l})", runs[n]))
    md += ["", "## Probes on the test slice's labels", "",
           "| (window, layers) | validation MSE (train split) | test MSE (template) | acc@50 | AUROC (template) | "
           "AUROC (raw) | AUROC (both) |", "|---|---|---|---|---|---|---|"]
    probes = {}
    for p in sorted(glob.glob(os.path.join(out, "probe_*.eval.json"))):
        key = os.path.basename(p)[len("probe_"):-len(".eval.json")]
        with open(p) as f:
            ev = json.load(f)
        val = ""
        tp = os.path.join(out, f"probe_{key}.train.txt")
        if os.path.exists(tp):
            for ln in open(tp):
                if ln.startswith("MSE"):
                    val = ln.split("validation")[1].split("(")[0].strip()
        probes[key] = ev
        w, l = key.split("_")[0][1:], key.split("_")[1][1:]
        t = ev["template"]
        md.append(f"| ({w}, {l}) | {val} | {t['mse']:.1f} | {t['accuracy']:.4f} | {t['auroc']:.2f} | "
                  f"{ev['raw']['auroc']:.2f} | {ev['both']['auroc']:.2f} |")
    # per level, the four Table 3 methods
    levels = sorted({r.get("level") for r in slow["rows"] if r.get("level") is not None})
    main4 = [("fast", "fast"), ("slow", "slow"), ("one-step", f"auto1_{tag}"), ("two-step", f"auto2_{tag}_d20")]
    md += ["", "## Per level (accuracy / mean tokens)", "",
           "| level | " + " | ".join(m for m, _ in main4) + " |", "|---" * (len(main4) + 1) + "|"]
    for lv in levels:
        cells = []
        for _, n in main4:
            rs = [r for r in runs[n]["rows"] if r.get("level") == lv]
            acc = sum(r["correct"] for r in rs) / len(rs)
            tok = sum(r["tokens"] for r in rs) / len(rs)
            cells.append(f"{acc:.2f} / {tok:.0f}")
        md.append(f"| {lv} | " + " | ".join(cells) + " |")
    with open(os.path.join(out, "table3.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    summary = {n: {k: v for k, v in r.items() if k != "rows"} for n, r in runs.items()}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"runs": summary, "probes": probes, "main": main_cfg}, f, indent=1)

    # one CSV row per problem of the main runs
    cols = ["index", "level", "fast_correct", "fast_tokens", "slow_correct", "slow_tokens", "auto1_initial",
            "auto1_correct", "auto1_tokens", "auto2_initial", "auto2_score0", "auto2_switch", "auto2_switch_at",
            "auto2_correct", "auto2_tokens"]
    a1, a2 = runs[f"auto1_{tag}"]["rows"], runs[f"auto2_{tag}_d20"]["rows"]
    with open(os.path.join(out, "per_problem.csv"), "w") as f:
        f.write(",".join(cols) + "\n")
        for i, (fa, sl, o1, o2) in enumerate(zip(runs["fast"]["rows"], slow["rows"], a1, a2)):
            t2 = o2["think"]
            vals = [i, fa.get("level", ""), int(fa["correct"]), fa["tokens"], int(sl["correct"]), sl["tokens"],
                    o1["think"]["initial"], int(o1["correct"]), o1["tokens"], t2["initial"],
                    "" if t2["initial_score"] is None else t2["initial_score"], t2["switch"] or "",
                    "" if t2["switch_at"] is None else t2["switch_at"], int(o2["correct"]), o2["tokens"]]
            f.write(",".join(str(v) for v in vals) + "\n")

    # SVG: accuracy against mean tokens, every run
    W, H, L, R, T, B = 720, 460, 70, 200, 30, 55
    xs = [r["mean_tokens"] for r in runs.values()]
    ys = [r["accuracy"] for r in runs.values()]
    x0, x1 = 0, max(xs) * 1.1
    y0, y1 = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.03)
    if y1 - y0 < 0.1:
        y0 = y1 - 0.1
    px = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
    py = lambda y: H - B - (y - y0) / (y1 - y0) * (H - T - B)
    color = {"fast": "#1f77b4", "slow": "#d62728", "auto1": "#2ca02c", "auto2": "#9467bd"}
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{(W - R + L) / 2}" y="18" text-anchor="middle" font-size="14">Accuracy vs mean generated tokens '
           f'({bench}, {slow["n"]} problems, {model})</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>']
    for k in range(6):
        x = x0 + (x1 - x0) * k / 5
        y = y0 + (y1 - y0) * k / 5
        svg.append(f'<text x="{px(x):.1f}" y="{H - B + 18}" text-anchor="middle">{x:.0f}</text>')
        svg.append(f'<text x="{L - 8}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
        svg.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" stroke="#eee"/>')
    svg.append(f'<text x="{(W - R + L) / 2}" y="{H - 15}" text-anchor="middle">mean generated tokens per problem</text>')
    svg.append(f'<text x="18" y="{(H - B + T) / 2}" text-anchor="middle" transform="rotate(-90 18 {(H - B + T) / 2})">'
               'accuracy</text>')
    ly = T + 10
    for n, r in runs.items():
        kind = n.split("_")[0]
        c = color.get(kind, "black")
        x, y = px(r["mean_tokens"]), py(r["accuracy"])
        svg.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{c}" fill-opacity="0.8"><title>{n}</title></circle>')
        label = {"fast": "fast-only", "slow": "slow-only"}.get(n, n.replace("auto1", "one-step").replace(
            "auto2", "two-step"))
        svg.append(f'<circle cx="{W - R + 15}" cy="{ly - 4}" r="4" fill="{c}"/>'
                   f'<text x="{W - R + 24}" y="{ly}">{label}: {r["accuracy"]:.3f}, {r["mean_tokens"]:.0f}</text>')
        ly += 17
    svg.append("</svg>")
    with open(os.path.join(out, "accuracy_tokens.svg"), "w") as f:
        f.write("\n".join(svg) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
