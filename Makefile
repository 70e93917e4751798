# Thin wrapper over CMake. `make` builds build/kvlens; `make test` runs the tests;
# `make asan` builds and tests with Address/UB sanitizers in build-asan/.
JOBS ?= $(shell nproc)

.PHONY: all build test asan check clean demo
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

# What CI runs: the release tests, then the sanitizer tests.
check: test asan

clean:
	rm -rf build build-asan

# The demo: convert a small checkpoint, show it, generate, and dump its cache as NumPy arrays.
demo: build
	build/kvlens convert tests/fixtures/qwen3/hf build/demo.gguf --no-vocab --type bf16
	build/kvlens info -m build/demo.gguf
	build/kvlens run -m build/demo.gguf --tokens 1,17,42,99 -n 16
	build/kvlens dump -m build/demo.gguf --tokens 1,17,42,99 -o build/demo-dump
	@ls -l build/demo-dump
