# Shared by the command-line tests (sourced): check counters and the three assertions every test uses. The test
# sets T (its temporary folder) first; EXPECT_MAX_LINES (default 2) bounds the stderr lines `expect` accepts.
fails=${fails:-0} checks=${checks:-0}
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect_eq() { if [ "$2" == "$3" ]; then ok; else bad "$1: got [$2] want [$3]"; fi; }
# expect CODE PATTERN -- command...: exit status CODE and stderr matching PATTERN, at most EXPECT_MAX_LINES lines
expect() {
    local code=$1 pat=$2
    shift 3
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" -eq "$code" ] && grep -qE -- "$pat" "$T/err" && [ "$(wc -l <"$T/err")" -le "${EXPECT_MAX_LINES:-2}" ]; then
        ok
    else
        bad "$* -> rc $rc (want $code), stderr: $(head -c 300 "$T/err")"
    fi
}
