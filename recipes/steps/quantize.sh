#!/usr/bin/env bash
# Units of a feature dump in nj jobs: audiotok quantize --shard J/N on each part of feats.scp
# through the launcher (steps/sharded.sh), the parts merged into one units.txt.
set -euo pipefail
# shellcheck source=../utils/log.sh
. utils/log.sh
# shellcheck source=lib.sh
. steps/lib.sh

nj=4
cmd=${cmd:-utils/launch.sh}   # from cmd.sh
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--nj N] [--cmd CMD] BUNDLE DUMPDIR OUTDIR
  BUNDLE (fit-kmeans output) + DUMPDIR/feats.scp -> OUTDIR/units.txt (key-sorted text
  integer vectors), parts OUTDIR/units.{1..N}.txt, logs in OUTDIR/log/.
  e.g.: $0 --nj 4 exp/km100_mfcc dump/mfcc/test-clean exp/km100_mfcc/test-clean"
# shellcheck source=../utils/parse_options.sh
. utils/parse_options.sh
[ $# -eq 3 ] || { printf '%s\n' "$help_message" >&2; exit 2; }
bundle=$1 feats=$2/feats.scp dir=$3

# The units depend on the bundle's centroids, not only on its name: sign with their hash.
signature="quantize $bundle $(md5sum <"$bundle/centroids.npy" | cut -d' ' -f1) $feats"
if is_done "$dir/.quantize.done" "$signature"; then
  log "$dir/units.txt is already done with this bundle; skipping"
  exit 0
fi
[ -s "$feats" ] || { echo "error: $feats is missing (hint: run the feature stage)" >&2; exit 1; }

# nj contiguous parts of feats.scp, one `quantize --shard J/N` each (no more parts than
# keys); quantize checks the features against the bundle by the recipe beside feats.scp.
total=$(wc -l <"$feats")
[ "$nj" -le "$total" ] || nj=$total
rm -f "$dir/.units.done"  # the bundle changed: the parts are stale whatever their arguments
steps/sharded.sh --nj "$nj" "$dir" units -- quantize "$bundle" "scp:$feats"
mark_done "$dir/.quantize.done" "$signature"
