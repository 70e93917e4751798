#!/bin/bash
# A/B timing on a noisy machine: runs several builds of `kvlens bench` in alternation and prints the medians.
#   bench/ab.sh ROUNDS "BENCH ARGS" KVLENS_A KVLENS_B ...
#   e.g. bench/ab.sh 9 "--shape qwen3-0.6b --type q8_0 -t 2 -r 3" /tmp/kvlens-before build/kvlens
# Alternating the builds spreads the machine's slow and fast minutes over all of them; compare the medians (and
# the fractions of the ceilings measured in the same runs), not single runs.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,6p "$0"; exit 2; }
rounds=$1 args=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$rounds"); do
    n=0
    for b in "$@"; do
        # shellcheck disable=SC2086
        "$b" bench $args --json 2>/dev/null >>"$tmp/$n"
        n=$((n + 1))
    done
done
n=0
for b in "$@"; do
    python3 - "$tmp/$n" "$b" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
m = lambda k: st.median(r[k] for r in rows)
print(f"{sys.argv[2]}: {len(rows)} runs, median pp {m('pp_tok_s'):.1f} tok/s ({m('pp_flop_fraction'):.3f} of peak), "
      f"tg {m('tg_tok_s'):.2f} tok/s ({m('tg_bandwidth_fraction'):.3f} of bandwidth)")
PY
    n=$((n + 1))
done
