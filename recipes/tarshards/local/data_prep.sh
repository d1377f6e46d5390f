#!/usr/bin/env bash
# data_prep.sh SHARD_DIR RATE OUT: a Kaldi data dir from WebDataset tar shards (SHARD_DIR/*.tar,
# NAME.flac + NAME.json per sample). audiotok reads the members as streams and writes each
# sample's audio at RATE into OUT/audio/ with OUT/wav.scp, so the later steps (split by
# duration, jobs over parts) work on an ordinary data dir.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 SHARD_DIR RATE OUT" >&2; exit 2; }
shards=$1 rate=$2 out=$3
[ -d "$shards" ] || { echo "error: no such shard directory: $shards" >&2; exit 1; }
audiotok resample --rate "$rate" "tar:$shards" "$out"
