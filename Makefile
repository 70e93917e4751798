# Thin wrapper over CMake. `make` builds build/kvlens; `make test` runs the tests;
# `make asan` builds and tests with Address/UB sanitizers in build-asan/.
JOBS ?= $(shell nproc)

.PHONY: all build test asan check clean
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
