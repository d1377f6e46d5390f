#!/usr/bin/env bash
# data_prep.sh SRC OUT: OUT/wav.scp (+ text, utt2spk, segments when SRC has them) from a
# Kaldi data dir SRC, or a wav.scp for every audio file under a directory SRC (keyed by
# file name without its extension).
set -euo pipefail
src=$1 out=$2
[ -d "$src" ] || { echo "error: no such directory: $src" >&2; exit 1; }
mkdir -p "$out"
if [ -f "$src/wav.scp" ]; then
  for f in wav.scp segments text utt2spk; do
    [ ! -f "$src/$f" ] || cp "$src/$f" "$out/$f"
  done
else
  find "$(cd "$src" && pwd)" -type f \( -iname '*.wav' -o -iname '*.flac' -o -iname '*.ogg' -o -iname '*.mp3' -o -iname '*.opus' \) |
    awk '{ n = $0; sub(/.*\//, "", n); sub(/\.[^.]*$/, "", n); print n, $0 }' | LC_ALL=C sort -k1,1 > "$out/wav.scp"
fi
[ -s "$out/wav.scp" ] || { echo "error: no audio found in $src (hint: give a Kaldi data dir or a folder of audio files)" >&2; exit 1; }
