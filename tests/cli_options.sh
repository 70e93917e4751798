#!/usr/bin/env bash
# Every subcommand's --help against its parser, and the exit codes (0 ok, 1 runtime failure, 2 usage error):
#  - `kvlens CMD --help` exits 0 with the help on stdout and nothing on stderr;
#  - every option the help lists is accepted by the parser: given alone (with a value when the help shows one) it
#    is not "unknown", not "unexpected" and does not "need a value" (a flag listed as taking a value, or the
#    reverse, is caught here), and a plausible number (2, 0.5) is not a "bad" value; an option name another
#    command's help lists but this one's does not is refused as unknown (the parser takes no more than its help);
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

# run CMD... with stdin empty and a time bound; rc in $rc, stdout and stderr in $W/out and $W/err
run() {
    timeout 30 "$@" <"${STDIN:-/dev/null}" >"$W/out" 2>"$W/err"
    rc=$?
}

# A value of the kind the help's value name says (any value does for the structural checks; a plausible one keeps
# the value's own validation out of the way).
sample() {
    case "$1" in
    *'|'*) echo "${1%%|*}" ;;
    BYTES) echo 4096 ;;
    N | K | I | S | B | W | 'B[,B...]' | SEED) echo 2 ;;
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
    [detokenize]="-m $T/none.gguf" [chat-template]="-m $T/none.gguf --messages $T/none.json"
    [embed]="-m $T/none.gguf --input $T/none.txt -o $T/e" [embed-eval]="-m $T/none.gguf --data $T/none.jsonl"
    [score]="-m $T/none.gguf -p hi --answer x" [selfeval]="-m $T/none.gguf --data $T/none.jsonl --out $T/s"
    [label]="-m $T/none.gguf --data $T/none.jsonl -o $T/l.jsonl" [probe train]="-m $T/none.gguf --labels $T/none.jsonl -o $T/p"
    [probe eval]="-m $T/none.gguf --labels $T/none.jsonl --probe $T/none.bin" [solve]="-m $T/none.gguf --data $T/none.jsonl"
    [merge]="$T/out.jsonl $T/none.jsonl" [serve]="-m $T/none.gguf --port 0")

# Every command's help first (each command's checks need the names all the helps list).
W=$T
for k in "${!CMDS[@]}"; do
    cmd=${CMDS[$k]}
    mkdir -p "$T/w$k"
    W=$T/w$k run "$BIN" $cmd --help
    W=$T/w$k
    if [ "$rc" -eq 0 ] && grep -q "usage: kvlens ${cmd%% *}" "$W/out" && [ ! -s "$W/err" ]; then ok
    else bad "$cmd --help -> rc $rc, stderr: $(head -c 200 "$W/err")"; fi
    options_of "$W/out" >"$W/opts"
    cut -f1 "$W/opts" | tr ' ' '\n' >>"$T/all.unsorted"
done
sort -u "$T/all.unsorted" | grep -v '^$' >"$T/all"
W=$T

