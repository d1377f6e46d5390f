#!/usr/bin/env bash
# LibriSpeech -> discrete units: data prep, optional trimming, features in nj jobs, k-means,
# units in nj jobs, unit reports. Outputs go under this directory (data/, dump/, exp/).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh
. steps/lib.sh

stage=0
stop_stage=100
nj=4
corpus=                         # LibriSpeech root: the directory holding dev-clean/, test-clean/, ...
sets="dev-clean test-clean"     # sets to prepare and tokenize
kmeans_set=                     # the set k-means learns from; default: the first of --sets
trim=false                      # stage 1: resample to --rate and trim silence by energy
rate=16000
feat_conf=conf/feats_mfcc.conf  # extract-feats options; feats_NAME.conf names dump/NAME/
kmeans_conf=conf/kmeans.conf    # fit-kmeans options
k=                              # units; default: --k of --kmeans-conf
dry_run=false                   # true: list the stages and estimate the model stages' cost (audiotok --dry-run); run nothing
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 --corpus DIR [--sets \"dev-clean test-clean\"] [--nj N] [--stage N] [--stop-stage N]
                [--trim true|false] [--feat-conf FILE] [--kmeans-conf FILE] [--k K] [--kmeans-set SET] [--dry-run true]
  stage 0: data prep  (DIR/SET -> data/SET/{wav.scp,text,utt2spk,spk2utt,utt2dur})
  stage 1: front end  (--trim true: data/SET -> resample, trim -> data/SET_trim)
  stage 2: features   (data/SET[_trim] -> dump/FEAT/SET[_trim]/feats.scp, nj jobs)
  stage 3: k-means    (dump/FEAT/KMEANS_SET -> exp/kmK_FEAT[_trim] bundle)
  stage 4: units      (bundle + features -> exp/kmK_FEAT[_trim]/SET/units.txt, nj jobs)
  stage 5: reports    (units -> exp/kmK_FEAT[_trim]/SET/report.txt)
  FEAT is NAME of --feat-conf conf/feats_NAME.conf (default mfcc)."
. utils/parse_options.sh

# Directory names carry the configuration: the feature config's name, k, and trimming.
read -ra set_list <<<"$sets"
kmeans_set=${kmeans_set:-${set_list[0]}}
unit_names

if [ "$dry_run" = true ]; then
  . utils/dry_run.sh
  dry_run_plan "$stage" "$stop_stage" "$help_message"
  if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
    dry_run_features "$feat_conf" "$feat" "$suffix" "$nj" "${set_list[@]}"
  fi
  exit 0
fi

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: data prep: $corpus/{${sets// /,}} -> data/{${sets// /,}}"
  [ -n "$corpus" ] || { echo "error: stage 0 needs --corpus DIR (see $0 --help)" >&2; exit 2; }
  for s in "${set_list[@]}"; do
    # utt2dur is written last (atomically): with it the data dir is complete.
    if [ -s "data/$s/utt2dur" ]; then log "data/$s is already done; skipping"; continue; fi
    local/data_prep.sh "$corpus/$s" "data/$s"
    steps/finish_data_dir.sh "data/$s"
  done
fi

# Stages 1-5: the generic unit steps, every input an explicit option.
if [ "$stop_stage" -ge 1 ]; then
  steps/units.sh --stage "$(( stage > 1 ? stage : 1 ))" --stop-stage "$stop_stage" --nj "$nj" --sets "$sets" \
    --kmeans-set "$kmeans_set" --trim "$trim" --rate "$rate" --feat-conf "$feat_conf" --kmeans-conf "$kmeans_conf" --k "$k"
fi
