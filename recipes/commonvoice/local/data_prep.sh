#!/usr/bin/env bash
# data_prep.sh CORPUS SET OUT: a Kaldi data dir (wav.scp, text, utt2spk) from one Common
# Voice table, CORPUS/SET.tsv (columns found by their header: client_id, path, sentence)
# with audio in CORPUS/clips/. As in Kaldi, utterance ids are CLIENT_ID-CLIP, so each starts
# with its speaker id.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 CORPUS SET OUT" >&2; exit 2; }
corpus=$1 set=$2 out=$3
tsv=$corpus/$set.tsv
[ -f "$tsv" ] || { echo "error: no such Common Voice table: $tsv (hint: --corpus is the release directory holding train.tsv and clips/)" >&2; exit 1; }
clips=$(cd "$corpus/clips" && pwd)
case $clips in *[[:space:]]*) echo "error: $clips: a wav.scp path cannot hold blanks (hint: link the corpus from a plain path)" >&2; exit 1 ;; esac
mkdir -p "$out"
# shellcheck disable=SC2016  # the $ fields are awk's
awk -F'\t' -v clips="$clips" -v out="$out" '
  NR == 1 {
    for (i = 1; i <= NF; i++) col[$i] = i
    if (!("client_id" in col) || !("path" in col) || !("sentence" in col)) {
      print "error: " FILENAME ": the header lacks client_id, path or sentence" > "/dev/stderr"; bad = 1; exit 1
    }
    printf "" > (out "/wav.scp"); printf "" > (out "/text"); printf "" > (out "/utt2spk")
    next
  }
  {
    spk = $col["client_id"]; clip = $col["path"]; sentence = $col["sentence"]
    utt = clip; sub(/\.[^.]*$/, "", utt); utt = spk "-" utt
    if (spk == "" || utt ~ /[[:space:]\/]/ || clip ~ /[[:space:]]|\.\./) {
      printf "error: %s:%d: unusable client_id or path: %s %s\n", FILENAME, NR, spk, clip > "/dev/stderr"; bad = 1; exit 1
    }
    print utt, clips "/" clip > (out "/wav.scp")
    print utt, sentence > (out "/text")
    print utt, spk > (out "/utt2spk")
  }
  END { if (!bad && NR < 2) { print "error: " FILENAME " lists no clips" > "/dev/stderr"; exit 1 } }' "$tsv"
