#!/usr/bin/env bash
# The audio front end: resample, then optionally normalise and trim, each an audiotok
# command writing a data dir; the last one writes OUT. Intermediate dirs are named after
# IN and the operation (IN_16000, IN_norm), so a rerun finds and skips them.
set -euo pipefail
# shellcheck source=../utils/log.sh
. utils/log.sh

rate=16000        # empty: keep the rate
normalize=none    # none, peak, volume, rms or loudness (audiotok normalize --method)
trim=none         # none, energy or vad (audiotok trim --method)
utt2dur=true      # also write OUT/utt2dur
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--rate HZ] [--normalize none|peak|volume|rms|loudness] [--trim none|energy|vad] [--utt2dur true|false] IN OUT
  IN (data dir) -> resample -> normalize -> trim -> OUT (data dir: audio/, wav.scp, text, utt2spk, spk2utt[, utt2dur])
  e.g.: $0 --rate 16000 --trim energy data/dev-clean data/dev-clean_trim"
# shellcheck source=../utils/parse_options.sh
. utils/parse_options.sh
[ $# -eq 2 ] || { printf '%s\n' "$help_message" >&2; exit 2; }
in=$1 out=$2

# The operations asked for, as audiotok commands reading the previous one's output.
ops=() names=()
[ -z "$rate" ] || { ops+=("resample --rate $rate"); names+=("$rate"); }
[ "$normalize" = none ] || { ops+=("normalize --method $normalize"); names+=(norm); }
[ "$trim" = none ] || { ops+=("trim --method $trim"); names+=(trim); }
[ ${#ops[@]} -gt 0 ] || { echo "error: $0: nothing to do (hint: give --rate, --normalize or --trim)" >&2; exit 2; }

src=$in
for i in "${!ops[@]}"; do
  dst=${in}_${names[i]}
  [ "$i" -lt $((${#ops[@]} - 1)) ] || dst=$out
  read -ra op <<<"${ops[i]}"
  audiotok "${op[@]}" "$src" "$dst"
  src=$dst
done
[ "$utt2dur" = false ] || audiotok wav-to-duration "$out" -o "$out/utt2dur"
