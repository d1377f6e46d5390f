#!/usr/bin/env bash
# synth_corpus.sh OUT_DIR: speak a few sentences with espeak-ng (22.05 kHz wav)
# and write a Kaldi data dir (wav.scp, text, utt2spk, spk2utt) to OUT_DIR.
set -euo pipefail
out=$1
command -v espeak-ng >/dev/null || { echo "error: espeak-ng is not installed (hint: make system-deps, or give --corpus DIR)" >&2; exit 1; }
mkdir -p "$out/wav"
out_abs=$(cd "$out" && pwd)
sentences=(
  "the quick brown fox jumps over the lazy dog"
  "speech tokens turn audio into words a language model can read"
  "she sells sea shells by the sea shore"
  "a small corpus is enough to test every stage"
  "numbers like three hundred and twelve are spoken too"
  "discrete units come from clustering speech features"
)
voices=(en-us en-gb)
: > "$out/wav.scp.tmp"; : > "$out/text.tmp"; : > "$out/utt2spk.tmp"
for v in "${!voices[@]}"; do
  for i in "${!sentences[@]}"; do
    spk=$(printf 'spk%d' "$v")
    utt=$(printf '%s-utt%02d' "$spk" "$i")
    espeak-ng -v "${voices[$v]}" -s $((150 + 10 * i)) -w "$out_abs/wav/$utt.wav" "${sentences[$i]}"
    echo "$utt $out_abs/wav/$utt.wav" >> "$out/wav.scp.tmp"
    echo "$utt ${sentences[$i]}" >> "$out/text.tmp"
    echo "$utt $spk" >> "$out/utt2spk.tmp"
  done
done
for f in wav.scp text utt2spk; do sort "$out/$f.tmp" > "$out/$f"; rm "$out/$f.tmp"; done
awk '{s[$2]=s[$2]" "$1} END {for (k in s) print k s[k]}' "$out/utt2spk" | sort > "$out/spk2utt"
