#!/usr/bin/env bash
# The CUDA backend's tests and benchmarks on a GPU machine (issue 13): the CPU-against-CUDA comparison
# (tests/test_cuda.c), compute-sanitizer memcheck and racecheck on it, and the decode/prefill speed of random-weight
# models of real shapes (`kvlens bench --backend cuda`, and test_cuda's bench mode, which also times the kernels
# without CUDA graphs and with cuBLAS alone).
#
#   scripts/gpu-test.sh build [BUILD_DIR]   configure and build with CUDA (needs the CUDA toolkit and the Debian
#                                           packages of scripts/install-deps.sh), then `run` on that build
#   scripts/gpu-test.sh pack DIR            on a machine without a GPU: build portable binaries (x86-64-v3, sm_90)
#                                           in build-gpu/ and copy what `run` needs into DIR (binaries, the
#                                           cjson/pcre2/utf8proc libraries, the test fixtures, this script):
#                                           a folder of about 20 MB to carry to a GPU machine that lacks them
#   scripts/gpu-test.sh run [DIR]           on the GPU machine, in a build or pack folder (default: the script's)
#
# env for run: STEPS (default "smi test sanitize bench"), BENCH_SHAPE (qwen3-8b), BENCH_TYPES (bf16,q8_0),
#              SMALL_SHAPE (qwen3-0.6b, for kvlens bench), SMALL_REPS (3), SAN_TOOLS ("memcheck racecheck"),
#              SAN_TIMEOUT (seconds per sanitizer run, 150),
#              OUT (a folder for the logs; default DIR/logs).
# Prints every measured line; exits non-zero if a test or a sanitizer run fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-run}

build_portable() { # $1 = build dir; only the programs run needs
    cmake -S "$src" -B "$1" -DCMAKE_BUILD_TYPE=Release -DKVL_CUDA=ON -DKVL_NATIVE=OFF \
        -DCMAKE_C_FLAGS=-march=x86-64-v3 -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
    cmake --build "$1" -j "${JOBS:-2}" --target kvlens_cli test_cuda
}

case $mode in
pack)
    src=$(cd "$here/.." && pwd)
    dst=${2:?usage: gpu-test.sh pack DIR}
    build_portable "$src/build-gpu"
    rm -rf "$dst" && mkdir -p "$dst/lib" "$dst/src/tests"
    cp "$src/build-gpu/kvlens" "$src/build-gpu/test_cuda" "$here/gpu-test.sh" "$here/gpu-shards.sh" "$dst/"
    cp -r "$src/tests/fixtures" "$dst/src/tests/"
    # every shared library of the binaries but glibc's own and the CUDA toolkit's (the GPU machine has those)
    ldd "$dst/kvlens" "$dst/test_cuda" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
        grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so|/libcuda|/libcublas|/libcudart|/usr/local/cuda' |
        while read -r p; do cp -L "$p" "$dst/lib/"; done
    du -sh "$dst"
    exit 0
    ;;
build)
    src=$(cd "$here/.." && pwd)
    bdir=${2:-$src/build-gpu}
    cmake -S "$src" -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DKVL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
    cmake --build "$bdir" -j "$(nproc)" --target kvlens_cli test_cuda
    export KVL_SRC=$src
    dir=$bdir
    ;;
run)
    dir=$(cd "${2:-$here}" && pwd)
    export KVL_SRC=${KVL_SRC:-$dir/src}
    ;;
*)
    echo "usage: gpu-test.sh build [BUILD_DIR] | pack DIR | run [DIR]" >&2
    exit 2
    ;;
esac

# ---- run: everything below needs the GPU ----
export LD_LIBRARY_PATH=$dir/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PATH=$PATH:/usr/local/cuda/bin
out=${OUT:-$dir/logs}
mkdir -p "$out"
steps=${STEPS:-smi test sanitize bench}
fail=0
has() { [[ " $steps " == *" $1 "* ]]; }
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*"; }

if has smi; then
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit \
        --format=csv | tee "$out/smi.txt" || true
fi
if has test; then
    stamp "test_cuda (CPU against CUDA)"
    if "$dir/test_cuda" >"$out/test_cuda.log" 2>&1; then grep -E "seq|worst|checks|device" "$out/test_cuda.log"
    else fail=1; tail -30 "$out/test_cuda.log"; fi
fi
if has bench; then
    stamp "kvlens bench --backend cuda --shape ${SMALL_SHAPE:-qwen3-0.6b} --type q8_0"
    "$dir/kvlens" bench --backend cuda --gpu 0 --shape "${SMALL_SHAPE:-qwen3-0.6b}" --type q8_0 -r "${SMALL_REPS:-3}" 2>&1 |
        tee "$out/bench_small.txt" || fail=1
    stamp "test_cuda bench ${BENCH_SHAPE:-qwen3-8b} ${BENCH_TYPES:-bf16,q8_0}"
    KVL_CUDA_BENCH=${BENCH_SHAPE:-qwen3-8b} KVL_CUDA_BENCH_TYPE=${BENCH_TYPES:-bf16,q8_0} "$dir/test_cuda" 2>&1 |
        tee "$out/bench.txt" || fail=1
    nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv | tee -a "$out/bench.txt" || true
fi
if has sanitize; then
    cs=$(command -v compute-sanitizer || true)
    if [ -z "$cs" ]; then echo "compute-sanitizer not found"; fail=1; else
        tools=${SAN_TOOLS:-memcheck racecheck}
        if [[ " $tools " == *" memcheck "* ]]; then
        stamp "compute-sanitizer memcheck (KVL_CUDA_QUICK=1)"
        if KVL_CUDA_QUICK=1 timeout "${SAN_TIMEOUT:-150}" "$cs" --tool memcheck --leak-check full --error-exitcode 3 "$dir/test_cuda" \
            >"$out/memcheck.log" 2>&1; then grep -E "ERROR SUMMARY|LEAK SUMMARY|checks" "$out/memcheck.log"
        else fail=1; tail -30 "$out/memcheck.log"; fi
        fi
        if [[ " $tools " == *" racecheck "* ]]; then
        stamp "compute-sanitizer racecheck (KVL_CUDA_QUICK=1)"
        if KVL_CUDA_QUICK=1 timeout "${SAN_TIMEOUT:-150}" "$cs" --tool racecheck --racecheck-report all --error-exitcode 3 "$dir/test_cuda" \
            >"$out/racecheck.log" 2>&1; then grep -E "RACECHECK SUMMARY|ERROR SUMMARY|checks" "$out/racecheck.log"
        else fail=1; tail -30 "$out/racecheck.log"; fi
        fi
    fi
fi
stamp "done (failures: $fail)"
exit $fail
