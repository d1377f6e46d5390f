#!/usr/bin/env bash
# Stages 1-5 shared by the corpus recipes, sourced by their run.sh after stage 0:
# 1 optional trimming, 2 features in nj jobs, 3 k-means, 4 units in nj jobs, 5 reports.
# Reads the run.sh variables: stage stop_stage nj set_list kmeans_set trim front_rate
# feat feat_conf kmeans_conf k suffix km.
# shellcheck disable=SC2154  # every variable here is set by the sourcing run.sh

shown=$(IFS=,; echo "${set_list[*]}")

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: front end: data/{$shown} -> ${front_rate:+resample $front_rate, }trim energy -> data/SET_trim (--trim $trim)"
  if [ "$trim" = true ]; then
    for s in "${set_list[@]}"; do
      steps/frontend.sh --rate "$front_rate" --trim energy "data/$s" "data/$s$suffix"
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
