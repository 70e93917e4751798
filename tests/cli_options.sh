#!/usr/bin/env bash
# Every subcommand's --help against its parser, and the exit codes (0 ok, 1 runtime failure, 2 usage error):
#  - `kvlens CMD --help` exits 0 with the help on stdout and nothing on stderr;
#  - every option the help lists is accepted by the parser: given alone (with a value when the help shows one) it
#    is not "unknown", not "unexpected" and does not "need a value" (a flag listed as taking a value, or the
#    reverse, is caught here);
#  - a made-up option is refused with exit 2 and a message naming it, first, in the middle and last;
#  - a single-value option given twice (also under two of its names) is refused with exit 2, a value option given
#    last without its value too;
#  - a missing input file is a runtime failure: exit 1.
# Nothing here loads a model: every command line is incomplete or names a missing file.
set -u
BIN=${KVL_BIN:-build/kvlens}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
source "${KVL_SRC:-.}/tests/testlib.sh"

# run CMD... with stdin empty and a time bound; rc in $rc, stderr in $T/err
run() {
    timeout 30 "$@" <"${STDIN:-/dev/null}" >"$T/out" 2>"$T/err"
    rc=$?
}

# A value of the kind the help's value name says (any value does for the structural checks; a plausible one keeps
# the value's own validation out of the way).
sample() {
    case "$1" in
    *'|'*) echo "${1%%|*}" ;;
    N | K | I | S | B | W | BYTES | 'B[,B...]' | SEED) echo 1 ;;
    T | P | D | R | C | X | F | FRAC) echo 0.5 ;;
    I/N) echo 0/1 ;;
    *,*) echo 1,2 ;;
    *) echo x ;;
    esac
}

# The options of a help text, one per line: "NAMES<TAB>ARG<TAB>REPEATABLE" where NAMES are the names one entry lists
# (aliases), ARG is empty for a flag. An entry is a line starting with spaces and "-": its left column (up to two
# spaces) is a comma-separated list of NAME [ARG]; a name without an argument followed by one with an argument is an
# alias of it (-o, --out FILE).
options_of() {
    grep -E '^ {1,6}-' "$1" | while IFS= read -r line; do
        rep=0
        case "$line" in *repeatable*) rep=1 ;; esac
        left=$(printf '%s\n' "$line" | sed -E 's/^ +//; s/  .*$//')
        pending=""
        IFS=',' read -ra items <<<"$left"
        for it in "${items[@]}"; do
            it=$(printf '%s' "$it" | sed -E 's/^ +//; s/ +$//')
            name=${it%% *}
            arg=""
            [ "$name" != "$it" ] && arg=${it#* }
            case "$name" in -*) ;; *) continue ;; esac
            if [ -z "$arg" ]; then
                pending="$pending $name"
            else
                printf '%s\t%s\t%s\n' "${pending# } $name" "$arg" "$rep" | sed -E 's/^ //'
                pending=""
            fi
        done
        for n in $pending; do printf '%s\t=\t%s\n' "$n" "$rep"; done
    done
}

# Subcommands (probe's two as one word each) and, for the made-up option, a minimal command line around it.
CMDS=(info run dump bench convert tokenize detokenize chat-template embed embed-eval score selfeval label
      "probe train" "probe eval" solve merge serve)
declare -A BASE=(
    [info]="-m $T/none.gguf --json" [run]="-m $T/none.gguf -p hi" [dump]="-m $T/none.gguf -o $T/d"
    [bench]="-m $T/none.gguf --json" [convert]="$T/nohf $T/o.gguf" [tokenize]="-m $T/none.gguf --add-bos"
    [detokenize]="-m $T/none.gguf -m" [chat-template]="-m $T/none.gguf --messages $T/none.json"
    [embed]="-m $T/none.gguf --input $T/none.txt -o $T/e" [embed-eval]="-m $T/none.gguf --data $T/none.jsonl"
    [score]="-m $T/none.gguf -p hi --answer x" [selfeval]="-m $T/none.gguf --data $T/none.jsonl --out $T/s"
    [label]="-m $T/none.gguf --data $T/none.jsonl -o $T/l.jsonl" [probe train]="-m $T/none.gguf --labels $T/none.jsonl -o $T/p"
    [probe eval]="-m $T/none.gguf --labels $T/none.jsonl --probe $T/none.bin" [solve]="-m $T/none.gguf --data $T/none.jsonl"
    [merge]="$T/out.jsonl $T/none.jsonl" [serve]="-m $T/none.gguf --port 0")
# detokenize takes nothing but -m: its middle position is between -m and a repeated... no: give it -m once
BASE[detokenize]="-m $T/none.gguf"

