#!/usr/bin/env bash
# TASTE (seed 003): text-aligned speech tokens. Transcribed recordings -> S3 units (the targets)
# and TASTE features (Whisper encoder frames + text token embeddings) -> the aggregator, its RVQ
# tokens and a decoder trained to predict the S3 units -> one group of tokens per text token.
# Outputs go under this directory (data/, dump/, exp/).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh

stage=0
stop_stage=100
corpus=           # stage 0: a folder with MANIFEST.tsv (file, transcript[, language] columns)
language=         # keep only this MANIFEST.tsv language (e.g. en); empty: every transcribed row
whisper=          # Whisper model directory (transformers format), e.g. whisper-tiny.en
text_model=       # tokenizer + input embeddings; default: the Whisper directory
s3_model=         # S3 tokenizer (ONNX, weights or preset); empty: a random S3 v1 made in stage 1
s3_codebook=4096  # codebook size of the random S3 model (and so decoder.unit_vocab in conf/)
s3_fitted=256     # codewords of the random S3 model taken from its own encoder's frames (audio-dependent units)
config=small      # conf/$config.yaml
max_steps=        # override optim.max_steps
ablation=true     # stage 3 also trains the same model with the speech embeddings zeroed (text only)
device=auto       # auto, cpu or cuda
dry_run=false     # true: list the stages and estimate the model stages' cost (audiotok --dry-run); run nothing
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 --corpus DIR --whisper DIR [--text-model DIR] [--s3-model M] [--config small|tiny]
                [--s3-codebook K] [--s3-fitted N]                [--max-steps N] [--ablation true|false] [--language LANG] [--device D] [--stage N] [--stop-stage N] [--dry-run true]
  stage 0: data prep     (DIR/MANIFEST.tsv rows with a transcript -> data/all: wav.scp, text, manifest.jsonl)
  stage 1: S3 units      (data/all -> dump/s3/all.txt; without --s3-model a random S3 v1 in exp/s3_random)
  stage 2: features      (data/all + Whisper + text model -> dump/taste/all, a taste-extract store)
  stage 3: train         (features + units, conf/\$config.yaml -> exp/taste_\$config: model, metrics.jsonl,
                          baselines.json, loss_curve.png, examples.txt, summary.json; with --ablation true also
                          exp/taste_\${config}_text_only, trained with the speech embeddings zeroed)
  stage 4: encode        (data/all audio + transcripts -> exp/taste_\$config/tokens.jsonl, codes per text token)"
. utils/parse_options.sh

root=$(cd "$(dirname "$(command -v audiotok)")/.." && pwd)  # the checkout whose bin/audiotok path.sh put on PATH
py() { PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "${AUDIOTOK_PYTHON:-$( [ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || echo python3)}" "$@"; }
data=data/all
units=dump/s3/all.txt
features=dump/taste/all
exp=exp/taste_$config
text_model=${text_model:-$whisper}

if [ "$dry_run" = true ]; then
  . utils/dry_run.sh
  dry_run_plan "$stage" "$stop_stage" "$help_message"
  if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
    if [ -n "$s3_model" ]; then
      dry_run_estimate "$data" -- audiotok s3-extract --model "$s3_model" --device "$device" "$data" -o "$units" --dry-run
    else
      log "dry run: stage 1 makes its random S3 model first: no estimate without --s3-model"
    fi
  fi
  exit 0
fi

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: data prep: ${corpus:-?}/MANIFEST.tsv -> $data"
  [ -n "$corpus" ] || { echo "error: stage 0 needs --corpus DIR (see $0 --help)" >&2; exit 2; }
  if [ -s "$data/text" ]; then
    log "  $data is already done; skipping"
  else
    py local/manifest_from_tsv.py "$corpus" "$data" --language "$language"
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: S3 units: $data -> $units"
  mkdir -p "$(dirname "$units")"
  s3_options=()
  if [ -z "$s3_model" ]; then
    s3_model=exp/s3_random/s3_v1_25hz_${s3_codebook}_${s3_fitted}.pt
    if [ ! -s "$s3_model" ]; then
      log "  no --s3-model: a random S3 v1 (25 Hz, $s3_codebook codes, $s3_fitted of them frames of $data) -> $s3_model"
      mkdir -p "$(dirname "$s3_model")"
      py local/random_s3.py "$s3_model" --codebook-size "$s3_codebook" --fitted-codes "$s3_fitted" --fit "$data"
    fi
    s3_options=(--version v1 --rate 25)
  fi
  audiotok s3-extract --model "$s3_model" "${s3_options[@]}" --device "$device" "$data" -o "$units"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: TASTE features: $data + $whisper (text: $text_model) -> $features"
  [ -n "$whisper" ] || { echo "error: stage 2 needs --whisper DIR (see $0 --help)" >&2; exit 2; }
  audiotok taste-extract "$data" -o "$features" --whisper "$whisper" --text-model "$text_model" --device "$device"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  steps_option=()
  [ -z "$max_steps" ] || steps_option=(--max-steps "$max_steps")
  for variant in full text_only; do
    out=$exp zero=()
    if [ "$variant" = text_only ]; then
      [ "$ablation" = true ] || continue
      out=${exp}_text_only zero=(--zero-speech)
    fi
    log "Stage 3: train ($variant): $features + $units, conf/$config.yaml -> $out (resumes from its last checkpoint)"
    mkdir -p "$out"
    echo "audiotok taste-train conf/$config.yaml --features $features --units $units --output-dir $out --device $device ${steps_option[*]} ${zero[*]}" > "$out/command.txt"
    audiotok taste-train "conf/$config.yaml" --features "$features" --units "$units" --output-dir "$out" --device "$device" "${steps_option[@]}" "${zero[@]}"
  done
  log "model: $exp; numbers: $exp/summary.json; curve: $exp/loss_curve.png; examples: $exp/examples.txt"
  cat "$exp/summary.json" >&2
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: encode: $data (audio + transcripts) -> $exp/tokens.jsonl"
  audiotok taste-encode "$data" --model "$exp" --whisper "$whisper" --text-model "$text_model" --device "$device" -o "$exp/tokens.jsonl"
fi
