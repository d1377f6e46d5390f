#!/usr/bin/env bash
# The performance benches of the CPU stages, at sizes that fit one run of about 15 minutes on
# a 2-core machine, then bench/RESULTS.md (machine facts, ratios, facts, timings).
#
#   bench/run_all.sh            # writes bench/RESULTS.md (and bench/results.jsonl, the raw rows)
#
# Run it on a quiet machine: every bench alternates the compared runs and repeats them (3 rounds),
# so other load spreads over all of them, but it still slows them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export AUDIOTOK_BENCH_RESULTS=$PWD/bench/results.jsonl
: > "$AUDIOTOK_BENCH_RESULTS"
started=$SECONDS

run() {
  local name=$1
  shift
  local began=$SECONDS
  echo "== $name: $*"
  "$PYTHON" "$@"
  echo "== $name: $((SECONDS - began)) s"
}

run quantize bench/bench_quantize.py --frames 2000000 --frames-large 200000 --rounds 3 --profile
run fit-kmeans bench/bench_kmeans.py --quick
run fit-kmeans-out-of-core bench/bench_kmeans_ooc.py --quick
run extract-feats bench/bench_extract.py --quick
run gpu-check bench/gpu_check.py --quick
"$PYTHON" bench/render_results.py "$AUDIOTOK_BENCH_RESULTS" bench/RESULTS.md --seconds $((SECONDS - started))
echo "bench/RESULTS.md written in $((SECONDS - started)) s"
