#!/usr/bin/env bash
# log MESSAGE...: a time-stamped line on stderr, naming the script.
log() {
  printf '%s (%s) %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$(basename "$0")" "$*" >&2
}
