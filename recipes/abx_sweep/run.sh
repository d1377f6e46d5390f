#!/usr/bin/env bash
# The ABX sweep: which encoder layer and codebook size to tokenize with. For every layer
# (and MFCC+deltas as a baseline) the dense features' ABX, then for every k the units'
# PNMI, bit rates and ABX, gathered in one table and one plot by `audiotok sweep-table`.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=0
stop_stage=100
dir=.             # work directory: data/, dump/ and exp/ go here
audio=            # a Kaldi data dir (wav.scp) or a directory of audio files
train_audio=      # the same for fitting k-means (default: --audio itself)
alignments=       # phone alignments: files or directories of TextGrids, blank-separated
utt2spk=          # speaker of each utterance (Kaldi utt2spk); else --speaker-pattern
speaker_pattern=  # regex whose first group in the key is the speaker
model=            # a transformers encoder directory or hub id
layers="0 1 2 3 4"
ks="50 100 500"
baseline=true     # true: also MFCC+deltas features, labelled mfcc
abx_opts=         # more options for abx and report --abx, e.g. --fold-phones
unit_vectors=onehot  # units scored as onehot codes or as their centroids (report --abx-vectors)
kmeans_opts=      # more options for fit-kmeans, e.g. "--max-frames 200000"
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 --audio DIR --alignments \"PATH...\" --model DIR [--utt2spk FILE | --speaker-pattern RE]
          [--layers \"0 1 2\"] [--ks \"50 100\"] [--baseline true|false] [--abx-opts \"...\"] [--unit-vectors onehot|centroids]
          [--kmeans-opts \"...\"] [--train-audio DIR] [--dir DIR] [--stage N] [--stop-stage N]
  stage 0: data prep      (audio -> DIR/data/dev: wav.scp, utt2spk; --train-audio -> DIR/data/train)
  stage 1: features       (each layer -> DIR/dump/L\$layer/feats.scp; baseline: DIR/dump/mfcc; train: .../train)
  stage 2: dense ABX      (features -> DIR/exp/\$feats/dense.json)
  stage 3: k-means        (train features, else dev -> DIR/exp/\$feats/km\$k bundle, for each k)
  stage 4: units, report  (-> DIR/exp/\$feats/km\$k/units.txt, DIR/exp/\$feats/k\$k.json: PNMI, bit rates, ABX)
  stage 5: sweep table    (-> DIR/exp/results.list, sweep.md, sweep.tsv, sweep.png)
Relative paths are relative to this recipe directory. Every command skips an output
that a run with the same arguments finished."
. utils/parse_options.sh

[ -n "$audio" ] || [ "$stage" -gt 0 ] || { echo "error: give --audio (see $0 --help)" >&2; exit 2; }
[ -n "$alignments" ] || { echo "error: give --alignments (see $0 --help)" >&2; exit 2; }
[ -n "$model" ] || [ -z "$layers" ] || { echo "error: give --model (see $0 --help)" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data/dev
train=$dir/data/train

# Feature sets: name (the directory under dump/ and exp/) and the label sweep-table shows.
names=() labels=()
for layer in $layers; do names+=("L$layer"); labels+=("$layer"); done
if [ "$baseline" = true ]; then names+=(mfcc); labels+=(mfcc); fi

ali_opts=()
for path in $alignments; do ali_opts+=(--alignments "$path"); done
read -ra extra_abx <<<"$abx_opts"
read -ra extra_kmeans <<<"$kmeans_opts"

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: data prep: $audio -> $data"
  local/prepare_data.sh "$audio" "$data" "$utt2spk"
  if [ -n "$train_audio" ]; then local/prepare_data.sh "$train_audio" "$train"; fi
fi

# Speakers: the data dir's utt2spk (from --utt2spk or the input data dir), else the pattern.
spk_opts=()
if [ -f "$data/utt2spk" ]; then
  spk_opts=(--utt2spk "$data/utt2spk")
elif [ -n "$speaker_pattern" ]; then
  spk_opts=(--speaker-pattern "$speaker_pattern")
fi
abx_args=("${ali_opts[@]}" "${spk_opts[@]+"${spk_opts[@]}"}" "${extra_abx[@]+"${extra_abx[@]}"}")

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  for name in "${names[@]}"; do
    dump=$dir/dump/$name
    if [ "$name" = mfcc ]; then feat_opts=(--backend mfcc --deltas); else feat_opts=(--model "$model" --layer "${name#L}"); fi
    log "Stage 1: features: $data -> $dump/feats.scp (${feat_opts[*]})"
    $cmd "$dump/log/extract_feats.log" audiotok extract-feats "${feat_opts[@]}" "$data" "ark,scp:$dump/feats.ark,$dump/feats.scp"
    if [ -f "$train/wav.scp" ]; then
      $cmd "$dump/log/extract_feats_train.log" audiotok extract-feats "${feat_opts[@]}" "$train" "ark,scp:$dump/train/feats.ark,$dump/train/feats.scp"
    fi
  done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for name in "${names[@]}"; do
    log "Stage 2: dense ABX: $dir/dump/$name -> $dir/exp/$name/dense.json"
    $cmd "$dir/exp/$name/log/abx_dense.log" audiotok abx --format json "${abx_args[@]}" \
      "scp:$dir/dump/$name/feats.scp" -o "$dir/exp/$name/dense.json"
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for name in "${names[@]}"; do
    fit=$dir/dump/$name
    if [ -f "$fit/train/feats.scp" ]; then fit=$fit/train; fi
    for k in $ks; do
      log "Stage 3: k-means: $fit -> $dir/exp/$name/km$k (k=$k)"
      $cmd "$dir/exp/$name/log/fit_kmeans.k$k.log" audiotok fit-kmeans --k "$k" "${extra_kmeans[@]+"${extra_kmeans[@]}"}" \
        "scp:$fit/feats.scp" "$dir/exp/$name/km$k"
    done
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  for name in "${names[@]}"; do
    for k in $ks; do
      km=$dir/exp/$name/km$k
      log "Stage 4: units and report: $km -> $km/units.txt, $dir/exp/$name/k$k.json"
      $cmd "$dir/exp/$name/log/quantize.k$k.log" audiotok quantize "$km" "scp:$dir/dump/$name/feats.scp" -o "$km/units.txt"
      $cmd "$dir/exp/$name/log/report.k$k.log" audiotok report --format json --bundle "$km" --abx --abx-vectors "$unit_vectors" "${abx_args[@]}" \
        "$km/units.txt" -o "$dir/exp/$name/k$k.json"
    done
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: sweep table: $dir/exp/results.list -> $dir/exp/sweep.{md,tsv,png}"
  for i in "${!names[@]}"; do
    printf '%s dense %s/dense.json\n' "${labels[i]}" "${names[i]}"
    for k in $ks; do printf '%s %s %s/k%s.json\n' "${labels[i]}" "$k" "${names[i]}" "$k"; done
  done >"$dir/exp/results.list.tmp"
  mv -f "$dir/exp/results.list.tmp" "$dir/exp/results.list"
  audiotok sweep-table "$dir/exp/results.list" --markdown "$dir/exp/sweep.md" --tsv "$dir/exp/sweep.tsv" --plot "$dir/exp/sweep.png"
  cat "$dir/exp/sweep.md"
fi
