#!/usr/bin/env bash
# prepare_data.sh AUDIO OUT_DIR [UTT2SPK]: the Kaldi data dir OUT_DIR (wav.scp, and utt2spk
# when given or when AUDIO has one) from AUDIO, a data dir with a wav.scp or a directory of
# audio files (keyed by file name without its extension, as the mini recipe keys them).
set -euo pipefail
audio=$1 out=$2 utt2spk=${3:-}
mkdir -p "$out"
if [ -f "$audio/wav.scp" ]; then
  cp "$audio/wav.scp" "$out/wav.scp"
  if [ -z "$utt2spk" ] && [ -f "$audio/utt2spk" ]; then utt2spk=$audio/utt2spk; fi
else
  local/prepare_dir.sh "$audio" "$out"
fi
rm -f "$out/utt2spk"  # a speaker map from an earlier run must not outlive its options
if [ -n "$utt2spk" ]; then
  [ -f "$utt2spk" ] || { echo "error: no such utt2spk file: $utt2spk" >&2; exit 1; }
  sort -k1,1 "$utt2spk" >"$out/utt2spk"
fi