for cmd in "${CMDS[@]}"; do
    # --help: exit 0, the help on stdout, nothing on stderr
    run "$BIN" $cmd --help
    if [ "$rc" -eq 0 ] && grep -q "usage: kvlens ${cmd%% *}" "$T/out" && [ ! -s "$T/err" ]; then ok
    else bad "$cmd --help -> rc $rc, stderr: $(head -c 200 "$T/err")"; fi
    cp "$T/out" "$T/help"
    options_of "$T/help" >"$T/opts"
    [ -s "$T/opts" ] || [ "$cmd" = merge ] || bad "$cmd --help lists no option"

    # every listed option is taken by the parser
    while IFS=$'\t' read -r names arg rep; do
        [ "$arg" = "=" ] && arg=""
        for n in $names; do
            [ "$n" = -h ] || [ "$n" = --help ] && continue
            if [ -n "$arg" ]; then run "$BIN" $cmd "$n" "$(sample "$arg")"; else run "$BIN" $cmd "$n"; fi
            if grep -qE "unknown option|unexpected argument|needs a value" "$T/err" || [ "$rc" -eq 124 ] || [ "$rc" -eq 0 ]; then
                bad "$cmd: the help lists $n${arg:+ $arg} but: rc $rc, $(head -c 200 "$T/err")"
            else ok; fi
            [ -z "$arg" ] && continue
            # given twice (single-value options): refused, exit 2
            if [ "$rep" = 0 ]; then
                v=$(sample "$arg")
                run "$BIN" $cmd "$n" "$v" "$n" "$v"
                if [ "$rc" -eq 2 ] && grep -q "more than once" "$T/err"; then ok
                else bad "$cmd $n given twice -> rc $rc, $(head -c 200 "$T/err")"; fi
            fi
            # without its value (last): exit 2, "needs a value"
            run "$BIN" $cmd "$n"
            if [ "$rc" -eq 2 ] && grep -q "needs a value" "$T/err"; then ok
            else bad "$cmd $n without a value -> rc $rc, $(head -c 200 "$T/err")"; fi
        done
        # two names of one option: the same option given twice
        set -- $names
        if [ -n "$arg" ] && [ "$rep" = 0 ] && [ $# -ge 2 ]; then
            v=$(sample "$arg")
            run "$BIN" $cmd "$1" "$v" "$2" "$v"
            if [ "$rc" -eq 2 ] && grep -q "more than once" "$T/err"; then ok
            else bad "$cmd $1 and $2 (one option) -> rc $rc, $(head -c 200 "$T/err")"; fi
        fi
    done <"$T/opts"

    # a made-up option, first, in the middle and last: exit 2 and a message naming it
    read -ra base <<<"${BASE[$cmd]}"
    for where in first middle last; do
        case $where in
        first) args=(--zz-bogus "${base[@]}") ;;
        middle) args=("${base[@]:0:2}" --zz-bogus "${base[@]:2}") ;;
        last) args=("${base[@]}" --zz-bogus) ;;
        esac
        run "$BIN" $cmd "${args[@]}"
        if [ "$rc" -eq 2 ] && grep -q -- "--zz-bogus" "$T/err"; then ok
        else bad "$cmd ${args[*]} (made-up option $where) -> rc $rc, $(head -c 200 "$T/err")"; fi
    done
done

# A missing input file is a runtime failure (1), for every subcommand that reads one; the rest of the command line
# is complete.
printf '[{"role": "user", "content": "hi"}]\n' >"$T/conv.json"
printf '{"question": "1+1?", "answer": "2"}\n' >"$T/p.jsonl"
M=$T/missing.gguf
missing() {
    run "$BIN" "$@"
    if [ "$rc" -eq 1 ] && grep -qE "missing|No such file|cannot open" "$T/err"; then ok
    else bad "$* (a missing file) -> rc $rc, want 1: $(head -c 200 "$T/err")"; fi
}
missing info -m "$M"
missing run -m "$M" -p hi
missing run -m "$M" -f "$T/missing.txt"
missing dump -m "$M" -p hi -o "$T/d"
missing bench -m "$M"
missing convert "$T/missing" "$T/o.gguf"
missing tokenize -m "$M"
echo '[1, 2]' >"$T/ids.json"
STDIN=$T/ids.json missing detokenize -m "$M"
missing chat-template -m "$M" --messages "$T/conv.json"
missing chat-template --template "$T/missing.txt" --messages "$T/conv.json"
missing embed -m "$M" --input "$T/missing.txt" -o "$T/e"
missing embed-eval -m "$M" --data "$T/missing.jsonl"
missing score -m "$M" -p hi --answer x
missing score -m "$M" --data "$T/missing.jsonl" --out "$T/s.jsonl"
missing selfeval -m "$M" --data "$T/missing.jsonl" --out "$T/se"
missing solve -m "$M" --data "$T/missing.jsonl"
missing solve -m "$M" --data "$T/p.jsonl"
missing label -m "$M" --data "$T/missing.jsonl" -o "$T/l.jsonl"
missing probe train -m "$M" --labels "$T/missing.jsonl" -o "$T/p.bin"
missing probe eval -m "$M" --labels "$T/missing.jsonl" --probe "$T/missing.bin"
missing merge "$T/out.jsonl" "$T/missing.jsonl"
missing serve -m "$M" --port 0

echo "cli_options: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
