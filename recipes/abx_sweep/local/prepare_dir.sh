#!/usr/bin/env bash
# prepare_dir.sh CORPUS_DIR OUT_DIR: a Kaldi data dir (wav.scp) for every audio
# file under CORPUS_DIR, keyed by file name without its extension.
set -euo pipefail
corpus=$1 out=$2
[ -d "$corpus" ] || { echo "error: no such corpus directory: $corpus" >&2; exit 1; }
mkdir -p "$out"
find "$(cd "$corpus" && pwd)" -type f \( -iname '*.wav' -o -iname '*.flac' -o -iname '*.ogg' -o -iname '*.mp3' -o -iname '*.opus' \) |
  awk '{ n = $0; sub(/.*\//, "", n); sub(/\.[^.]*$/, "", n); print n, $0 }' | sort -k1,1 > "$out/wav.scp"
[ -s "$out/wav.scp" ] || { echo "error: no audio files under $corpus" >&2; exit 1; }
dups=$(cut -d' ' -f1 "$out/wav.scp" | uniq -d | head -3)
[ -z "$dups" ] || { echo "error: several files share a name: $dups (hint: give each a unique name)" >&2; exit 1; }
