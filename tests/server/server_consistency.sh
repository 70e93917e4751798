#!/usr/bin/env bash
# The server's KV features against the CLI, an independent path through the same library:
#   - the confidence of a chat answer (and of a text completion) equals `kvlens score --json --no-hidden` of the
#     same prompt and answer tokens (the server's kvlens.tokens), teacher-forced in one prefill by the CLI;
#   - /v1/embeddings equals `kvlens embed` (default knobs and a second setting) for the same texts;
#   - /kvlens/kv equals `kvlens dump`'s k.npy / v.npy for the same prompt.
# Tolerances (measured values printed): the server decodes token by token in a batch, the CLI evaluates everything in
# one prefill, and the two matmul paths differ in the last bits (the scores: tests/server/confidence_tol.py's
# "prefill" setting, KV-CoE within 1e-3 relative, MaxProb/PPL/Entropy within 2e-2, their reciprocal scores within 0.1;
# embeddings and K/V within 1e-3 absolute).
. "$(dirname "$0")/lib.sh"
start_server k --probe "$PROBE" --parallel 4 || exit 1

cmp_scores() { # server-response.json cli-score.json label: confidence_tol.py's "prefill" setting
    python3 "$(dirname "$0")/confidence_tol.py" prefill "$2" "$1" "$3"
}

Q='{"role":"user","content":"Nora has 20 ribbons. She wins 3 ribbons in a game. How many ribbons does Nora have?"}'
for mode in none high; do
    expect_eq "chat $mode" "$(req POST /v1/chat/completions "{\"messages\":[$Q],\"max_tokens\":60,\"temperature\":0,\"reasoning_effort\":\"$mode\",\"return_tokens\":true}")" 200
    cp "$T/body" "$T/chat.json"
    P=$(jv "$T/chat.json" '",".join(map(str, d["kvlens"]["tokens"]["prompt"]))')
    A=$(jv "$T/chat.json" '",".join(map(str, d["kvlens"]["tokens"]["answer"]))')
    "$BIN" score -m "$MODEL" -t 1 --tokens "$P" --continuation "$A" --no-hidden --json >"$T/score.json" 2>"$T/score.err" &&
        ok || bad "kvlens score: $(cat "$T/score.err")"
    cmp_scores "$T/chat.json" "$T/score.json" "chat ($mode) vs kvlens score" && ok || bad "chat $mode confidence != kvlens score"
done
expect_eq "completion" "$(req POST /v1/completions '{"prompt":"Tom has 3 cats and 2 dogs. How many pets?","max_tokens":30,"temperature":0,"return_tokens":true}')" 200
cp "$T/body" "$T/cmpl.json"
P=$(jv "$T/cmpl.json" '",".join(map(str, d["kvlens"]["tokens"]["prompt"]))')
A=$(jv "$T/cmpl.json" '",".join(map(str, d["kvlens"]["tokens"]["answer"]))')
"$BIN" score -m "$MODEL" -t 1 --tokens "$P" --continuation "$A" --no-hidden --json >"$T/score.json" 2>/dev/null && ok || bad "score"
cmp_scores "$T/cmpl.json" "$T/score.json" "completion vs kvlens score" && ok || bad "completion confidence != kvlens score"

# embeddings: the server against kvlens embed, two settings
printf '%s\n' "a red apple on the table" "The stock market fell sharply today." "Nora has 20 ribbons." >"$T/texts.txt"
for knobs in "" "layers=0,2,4 kv_part=k pooling=last"; do
    body=$(python3 -c '
import json, sys
b = {"input": open(sys.argv[1]).read().splitlines()}
for kv in sys.argv[2].split():
    k, v = kv.split("=")
    b[k] = [int(x) for x in v.split(",")] if k == "layers" else v
print(json.dumps(b))' "$T/texts.txt" "$knobs")
    expect_eq "embeddings $knobs" "$(req POST /v1/embeddings "$body")" 200
    opts=$(python3 -c '
import sys
m = {"layers": "--layers", "kv_part": "--kv-part", "pooling": "--pool"}
print(" ".join("%s %s" % (m[k], v) for k, v in (kv.split("=") for kv in sys.argv[1].split())))' "$knobs")
    # a fresh output each time: an existing one of other arguments is refused (another run's output)
    rm -f "$T/emb.jsonl" "$T/emb.jsonl.kvlens-run.json"
    # shellcheck disable=SC2086
    "$BIN" embed -m "$MODEL" -t 1 --input "$T/texts.txt" --output-format jsonl -o "$T/emb.jsonl" $opts 2>"$T/emb.err" &&
        ok || bad "kvlens embed: $(cat "$T/emb.err")"
    python3 - "$T/body" "$T/emb.jsonl" "$knobs" <<'PY' && ok || bad "embeddings != kvlens embed ($knobs)"
import json, sys
srv = json.load(open(sys.argv[1]))["data"]
cli = [json.loads(l)["embedding"] for l in open(sys.argv[2])]
assert len(srv) == len(cli)
worst = 0
for s, c in zip(srv, cli):
    assert len(s["embedding"]) == len(c)
    worst = max(worst, max(abs(x - y) for x, y in zip(s["embedding"], c)))
print("  embeddings (%s) vs kvlens embed: %d x %d, largest difference %.1e" % (sys.argv[3] or "defaults", len(cli), len(cli[0]), worst))
assert worst < 1e-3
PY
done

# the KV dump against kvlens dump
for part in k v; do
    expect_eq "kv $part" "$(req POST /kvlens/kv "{\"prompt\":\"Nora has 20 ribbons.\",\"part\":\"$part\"}")" 200
    cp "$T/body" "$T/kv_$part.npy"
done
"$BIN" dump -m "$MODEL" -t 1 -p "Nora has 20 ribbons." -o "$T/dump" >/dev/null 2>"$T/dump.err" && ok || bad "dump: $(cat "$T/dump.err")"
python3 - "$T" <<'PY' && ok || bad "kv != kvlens dump"
import ast, struct, sys
def load(p):
    b = open(p, "rb").read()
    hl = struct.unpack("<H", b[8:10])[0]
    h = ast.literal_eval(b[10:10 + hl].decode())
    n = 1
    for s in h["shape"]: n *= s
    return h["shape"], struct.unpack("<%df" % n, b[10 + hl:10 + hl + 4 * n])
for part in "kv":
    s1, a = load(sys.argv[1] + "/kv_%s.npy" % part)
    s2, b = load(sys.argv[1] + "/dump/%s.npy" % part)
    assert s1 == s2, (s1, s2)
    worst = max(abs(x - y) for x, y in zip(a, b))
    print("  /kvlens/kv %s %s vs kvlens dump: largest difference %.1e" % (part, s1, worst))
    assert worst < 1e-3
PY
stop_server TERM
expect_eq "exit status" "$SRV_RC" 0
finish
