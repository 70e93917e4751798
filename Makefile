# Thin wrapper over CMake. `make` builds build/kvlens; `make test` runs the tests;
# `make asan` builds and tests with Address/UB sanitizers in build-asan/.
JOBS ?= $(shell nproc)

.PHONY: all build test asan tsan check clean demo fuzz-check cuda
all: build

build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build -j $(JOBS)

test: build
	cd build && ctest --output-on-failure -j $(JOBS)

asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKVL_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# `make build` compiles the CUDA backend whenever nvcc is found (CMakeLists.txt); this target insists on it
# (build-cuda/, -DKVL_CUDA=ON: an error without the toolkit). tests/test_cuda compares it with the CPU backend where
# a GPU is present, else skips; scripts/gpu-test.sh runs it with compute-sanitizer and the benchmarks on a GPU machine.
cuda:
	cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DKVL_CUDA=ON >/dev/null
	cmake --build build-cuda -j $(JOBS)

# libFuzzer harnesses (clang) in build-fuzz/: the committed seed and regression inputs must pass, then each
# harness fuzzes for FUZZ_SECONDS (default 10) on one core. See tests/fuzz/README.md.
FUZZ_SECONDS ?= 10
fuzz-check:
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) bash tests/fuzz/check.sh

# ThreadSanitizer (clang, libomp with its TSan annotations through the Archer tool) on the threaded tests: two
# contexts evaluating at once in two threads, and batches over several sequences (tests/test_batch.c).
ARCHER ?= $(firstword $(wildcard /usr/lib/llvm-*/lib/libarcher.so))
# Also the server (its HTTP threads, the scheduler thread and the batch) under 16 concurrent clients and faults.
tsan:
	CC=clang cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVL_TSAN=ON >/dev/null
	cmake --build build-tsan -j $(JOBS) --target test_batch kvlens_cli
	cd build-tsan && KVL_SRC=$(CURDIR) OMP_NUM_THREADS=2 OMP_TOOL_LIBRARIES=$(ARCHER) \
	  TSAN_OPTIONS='ignore_noninstrumented_modules=1 halt_on_error=1' ./test_batch
	for t in server_concurrency server_faults; do \
	  KVL_SRC=$(CURDIR) KVL_BIN=$(CURDIR)/build-tsan/kvlens OMP_NUM_THREADS=1 OMP_TOOL_LIBRARIES=$(ARCHER) \
	  TSAN_OPTIONS='ignore_noninstrumented_modules=1 halt_on_error=1 exitcode=66' bash tests/server/$$t.sh || exit 1; done

# What CI runs: the release tests, the sanitizer tests (address/UB, thread), then the fuzz check.
check: test asan tsan fuzz-check

clean:
	rm -rf build build-asan build-tsan build-fuzz

# The demo: the shipped hybrid-thinking model on a handful of test problems in both modes (answers, tokens spent,
# right or wrong) and with the KV-cache probe choosing the mode, then one streamed chat answer and its KV cache
# dumped as NumPy arrays.
MODEL ?= models/kvlens-think-2-q8_0.gguf
demo: build
	build/kvlens info -m $(MODEL)
	build/kvlens solve -m $(MODEL) --data data/easy.jsonl --limit 8 --think fast --show -t 1
	build/kvlens solve -m $(MODEL) --data data/easy.jsonl --limit 8 --think slow --show -t 1
	build/kvlens solve -m $(MODEL) --data data/easy.jsonl --limit 8 --think auto1 --probe models/kvlens-think-2-probe.bin -t 1
	build/kvlens run -m $(MODEL) --chat --think slow -t 1 -n 1200 \
	  -p "Mia has 12 apples. She buys 7 more apples. Then she gives 5 apples to Leo. How many apples does Mia have now? End your reply with \"The answer is\" and the number."
	build/kvlens dump -m $(MODEL) --chat -p "What is 3 + 4?" -o build/demo-dump
	@ls -l build/demo-dump
