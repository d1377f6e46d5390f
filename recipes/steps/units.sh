#!/usr/bin/env bash
# Audio data dirs -> discrete units, the stages every corpus recipe shares after its own data
# prep: 1 optional trimming, 2 features in nj jobs, 3 k-means, 4 units in nj jobs, 5 reports.
# Run from a recipe directory (data/, dump/, exp/ there); every input is an option.
set -euo pipefail
# shellcheck source=../utils/log.sh
. utils/log.sh
# shellcheck source=lib.sh
. steps/lib.sh

stage=1
stop_stage=5
nj=4
sets=                           # data dirs under data/ to tokenize, e.g. "dev-clean test-clean"
kmeans_set=                     # the set k-means learns from; default: the first of --sets
trim=false                      # stage 1: resample to --rate and trim silence by energy
rate=                           # stage 1 resampling rate; empty: keep the audio's rate
feat_conf=conf/feats_mfcc.conf  # extract-feats options; feats_NAME.conf names dump/NAME/
kmeans_conf=conf/kmeans.conf    # fit-kmeans options
k=                              # units; default: --k of --kmeans-conf, else 500
cmd=${cmd:-utils/launch.sh}     # how jobs run (cmd.sh): local, or Slurm through the launcher
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 --sets \"SET ...\" [--stage N] [--stop-stage N] [--nj N] [--kmeans-set SET]
                [--trim true|false] [--rate HZ] [--feat-conf FILE] [--kmeans-conf FILE] [--k K] [--cmd CMD]
  stage 1: front end  (--trim true: data/SET -> resample --rate, trim -> data/SET_trim)
  stage 2: features   (data/SET[_trim] -> dump/FEAT/SET[_trim]/feats.scp, nj jobs)
  stage 3: k-means    (dump/FEAT/KMEANS_SET[_trim] -> exp/kmK_FEAT[_trim] bundle)
  stage 4: units      (bundle + features -> exp/kmK_FEAT[_trim]/SET[_trim]/units.txt, nj jobs)
  stage 5: reports    (units -> exp/kmK_FEAT[_trim]/SET[_trim]/report.txt)
  FEAT is NAME of --feat-conf conf/feats_NAME.conf."
# shellcheck source=../utils/parse_options.sh
. utils/parse_options.sh
[ $# -eq 0 ] || { printf '%s\n' "$help_message" >&2; exit 2; }
read -ra set_list <<<"$sets"
[ "${#set_list[@]}" -gt 0 ] || { echo "error: $0 needs --sets \"SET ...\" (see --help)" >&2; exit 2; }
kmeans_set=${kmeans_set:-${set_list[0]}}
export cmd
unit_names  # feat, k, suffix, km: the directory names carry the configuration
shown=$(IFS=,; echo "${set_list[*]}")

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: front end: data/{$shown} -> ${rate:+resample $rate, }trim energy -> data/SET_trim (--trim $trim)"
  if [ "$trim" = true ]; then
    for s in "${set_list[@]}"; do
      steps/frontend.sh --rate "$rate" --trim energy "data/$s" "data/$s$suffix"
    done
  else
    log "--trim false: the features are made from data/SET"
  fi
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: features: data/{$shown}$suffix -> dump/$feat/SET$suffix/feats.scp ($feat_conf, $nj jobs)"
  for s in "${set_list[@]}"; do
    steps/extract_feats.sh --nj "$nj" --feat-conf "$feat_conf" "data/$s$suffix" "dump/$feat/$s$suffix"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: k-means: dump/$feat/$kmeans_set$suffix/feats.scp -> $km (k=$k, $kmeans_conf)"
  steps/fit_kmeans.sh --kmeans-conf "$kmeans_conf" --k "$k" "dump/$feat/$kmeans_set$suffix" "$km"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: units: $km + dump/$feat/SET$suffix -> $km/SET$suffix/units.txt ($nj jobs)"
  for s in "${set_list[@]}"; do
    steps/quantize.sh --nj "$nj" "$km" "dump/$feat/$s$suffix" "$km/$s$suffix"
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: reports: $km/SET$suffix/units.txt -> $km/SET$suffix/report.txt"
  for s in "${set_list[@]}"; do
    audiotok report "$km/$s$suffix/units.txt" --bundle "$km" -o "$km/$s$suffix/report.txt"
  done
  log "units: $km/SET$suffix/units.txt; reports: $km/SET$suffix/report.txt"
fi
