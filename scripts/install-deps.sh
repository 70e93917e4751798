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
