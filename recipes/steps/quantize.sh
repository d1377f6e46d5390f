#!/usr/bin/env bash
# Units of a feature dump in nj jobs: cut feats.scp into nj contiguous parts, run
# audiotok quantize on each through the launcher, merge the parts into one units.txt.
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

# nj contiguous parts of about equal size (fewer when there are fewer keys); each part keeps
# the feature recipe beside it, so quantize checks the features against the bundle.
total=$(wc -l <"$feats")
[ "$nj" -le "$total" ] || nj=$total
split=$dir/split$nj
rm -rf "$split"
mkdir -p "$split"
awk -v nj="$nj" -v total="$total" -v out="$split/feats" \
  '{ print > (out "." (int((NR - 1) * nj / total) + 1) ".scp") }' "$feats"
for ((j = 1; j <= nj; j++)); do
  [ ! -f "$feats.recipe.json" ] || cp "$feats.recipe.json" "$split/feats.$j.scp.recipe.json"
done

# Each job's log starts with its command line: the provenance of the units.
read -ra launch <<<"$cmd"
"${launch[@]}" "JOB=1:$nj" "$dir/log/quantize.JOB.log" \
  audiotok quantize "$bundle" "scp:$split/feats.JOB.scp" -o "$dir/units.JOB.txt"

mapfile -t parts < <(seq -f "$dir/units.%g.txt" "$nj")
utils/merge_tables.sh "$dir/units.txt" "${parts[@]}"
mark_done "$dir/.quantize.done" "$signature"
log "units: $dir/units.txt ($(wc -l <"$dir/units.txt") utterances)"
