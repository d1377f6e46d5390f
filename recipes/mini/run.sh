#!/usr/bin/env bash
# The mini recipe: a small corpus through every audiotok stage, offline.
# By default the corpus is spoken by espeak-ng; --corpus DIR uses your audio files.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. utils/log.sh

stage=0
stop_stage=100
corpus=          # a directory of audio files; empty: synthesise one with espeak-ng
rate=16000
feat=mfcc        # extract-feats backend: mfcc (with deltas), fbank or logmel
k=50             # number of units
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--stage N] [--stop-stage N] [--corpus DIR] [--rate HZ] [--feat mfcc|fbank|logmel] [--k K]
  stage 0: data prep   (corpus -> data/mini)
  stage 1: front end   (data/mini -> resample -> normalize -> trim -> data/mini_clean)
  stage 2: audio report (data/mini_clean -> utt2dur, exp/info.tsv)
  stage 3: features    (data/mini_clean -> dump/\$feat/feats.{ark,scp})
  stage 4: k-means     (dump/\$feat/feats.scp -> exp/km\${k}_\$feat bundle)
  stage 5: units       (features + bundle -> exp/km\${k}_\$feat/units.txt, report.txt)"
. utils/parse_options.sh

data=data/mini
clean=data/mini_clean
dump=dump/$feat
km=exp/km${k}_$feat
feat_opts=()
[ "$feat" = mfcc ] && feat_opts=(--deltas)

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: data prep: ${corpus:-espeak-ng sentences} -> $data"
  if [ -s "$data/wav.scp" ]; then
    log "  $data/wav.scp exists; skipping"
  elif [ -n "$corpus" ]; then
    local/prepare_dir.sh "$corpus" "$data"
  else
    local/synth_corpus.sh "$data"
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: front end: $data -> resample $rate -> normalize peak -> trim energy -> $clean"
  audiotok resample --rate "$rate" "$data" "data/mini_${rate}"
  audiotok normalize --method peak "data/mini_${rate}" data/mini_norm
  audiotok trim --method energy data/mini_norm "$clean"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: report: $clean -> $clean/utt2dur, exp/info.tsv"
  audiotok wav-to-duration "$clean" -o "$clean/utt2dur"
  mkdir -p exp
  audiotok info --format tsv "$clean" -o exp/info.tsv
  log "audio: $clean/wav.scp; durations: $clean/utt2dur; report: exp/info.tsv"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: features: $clean -> $dump/feats.{ark,scp} ($feat)"
  audiotok extract-feats --backend "$feat" "${feat_opts[@]}" "$clean" "ark,scp:$dump/feats.ark,$dump/feats.scp"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: k-means: $dump/feats.scp -> $km (k=$k)"
  audiotok fit-kmeans --k "$k" --seed 0 "scp:$dump/feats.scp" "$km"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: units: $dump/feats.scp + $km -> $km/units.txt, $km/report.txt"
  audiotok quantize "$km" "scp:$dump/feats.scp" -o "$km/units.txt"
  audiotok report "$km/units.txt" --bundle "$km" -o "$km/report.txt"
  log "units: $km/units.txt; report: $km/report.txt"
fi
