#!/usr/bin/env bash
# WebDataset tar shards -> discrete units: audio out of the shards, optional trimming,
# features in nj jobs, k-means, units in nj jobs, unit reports; then the shards straight to
# tokens as a job array, checked (every sample exactly once) and merged. Outputs go under this
# directory (data/, dump/, exp/).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh
. steps/lib.sh

stage=0
stop_stage=100
nj=4
corpus=                         # a directory of shards: *.tar holding NAME.flac + NAME.json
set_name=train                  # the data set the shards make: data/SET_NAME
trim=false                      # stage 1: trim silence by energy
rate=16000                      # stage 0 writes the audio at this rate
feat_conf=conf/feats_mfcc.conf  # extract-feats options; feats_NAME.conf names dump/NAME/
kmeans_conf=conf/kmeans.conf    # fit-kmeans options
k=                              # units; default: --k of --kmeans-conf
ntasks=                         # stage 6: tasks of the tokenize-shards job array (each a range of shards); default: nj
procs_per_task=1                # stage 6: worker processes in each task (tokenize-shards --num-proc)
dry_run=false                   # true: list the stages and estimate the model stages' cost (audiotok --dry-run); run nothing
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 --corpus DIR [--set-name NAME] [--nj N] [--stage N] [--stop-stage N]
                [--trim true|false] [--rate HZ] [--feat-conf FILE] [--kmeans-conf FILE] [--k K]
                [--ntasks N] [--procs-per-task P] [--dry-run true]
  stage 0: data prep  (DIR/*.tar -> data/SET/{audio/,wav.scp,utt2dur}; SET is --set-name)
  stage 1: front end  (--trim true: data/SET -> trim -> data/SET_trim)
  stage 2: features   (data/SET[_trim] -> dump/FEAT/SET[_trim]/feats.scp, nj jobs)
  stage 3: k-means    (dump/FEAT/SET -> exp/kmK_FEAT[_trim] bundle)
  stage 4: units      (bundle + features -> exp/kmK_FEAT[_trim]/SET/units.txt, nj jobs)
  stage 5: reports    (units -> exp/kmK_FEAT[_trim]/SET/report.txt)
  stage 6: shard tokens (DIR/*.tar -> bundle, a job array of ntasks shard ranges -> exp/kmK_FEAT[_trim]/shard_tokens/*.jsonl)
  stage 7: check+merge (every sample exactly once -> exp/kmK_FEAT[_trim]/shard_tokens.jsonl)
  FEAT is NAME of --feat-conf conf/feats_NAME.conf (default mfcc).
  Stage 6 runs through \$cmd (cmd.sh): cmd=\"utils/launch.sh --backend slurm --rerun failed\"
  reruns only the tasks that failed or were killed; each resumes its range."
. utils/parse_options.sh

ntasks=${ntasks:-$nj}
# Directory names carry the configuration: the feature config's name, k, and trimming.
set_list=("$set_name") kmeans_set=$set_name
unit_names

if [ "$dry_run" = true ]; then
  . utils/dry_run.sh
  dry_run_plan "$stage" "$stop_stage" "$help_message"
  if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
    dry_run_features "$feat_conf" "$feat" "$suffix" "$nj" "${set_list[@]}"
  fi
  if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ] && [ -n "$corpus" ]; then
    dry_run_estimate "$corpus" "$km/config.json" -- \
      audiotok tokenize-shards --input-dir "$corpus" --output-dir "$km/shard_tokens" --tokenizer "bundle:$km" --num-proc "$procs_per_task" --dry-run
  fi
  exit 0
fi

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: data prep: $corpus/*.tar -> resample $rate -> data/$set_name"
  [ -n "$corpus" ] || { echo "error: stage 0 needs --corpus DIR (see $0 --help)" >&2; exit 2; }
  for s in "${set_list[@]}"; do
    # utt2dur is written last (atomically): with it the data dir is complete.
    if [ -s "data/$s/utt2dur" ]; then log "data/$s is already done; skipping"; continue; fi
    local/data_prep.sh "$corpus" "$rate" "data/$s"
    steps/finish_data_dir.sh "data/$s"
  done
fi

# Stages 1-5: the generic unit steps, every input an explicit option.  # stage 0 already wrote the audio at --rate
if [ "$stop_stage" -ge 1 ]; then
  steps/units.sh --stage "$(( stage > 1 ? stage : 1 ))" --stop-stage "$stop_stage" --nj "$nj" --sets "$set_name" \
    --kmeans-set "$kmeans_set" --trim "$trim" --rate "" --feat-conf "$feat_conf" --kmeans-conf "$kmeans_conf" --k "$k"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "Stage 6: shard tokens: $corpus/*.tar -> $km/shard_tokens/ ($ntasks tasks of $procs_per_task processes)"
  [ -n "$corpus" ] || { echo "error: stage 6 needs --corpus DIR (see $0 --help)" >&2; exit 2; }
  # Task J takes the J-th of ntasks shard ranges and writes its own {name}_{J}of{N}_*.jsonl; a rerun
  # (or a requeued task) skips the samples already written. Under Slurm a task's processes share
  # the GPUs its --gres gives it (--procs-per-gpu each).
  $cmd JOB=1:"$ntasks" "$km/shard_tokens/log/tokenize.JOB.log" \
    audiotok tokenize-shards --task JOB/"$ntasks" --input-dir "$corpus" --output-dir "$km/shard_tokens" \
    --tokenizer "bundle:$km" --num-proc "$procs_per_task"
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  log "Stage 7: check and merge: $km/shard_tokens/ -> $km/shard_tokens.jsonl"
  [ -n "$corpus" ] || { echo "error: stage 7 needs --corpus DIR (see $0 --help)" >&2; exit 2; }
  # Fails naming the missing or duplicated keys (all of them in problems.txt) unless every sample
  # is there exactly once, tokenized or recorded skipped with its reason.
  audiotok check-shard-tokens --input-dir "$corpus" --output-dir "$km/shard_tokens" \
    -o "$km/shard_tokens.jsonl" --list "$km/shard_tokens/problems.txt"
fi
