#!/usr/bin/env bash
# What a recipe's --dry-run true does, sourced by its run.sh after utils/log.sh: it lists the
# stages the run would go through and, for the stages that read the audio through a model, runs
# that audiotok command with --dry-run (items, hours, frames, tokens, disk, time; one JSON line
# each on stdout), when the stage's inputs are there already. Nothing else is run or written.

# dry_run_plan STAGE STOP_STAGE HELP: the `stage N:` lines of HELP within STAGE..STOP_STAGE.
dry_run_plan() {
  local first=$1 last=$2 line
  log "dry run: nothing is run or written; stages $first to $last would be:"
  while IFS= read -r line; do
    if [[ $line =~ ^[[:space:]]*stage\ ([0-9]+): ]] && [ "${BASH_REMATCH[1]}" -ge "$first" ] && [ "${BASH_REMATCH[1]}" -le "$last" ]; then
      printf '%s\n' "$line" >&2
    fi
  done <<<"$3"
}

# dry_run_estimate INPUT... -- COMMAND...: COMMAND (an audiotok command with --dry-run) when every
# INPUT exists; otherwise a line naming the input an earlier stage has still to make.
dry_run_estimate() {
  local inputs=() input
  while [ $# -gt 0 ] && [ "$1" != -- ]; do inputs+=("$1"); shift; done
  shift
  for input in "${inputs[@]}"; do
    if [ ! -e "$input" ]; then
      log "dry run: no estimate for '$*': $input is not there yet (an earlier stage makes it)"
      return 0
    fi
  done
  log "dry run: $*"
  "$@"
}

# dry_run_features CONF FEAT SUFFIX NJ SET...: the estimate of the corpus recipes' feature stage,
# extract-feats with CONF's options on data/SET$SUFFIX into dump/FEAT/SET$SUFFIX/feats.ark.
dry_run_features() {
  local conf=$1 feat=$2 suffix=$3 nj=$4 set opts=()
  shift 4
  read_conf "$conf" opts
  for set in "$@"; do
    dry_run_estimate "data/$set$suffix" -- audiotok extract-feats "${opts[@]}" --nj "$nj" --dry-run "data/$set$suffix" "ark:dump/$feat/$set$suffix/feats.ark"
  done
}
