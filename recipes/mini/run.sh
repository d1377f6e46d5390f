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
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--stage N] [--stop-stage N] [--corpus DIR] [--rate HZ]
  stage 0: data prep   (corpus -> data/mini)
  stage 1: front end   (data/mini -> resample -> normalize -> trim -> data/mini_clean)
  stage 2: report      (data/mini_clean -> utt2dur, exp/info.tsv)"
. utils/parse_options.sh

data=data/mini
clean=data/mini_clean

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
