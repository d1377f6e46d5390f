#!/usr/bin/env bash
# The mini recipe: a small corpus through every audiotok stage, offline.
# By default the corpus is spoken by espeak-ng; --corpus DIR uses your audio files.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=0
stop_stage=100
corpus=          # a directory of audio files; empty: synthesise one with espeak-ng
rate=16000
feat=mfcc        # features: conf/feats_$feat.conf (mfcc with deltas, fbank or logmel)
k=50             # number of units
nj=2             # parallel jobs for features and units
dry_run=false    # true: list the stages and estimate the model stages' cost (audiotok --dry-run); run nothing
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--stage N] [--stop-stage N] [--corpus DIR] [--rate HZ] [--feat mfcc|fbank|logmel] [--k K] [--nj N] [--dry-run true]
  stage 0: data prep   (corpus -> data/mini)
  stage 1: front end   (data/mini -> resample -> normalize -> trim -> data/mini_clean)
  stage 2: audio report (data/mini_clean -> utt2dur, exp/info.tsv)
  stage 3: features    (data/mini_clean -> dump/\$feat/feats.scp, options from conf/feats_\$feat.conf)
  stage 4: k-means     (dump/\$feat/feats.scp -> exp/km\${k}_\$feat bundle)
  stage 5: units       (features + bundle -> exp/km\${k}_\$feat/units.txt, report.txt)"
. utils/parse_options.sh

data=data/mini
clean=data/mini_clean
dump=dump/$feat
km=exp/km${k}_$feat

if [ "$dry_run" = true ]; then
  . utils/dry_run.sh
  . steps/lib.sh
  dry_run_plan "$stage" "$stop_stage" "$help_message"
  if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
    feat_opts=()
    read_conf "conf/feats_$feat.conf" feat_opts
    dry_run_estimate "$clean" -- audiotok extract-feats "${feat_opts[@]}" --nj "$nj" --dry-run "$clean" "ark:$dump/feats.ark"
  fi
  exit 0
fi

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
  # Intermediates: data/mini_$rate, data/mini_norm. Stage 2 writes utt2dur.
  steps/frontend.sh --rate "$rate" --normalize peak --trim energy --utt2dur false "$data" "$clean"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: report: $clean -> $clean/utt2dur, exp/info.tsv"
  audiotok wav-to-duration "$clean" -o "$clean/utt2dur"
  mkdir -p exp
  audiotok info --format tsv "$clean" -o exp/info.tsv
  log "audio: $clean/wav.scp; durations: $clean/utt2dur; report: exp/info.tsv"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: features: $clean -> $dump/feats.scp (conf/feats_$feat.conf, $nj jobs)"
  steps/extract_feats.sh --nj "$nj" --feat-conf "conf/feats_$feat.conf" "$clean" "$dump"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: k-means: $dump/feats.scp -> $km (k=$k)"
  steps/fit_kmeans.sh --kmeans-conf conf/kmeans.conf --k "$k" "$dump" "$km"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: units: $dump/feats.scp + $km -> $km/units.txt, $km/report.txt ($nj jobs)"
  steps/quantize.sh --nj "$nj" "$km" "$dump" "$km"
  audiotok report "$km/units.txt" --bundle "$km" -o "$km/report.txt"
  log "units: $km/units.txt; report: $km/report.txt"
fi
