#!/usr/bin/env bash
# Completes a data dir that a corpus's data prep wrote (wav.scp, and text, utt2spk when the
# corpus has them): C-order sorting, unique keys, spk2utt from utt2spk, utt2dur.
set -euo pipefail
# shellcheck source=../utils/log.sh
. utils/log.sh
# shellcheck source=lib.sh
. steps/lib.sh

# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 DATA
  DATA/{wav.scp,text,utt2spk} -> sorted, + DATA/spk2utt, DATA/utt2dur"
# shellcheck source=../utils/parse_options.sh
. utils/parse_options.sh
[ $# -eq 1 ] || { printf '%s\n' "$help_message" >&2; exit 2; }
data=$1

[ -s "$data/wav.scp" ] || { echo "error: $data/wav.scp is missing or empty" >&2; exit 1; }
for f in wav.scp text utt2spk; do
  [ -f "$data/$f" ] || continue
  LC_ALL=C sort -k1,1 "$data/$f" | write_atomic "$data/$f"
  dups=$(cut -d' ' -f1 "$data/$f" | uniq -d | head -n 3 | tr '\n' ' ')
  [ -z "$dups" ] || { echo "error: $data/$f: duplicate keys: $dups" >&2; exit 1; }
done
if [ -f "$data/utt2spk" ]; then
  awk '{ s[$2] = s[$2] " " $1 } END { for (k in s) print k s[k] }' "$data/utt2spk" |
    LC_ALL=C sort | write_atomic "$data/spk2utt"
fi
audiotok wav-to-duration "$data" -o "$data/utt2dur"
log "$data: $(wc -l <"$data/wav.scp") utterances"
