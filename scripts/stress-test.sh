#!/usr/bin/env bash
# `make test` N times in a row (default 3) while stress-ng keeps every CPU
# busy: the suite must pass on a loaded machine, and a test that waits a fixed
# time instead of for a condition shows here first. Prints each run's result
# and exits non-zero if any run failed. Usage: scripts/stress-test.sh [RUNS]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
if ! command -v stress-ng >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then echo "stress-test: stress-ng is missing (apt-get install stress-ng, as root)" >&2; exit 2; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng >/dev/null
fi
stress-ng --cpu "$(nproc)" --cpu-load 100 --timeout 0 --quiet &
load=$!
trap 'kill $load 2>/dev/null; wait $load 2>/dev/null' EXIT
mkdir -p build
failed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if make test > "build/stress-run-$i.log" 2>&1; then result=passed; else result=FAILED; failed=$((failed + 1)); fi
  echo "stress-test: run $i of $runs under stress-ng --cpu $(nproc): $result in $(( $(date +%s) - start )) s; $(grep -E '^tests: ' "build/stress-run-$i.log" | tail -1) (log: build/stress-run-$i.log)"
done
exit $(( failed > 0 ))
