#!/usr/bin/env bash
# How often the README's first command gives the right answer on a local model: runs
# workflows/quickstart.yaml once per seed and compares the answer with the tool's data.
#   right  : exit 0 and the answer says the country with the larger GDP had it
#   failed : the run said it failed (exit != 0) — honest, but no answer
#   WRONG  : exit 0 with a wrong answer — the case that must not happen
# usage: scripts/measure-quickstart.sh [SEEDS] [MODEL] [PE]
#   SEEDS: how many seeds (1..N), default 10 · MODEL: default smollm2-135m
#   PE: the binary, default ./target/debug/pe (llama.cpp is optimised in debug builds too)
# The seed goes in through the workflow's own `models.default.seed` (a temporary copy of the
# workflow with a `models:` block); nothing else differs from the shipped file.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-10}
model=${2:-smollm2-135m}
pe=${3:-./target/debug/pe}
expected=Germany # France 3.03 against Germany 4.46 trillion US dollars, the default inputs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
right=0 failed=0 wrong=0 total_secs=0
for seed in $(seq 1 "$seeds"); do
  wf="$work/quickstart.yaml"
  { cat workflows/quickstart.yaml; printf '\nmodels:\n  default: {model: local/%s, seed: %d}\n' "$model" "$seed"; } >"$wf"
  store="$work/store-$seed"
  t0=$(date +%s.%N)
  set +e
  timeout 400 "$pe" exec "$wf" --json --store "$store" >"$work/out.json" 2>"$work/err.txt"
  code=$?
  set -e
  secs=$(echo "$(date +%s.%N) - $t0" | bc)
  total_secs=$(echo "$total_secs + $secs" | bc)
  read -r status answer < <(python3 - "$work/out.json" <<'PY'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("error -"); sys.exit()
out = doc.get("output")
answer = out.split(" had the")[0] if isinstance(out, str) and " had the larger GDP" in out else out
print(doc.get("status"), json.dumps(answer).replace(" ", "_"))
PY
)
  if [ "$code" -eq 0 ] && [ "$answer" = "\"$expected\"" ]; then
    verdict=right; right=$((right + 1))
  elif [ "$code" -ne 0 ]; then
    verdict=failed; failed=$((failed + 1))
  else
    verdict=WRONG; wrong=$((wrong + 1))
  fi
  printf '%s seed=%-2d exit=%d status=%-10s answer=%-12s %-6s %.0fs\n' "$model" "$seed" "$code" "$status" "$answer" "$verdict" "$secs"
done
printf 'SUMMARY %s: %d/%d right, %d failed visibly, %d wrong with exit 0; mean %.0fs per run\n' \
  "$model" "$right" "$seeds" "$failed" "$wrong" "$(echo "$total_secs / $seeds" | bc -l)"
