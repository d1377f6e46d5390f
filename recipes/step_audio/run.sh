#!/usr/bin/env bash
# Step-Audio's dual-codebook tokenizer as a recipe: audio -> Step-Audio's front end (16 kHz by
# torchaudio's resampler, peak norm, energy trim on the TTS-prompt path) -> vq02 (Paraformer
# encoder + 1024 linguistic centroids, 16.7 Hz) and vq06 (CosyVoice speech tokenizer v1, 25 Hz,
# Step-Audio's 30 s chunks) as parallel job sets -> 2:3 interleave -> LLM ids and <audio_N> strings.
# Outputs go under this directory (data/, exp/).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. utils/log.sh
. steps/lib.sh

stage=0
stop_stage=100
nj=2
data=              # stage 0: a Kaldi data dir (wav.scp) or a directory of audio files
set_name=          # data/SET_NAME; default: the base name of --data
tokenizer_dir=     # Step-Audio-Tokenizer: linguistic_tokenizer.npy, speech_tokenizer_v1.onnx, the Paraformer dir
paraformer=        # default: TOKENIZER_DIR/dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online
centroids=         # default: TOKENIZER_DIR/linguistic_tokenizer.npy
s3_model=          # default: TOKENIZER_DIR/speech_tokenizer_v1.onnx
front_end=llm-input  # stage 1: llm-input, tts-prompt or none (see --help)
dry_run=false        # true: list the stages and estimate the model stages' cost (audiotok --dry-run); run nothing
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 --data DIR --tokenizer-dir DIR [--set-name NAME] [--nj N] [--stage N] [--stop-stage N]
                [--paraformer DIR] [--centroids FILE.npy] [--s3-model FILE.onnx] [--front-end MODE] [--dry-run true]
  stage 0: data prep   (DIR -> data/SET/{wav.scp,...,utt2dur})
  stage 1: front end   (data/SET -> MODE -> data/SET_sa_MODE: float32 WAV, never rounded to 16 bits)
  stage 2: vq02 bundle (Paraformer + linguistic_tokenizer.npy -> exp/vq02)
  stage 3: tokens      (data/SET_sa_MODE -> exp/step_audio/SET_MODE/{vq02,vq06}.txt: two job sets of nj jobs,
                        side by side; vq06 cuts recordings over 30 s as Step-Audio does)
  stage 4: interleave  (vq02 + vq06 -> exp/step_audio/SET_MODE/tokens.txt (ids 65536 + vq02, 66560 + vq06)
                        and audio.txt ('key <audio_N>...' with N = vq02, 1024 + vq06))
  --front-end MODE, Step-Audio's preprocess_wav on one of its two call paths:
    llm-input   (default) StepAudioTokenizer.__call__, how Step-Audio encodes a user's speech for
                its LLM: to 16 kHz by torchaudio's Resample, peak norm x / max(max|x|, 0.01) x 0.999,
                no trim: every recording keeps its length, so it matches text, segments and utt2dur
    tts-prompt  wav2token's defaults, how Step-Audio's TTS encodes a voice prompt: as llm-input,
                then trim_silence (librosa trim at 20 dB, 0.05 s kept before, 0.22 s after)
    none        the torchaudio resampling only
  A recording below 16 kHz is refused (Step-Audio does not upsample): a counted failure that
  names its key; the stage fails when over 5% of the recordings are refused."
. utils/parse_options.sh

[ -n "$set_name" ] || set_name=$(basename "${data:-data}")
paraformer=${paraformer:-$tokenizer_dir/dengcunqin/speech_paraformer-large_asr_nat-zh-cantonese-en-16k-vocab8501-online}
centroids=${centroids:-$tokenizer_dir/linguistic_tokenizer.npy}
s3_model=${s3_model:-$tokenizer_dir/speech_tokenizer_v1.onnx}
case $front_end in
  llm-input) front_end_ops=(--normalize peak) ;;
  tts-prompt) front_end_ops=(--normalize peak --trim energy) ;;
  none) front_end_ops=() ;;
  *) echo "error: unknown --front-end '$front_end' (hint: llm-input, tts-prompt or none)" >&2; exit 2 ;;
esac
src=data/$set_name clean=data/${set_name}_sa_$front_end bundle=exp/vq02 out=exp/step_audio/${set_name}_$front_end

if [ "$dry_run" = true ]; then
  . utils/dry_run.sh
  dry_run_plan "$stage" "$stop_stage" "$help_message"
  if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
    dry_run_estimate "$clean" "$bundle/config.json" -- audiotok tokenize "$bundle" "$clean" --nj "$nj" --dry-run
    dry_run_estimate "$clean" "$s3_model" -- audiotok s3-extract --model "$s3_model" --long-audio step-audio "$clean" --nj "$nj" --dry-run
  fi
  exit 0
fi

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: data prep: $data -> $src"
  [ -n "$data" ] || { echo "error: stage 0 needs --data DIR (see $0 --help)" >&2; exit 2; }
  if [ -s "$src/utt2dur" ]; then
    log "$src is already done; skipping"
  else
    local/data_prep.sh "$data" "$src"
    steps/finish_data_dir.sh "$src"
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: front end: $src -> $front_end (torchaudio resample 16000${front_end_ops[*]+ ${front_end_ops[*]}}) -> $clean"
  steps/frontend.sh --rate 16000 --resampler torchaudio --downsample-only true --float true \
    "${front_end_ops[@]+"${front_end_ops[@]}"}" "$src" "$clean"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: vq02 bundle: $paraformer + $centroids -> $bundle"
  for f in "$paraformer" "$centroids"; do
    [ -e "$f" ] || { echo "error: $f not found (hint: give --tokenizer-dir, or --paraformer and --centroids)" >&2; exit 1; }
  done
  audiotok import-centroids "$centroids" "$bundle" --model "$paraformer"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: tokens: $clean -> $out/vq02.txt and $out/vq06.txt ($nj jobs each, side by side)"
  [ -e "$s3_model" ] || { echo "error: $s3_model not found (hint: give --tokenizer-dir or --s3-model)" >&2; exit 1; }
  steps/sharded.sh --nj "$nj" "$out" vq02 -- tokenize "$bundle" "$clean" &
  vq02_job=$!
  steps/sharded.sh --nj "$nj" "$out" vq06 -- s3-extract --model "$s3_model" --long-audio step-audio "$clean" &
  vq06_job=$!
  failed=
  wait "$vq02_job" || failed+=" vq02"
  wait "$vq06_job" || failed+=" vq06"
  [ -z "$failed" ] || { echo "error: stage 3 failed for:$failed (hint: see $out/log/)" >&2; exit 1; }
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: interleave: $out/vq02.txt + $out/vq06.txt (2:3) -> $out/tokens.txt, $out/audio.txt"
  audiotok interleave "$out/vq02.txt" "$out/vq06.txt" --ratio 2:3 --offsets 65536,66560 -o "$out/tokens.txt"
  audiotok interleave "$out/vq02.txt" "$out/vq06.txt" --ratio 2:3 --offsets 0,1024 --format string -o "$out/audio.txt"
  log "tokens: $out/tokens.txt; strings: $out/audio.txt ($(wc -l <"$out/audio.txt") utterances)"
fi
