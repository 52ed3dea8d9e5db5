#!/usr/bin/env bash
# Installs a real OpenAI-compatible server for the tests in tests/real_server.rs:
# llama-cpp-python's server (`python -m llama_cpp.server`), built from its PyPI source
# distribution (which vendors llama.cpp) into a virtual environment under
# ~/.cache/pe/servers/, keyed by version and Python version, so a second run reuses it.
#
# usage: scripts/llama-server.sh        installs if needed, then prints the venv's python
#
# The build is portable (no -march=native: the cache may outlive the CPU it was built on),
# CPU only, without libcurl, tests or examples: about 5 minutes on 2 cores (see README).
set -euo pipefail

VERSION=0.3.36
py=${PYTHON:-python3}
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
root=${PE_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pe/servers}
venv="$root/llama-cpp-python-$VERSION-py$pyver"
marker="$venv/.installed"

if [ ! -f "$marker" ]; then
  echo "building llama-cpp-python $VERSION (server extra) into $venv" >&2
  start=$(date +%s)
  rm -rf "$venv"
  mkdir -p "$root"
  if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 keeps venv (ensurepip) in a package of its own.
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    "$py" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAVA_BUILD=OFF -DLLAMA_LLAVA=OFF -DGGML_OPENMP=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-binary llama-cpp-python "llama-cpp-python[server]==$VERSION" >&2
  "$venv/bin/python" -c 'import llama_cpp.server' >&2
  echo "built in $(($(date +%s) - start)) s" >&2
  touch "$marker"
fi
echo "$venv/bin/python"
