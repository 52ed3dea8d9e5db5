#!/usr/bin/env bash
# How often workflows/release-checklist.yaml reaches its expected ending on a local model:
#   1.4.2 -> completed · 1.4.3 -> completed after an apply_fix call · 1.5.0 -> aborted
# usage: scripts/measure-release.sh MODEL [SEEDS] [VERSIONS...]   (MODEL: smollm2-135m, gemma3-270m)
# The seed goes in through the workflow's own `models.default.seed` (a temporary copy of
# the workflow with a `models:` block); nothing else differs from the shipped file.
# Prints one line per run and a summary; needs the model installed. PE=path picks the binary
# (default ./target/debug/pe: llama.cpp is optimised in debug builds too).
set -euo pipefail
pe=${PE:-./target/debug/pe}
cd "$(dirname "$0")/.."
model=${1:?model name}
seeds=${2:-10}
shift 2 || shift $#
versions=("$@")
((${#versions[@]})) || versions=(1.4.2 1.4.3 1.5.0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A ok total
for version in "${versions[@]}"; do
  ok[$version]=0; total[$version]=0
  for seed in $(seq 1 "$seeds"); do
    wf="$work/release-checklist.yaml"
    { cat workflows/release-checklist.yaml; printf '\nmodels:\n  default: {model: local/%s, seed: %d}\n' "$model" "$seed"; } >"$wf"
    store="$work/store-$version-$seed"
    t0=$(date +%s.%N)
    set +e
    timeout 400 "$pe" exec "$wf" -i "version=$version" --json --store "$store" >"$work/out.json" 2>"$work/err.txt"
    set -e
    secs=$(echo "$(date +%s.%N) - $t0" | bc)
    status=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("status"))' "$work/out.json" 2>/dev/null || echo error)
    fixed=$("$pe" show latest --json --store "$store" 2>/dev/null | python3 -c '
import json, sys
n = 0
for line in sys.stdin:
    try: e = json.loads(line)
    except ValueError: continue
    if e.get("type") == "tool_call" and e.get("name") == "apply_fix" and e.get("outcome") == "ok": n += 1
print(n)')
    case $version in
      1.4.2) want=completed; good=$([ "$status" = completed ] && echo 1 || echo 0) ;;
      1.4.3) want="completed+fix"; good=$([ "$status" = completed ] && [ "$fixed" -gt 0 ] && echo 1 || echo 0) ;;
      1.5.0) want=aborted; good=$([ "$status" = aborted ] && echo 1 || echo 0) ;;
      *) want=?; good=0 ;;
    esac
    ok[$version]=$((ok[$version] + good)); total[$version]=$((total[$version] + 1))
    printf '%s %s seed=%-2d status=%-16s apply_fix=%s want=%s %s %.0fs\n' "$model" "$version" "$seed" "$status" "$fixed" "$want" "$([ "$good" = 1 ] && echo OK || echo miss)" "$secs"
  done
done
for version in "${versions[@]}"; do
  printf 'SUMMARY %s %s: %d/%d expected endings\n' "$model" "$version" "${ok[$version]}" "${total[$version]}"
done
