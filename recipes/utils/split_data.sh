#!/usr/bin/env bash
# Split a Kaldi data directory into N parts for N jobs (DESIGN.md convention 7).
set -euo pipefail
export LC_ALL=C   # keys compare byte-wise, as everywhere in audiotok

me=split_data.sh
usage="usage: $me DATA_DIR N
Writes DATA_DIR/split{N}/{1..N}/, each a Kaldi data dir holding a contiguous run of the
utterances (keys in C-sorted order), balanced by total duration when DATA_DIR/utt2dur exists,
else by count. Utterances are the keys of segments if present, else of wav.scp.
Per part: utterance-keyed files (text, utt2spk, utt2dur, utt2*, feats.scp, segments, and
wav.scp without segments) are filtered to its utterances; with segments, wav.scp, reco2dur
and reco2file_and_channel keep the recordings its segments use; spk2utt is rebuilt from its
utt2spk, and spk2gender and cmvn.scp keep its speakers. Other files are not copied.
Does nothing when DATA_DIR/split{N}/.done is newer than every input file.
Exit: 0 ok; 1 when N exceeds the number of utterances or an input is unsorted; 2 usage error.
Example: utils/split_data.sh data/train 8   # then: \$cmd JOB=1:8 ... data/train/split8/JOB ..."

die() { echo "$me: $*" >&2; exit 1; }
[ "${1:-}" = --help ] || [ "${1:-}" = -h ] && { printf '%s\n' "$usage"; exit 0; }
[ $# -eq 2 ] || { echo "$me: need DATA_DIR and N (see $me --help)" >&2; exit 2; }
data=$1 n=$2
[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || { echo "$me: N must be a positive integer, not '$n'" >&2; exit 2; }
n=$((10#$n))
[ -f "$data/wav.scp" ] || die "$data/wav.scp not found"

utt_list=wav.scp
[ -f "$data/segments" ] && utt_list=segments

utt_files=() reco_files=() spk_files=()
for f in "$data"/*; do
  [ -f "$f" ] || continue
  case ${f##*/} in
    segments|text|utt2*|feats.scp) utt_files+=("${f##*/}") ;;
    wav.scp) if [ -f "$data/segments" ]; then reco_files+=(wav.scp); else utt_files+=(wav.scp); fi ;;
    reco2dur|reco2file_and_channel) [ -f "$data/segments" ] && reco_files+=("${f##*/}") ;;
    spk2gender|cmvn.scp) spk_files+=("${f##*/}") ;;
  esac
done

out=$data/split$n
inputs=("${utt_files[@]}" "${reco_files[@]+"${reco_files[@]}"}" "${spk_files[@]+"${spk_files[@]}"}")
if [ -f "$out/.done" ]; then
  fresh=true
  for f in "${inputs[@]}"; do [ "$out/.done" -nt "$data/$f" ] || fresh=false; done
  $fresh && exit 0
fi

# Every keyed input must be C-sorted with unique keys, or filtering would give unsorted parts.
for f in "${inputs[@]}"; do
  sort -c -u -k1,1 "$data/$f" 2>/dev/null || die "$data/$f is not sorted by key with unique keys (LC_ALL=C sort -u -k1,1)"
done

tmp=$out.tmp.$$
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp"

# utt2part: "utt part", contiguous parts in key order. An utterance moves to the next part when
# its midpoint passes that part's share of the total duration; every part keeps at least one.
dur=/dev/null
[ -f "$data/utt2dur" ] && dur=$data/utt2dur
awk -v n="$n" -v me="$me" -v dfile="$dur" '
  FILENAME == ARGV[1] { d[$1] = $2; have_dur = 1; next }
  { key[++u] = $1
    if (!have_dur) w[u] = 1
    else if ($1 in d) w[u] = d[$1] + 0
    else { printf "%s: %s lacks utterance %s\n", me, dfile, $1 > "/dev/stderr"; bad = 1; exit 1 } }
  END {
    if (bad) exit 1
    if (u < n) { printf "%s: cannot split %d utterances into %d parts\n", me, u, n > "/dev/stderr"; exit 1 }
    for (i = 1; i <= u; i++) total += w[i]
    part = 1; acc = 0; count = 0
    for (i = 1; i <= u; i++) {
      if (count > 0 && part < n && (u - i + 1 <= n - part || acc + w[i] / 2 > total * part / n)) { part++; count = 0 }
      print key[i], part; acc += w[i]; count++
    }
  }' "$dur" "$data/$utt_list" >"$tmp/utt2part" || exit 1

for ((j = 1; j <= n; j++)); do mkdir -p "$tmp/$j"; done

# Utterance-keyed files: each line to its utterance's part.
for f in "${utt_files[@]}"; do
  awk -v dir="$tmp" -v f="$f" 'FILENAME == ARGV[1] { p[$1] = $2; next }
    ($1 in p) { if (p[$1] != last) { if (last) close(out); last = p[$1]; out = dir "/" last "/" f } print >> out }' \
    "$tmp/utt2part" "$data/$f"
done

# Recording-keyed files: each line to every part whose segments use the recording.
for f in "${reco_files[@]+"${reco_files[@]}"}"; do
  awk -v dir="$tmp" -v f="$f" 'FILENAME == ARGV[1] { p[$1] = $2; next }
    FILENAME == ARGV[2] { if (($1 in p) && !((p[$1], $2) in seen)) { seen[p[$1], $2] = 1; parts[$2] = parts[$2] " " p[$1] } next }
    ($1 in parts) { k = split(parts[$1], ps, " "); for (i = 1; i <= k; i++) { out = dir "/" ps[i] "/" f; if (out != cur) { if (cur) close(cur); cur = out } print >> out } }' \
    "$tmp/utt2part" "$data/segments" "$data/$f"
done

for ((j = 1; j <= n; j++)); do
  part=$tmp/$j
  if [ -f "$part/utt2spk" ]; then
    # spk2utt: utterances of each speaker in key order, speakers C-sorted.
    sort -k2,2 -k1,1 "$part/utt2spk" | awk '$2 != s { if (s != "") print line; s = $2; line = s } { line = line " " $1 } END { if (s != "") print line }' >"$part/spk2utt"
    for f in "${spk_files[@]+"${spk_files[@]}"}"; do
      awk 'FILENAME == ARGV[1] { keep[$1]; next } $1 in keep' "$part/spk2utt" "$data/$f" >"$part/$f"
    done
  fi
  # An empty table is still a table: every part holds every file.
  for f in "${utt_files[@]}" "${reco_files[@]+"${reco_files[@]}"}"; do touch "$part/$f"; done
done
rm -f "$tmp/utt2part"
touch "$tmp/.done"
rm -rf "$out"
mv -T "$tmp" "$out"
