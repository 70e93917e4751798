#!/bin/bash
# Build kvlens and run its test suite on a machine without CMake's dependencies installed: the GPU machine
# (`device` tool), whose CPU has AVX-512, VNNI and AMX that this project's 2-core AVX2 machines lack. That is
# where the AVX-512 kernels (KVL_MM_AVX512, KVL_MM_VNNI512 in src/compute/mm_internal.h) are tested.
#
#   tools/device_check.sh [BUILD_DIR]        env: CFLAGS_EXTRA (e.g. "-mno-avx512f" for the AVX2 kernels, or
#                                                 "-fsanitize=address,undefined -fno-sanitize-recover=undefined"),
#                                                 DEBS (folder of Debian .deb files for pcre2/utf8proc/cjson),
#                                                 NO_TESTS=1 (build only)
# The Debian packages (libpcre2-dev libutf8proc-dev libutf8proc2 libcjson-dev libcjson1, fetched here with
# `apt-get download` into .dev-debs/, which git ignores) are unpacked into the build folder, not into /.
# Prints one line per test and a summary "N passed, M failed, K skipped"; exits non-zero if any failed.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/kvl-device-build}
debs=${DEBS:-$src/.dev-debs}
mkdir -p "$out/obj" "$out/deps"
inc=() lib=()
if [ -d "$debs" ]; then
    for d in "$debs"/*.deb; do dpkg -x "$d" "$out/deps"; done
    inc=(-I"$out/deps/usr/include")
    lib=(-L"$out/deps/usr/lib/x86_64-linux-gnu" -Wl,-rpath,"$out/deps/usr/lib/x86_64-linux-gnu")
fi
cflags=(-std=c11 -O3 -march=native -Wall -Wextra -fopenmp -D_GNU_SOURCE -I"$src/include" -I"$src/src" -I"$src/tests"
        "${inc[@]}")
# shellcheck disable=SC2206
cflags+=(${CFLAGS_EXTRA:-})
libs=("${lib[@]}" -lcjson -lpcre2-8 -lutf8proc -lm -fopenmp)

# library objects in parallel, then one link per program
mapfile -t lib_src < <(find "$src/src" -name '*.c' -not -path '*/src/cli/*' | sort)
printf '%s\n' "${lib_src[@]}" | xargs -P "$(nproc)" -I{} sh -c \
    'f=$1; shift; gcc "$@" -c "$f" -o "$0/obj/$(echo "$f" | sed "s|.*/src/||; s|/|_|g").o"' "$out" {} "${cflags[@]}" 2>&1 |
    grep -v "^$" || true
ar rcs "$out/libkvlens.a" "$out"/obj/*.o
gcc "${cflags[@]}" "$src"/src/cli/*.c "$out/libkvlens.a" "${libs[@]}" -o "$out/kvlens"
for t in "$src"/tests/test_*.c "$src"/bench/*.c; do
    n=$(basename "$t" .c)
    gcc "${cflags[@]}" "$t" "$out/libkvlens.a" "${libs[@]}" -o "$out/$n" &
    while [ "$(jobs -r | wc -l)" -ge "$(nproc)" ]; do wait -n; done
done
wait
[ -z "${NO_TESTS:-}" ] || exit 0

pass=0 fail=0 skip=0
export KVL_SRC=$src KVL_BIN=$out/kvlens KVL_SHARED=$src/../shared OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
for t in "$src"/tests/test_*.c "$src"/tests/cli_*.sh; do
    n=$(basename "$t"); n=${n%.*}
    set +e
    if [ "${t##*.}" = c ]; then "$out/$n" >"$out/$n.log" 2>&1; else bash "$t" >"$out/$n.log" 2>&1; fi
    rc=$?
    set -e
    case $rc in
    0) pass=$((pass + 1)); echo "pass  $n: $(tail -1 "$out/$n.log")" ;;
    77) skip=$((skip + 1)); echo "skip  $n" ;;
    *) fail=$((fail + 1)); echo "FAIL  $n (exit $rc)"; tail -5 "$out/$n.log" ;;
    esac
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
