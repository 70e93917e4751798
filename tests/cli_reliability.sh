#!/usr/bin/env bash
# Reliability of the command line (issue 18, items 2-4), on the shipped model (skipped when it is absent):
#   outputs: every JSON/JSONL output is valid UTF-8 JSON (bytes cut inside a character become U+FFFD); a write
#            error on stdout or a file is a message and a non-zero exit; skipped rows (prompt longer than the
#            context) are reported as skipped, not counted wrong, in solve, selfeval and label; undefined metrics
#            (one class only) are null / n/a;
#   files:   an output equal to an input (another spelling of the same file) is refused and the input left intact;
#            a directory where a file is expected is refused; data files are checked before any work, with
#            file:line, and an existing output is not touched when a row is bad;
#   options: an option that does not apply is refused, a misspelled one is unknown wherever it stands, a
#            single-value option given twice is refused, the interactive chat with --json shows its replies;
#   run:     llama.cpp's -f FILE, -p -, --stop, -n -1, --seed -1, --ctx-size.
# No timing assertions; one thread and a few tokens per answer: the machine is shared.
set -u
BIN=${KVL_BIN:-build/kvlens}
SRC=${KVL_SRC:-.}
M=${KVL_THINK_MODEL:-$SRC/models/kvlens-think-2-q8_0.gguf}
PROBE=$SRC/models/kvlens-think-2-probe.bin
[ -f "$M" ] || { echo "SKIP: no $M"; exit 77; }
[ -f "$PROBE" ] || { echo "SKIP: no $PROBE"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3 (JSON validation)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
. "$(dirname "$0")/testlib.sh" || exit 1
# valid_json FILE [lines]: the file is strict UTF-8 and one JSON value (or, with "lines", one per non-empty line)
valid_json() {
    python3 - "$1" "${2:-}" <<'EOF' 2>"$T/vj" && ok || bad "invalid JSON in $1: $(head -c 300 "$T/vj")"
import json, sys
text = open(sys.argv[1], "rb").read().decode("utf-8")  # strict: raises on invalid UTF-8
if sys.argv[2] == "lines":
    rows = [json.loads(l) for l in text.splitlines() if l.strip()]
    assert rows, "no lines"
else:
    json.loads(text)
EOF
}
K="-t 1"
# Private copies: some checks point outputs at the model and the probe, and a build without the checks (these tests
# must fail on one) would overwrite them.
cp "$M" "$T/m.gguf" && cp "$PROBE" "$T/probe.bin" || { echo "cannot copy the model"; exit 1; }
ORIG_M=$M ORIG_PROBE=$PROBE
M=$T/m.gguf PROBE=$T/probe.bin
cp "$SRC/data/easy.jsonl" "$T/all.jsonl"
head -2 "$SRC/data/easy.jsonl" >"$T/two.jsonl"

# ---------------------------------------------------------------- 2. every output valid and honest
# Bytes that end inside a UTF-8 character (here a reference cut after two bytes of a three-byte character, as
# --max-tokens cuts model text) come out as U+FFFD: valid JSON Lines.
printf '{"problem": "What is 1+1?", "answer": "2\xe4\xb8"}\n' >"$T/cut.jsonl"
"$BIN" solve -m "$M" --data "$T/cut.jsonl" --max-tokens 4 --out "$T/cut.out" $K >/dev/null 2>&1
expect_eq "solve, cut character: rc" $? 0
valid_json "$T/cut.out" lines
grep -q $'"reference": "2\xef\xbf\xbd"' "$T/cut.out" && ok || bad "cut character not U+FFFD: $(head -c 300 "$T/cut.out")"
# a path that is not UTF-8 is written as JSON by the same writer (selfeval's summary names the data file)
cp "$T/two.jsonl" "$T/d"$'\xff'".jsonl"
"$BIN" selfeval -m "$M" --data "$T/d"$'\xff'".jsonl" --out "$T/se1" --max-tokens 8 --boot 10 $K >/dev/null 2>&1
expect_eq "selfeval, non-UTF-8 path: rc" $? 0
valid_json "$T/se1/summary.json"
valid_json "$T/se1/problems.jsonl" lines
# run --json of a cut answer
"$BIN" run -m "$M" -p "hello" --chat -n 3 --json $K >"$T/run.json" 2>/dev/null
valid_json "$T/run.json"

# A full stdout (or output file) is an error with a message, never exit 0.
"$BIN" run -m "$M" -p hi -n 2 $K >/dev/full 2>"$T/err"
rc=$?
[ $rc -ne 0 ] && grep -q "cannot write" "$T/err" && ok || bad "run >/dev/full: rc $rc, $(cat "$T/err")"
"$BIN" run -m "$M" -p hi -n 2 --json $K >/dev/full 2>/dev/null && bad "run --json >/dev/full exits 0" || ok
"$BIN" info -m "$M" >/dev/full 2>/dev/null && bad "info >/dev/full exits 0" || ok
"$BIN" info -m "$M" --json >/dev/full 2>/dev/null && bad "info --json >/dev/full exits 0" || ok
echo "hello" | "$BIN" tokenize -m "$M" >/dev/full 2>/dev/null && bad "tokenize >/dev/full exits 0" || ok
"$BIN" solve -m "$M" --data "$T/two.jsonl" --max-tokens 4 $K >/dev/full 2>/dev/null && bad "solve >/dev/full exits 0" || ok
"$BIN" solve --help >/dev/full 2>/dev/null && bad "solve --help >/dev/full exits 0" || ok
"$BIN" solve -m "$M" --data "$T/two.jsonl" --max-tokens 4 --out /dev/full $K >/dev/null 2>"$T/err" &&
    bad "solve --out /dev/full exits 0" || ok
printf 'a b\nc d\n' >"$T/texts.txt"
"$BIN" embed -m "$M" --input "$T/texts.txt" --output-format jsonl -o /dev/full $K >/dev/null 2>&1 &&
    bad "embed -o /dev/full exits 0" || ok

# Skipped rows: with a 60-position context two of these three prompts do not fit. They are reported as skipped
# ("correct": null, "skipped": true) and left out of n, accuracy and the labels.
cp "$T/two.jsonl" "$T/long.jsonl"
python3 -c "import json; print(json.dumps({'question': 'Nora has ' + 'many ' * 60 + 'ribbons. How many?', 'answer': '#### 3'}))" >>"$T/long.jsonl"
"$BIN" solve -m "$M" --data "$T/long.jsonl" -c 60 --max-tokens 8 --json --out "$T/long.out" $K >"$T/long.sum" 2>/dev/null
expect_eq "solve skipped: rc" $? 0
valid_json "$T/long.sum"
grep -q '"n": 1, ' "$T/long.sum" && grep -q '"skipped": 2' "$T/long.sum" && ok || bad "solve summary counts skipped rows: $(cat "$T/long.sum")"
expect_eq "solve skipped records" "$(grep -c '"correct": null, "skipped": true' "$T/long.out")" 2
"$BIN" solve -m "$M" --data "$T/long.jsonl" -c 60 --max-tokens 8 $K >"$T/long.txt" 2>/dev/null
grep -q "skipped .*2 problems.*not counted" "$T/long.txt" && grep -q "^1 problems" "$T/long.txt" && ok ||
    bad "solve text summary: $(cat "$T/long.txt")"
# every row skipped: the accuracy is undefined
"$BIN" solve -m "$M" --data "$T/long.jsonl" -c 30 --max-tokens 8 --json $K >"$T/none.sum" 2>/dev/null
valid_json "$T/none.sum"
grep -q '"n": 0, "correct": 0, "accuracy": null' "$T/none.sum" && ok || bad "no answer, accuracy: $(cat "$T/none.sum")"
"$BIN" label -m "$M" --data "$T/long.jsonl" -c 60 --max-tokens 8 -o "$T/long.lab" $K >"$T/lab.txt" 2>/dev/null
expect_eq "label skipped: rc" $? 0
expect_eq "label: skipped rows are not labelled" "$(wc -l <"$T/long.lab")" 1
grep -q "skipped .*2 problems" "$T/lab.txt" && ok || bad "label summary: $(cat "$T/lab.txt")"
"$BIN" selfeval -m "$M" --data "$T/long.jsonl" -c 60 --max-tokens 8 --boot 10 --out "$T/se2" $K >/dev/null 2>&1
expect_eq "selfeval skipped: rc" $? 0
expect_eq "selfeval skipped records" "$(grep -c '"correct": null, "skipped": true' "$T/se2/problems.jsonl")" 2
grep -q '"n": 1,' "$T/se2/summary.json" && grep -q '"skipped": 2,' "$T/se2/summary.json" && ok ||
    bad "selfeval summary: $(head -c 400 "$T/se2/summary.json")"

# Undefined metrics: every answer wrong (one class) -> AUROC, FPR95, AUPR are null in JSON and n/a in the table.
printf '{"question": "Nora has 20 ribbons. She wins 3 ribbons. How many?", "answer": "#### 99991"}\n' >"$T/wrong.jsonl"
printf '{"question": "Ben has 7 crayons and buys 2. How many?", "answer": "#### 99992"}\n' >>"$T/wrong.jsonl"
"$BIN" selfeval -m "$M" --data "$T/wrong.jsonl" --out "$T/se3" --max-tokens 8 --boot 10 $K >/dev/null 2>&1
expect_eq "selfeval one class: rc" $? 0
valid_json "$T/se3/summary.json"
grep -q '"single_class": true' "$T/se3/summary.json" && grep -q '"kv_token_c": {"auroc": null, "auroc_ci": null, "fpr95": null' "$T/se3/summary.json" &&
    ok || bad "one class metrics: $(grep -m1 kv_token_c "$T/se3/summary.json")"
grep -q '| kv_token_c | n/a | n/a | n/a |' "$T/se3/table.md" && ok || bad "one class table: $(grep -m1 kv_token_c "$T/se3/table.md")"
# probe eval on labels of one class: the AUROC is null / n/a, not -1
printf '{"question": "What is 2+2?", "user": "What is 2+2?", "label": 0}\n{"question": "What is 3+1?", "user": "What is 3+1?", "label": 0}\n' >"$T/lab1.jsonl"
"$BIN" probe eval -m "$M" --probe "$PROBE" --labels "$T/lab1.jsonl" --json $K >"$T/pe.json" 2>/dev/null
expect_eq "probe eval one class: rc" $? 0
valid_json "$T/pe.json"
grep -q '"template": {[^}]*"auroc": null' "$T/pe.json" && ok || bad "probe eval auroc: $(cat "$T/pe.json")"
"$BIN" probe eval -m "$M" --probe "$PROBE" --labels "$T/lab1.jsonl" $K >"$T/pe.txt" 2>/dev/null
grep -q "^template .* n/a$" "$T/pe.txt" && ok || bad "probe eval text: $(cat "$T/pe.txt")"
# an answer of one token has no token-axis trajectory: its KV-CoE there is null / n/a (warn "short"), not zeros,
# in score and run --confidence (the server writes the same object); the layer axis stays a number
"$BIN" score -m "$M" -p "What is 1+1?" --answer "2" --json $K >"$T/sc1.json" 2>/dev/null
expect_eq "score, one-token answer: rc" $? 0
valid_json "$T/sc1.json"
grep -q '"token": {"mag": null, "ang": null, "r": null, "c": null, "warn": "short"}, "layer": {"mag": [0-9]' "$T/sc1.json" &&
    ok || bad "score short trajectory: $(head -c 300 "$T/sc1.json")"
"$BIN" score -m "$M" -p "What is 1+1?" --answer "2" $K >"$T/sc1.txt" 2>/dev/null
grep -q "^KV-CoE token axis *n/a *n/a *n/a *n/a  warning: short" "$T/sc1.txt" && ok || bad "score text: $(cat "$T/sc1.txt")"
"$BIN" run -m "$M" -p "What is 1+1?" --chat --think fast -n 2 --confidence --json $K >"$T/rc1.json" 2>/dev/null
expect_eq "run --confidence, two tokens: rc" $? 0
valid_json "$T/rc1.json"
grep -q '"token": {"mag": null, "ang": null, "r": null, "c": null, "warn": "short"}' "$T/rc1.json" &&
    ok || bad "run --confidence short trajectory: $(head -c 400 "$T/rc1.json")"

# ---------------------------------------------------------------- 3. no file destroyed
sum() { md5sum <"$1"; }
before=$(sum "$T/two.jsonl")
mkdir -p "$T/sub"
expect 2 "is the input" -- "$BIN" solve -m "$M" --data "$T/two.jsonl" --out "$T/sub/../two.jsonl" $K
ln -s "$T/two.jsonl" "$T/link.jsonl"
expect 2 "is the input" -- "$BIN" solve -m "$M" --data "$T/two.jsonl" --out "$T/link.jsonl" $K
expect 2 "is the input" -- "$BIN" label -m "$M" --data "$T/two.jsonl" -o "$T/./two.jsonl" $K
expect 2 "is the input" -- "$BIN" solve -m "$M" --data "$T/two.jsonl" --out "$M" $K
expect_eq "data file intact" "$(sum "$T/two.jsonl")" "$before"
cp "$T/texts.txt" "$T/texts.jsonl.bak"
expect 2 "is the input" -- "$BIN" embed -m "$M" --input "$T/texts.txt" --output-format jsonl -o "$T/sub/../texts.txt" $K
expect_eq "embed input intact" "$(sum "$T/texts.txt")" "$(sum "$T/texts.jsonl.bak")"
cp "$T/lab1.jsonl" "$T/lab1.bak"
expect 2 "is the input" -- "$BIN" probe eval -m "$M" --probe "$PROBE" --labels "$T/lab1.jsonl" --scores "$T/lab1.jsonl" $K
expect 2 "is the input" -- "$BIN" probe train -m "$M" --labels "$T/lab1.jsonl" -o "$T/lab1.jsonl" $K
expect_eq "labels intact" "$(sum "$T/lab1.jsonl")" "$(sum "$T/lab1.bak")"
expect 2 "is the input" -- "$BIN" probe train -m "$M" --labels "$T/lab1.jsonl" -o "$M" $K
# selfeval's output directory must not hold the data as one of its files
mkdir -p "$T/se4"
cp "$T/two.jsonl" "$T/se4/problems.jsonl"
before=$(sum "$T/se4/problems.jsonl")
expect 2 "is the input" -- "$BIN" selfeval -m "$M" --data "$T/se4/problems.jsonl" --out "$T/se4" $K
expect_eq "selfeval data intact" "$(sum "$T/se4/problems.jsonl")" "$before"
# convert must not overwrite a file of the checkpoint
if [ -d "$SRC/tests/fixtures/qwen3/hf" ]; then
    cp -r "$SRC/tests/fixtures/qwen3/hf" "$T/hf"
    before=$(sum "$T/hf/config.json")
    expect 2 "is the input|checkpoint" -- "$BIN" convert "$T/hf" "$T/hf/config.json" --vocab-only
    expect_eq "checkpoint intact" "$(sum "$T/hf/config.json")" "$before"
    # an output that is a named pipe (as /dev/null or /dev/stdout would be) is written into, never replaced by a
    # regular file (convert wrote OUT.partial and renamed it over the path: `convert ... /dev/null` replaced the
    # device node); a symbolic link stays a link, the file it points to gets the model
    "$BIN" convert "$T/hf" "$T/ref.gguf" --no-vocab >/dev/null 2>&1
    mkfifo "$T/pipe"
    timeout 30 cat "$T/pipe" >"$T/piped.gguf" &  # bounded: a build that replaces the pipe never opens it
    reader=$!
    timeout 60 "$BIN" convert "$T/hf" "$T/pipe" --no-vocab >/dev/null 2>"$T/pipe.err"
    expect_eq "convert into a pipe: rc" $? 0
    wait $reader
    [ -p "$T/pipe" ] && ok || bad "convert replaced the named pipe: $(ls -l "$T/pipe")"
    cmp -s "$T/piped.gguf" "$T/ref.gguf" && ok || bad "bytes through the pipe differ from the file"
    echo old >"$T/real.gguf"
    ln -s "$T/real.gguf" "$T/model-link.gguf"
    "$BIN" convert "$T/hf" "$T/model-link.gguf" --no-vocab >/dev/null 2>&1
    expect_eq "convert onto a link: rc" $? 0
    [ -L "$T/model-link.gguf" ] && cmp -s "$T/real.gguf" "$T/ref.gguf" && ok ||
        bad "convert onto a link: $(ls -l "$T/model-link.gguf" "$T/real.gguf")"
fi
# directories where files are expected
mkdir -p "$T/adir"
expect 2 "is a directory" -- "$BIN" solve -m "$M" --data "$T/two.jsonl" --out "$T/adir" $K
expect 2 "is a directory" -- "$BIN" solve -m "$M" --data "$T/adir" $K
expect 2 "is a directory" -- "$BIN" label -m "$M" --data "$T/two.jsonl" -o "$T/adir" $K
expect 2 "is a directory" -- "$BIN" embed -m "$M" --input "$T/adir" -o "$T/x" $K
expect 2 "is a directory" -- "$BIN" embed -m "$M" --input "$T/texts.txt" --output-format jsonl -o "$T/adir" $K
expect 2 "is a directory" -- "$BIN" probe eval -m "$M" --probe "$PROBE" --labels "$T/adir" $K
expect 2 "not a directory" -- "$BIN" selfeval -m "$M" --data "$T/two.jsonl" --out "$T/two.jsonl" $K
# Data files are checked before the work: a bad row 40 is named (file:line), nothing is solved and an existing
# output is left as it was.
{ head -39 "$T/all.jsonl"; echo '{"question": "no answer field"}'; sed -n 40,60p "$T/all.jsonl"; } >"$T/bad40.jsonl"
echo "previous results" >"$T/prev.out"
expect 1 "bad40.jsonl:40: " -- "$BIN" solve -m "$M" --data "$T/bad40.jsonl" --max-tokens 4 --out "$T/prev.out" $K
expect_eq "solve: existing output untouched" "$(cat "$T/prev.out")" "previous results"
[ -s "$T/out" ] && bad "solve printed results before failing: $(head -c 200 "$T/out")" || ok
expect 1 "bad40.jsonl:40: " -- "$BIN" label -m "$M" --data "$T/bad40.jsonl" --max-tokens 4 -o "$T/new.lab" $K
[ -e "$T/new.lab" ] && bad "label created its output before checking the data" || ok
expect 1 "bad40.jsonl:40: " -- "$BIN" selfeval -m "$M" --data "$T/bad40.jsonl" --max-tokens 4 --out "$T/se5" $K
[ -e "$T/se5" ] && bad "selfeval created its output before checking the data" || ok
{ cat "$T/two.jsonl"; printf '{"question": "What is 1+1? \xc3(", "answer": "#### 2"}\n'; } >"$T/badutf.jsonl"
expect 1 "badutf.jsonl:3: the question is not valid UTF-8" -- "$BIN" solve -m "$M" --data "$T/badutf.jsonl" --max-tokens 4 $K
{ cat "$T/two.jsonl"; printf '{"id": "a\xff", "question": "What is 1+1?", "answer": "#### 2"}\n'; } >"$T/badid.jsonl"
expect 1 "badid.jsonl:3: the id is not valid UTF-8" -- "$BIN" label -m "$M" --data "$T/badid.jsonl" --max-tokens 4 -o "$T/badid.lab" $K
printf '{"text": "a"}\n{"text": "b"}\n{"txt": "c"}\n' >"$T/e3.jsonl"
expect 1 "e3.jsonl:3: " -- "$BIN" embed -m "$M" --input "$T/e3.jsonl" --format jsonl -o "$T/e3" $K

cp "$ORIG_M" "$M" && cp "$ORIG_PROBE" "$PROBE" # (a build without the checks has overwritten them above)

# ---------------------------------------------------------------- 4. no option silently ignored
expect 2 "top-k applies to sampling" -- "$BIN" run -m "$M" -p hi --top-k 5 $K
expect 2 "seed applies to sampling" -- "$BIN" run -m "$M" -p hi --seed 7 $K
expect 2 "top-p applies to sampling" -- "$BIN" solve -m "$M" --data "$T/two.jsonl" --top-p 0.5 $K
expect 2 "every applies to the two-step" -- "$BIN" solve -m "$M" --data "$T/two.jsonl" --think auto1 --probe "$PROBE" --every 2 $K
expect 2 "delta applies to the two-step" -- "$BIN" run -m "$M" -p hi --delta 5 $K
expect 2 "probe go together" -- "$BIN" run -m "$M" -p hi --probe "$PROBE" $K
expect 2 "add-bos and --no-bos apply to raw text" -- "$BIN" run -m "$M" -p hi --chat --no-bos $K
expect 2 "add-bos and --no-bos apply to raw text" -- "$BIN" dump -m "$M" --tokens 1,2 --add-bos -o "$T/dd" $K
expect 2 "show .*json" -- "$BIN" solve -m "$M" --data "$T/two.jsonl" --show --json $K
expect 2 "applies to probe train" -- "$BIN" probe eval -m "$M" --probe "$PROBE" --labels "$T/lab1.jsonl" --epochs 3 $K
expect 2 "applies to probe eval" -- "$BIN" probe train -m "$M" --labels "$T/lab1.jsonl" -o "$T/q.bin" --json $K
expect 2 "type applies to --shape" -- "$BIN" embed -m "$M" --input "$T/texts.txt" --type f16 -o "$T/x" $K
expect 2 "text-field applies to --format jsonl" -- "$BIN" embed -m "$M" --input "$T/texts.txt" --text-field body -o "$T/x" $K
expect 2 "no-eot applies" -- "$BIN" score -m "$M" -p "1+1=" --answer "2" --no-eot $K
expect 2 "tensors" -- "$BIN" info -m "$M" --json --tensors
expect 2 "kind" -- "$BIN" chat-template -m "$M" --kind --think on
printf '[{"role": "user", "content": "hi"}]' >"$T/conv.json"
expect 2 "date applies to the Llama-3.1/3.2 templates" -- "$BIN" chat-template -m "$M" --messages "$T/conv.json" --date "1 Jan 2025"
expect 2 "confidence needs a prompt" -- "$BIN" run -m "$M" -cnv --confidence $K
# misspelled options are unknown wherever they stand (also last, where a value would be expected)
expect 2 "unknown option '--jsn'" -- "$BIN" solve -m "$M" --data "$T/two.jsonl" --jsn
expect 2 "unknown option '--jsn'" -- "$BIN" selfeval -m "$M" --data "$T/two.jsonl" --out "$T/se6" --jsn
expect 2 "unknown option '--dat'" -- "$BIN" label -m "$M" -o "$T/l.jsonl" --dat
expect 2 "unknown option '--jsn'" -- "$BIN" probe eval -m "$M" --probe "$PROBE" --labels "$T/lab1.jsonl" --jsn
expect 2 "unknown option '--jsn'" -- "$BIN" run -m "$M" -p hi --jsn
# single-value options given twice (also through an alias)
expect 2 "more than once" -- "$BIN" run -m "$M" -m "$M" -p hi
expect 2 "more than once" -- "$BIN" run -m "$M" -p hi -c 64 --ctx-size 128
expect 2 "more than once" -- "$BIN" solve -m "$M" --data "$T/two.jsonl" --data "$T/long.jsonl"
expect 2 "more than once" -- "$BIN" run -m "$M" -p hi --think auto1 --probe "$PROBE" --think slow
expect 2 "more than once" -- "$BIN" label -m "$M" --data "$T/two.jsonl" -o "$T/a" --out "$T/b"
expect 2 "more than once" -- "$BIN" embed -m "$M" --input "$T/texts.txt" -o "$T/a" --output "$T/b"
# the interactive chat with --json shows every reply: one JSON line per turn
printf 'hello\nhow many apples?\n' | "$BIN" run -m "$M" -cnv --json -n 6 $K >"$T/chat.jsonl" 2>/dev/null
expect_eq "chat --json: rc" $? 0
valid_json "$T/chat.jsonl" lines
expect_eq "chat --json: one reply per turn" "$(grep -c '"text": .*"turn": [01]' "$T/chat.jsonl")" 2
# a full context starts the conversation over from the message instead of ending the chat
printf 'hello\nhow many apples?\nand now?\n' | "$BIN" run -m "$M" -cnv --json -n 20 -c 60 $K >"$T/full.jsonl" 2>"$T/full.err"
expect_eq "chat, full context: rc" $? 0
expect_eq "chat, full context: every message answered" "$(grep -c '"turn": ' "$T/full.jsonl")" 3
grep -q "starting over" "$T/full.err" && ok || bad "chat, full context: $(cat "$T/full.err")"
# Ctrl-C stops the reply (the chat goes on); at the prompt it quits. No timing: each step waits for the output.
mkfifo "$T/in"
"$BIN" run -m "$M" -cnv -n 100000 -c 2048 --ignore-eos $K <"$T/in" >"$T/cc.out" 2>"$T/cc.err" &
pid=$!
exec 3>"$T/in"
echo "hello" >&3
for _ in $(seq 600); do [ -s "$T/cc.out" ] && break; sleep 0.1; done
kill -INT $pid
for _ in $(seq 600); do grep -q "tokens, " "$T/cc.err" && break; sleep 0.1; done
echo "" >&3
exec 3>&-
wait $pid
expect_eq "Ctrl-C stops the reply: rc" $? 0
n=$(grep -o '\[[0-9]* tokens' "$T/cc.err" | head -1 | tr -dc 0-9)
[ -n "$n" ] && [ "$n" -lt 2000 ] && ok || bad "Ctrl-C did not stop the reply: $(tail -c 300 "$T/cc.err")"
mkfifo "$T/in2"
"$BIN" run -m "$M" -cnv $K <"$T/in2" >/dev/null 2>"$T/cc2.err" &
pid=$!
exec 3>"$T/in2"
for _ in $(seq 600); do grep -q "> " "$T/cc2.err" && break; sleep 0.1; done
kill -INT $pid
wait $pid
expect_eq "Ctrl-C at the prompt quits" $? 130
exec 3>&-
printf 'hello\n' | "$BIN" run -m "$M" -cnv -n 6 $K >"$T/chat.txt" 2>/dev/null
[ -s "$T/chat.txt" ] && ok || bad "chat without --json shows nothing"

# ---------------------------------------------------------------- run: llama.cpp's idioms
"$BIN" run -m "$M" -p "hello" --chat -n 12 --json $K >"$T/r1.json" 2>/dev/null
printf 'hello\n' >"$T/prompt.txt"
"$BIN" run -m "$M" -f "$T/prompt.txt" --chat -n 12 --json $K >"$T/r2.json" 2>/dev/null
expect_eq "-f FILE = -p TEXT" "$(cat "$T/r2.json" | sed 's/"prompt_tok_s.*//')" "$(sed 's/"prompt_tok_s.*//' "$T/r1.json")"
printf 'hello' | "$BIN" run -m "$M" -p - --chat -n 12 --json $K >"$T/r3.json" 2>/dev/null
expect_eq "-p - = -p TEXT" "$(sed 's/"prompt_tok_s.*//' "$T/r3.json")" "$(sed 's/"prompt_tok_s.*//' "$T/r1.json")"
expect 2 "give the prompt once" -- "$BIN" run -m "$M" -p hi -f "$T/prompt.txt"
# --stop: the text ends before the stop string (streamed and in JSON), stop "stop". The stop string is a word of
# the unstopped answer (its third), so the check follows the shipped model's wording.
python3 -c "import json; print(json.load(open('$T/r1.json'))['text'])" >"$T/r1.txt"
STOP=$(python3 -c "import json; print(json.load(open('$T/r1.json'))['text'].split()[2])")
"$BIN" run -m "$M" -p "hello" --chat -n 12 --stop "$STOP" --json $K >"$T/r4.json" 2>/dev/null
python3 - "$T/r4.json" "$T/r1.json" "$STOP" <<'EOF' && ok || bad "--stop json: $(cat "$T/r4.json")"
import json, sys
a, b, stop = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
assert stop in b["text"], b["text"]
assert a["stop"] == "stop" and a["text"] == b["text"][: b["text"].index(stop)], (a, b)
EOF
"$BIN" run -m "$M" -p "hello" --chat -n 12 --stop "$STOP" --stop "zzz" $K >"$T/r5.txt" 2>/dev/null
grep -qF -- "$STOP" "$T/r5.txt" && bad "--stop streamed the stop string: $(cat "$T/r5.txt")" || ok
expect 2 "needs a non-empty" -- "$BIN" run -m "$M" -p hi --stop ""
expect 2 "bad -n '0' .1 or more; -1 = until the context is full" -- "$BIN" run -m "$M" -p hi -n 0
# -n -1: until the context is full
"$BIN" run -m "$M" -p "hello" --chat -n -1 --ctx-size 40 --json $K >"$T/r6.json" 2>/dev/null
grep -q '"stop": "context"' "$T/r6.json" && ok || bad "-n -1: $(cat "$T/r6.json")"
# --seed -1: a random seed, printed
"$BIN" run -m "$M" -p "hello" -n 2 --temp 1 --seed -1 $K >/dev/null 2>"$T/seed.err"
grep -qE "seed [0-9]+" "$T/seed.err" && ok || bad "--seed -1: $(cat "$T/seed.err")"

# --min-p 1 keeps only the most likely token: sampling equals greedy decoding
"$BIN" run -m "$M" -p "hello" --chat -n 12 --temp 1 --seed 3 --min-p 1 --json $K >"$T/r7.json" 2>/dev/null
expect_eq "--min-p 1 = greedy" "$(sed 's/"prompt_tok_s.*//' "$T/r7.json")" "$(sed 's/"prompt_tok_s.*//' "$T/r1.json")"
expect 2 "min-p applies to sampling" -- "$BIN" run -m "$M" -p hi --min-p 0.1
# --repeat-penalty (llama.cpp's): a repetitive greedy answer changes; with --repeat-last-n 0 it does not
"$BIN" run -m "$M" -p "Mia has 4 apples" -n 12 --json $K >"$T/g.json" 2>/dev/null
"$BIN" run -m "$M" -p "Mia has 4 apples" -n 12 --repeat-penalty 1.5 --json $K >"$T/rp.json" 2>/dev/null
"$BIN" run -m "$M" -p "Mia has 4 apples" -n 12 --repeat-penalty 1.5 --repeat-last-n 0 --json $K >"$T/rp0.json" 2>/dev/null
g=$(sed 's/, "n_prompt.*//' "$T/g.json")
[ -n "$g" ] && [ "$g" != "$(sed 's/, "n_prompt.*//' "$T/rp.json")" ] && ok || bad "--repeat-penalty changed nothing: $(cat "$T/rp.json")"
expect_eq "--repeat-last-n 0 = no penalty" "$(sed 's/, "n_prompt.*//' "$T/rp0.json")" "$g"
expect 2 "repeat-last-n applies to the repeat penalty" -- "$BIN" run -m "$M" -p hi --repeat-last-n 8

# progress in logs: stderr that is not a terminal gets plain lines (no carriage returns), none for a short run by
# default (a line every KVL_PROGRESS_EVERY seconds, 10 by default)
"$BIN" solve -m "$M" --data "$T/two.jsonl" --think fast --max-tokens 4 $K >/dev/null 2>"$T/p0.err"
grep -q "solve" "$T/p0.err" && grep -qE "[0-9]+/2" "$T/p0.err" && bad "short run printed progress: $(cat "$T/p0.err")" || ok
KVL_PROGRESS_EVERY=0 "$BIN" solve -m "$M" --data "$T/two.jsonl" --think fast --max-tokens 4 $K >/dev/null 2>"$T/p1.err"
grep -qE "^solve: 2/2 \(100%\)" "$T/p1.err" && grep -q "done in" "$T/p1.err" && ok || bad "progress lines: $(cat "$T/p1.err")"
tr -d '\n' <"$T/p1.err" | grep -q $'\r' && bad "carriage return in log progress" || ok
KVL_PROGRESS=0 KVL_PROGRESS_EVERY=0 "$BIN" solve -m "$M" --data "$T/two.jsonl" --think fast --max-tokens 4 $K >/dev/null 2>"$T/p2.err"
grep -qE "2/2" "$T/p2.err" && bad "KVL_PROGRESS=0 printed progress" || ok

echo "cli_reliability: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
