# Shared by the server tests (tests/server/server_*.sh): start `kvlens serve` on 127.0.0.1 with --port 0 on the shipped
# model, wait for its "listening on" line, talk to it with curl, read JSON with python3, stop it with a signal.
# Every wait is bounded. Source it after setting nothing; it sets BIN, SRC, MODEL, PROBE, T and the helpers.
set -u
BIN=${KVL_BIN:-build/kvlens}
SRC=${KVL_SRC:-.}
MODEL=${KVL_THINK_MODEL:-$SRC/models/kvlens-think-2-q8_0.gguf}
PROBE=$SRC/models/kvlens-think-2-probe.bin
[ -f "$MODEL" ] || { echo "SKIP: no $MODEL"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
T=$(mktemp -d)
# the tests' Python helpers (confidence_tol.py: how two computations of the same confidence scores are compared)
export PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
SRV_PIDS=()
cleanup() {
    for p in "${SRV_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    if [ "$fails" -gt 0 ]; then # the servers' last words, for the failure report
        for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; grep -v '^kvlens serve: [A-Z]* /' "$f" | tail -40; }; done
    fi
    rm -rf "$T"
}
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect_eq() { if [ "$2" == "$3" ]; then ok; else bad "$1: got [$2] want [$3]"; fi; }
finish() {
    echo "$checks checks, $fails failed"
    [ "$fails" -eq 0 ]
}

# start_server NAME [serve options...]: sets URL and SRV_PID; the log goes to $T/NAME.log
start_server() {
    local name=$1
    shift
    if [ "${SRV_THREADS:-1}" = all ]; then # every core, OpenMP's defaults (as a user starts it)
        env -u OMP_NUM_THREADS "$BIN" serve -m "$MODEL" --port 0 "$@" >"$T/$name.log" 2>&1 &
    else
        "$BIN" serve -m "$MODEL" --port 0 -t "${SRV_THREADS:-1}" "$@" >"$T/$name.log" 2>&1 &
    fi
    SRV_PID=$!
    SRV_PIDS+=("$SRV_PID")
    URL=
    for _ in $(seq 1 600); do # 60 s at most (sanitizer builds start slowly)
        URL=$(grep -o 'listening on http://[0-9.]*:[0-9]*' "$T/$name.log" | head -1 | sed 's/listening on //')
        [ -n "$URL" ] && return 0
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server $name did not start: $(tail -5 "$T/$name.log")" >&2
    return 1
}

# stop_server SIGNAL: sends it, waits (bounded) and sets SRV_RC to the exit status (124: did not exit in time)
stop_server() {
    kill -"$1" "$SRV_PID" 2>/dev/null
    for _ in $(seq 1 300); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SRV_PID" 2>/dev/null; then
        kill -KILL "$SRV_PID"
        wait "$SRV_PID" 2>/dev/null
        SRV_RC=124
    else
        wait "$SRV_PID"
        SRV_RC=$?
    fi
}

# req METHOD PATH [BODY [curl options...]]: body to $T/body, headers to $T/hdr; prints the status code
req() {
    local m=$1 p=$2 b=${3-}
    shift 3 2>/dev/null || shift $#
    if [ -n "$b" ]; then
        curl -s -m 120 -X "$m" -o "$T/body" -D "$T/hdr" -w '%{http_code}' -H 'Content-Type: application/json' \
            --data-binary "$b" "$@" "$URL$p"
    else
        curl -s -m 120 -X "$m" -o "$T/body" -D "$T/hdr" -w '%{http_code}' "$@" "$URL$p"
    fi
}

# jv FILE EXPR: a Python expression over the JSON in FILE (as d)
jv() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# metric NAME: its value in /metrics
metric() { curl -s -m 10 "$URL/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
