#!/usr/bin/env bash
# The audio front end: resample, then optionally normalise and trim, each an audiotok
# command writing a data dir; the last one writes OUT. Intermediate dirs are named after
# IN and the operation (IN_16000, IN_16000_torchaudio, IN_norm, IN_norm_float), so a rerun
# finds and skips them.
set -euo pipefail
# shellcheck source=../utils/log.sh
. utils/log.sh

rate=16000           # empty: keep the rate
resampler=soxr       # soxr or torchaudio (audiotok resample --resampler)
downsample_only=false  # true: an item below --rate is refused (a counted failure), not upsampled
normalize=none       # none, peak, volume, rms or loudness (audiotok normalize --method)
trim=none            # none, energy or vad (audiotok trim --method)
float=false          # true: every step writes 32-bit float WAV, so no sample is rounded to 16 bits
utt2dur=true         # also write OUT/utt2dur
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="usage: $0 [--rate HZ] [--resampler soxr|torchaudio] [--downsample-only true|false]
         [--normalize none|peak|volume|rms|loudness] [--trim none|energy|vad] [--float true|false]
         [--utt2dur true|false] IN OUT
  IN (data dir) -> resample -> normalize -> trim -> OUT (data dir: audio/, wav.scp, text, utt2spk, spk2utt[, utt2dur])
  Audio is written as 16-bit FLAC, or with --float true as float WAV (the samples exactly).
  e.g.: $0 --rate 16000 --trim energy data/dev-clean data/dev-clean_trim
        $0 --rate 16000 --resampler torchaudio --normalize peak --float true data/dev data/dev_sa"
# shellcheck source=../utils/parse_options.sh
. utils/parse_options.sh
[ $# -eq 2 ] || { printf '%s\n' "$help_message" >&2; exit 2; }
in=$1 out=$2
for flag in downsample_only float utt2dur; do
  case ${!flag} in true|false) ;; *) echo "error: $0: --${flag//_/-} must be true or false, got '${!flag}'" >&2; exit 2 ;; esac
done

# The operations asked for, as audiotok commands reading the previous one's output.
ops=() names=()
if [ -n "$rate" ]; then
  op="resample --rate $rate --resampler $resampler" name=$rate
  [ "$resampler" = soxr ] || name+=_$resampler
  [ "$downsample_only" = false ] || op+=" --downsample-only"
  ops+=("$op"); names+=("$name")
fi
[ "$normalize" = none ] || { ops+=("normalize --method $normalize"); names+=(norm); }
[ "$trim" = none ] || { ops+=("trim --method $trim"); names+=(trim); }
[ ${#ops[@]} -gt 0 ] || { echo "error: $0: nothing to do (hint: give --rate, --normalize or --trim)" >&2; exit 2; }
encoding=() suffix=
[ "$float" = false ] || { encoding=(--subtype FLOAT --audio-format wav); suffix=_float; }

src=$in
for i in "${!ops[@]}"; do
  dst=${in}_${names[i]}$suffix
  [ "$i" -lt $((${#ops[@]} - 1)) ] || dst=$out
  read -ra op <<<"${ops[i]}"
  audiotok "${op[@]}" "${encoding[@]+"${encoding[@]}"}" "$src" "$dst"
  src=$dst
done
[ "$utt2dur" = false ] || audiotok wav-to-duration "$out" -o "$out/utt2dur"
