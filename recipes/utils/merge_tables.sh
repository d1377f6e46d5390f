#!/usr/bin/env bash
# Merge the per-job pieces of a keyed table (units, scp, utt2dur...) into one, safely.
set -euo pipefail
export LC_ALL=C   # keys compare byte-wise, as everywhere in audiotok

me=merge_tables.sh
usage="usage: $me OUT IN...
Merges text tables whose lines start with a key (units 'key 1 2 3', scp files, utt2dur),
each sorted by key (LC_ALL=C), into OUT, sorted, with 'sort -m': no re-sort of the data.
Writes OUT.tmp and renames it, so OUT is either complete or untouched.
Fails (exit 1, one line) when an input is missing or unsorted, or a key appears twice,
within one input or across inputs; exit 2 on a usage error.
Recipes recorded beside the inputs (IN.recipe.json, e.g. s3-extract's) must be the same for
every input; OUT.recipe.json gets it. Some inputs with a recipe and some without, or two
different recipes, is an error (the pieces were not made by one command).
Example: utils/merge_tables.sh exp/km500/units.txt exp/km500/units.{1..8}.txt"

[ "${1:-}" = --help ] || [ "${1:-}" = -h ] && { printf '%s\n' "$usage"; exit 0; }
[ $# -ge 2 ] || { echo "$me: need OUT and at least one IN (see $me --help)" >&2; exit 2; }
out=$1; shift
die() { echo "$me: $*" >&2; exit 1; }

# Each input: present, no empty line, keys strictly increasing (byte order; the "" forces a
# string comparison, awk would compare numeric-looking keys as numbers).
for f in "$@"; do
  [ -f "$f" ] || die "input $f not found"
  msg=$(awk 'NF == 0 { print "line " FNR " is empty"; exit 1 }
    FNR > 1 && $1 "" == prev "" { print "key " $1 " appears twice"; exit 1 }
    FNR > 1 && $1 "" < prev "" { print "not sorted at line " FNR " (key " $1 " after " prev "; use LC_ALL=C sort)"; exit 1 }
    { prev = $1 }' "$f") || die "$f: $msg"
done

# The inputs' recipes: none, or one for every input, all equal.
recipes=0
for f in "$@"; do [ ! -f "$f.recipe.json" ] || recipes=$((recipes + 1)); done
[ "$recipes" -eq 0 ] || [ "$recipes" -eq $# ] || die "$recipes of $# inputs have a recipe (IN.recipe.json): the pieces were not made by one command"
if [ "$recipes" -gt 0 ]; then
  for f in "$@"; do
    cmp -s "$f.recipe.json" "$1.recipe.json" || die "$f.recipe.json differs from $1.recipe.json: the pieces were made differently"
  done
fi

mkdir -p "$(dirname "$out")"
tmp=$out.tmp
trap 'rm -f "$tmp" "$tmp.dup" "$tmp.recipe"' EXIT
if ! sort -m -k1,1 -- "$@" | awk -v dup="$tmp.dup" '
    NR > 1 && $1 "" == prev "" { print $1 > dup; exit 1 }
    { prev = $1; print }' >"$tmp"; then
  [ -s "$tmp.dup" ] || die "merging into $out failed"
  key=$(cat "$tmp.dup")
  # Name the inputs that hold the key (only on this error path; ENVIRON keeps backslashes).
  holders=$(KEY=$key awk '$1 == ENVIRON["KEY"] { printf "%s ", FILENAME; nextfile }' "$@")
  die "key $key appears twice across inputs (in ${holders% })"
fi
if [ "$recipes" -gt 0 ]; then
  cp -- "$1.recipe.json" "$tmp.recipe" && mv -f "$tmp.recipe" "$out.recipe.json"
fi
mv -f "$tmp" "$out"
