#!/usr/bin/env bash
# Puts audiotok (from this checkout) and the shared recipe utilities on PATH.
recipe_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="$recipe_root/../../bin:$PATH"
export LC_ALL=C
# Two cores here: keep BLAS/torch from oversubscribing them when jobs run side by side.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
