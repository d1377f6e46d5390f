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

# Real features for quantize: Whisper tiny.en layer 4 of the shared recordings, when both are there.
real=()
speech=${AUDIOTOK_TEST_AUDIO:-../shared/data/speech}
whisper=${AUDIOTOK_TEST_WHISPER:-../shared/models/whisper-tiny.en}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -d "$speech" ] && [ -f "$whisper/config.json" ]; then
  "$PYTHON" -m audiotok -q extract-feats --model "$whisper" --layer 4 "$speech" "ark:$work/whisper4.ark"
  real=(--real-features "$work/whisper4.ark")
fi
run quantize bench/bench_quantize.py --frames 2000000 --frames-large 200000 --rounds 3 --profile --tmp "$work" "${real[@]}"
run fit-kmeans bench/bench_kmeans.py --quick
run fit-kmeans-out-of-core bench/bench_kmeans_ooc.py --quick
run extract-feats bench/bench_extract.py --quick
run gpu-check bench/gpu_check.py --quick --encoder tiny --layer 2
if [ ${#real[@]} -gt 0 ]; then
  run abx bench/bench_abx.py --features "ark:$work/whisper4.ark" --frame-rate 50 --speech "$speech"
fi
"$PYTHON" bench/render_results.py "$AUDIOTOK_BENCH_RESULTS" -o bench/RESULTS.md
echo "bench/RESULTS.md written in $((SECONDS - started)) s"
