#!/bin/bash
# The load benchmark of BENCHMARKS.md ("Serving under load"): `kvlens serve` and llama.cpp's `llama-server` (release
# v0.5.0, built here from node-llama-cpp's source bundle as tools/llamacpp/run.sh does) on the same GGUF files,
# same threads and slots, one server at a time, each driven by tools/loadbench/loadbench.mjs at 1, 8 and 32
# concurrent clients. Models: the shipped kvlens-think-2 (greedy, thinking on, answers end by themselves) and a
# Qwen3-0.6B-shaped model with random weights (tools/make_shape_checkpoint.py + kvlens convert --type q8_0; its
# answers never end, so each runs to max_tokens).
#
#   tools/loadbench/run.sh [WORK_DIR]     (after `make`; needs node >= 20, npm, cmake, g++; for the 0.6B shape
#                                          ../shared/tokenizers/qwen3)
# env: THREADS (2), SLOTS (32), MODELS ("think9m q06"), ENGINES ("kvlens llama"), JOBS (2, for building llama.cpp)
#      CLIENTS ("1,8,32"), REQ_9M ("16,64,128"), REQ_06 ("4,16,32"): requests measured at each number of clients;
#      STREAM=1: streamed answers (adds the time to the first token); TOK_9M (256), TOK_06 (32):
#      max_tokens. Prints the machine, its load (uptime) before each run, and one markdown table per engine and model.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
work=${1:-/tmp/kvl-loadbench}
threads=${THREADS:-2}
slots=${SLOTS:-32}
models=${MODELS:-think9m q06}
engines=${ENGINES:-kvlens llama}
kvlens=${KVLENS:-$src/build/kvlens}
[ -x "$kvlens" ] || { echo "build kvlens first (make)"; exit 2; }
command -v node >/dev/null || { echo "needs node (v20 or later)"; exit 2; }
mkdir -p "$work"

# --- llama-server from llama.cpp v0.5.0 (CPU; native, OpenMP, as tools/llamacpp/run.sh builds llama.cpp)
lc=$work/llama.cpp
server=$lc/build/bin/llama-server
if [ ! -x "$server" ]; then
    (cd "$src/tools/llamacpp" && npm install --no-audit --no-fund --ignore-scripts >/dev/null)
    [ -d "$lc" ] || git clone -q "$src/tools/llamacpp/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$lc"
    cmake -S "$lc" -B "$lc/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=ON >"$work/cmake.log" 2>&1
    cmake --build "$lc/build" --target llama-server -j"${JOBS:-2}" >"$work/build.log" 2>&1 ||
        { echo "llama-server did not build: see $work/build.log"; tail -20 "$work/build.log"; exit 1; }
fi

# --- the models
declare -A file maxtok reqs thinking
file[think9m]=$src/models/kvlens-think-2-q8_0.gguf maxtok[think9m]=${TOK_9M:-256} reqs[think9m]=${REQ_9M:-16,64,128}
thinking[think9m]=on
file[q06]=$work/q06-q8_0.gguf maxtok[q06]=${TOK_06:-32} reqs[q06]=${REQ_06:-4,16,32} thinking[q06]=off
if [[ " $models " == *" q06 "* ]] && [ ! -f "${file[q06]}" ]; then
    tok=$src/../shared/tokenizers/qwen3
    [ -d "$tok" ] || { echo "no $tok: the Qwen3-0.6B shape needs its tokenizer"; exit 2; }
    [ -f "$work/q06/model.safetensors" ] || python3 "$src/tools/make_shape_checkpoint.py" "$work/q06" "$tok" >/dev/null
    "$kvlens" convert "$work/q06" "${file[q06]}" --type q8_0 >/dev/null
fi

# --- one server at a time: start, wait until it answers, measure, stop
pid=
stop() { # SIGTERM, then SIGKILL after 15 s
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
}
trap stop EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { # URL LOG: until GET /health is 200 (at most 120 s)
    for _ in $(seq 240); do
        curl -sf "$1/health" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { echo "the server exited:"; tail -5 "$2"; return 1; }
        sleep 0.5
    done
    echo "the server did not come up in 120 s:"; tail -5 "$2"; return 1
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "threads $threads, slots $slots; kvlens $(git -C "$src" rev-parse --short HEAD), llama.cpp $(git -C "$lc" describe --tags --always 2>/dev/null || echo v0.5.0)"
for m in $models; do
    f=${file[$m]}
    ctx=$((slots * 512)) # 512 positions per slot (kvlens -c is per slot, llama-server's -c is shared by its -np slots):
                         # the longest prompt here is under 200 tokens, answers <= 256
    for e in $engines; do
        port=$(free_port)
        log=$work/server-$e-$m.log
        if [ "$e" = kvlens ]; then
            "$kvlens" serve -m "$f" --host 127.0.0.1 --port "$port" -t "$threads" -np "$slots" -c 512 --quiet \
                --queue 256 >"$log" 2>&1 &
        else
            "$server" -m "$f" --host 127.0.0.1 --port "$port" -t "$threads" -tb "$threads" -np "$slots" -c "$ctx" \
                --jinja --no-webui >"$log" 2>&1 &
        fi
        pid=$!
        wait_up "http://127.0.0.1:$port" "$log"
        echo
        echo "== $e, $m ($(basename "$f")), max_tokens ${maxtok[$m]}, thinking ${thinking[$m]}; load before:$(uptime | sed 's/.*load average//')"
        node "$here/loadbench.mjs" --url "http://127.0.0.1:$port" --clients "${CLIENTS:-1,8,32}" --requests "${reqs[$m]}" \
            --max-tokens "${maxtok[$m]}" --thinking "${thinking[$m]}" --label "$e $m" ${STREAM:+--stream}
        stop
    done
done
