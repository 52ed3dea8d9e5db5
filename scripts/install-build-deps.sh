#!/usr/bin/env bash
# Installs what building llama.cpp (vendored by the `llama-cpp-2` crate) needs and a fresh
# Debian machine lacks: cmake, clang and libclang-dev (bindgen). Does nothing when all are
# present; uses sudo when not root.
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v clang >/dev/null 2>&1 || need+=(clang)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
if ((${#need[@]} == 0)); then
  exit 0
fi
echo "installing ${need[*]} (needed to build llama.cpp)" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
