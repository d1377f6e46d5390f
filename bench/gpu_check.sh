#!/usr/bin/env bash
# One check of a GPU machine, one table on stdout (bench/gpu_check.py --help lists the options):
#   bench/gpu_check.sh                 # all parts when a CUDA device is visible, else the CPU parts
#   bench/gpu_check.sh --quick         # the smallest CPU settings
# Uses .venv/bin/python when there is one (else $PYTHON, else python3); exits 1 when a part failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
if [ ! -x "$python" ]; then
    python="python3"
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" "$root/bench/gpu_check.py" "$@"
