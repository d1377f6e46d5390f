#!/usr/bin/env bash
# A k-means tokenizer bundle from a feature dump: audiotok fit-kmeans as one launcher job
# (so a cluster backend can give it a big node), with the options of a config file.
set -euo pipefail
# shellcheck source=../utils/log.sh
. utils/log.sh
# shellcheck source=lib.sh
. steps/lib.sh
step_command="$0 $(quote_args "$@")"

cmd=${cmd:-utils/launch.sh}   # from cmd.sh
kmeans_conf=conf/kmeans.conf
k=                            # overrides --k of the config
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--cmd CMD] [--kmeans-conf FILE] [--k K] DUMPDIR EXPDIR
  DUMPDIR/feats.scp -> EXPDIR/{centroids.npy,config.json} (a tokenizer bundle),
  EXPDIR/run_config.txt, EXPDIR/command.txt, EXPDIR/log/fit_kmeans.log.
  FILE holds the fit-kmeans options (--k, --percent, --max-frames, --seed, ...).
  e.g.: $0 --kmeans-conf conf/kmeans.conf dump/mfcc/dev-clean exp/km100_mfcc"
# shellcheck source=../utils/parse_options.sh
. utils/parse_options.sh
[ $# -eq 2 ] || { printf '%s\n' "$help_message" >&2; exit 2; }
feats=$1/feats.scp exp=$2

opts=()
read_conf "$kmeans_conf" opts
if [ -n "$k" ]; then   # --k K replaces the config's --k
  kept=()
  for ((i = 0; i < ${#opts[@]}; i++)); do
    case ${opts[i]} in --k=*) ;; --k) i=$((i + 1)) ;; *) kept+=("${opts[i]}") ;; esac
  done
  opts=("${kept[@]+"${kept[@]}"}" --k "$k")
fi
signature="fit-kmeans $(quote_args "${opts[@]}") $feats"
if is_done "$exp/.fit_kmeans.done" "$signature"; then
  log "$exp is already done with these options; skipping"
  exit 0
fi
[ -s "$feats" ] || { echo "error: $feats is missing (hint: run the feature stage)" >&2; exit 1; }

read -ra launch <<<"$cmd"
run=("${launch[@]}" "$exp/log/fit_kmeans.log" audiotok fit-kmeans "${opts[@]}" "scp:$feats" "$exp")
keep_provenance "$exp" "feats=$feats
kmeans_conf=$kmeans_conf
options=$(quote_args "${opts[@]}")
feature_recipe=$(tr -d ' \n' <"$feats.recipe.json" 2>/dev/null || echo unknown)" "${run[@]}"
"${run[@]}"
mark_done "$exp/.fit_kmeans.done" "$signature"
log "bundle: $exp"