# The checks of one command (in its own folder $W; its counts in $W/counts, its failures on stderr).
check_cmd() {
    local cmd=$1 checks=0 fails=0
    W=$2
    [ -s "$W/opts" ] || [ "$cmd" = merge ] || bad "$cmd --help lists no option"

    # every listed option is taken by the parser
    while IFS=$'\t' read -r names arg rep; do
        [ "$arg" = "=" ] && arg=""
        for n in $names; do
            [ "$n" = -h ] || [ "$n" = --help ] && continue
            if [ -n "$arg" ]; then run "$BIN" $cmd "$n" "$(sample "$arg")"; else run "$BIN" $cmd "$n"; fi
            numeric=0
            case "$arg" in N | K | I | S | B | W | BYTES | T | P | D | R | C | X | F) numeric=1 ;; esac
            if grep -qE "unknown option|unexpected argument|needs a value" "$W/err" || [ "$rc" -eq 124 ] || [ "$rc" -eq 0 ] ||
                { [ $numeric = 1 ] && grep -q -- "bad .*'$(sample "$arg")'" "$W/err"; }; then
                bad "$cmd: the help lists $n${arg:+ $arg} but: rc $rc, $(head -c 200 "$W/err")"
            else ok; fi
            [ -z "$arg" ] && continue
            # given twice (single-value options): refused, exit 2
            if [ "$rep" = 0 ]; then
                v=$(sample "$arg")
                run "$BIN" $cmd "$n" "$v" "$n" "$v"
                if [ "$rc" -eq 2 ] && grep -q "more than once" "$W/err"; then ok
                else bad "$cmd $n given twice -> rc $rc, $(head -c 200 "$W/err")"; fi
            fi
            # without its value (last): exit 2, "needs a value"
            run "$BIN" $cmd "$n"
            if [ "$rc" -eq 2 ] && grep -q "needs a value" "$W/err"; then ok
            else bad "$cmd $n without a value -> rc $rc, $(head -c 200 "$W/err")"; fi
        done
        # two names of one option: the same option given twice
        set -- $names
        if [ -n "$arg" ] && [ "$rep" = 0 ] && [ $# -ge 2 ]; then
            v=$(sample "$arg")
            run "$BIN" $cmd "$1" "$v" "$2" "$v"
            if [ "$rc" -eq 2 ] && grep -q "more than once" "$W/err"; then ok
            else bad "$cmd $1 and $2 (one option) -> rc $rc, $(head -c 200 "$W/err")"; fi
        fi
    done <"$W/opts"

    # a made-up option, first, in the middle and last: exit 2 and a message naming it
    read -ra base <<<"${BASE[$cmd]}"
    for where in first middle last; do
        case $where in
        first) args=(--zz-bogus "${base[@]}") ;;
        middle) args=("${base[@]:0:2}" --zz-bogus "${base[@]:2}") ;;
        last) args=("${base[@]}" --zz-bogus) ;;
        esac
        run "$BIN" $cmd "${args[@]}"
        if [ "$rc" -eq 2 ] && grep -q -- "--zz-bogus" "$W/err"; then ok
        else bad "$cmd ${args[*]} (made-up option $where) -> rc $rc, $(head -c 200 "$W/err")"; fi
    done

    # The other direction: an option name that some command's help lists but this command's does not is refused as
    # unknown by this command (a parser that takes more than its help says is caught here).
    cut -f1 "$W/opts" | tr ' ' '\n' | sort -u >"$W/mine"
    comm -23 "$T/all" "$W/mine" | grep -vxE -- '-h|--help' >"$W/others"
    while read -r n; do
        run "$BIN" $cmd "$n" x
        if [ "$rc" -eq 2 ] && grep -q -- "unknown option '$n'" "$W/err"; then ok
        else bad "$cmd takes $n (rc $rc: $(head -c 150 "$W/err")) but its help does not list it"; fi
    done <"$W/others"
    echo "$checks $fails" >"$W/counts"
}

# four commands at a time
for k in "${!CMDS[@]}"; do
    check_cmd "${CMDS[$k]}" "$T/w$k" 2>"$T/w$k/fails" &
    [ $((k % 4)) -eq 3 ] && wait
done
wait
for k in "${!CMDS[@]}"; do
    cat "$T/w$k/fails" >&2
    if read -r c f <"$T/w$k/counts"; then checks=$((checks + c)) fails=$((fails + f)); else bad "${CMDS[$k]}: no counts"; fi
done

# Options that do not apply to a combination are refused, not ignored; usage errors go to stderr, not stdout.
printf '{"text": "a", "label": "x"}\n' >"$T/lab.jsonl"
for o in "--gpu 0" "--backend cpu" "-t 1" "--ctx-size 8" "-np 2" "--chat" "--pool sum"; do
    run "$BIN" embed-eval --vectors "kv=$T/none.npy" --data "$T/lab.jsonl" $o
    if [ "$rc" -eq 2 ] && grep -q "belongs to the embedding step" "$T/err"; then ok
    else bad "embed-eval --vectors with $o -> rc $rc, $(head -c 150 "$T/err")"; fi
done
run "$BIN" probe
if [ "$rc" -eq 2 ] && [ ! -s "$T/out" ] && [ -s "$T/err" ]; then ok; else bad "kvlens probe (no subcommand) -> rc $rc, stdout $(wc -c <"$T/out") bytes"; fi
# a directory where a file is expected is a usage error (2)
run "$BIN" serve -m "$T"
if [ "$rc" -eq 2 ] && grep -q "is a directory" "$T/err"; then ok; else bad "serve -m DIR -> rc $rc, want 2: $(head -c 150 "$T/err")"; fi

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

# -m naming a directory is a usage error (2) in every subcommand that takes a model, checked when the options are read
for c in "info" "run -p hi" "dump -p hi -o $T/d" "bench" "tokenize" "detokenize" "chat-template --messages $T/conv.json" \
    "embed --input $T/conv.json -o $T/e" "embed-eval --data $T/p.jsonl" "score -p hi --answer x" \
    "selfeval --data $T/p.jsonl --out $T/se" "solve --data $T/p.jsonl" "label --data $T/p.jsonl -o $T/l.jsonl" \
    "probe train --labels $T/p.jsonl -o $T/p.bin" "serve --port 0"; do
    # shellcheck disable=SC2086 # the words of c are the command line
    STDIN=$T/ids.json run "$BIN" $c -m "$T"
    if [ "$rc" -eq 2 ] && grep -q "is a directory" "$T/err"; then ok; else bad "$c -m DIR -> rc $rc, want 2: $(head -c 150 "$T/err")"; fi
done

echo "cli_options: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
