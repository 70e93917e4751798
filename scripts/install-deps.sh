#!/usr/bin/env bash
# Installs what kvlens needs to build and test on Debian/Ubuntu (see README, "Dependencies").
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcjson-dev libpcre2-dev libutf8proc-dev
      clang libclang-rt-14-dev libomp-14-dev # clang, libFuzzer + sanitizer runtimes, clang's OpenMP: make fuzz-check
      slurm-wlm munge # a one-node Slurm cluster for tests/slurm (sharded runs as job arrays)
      libmicrohttpd-dev curl) # kvlens serve's HTTP library; curl drives the server tests (tests/server)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# The client tests of `kvlens serve` (tests/server/js): Chromium for the web page test, and node (v20 or later) with
# npm where they are not installed already (Debian 12's nodejs is v18: the tests then skip; NodeSource's v20+ runs
# them). The npm packages themselves are pinned in tests/server/js/package-lock.json and installed by its ctest setup.
web=()
dpkg -s chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || web+=(chromium)
command -v node >/dev/null 2>&1 || web+=(nodejs)
command -v npm >/dev/null 2>&1 || web+=(npm)
if [ ${#web[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${web[@]}"
fi
