"""The one rule by which the server tests compare two computations of the same answer's confidence scores (the
"confidence" object of kvlens.confidence / `kvlens score --json`): imported by server_http.sh, concurrency.py
(server_concurrency.sh) and server_consistency.sh, so that the rule cannot drift between them.

The rule: both objects have the same keys; strings, nulls, booleans and integers (answer_tokens, counts) are equal;
a number that is a float on either side is compared within the setting's tolerance for its group:
  - "kv_coe": the KV-CoE fields (.kv_coe.*), relative: |got - ref| / max(1, |ref|);
  - "other": every other float (hidden_coe, maxprob, ppl, entropy), relative the same way;
  - "score": ppl_score and entropy_score, 1/x of a mean x near 0 on a confident answer (x ~ 1e-3), which magnifies a
    small difference of x: either relative as above, or ("reciprocal") |1/got - 1/ref|, the difference of x itself
    (where both are non-zero; a zero falls back to the relative form).
The tolerances of each setting (the ways two computations of the same answer may differ), as measured:
  - "prefix_reuse": the same greedy request served twice by one server (non-streamed, then streamed): the second
    reuses the first one's cached prompt prefix and prefills only the rest, so the cache differs in the last bits;
    kvlens-think-2 stage 2 differed by up to 1.2e-4 relative (kv_coe.token.mag 1.22224407 against 1.22210039) and,
    for ppl_score = 1/0.00094, by 1.6%, i.e. 1.5e-5 in x: 5e-4 relative, 1e-4 on the reciprocals.
  - "batch": a request served alone and the same request decoded in a batch of up to 8 (other matmul paths, and a
    prompt prefix possibly from another slot): measured KV-CoE within 3e-4, MaxProb/PPL/Entropy within 4e-3, the
    scores within 4e-2 relative: 2e-3, 2e-2, 0.1.
  - "prefill": the server decoding token by token in a batch against `kvlens score`, which evaluates prompt and answer
    in one prefill: 1e-3, 2e-2, 0.1.
Command line (for shell tests): python3 confidence_tol.py SETTING REF.json GOT.json [LABEL], each file a confidence
object or a response holding one under kvlens.confidence; prints the largest difference per group (and every field
beyond tolerance), exit 1 when one is."""
import json, sys

SETTINGS = {
    "prefix_reuse": {"kv_coe": ("relative", 5e-4), "other": ("relative", 5e-4), "score": ("reciprocal", 1e-4)},
    "batch": {"kv_coe": ("relative", 2e-3), "other": ("relative", 2e-2), "score": ("relative", 0.1)},
    "prefill": {"kv_coe": ("relative", 1e-3), "other": ("relative", 2e-2), "score": ("relative", 0.1)},
}


def group(path):
    return "kv_coe" if path.startswith(".kv_coe") else "score" if path.endswith("_score") else "other"


def _walk(ref, got, path, out):
    """Appends (path, ref, got) for every leaf; a key present on one side only is a leaf with None on the other."""
    if isinstance(ref, dict) and isinstance(got, dict):
        for k in sorted(set(ref) | set(got)):
            if k not in ref or k not in got:
                out.append((path + "." + k, ref.get(k, "<missing>"), got.get(k, "<missing>")))
            else:
                _walk(ref[k], got[k], path + "." + k, out)
    else:
        out.append((path, ref, got))


def _is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def compare(ref, got, setting):
    """Returns (problems, measured): problems lists each field that breaks the rule (empty: they agree); measured maps
    each float field to (its group, the difference measured as the rule measures it, the tolerance)."""
    tol = SETTINGS[setting]
    leaves = []
    _walk(ref, got, "", leaves)
    problems, measured = [], {}
    for path, a, b in leaves:
        if not (_is_num(a) and _is_num(b) and (isinstance(a, float) or isinstance(b, float))):
            if a != b:
                problems.append("%s: %r vs %r" % (path or ".", a, b))
            continue
        g = group(path)
        form, limit = tol[g]
        if form == "reciprocal" and a and b:
            d = abs(1 / a - 1 / b)
            why = "%s: %r vs %r (1/x: %r vs %r; difference %.3g, tolerance %g)" % (path, a, b, 1 / a, 1 / b, d, limit)
        else:
            d = abs(a - b) / max(1.0, abs(a))
            why = "%s: %r vs %r (relative difference %.3g, tolerance %g)" % (path, a, b, d, limit)
        measured[path] = (g, d, limit)
        if not d <= limit:  # also a NaN
            problems.append(why)
    return problems, measured


def worst_by_group(measured):
    w = {}
    for g, d, _ in measured.values():
        w[g] = max(w.get(g, 0.0), d)
    return w


def _load(path):
    d = json.load(open(path, encoding="utf-8"))
    return d["kvlens"]["confidence"] if "kvlens" in d else d


def main(argv):
    if len(argv) not in (4, 5) or argv[1] not in SETTINGS:
        print("usage: confidence_tol.py %s REF.json GOT.json [LABEL]" % "|".join(SETTINGS), file=sys.stderr)
        return 2
    problems, measured = compare(_load(argv[2]), _load(argv[3]), argv[1])
    label = argv[4] if len(argv) == 5 else argv[3]
    print("  %s: largest difference: %s" % (label, ", ".join("%s %.1e" % kv for kv in sorted(worst_by_group(measured).items()))))
    for p in problems:
        print("  beyond tolerance (%s): %s" % (argv[1], p))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
