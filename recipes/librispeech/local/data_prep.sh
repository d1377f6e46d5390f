#!/usr/bin/env bash
# data_prep.sh SET_DIR OUT: a Kaldi data dir (wav.scp, text, utt2spk) for one LibriSpeech
# set (SET_DIR/SPK/CHAP/SPK-CHAP-UTT.flac and SPK-CHAP.trans.txt). As in Kaldi, the
# "speaker" is SPK-CHAP, so every utterance id starts with its speaker id.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SET_DIR OUT" >&2; exit 2; }
src=$1 out=$2
[ -d "$src" ] || { echo "error: no such LibriSpeech set: $src (hint: --corpus is the directory holding dev-clean/ etc.)" >&2; exit 1; }
src=$(cd "$src" && pwd)
case $src in *[[:space:]]*) echo "error: $src: a wav.scp path cannot hold blanks (hint: link the corpus from a plain path)" >&2; exit 1 ;; esac
mkdir -p "$out"
: >"$out/wav.scp"; : >"$out/text"; : >"$out/utt2spk"
# shellcheck disable=SC2016  # the $ fields are awk's
find "$src" -name '*.trans.txt' -print0 | LC_ALL=C sort -z | xargs -0 -r awk -v out="$out" '
  FNR == 1 { dir = FILENAME; sub(/\/[^\/]*$/, "", dir) }
  NF == 0 { next }
  $1 !~ /^[0-9]+-[0-9]+-[0-9]+$/ { printf "error: %s:%d: not a LibriSpeech utterance id: %s\n", FILENAME, FNR, $1 > "/dev/stderr"; exit 1 }
  {
    utt = $1; spk = utt; sub(/-[^-]*$/, "", spk)
    print utt, dir "/" utt ".flac" >> (out "/wav.scp")
    print >> (out "/text")
    print utt, spk >> (out "/utt2spk")
  }'
[ -s "$out/wav.scp" ] || { echo "error: no *.trans.txt under $src" >&2; exit 1; }
