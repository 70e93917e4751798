#!/usr/bin/env bash
# 64 greedy requests from 16 concurrent clients against one server with 8 slots: all complete, each answer equal
# to the same request served alone (tests/server/concurrency.py), and the server still idle and healthy after.
. "$(dirname "$0")/lib.sh"
start_server c --probe "$PROBE" --parallel 8 --queue 64 --ctx 1024 || exit 1
timeout 600 python3 "$(dirname "$0")/concurrency.py" "$URL" "$SRC/data/easy.jsonl" && ok || bad "concurrent answers differ"
expect_eq "slots busy after" "$(metric kvlens_slots_busy)" 0
expect_eq "in flight after" "$(metric kvlens_requests_in_flight)" 0
expect_eq "128 answers counted" "$(curl -s "$URL/metrics" | awk '/^kvlens_requests_total\{route="\/v1\/(chat\/)?completions",status="200"\}/ {n += $2} END {print n}')" 128
stop_server TERM
expect_eq "exit status" "$SRV_RC" 0
finish
