#!/usr/bin/env bash
# CLI behaviour on bad input: a one-line message naming the problem and a non-zero exit, never a crash.
set -u
BIN=${KVL_BIN:-build/kvlens}
SRC=${KVL_SRC:-.}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0

# expect CODE PATTERN -- command...: exit status CODE and stderr matching PATTERN, on one line.
expect() {
  local code=$1 pat=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" -eq "$code" ] && grep -qE -- "$pat" "$T/err" && [ "$(wc -l <"$T/err")" -le 2 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: $* -> rc $rc (want $code), stderr: $(head -c 300 "$T/err")"
  fi
}

"$BIN" convert "$SRC/tests/fixtures/qwen3/hf" "$T/m.gguf" --no-vocab --type f32 >/dev/null 2>&1 || { echo "convert failed"; exit 1; }

expect 2 "unknown command" -- "$BIN" frobnicate
expect 2 "-m MODEL is required" -- "$BIN" run --tokens 1,2
expect 2 "unknown option" -- "$BIN" run -m "$T/m.gguf" --tokens 1 --bogus
expect 2 "bad -n" -- "$BIN" run -m "$T/m.gguf" --tokens 1 -n abc
expect 2 "bad temperature" -- "$BIN" run -m "$T/m.gguf" --tokens 1 --temp -1
expect 2 "top-p" -- "$BIN" run -m "$T/m.gguf" --tokens 1 --top-p 2
expect 2 "comma-separated" -- "$BIN" run -m "$T/m.gguf" --tokens 1,x
expect 1 "cannot open|No such file" -- "$BIN" run -m "$T/missing.gguf" --tokens 1
expect 1 "outside the vocabulary" -- "$BIN" run -m "$T/m.gguf" --tokens 1,99999
expect 1 "outside the vocabulary" -- "$BIN" run -m "$T/m.gguf" --tokens -3
expect 1 "context holds 4" -- "$BIN" run -m "$T/m.gguf" --tokens 1,2,3,4,5 -c 4
expect 1 "do not fit in the context" -- "$BIN" dump -m "$T/m.gguf" --tokens 1,2,3,4,5 -c 4 -o "$T/d"

# corrupt files
printf 'GGUF' >"$T/short.gguf"
expect 1 "." -- "$BIN" info -m "$T/short.gguf"
printf 'NOPE\003\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000' >"$T/magic.gguf"
expect 1 "magic" -- "$BIN" info -m "$T/magic.gguf"
head -c 3000 "$T/m.gguf" >"$T/trunc.gguf"
expect 1 "." -- "$BIN" info -m "$T/trunc.gguf"
size=$(stat -c %s "$T/m.gguf")
head -c $((size - 100)) "$T/m.gguf" >"$T/cut.gguf"
expect 1 "past the end|beyond|truncat|end of" -- "$BIN" run -m "$T/cut.gguf" --tokens 1
cp "$T/m.gguf" "$T/ver.gguf"; printf '\x07' | dd of="$T/ver.gguf" bs=1 seek=4 conv=notrunc 2>/dev/null
expect 1 "version" -- "$BIN" info -m "$T/ver.gguf"

# a good run for contrast
"$BIN" run -m "$T/m.gguf" --tokens 1,2,3 -n 4 --json >"$T/out" 2>"$T/err" && grep -q '"tokens": \[' "$T/out" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: good run"; cat "$T/err"; }
"$BIN" dump -m "$T/m.gguf" --tokens 1,2,3 -o "$T/d" && [ -s "$T/d/k.npy" ] && [ -s "$T/d/hidden.npy" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: good dump"; }

# reading the file into memory instead of mapping it computes the same thing
"$BIN" dump -m "$T/m.gguf" --no-mmap --tokens 1,2,3 -o "$T/d2" && cmp -s "$T/d/k.npy" "$T/d2/k.npy" && cmp -s "$T/d/logits.npy" "$T/d2/logits.npy" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --no-mmap dump differs"; }
expect 1 "cannot open" -- "$BIN" run -m "$T/missing.gguf" --no-mmap --tokens 1
# --backend: a backend this build lacks is refused by name, in every command that makes a context
for cmd in "run --tokens 1" "dump --tokens 1 -o $T/bd" "embed --input $T/none.txt -o $T/be" "solve --data $T/none.jsonl" \
           "label --data $T/none.jsonl -o $T/bl.jsonl" "selfeval --data $T/none.jsonl --out $T/bs"; do
  expect 2 "unknown --backend 'warp'" -- "$BIN" $cmd -m "$T/m.gguf" --backend warp
done
"$BIN" run -m "$T/m.gguf" --tokens 1,2 -n 2 --backend cpu >/dev/null 2>&1 && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --backend cpu"; }
"$BIN" run -m "$T/m.gguf" --tokens 1,2 -n 2 --backend auto >/dev/null 2>&1 && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --backend auto"; }

echo "cli_errors: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
