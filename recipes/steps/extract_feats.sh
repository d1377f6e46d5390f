#!/usr/bin/env bash
# Features of a data dir in nj jobs: split the data by duration, run audiotok extract-feats
# on each part through the launcher, merge the per-job tables into one feats.scp.
set -euo pipefail
# shellcheck source=../utils/log.sh
. utils/log.sh
# shellcheck source=lib.sh
. steps/lib.sh
step_command="$0 $(quote_args "$@")"

nj=4
cmd=${cmd:-utils/launch.sh}   # from cmd.sh
feat_conf=conf/feats_mfcc.conf
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--nj N] [--cmd CMD] [--feat-conf FILE] DATA DUMPDIR
  DATA (Kaldi data dir with utt2dur) -> DUMPDIR/feats.{1..N}.ark, DUMPDIR/feats.scp
  (+ feats.scp.recipe.json), logs in DUMPDIR/log/. FILE holds the extract-feats options.
  e.g.: $0 --nj 4 --feat-conf conf/feats_mfcc.conf data/dev-clean dump/mfcc/dev-clean"
# shellcheck source=../utils/parse_options.sh
. utils/parse_options.sh
[ $# -eq 2 ] || { printf '%s\n' "$help_message" >&2; exit 2; }
data=$1 dir=$2

opts=()
read_conf "$feat_conf" opts
# The features do not depend on nj, so a rerun with another nj keeps them.
signature="extract-feats $(quote_args "${opts[@]}") $data"
if is_done "$dir/.extract_feats.done" "$signature"; then
  log "$dir/feats.scp is already done with these options; skipping"
  exit 0
fi
[ -s "$data/utt2dur" ] || { echo "error: $data/utt2dur is missing (hint: run the data prep stage)" >&2; exit 1; }

utts=$(wc -l <"$data/utt2dur")
[ "$nj" -le "$utts" ] || nj=$utts   # no empty jobs for a small set
utils/split_data.sh "$data" "$nj"
read -ra launch <<<"$cmd"
run=("${launch[@]}" "JOB=1:$nj" "$dir/log/extract_feats.JOB.log"
  audiotok extract-feats "${opts[@]}" "$data/split$nj/JOB" "ark,scp:$dir/feats.JOB.ark,$dir/feats.JOB.scp")
keep_provenance "$dir" "data=$data
nj=$nj
feat_conf=$feat_conf
options=$(quote_args "${opts[@]}")" "${run[@]}"
"${run[@]}"

mapfile -t parts < <(seq -f "$dir/feats.%g.scp" "$nj")
utils/merge_tables.sh "$dir/feats.scp" "${parts[@]}"
# fit-kmeans and quantize read the feature recipe beside the table they are given.
cp "$dir/feats.1.scp.recipe.json" "$dir/feats.scp.recipe.json.tmp"
mv -f "$dir/feats.scp.recipe.json.tmp" "$dir/feats.scp.recipe.json"
mark_done "$dir/.extract_feats.done" "$signature"
log "features: $dir/feats.scp ($(wc -l <"$dir/feats.scp") utterances)"
