#!/usr/bin/env bash
# One audiotok command that writes a text unit table, run in nj jobs: job J adds
# `--shard J/N -o OUTDIR/NAME.J.txt` to the command; the parts are merged into OUTDIR/NAME.txt.
set -euo pipefail
# shellcheck source=../utils/log.sh
. utils/log.sh
# shellcheck source=lib.sh
. steps/lib.sh

nj=4
cmd=${cmd:-utils/launch.sh}   # from cmd.sh
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--nj N] [--cmd CMD] OUTDIR NAME -- AUDIOTOK-ARGS...
  audiotok AUDIOTOK-ARGS --shard J/N -o OUTDIR/NAME.J.txt for J in 1..N (logs in OUTDIR/log/),
  merged into OUTDIR/NAME.txt. The command must take --shard and -o (tokenize, s3-extract, ...).
  e.g.: $0 --nj 4 exp/step_audio/test vq06 -- s3-extract --model tok/speech_tokenizer_v1.onnx data/test"
# shellcheck source=../utils/parse_options.sh
. utils/parse_options.sh
[ $# -ge 3 ] || { printf '%s\n' "$help_message" >&2; exit 2; }
dir=$1 name=$2
shift 2

signature="$(quote_args "$@") nj=$nj"
if is_done "$dir/.$name.done" "$signature"; then
  log "$dir/$name.txt is already done; skipping"
  exit 0
fi
mkdir -p "$dir/log"
# Each job's log starts with its command line: the provenance of its part.
read -ra launch <<<"$cmd"
"${launch[@]}" "JOB=1:$nj" "$dir/log/$name.JOB.log" \
  audiotok "$@" --shard "JOB/$nj" -o "$dir/$name.JOB.txt"

mapfile -t parts < <(seq -f "$dir/$name.%g.txt" "$nj")
utils/merge_tables.sh "$dir/$name.txt" "${parts[@]}"
mark_done "$dir/.$name.done" "$signature"
log "$name: $dir/$name.txt ($(wc -l <"$dir/$name.txt") utterances)"
