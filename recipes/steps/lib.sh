#!/usr/bin/env bash
# Helpers the steps (and recipes) source: option files, stage-level "done" markers and the
# provenance an output directory keeps. Needs utils/log.sh sourced first.

# read_conf FILE ARRAY: the audiotok options in FILE (one or more a line, `#` starts a
# comment; values hold no blanks) -> the array named ARRAY. An empty FILE name gives none.
read_conf() {
  local -n __opts=$2
  local line words
  __opts=()
  [ -n "$1" ] || return 0
  [ -f "$1" ] || { echo "error: no such config file: $1" >&2; return 1; }
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    read -ra words <<<"$line"
    __opts+=("${words[@]+"${words[@]}"}")
  done <"$1"
}

# conf_get NAME FILE: the value of --NAME in an option file (`--NAME V` or `--NAME=V`), or nothing.
conf_get() {
  local opts i
  read_conf "$2" opts
  for ((i = 0; i < ${#opts[@]}; i++)); do
    case ${opts[i]} in
      "--$1="*) printf '%s\n' "${opts[i]#*=}" ;;
      "--$1") printf '%s\n' "${opts[i + 1]:-}" ;;
    esac
  done | tail -n 1  # the last one wins, as on a command line
}

# is_done MARKER SIGNATURE: true when a step finished with this signature (its resolved
# inputs and options). A changed signature redoes the step, as audiotok's own markers do.
is_done() {
  [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

# mark_done MARKER SIGNATURE: written last and atomically, after every output of the step.
mark_done() {
  printf '%s\n' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# write_atomic FILE: stdin -> FILE via FILE.tmp and a rename.
write_atomic() {
  cat >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# keep_provenance DIR CONFIG COMMAND...: DIR/run_config.txt (the resolved configuration,
# given as text) and DIR/command.txt (the step's own command line, $step_command, which the
# step sets before parsing its options, and the command the step runs).
keep_provenance() {
  local dir=$1 config=$2
  shift 2
  mkdir -p "$dir"
  printf '%s\n' "$config" | write_atomic "$dir/run_config.txt"
  printf '# in %s\n%s\n%s\n' "$PWD" "${step_command:-}" "$(quote_args "$@")" | write_atomic "$dir/command.txt"
}

# quote_args ARG...: the arguments as one line bash would read back as the same words.
quote_args() {
  local out
  printf -v out '%q ' "$@"
  printf '%s\n' "${out% }"
}

# unit_names: the directory names of a corpus recipe, which carry its configuration:
# feat (NAME of feats_NAME.conf), k (--k, else the k-means config's, else 500), suffix
# (_trim when trimming) and km (exp/km<k>_<feat><suffix>). Reads feat_conf kmeans_conf k trim.
# shellcheck disable=SC2034,SC2154  # reads and sets the sourcing run.sh's variables
unit_names() {
  feat=$(basename "$feat_conf" .conf); feat=${feat#feats_}
  k=${k:-$(conf_get k "$kmeans_conf")}; k=${k:-500}
  suffix=
  if [ "$trim" = true ]; then suffix=_trim; fi
  km=exp/km${k}_${feat}${suffix}
}
