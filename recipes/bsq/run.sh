#!/usr/bin/env bash
# The BSQ recipe (seed 001): train an Audio BSQ-ViT tokenizer from scratch on a corpus,
# then encode it to tokens, score the held-out utterances and resynthesise them.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=0
stop_stage=100
corpus=          # a directory of audio files (a LibriSpeech root works); empty: espeak-ng sentences
config=tiny      # conf/$config.yaml (tiny: a minute; small_speech: the seed's small model, an hour on CPU)
max_steps=       # override optim.max_steps
device=auto      # auto, cpu or cuda (bf16 autocast on GPU)
dry_run=false    # true: list the stages and estimate the model stages' cost (audiotok --dry-run); run nothing
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--stage N] [--stop-stage N] [--corpus DIR] [--config tiny|small_speech] [--max-steps N] [--device D] [--dry-run true]
  stage 0: data prep (corpus -> data/all)
  stage 1: train     (data/all, conf/\$config.yaml -> exp/bsq_\$config: model, metrics.jsonl, loss_curve.png;
                      the config's valid_count utterances are held out, listed in valid_keys.txt)
  stage 2: encode    (data/all + model -> exp/bsq_\$config/tokens.txt)
  stage 3: eval      (held-out utterances -> exp/bsq_\$config/eval.json, eval.txt)
  stage 4: decode    (held-out tokens -> exp/bsq_\$config/decoded/KEY.npy, KEY.wav by Griffin-Lim)"
. utils/parse_options.sh

data=data/all
exp=exp/bsq_$config

if [ "$dry_run" = true ]; then  # bsq-train and bsq-encode have no --dry-run: the stages only
  . utils/dry_run.sh
  dry_run_plan "$stage" "$stop_stage" "$help_message"
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
  log "Stage 1: train: $data, conf/$config.yaml -> $exp (resumes from its last checkpoint)"
  mkdir -p "$exp"
  steps_option=()
  [ -z "$max_steps" ] || steps_option=(--max-steps "$max_steps")
  echo "audiotok bsq-train conf/$config.yaml --train $data --output-dir $exp --device $device ${steps_option[*]}" > "$exp/command.txt"
  audiotok bsq-train "conf/$config.yaml" --train "$data" --output-dir "$exp" --device "$device" "${steps_option[@]}"
  log "model: $exp (config.json, model.safetensors); curve: $exp/loss_curve.png"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: encode: $data -> $exp/tokens.txt"
  audiotok bsq-encode --model "$exp" "$data" -o "$exp/tokens.txt"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: eval: held-out utterances ($exp/valid_keys.txt) -> $exp/eval.json, $exp/eval.txt"
  audiotok bsq-eval --model "$exp" --keys "$exp/valid_keys.txt" "$data" --json --per-utterance > "$exp/eval.json"
  audiotok bsq-eval --model "$exp" --keys "$exp/valid_keys.txt" "$data" | tee "$exp/eval.txt"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: decode: held-out tokens -> $exp/decoded (mel .npy, Griffin-Lim .wav)"
  awk 'NR == FNR { held[$1]; next } $1 in held' "$exp/valid_keys.txt" "$exp/tokens.txt" > "$exp/valid_tokens.txt"
  audiotok bsq-decode --model "$exp" "$exp/valid_tokens.txt" -o "$exp/decoded" --griffin-lim
fi
