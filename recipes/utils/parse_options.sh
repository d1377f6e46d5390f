#!/usr/bin/env bash
# Parse --name value / --name=value options into the shell variables of the
# same name (dashes and underscores alike) that the calling script defined.
# `--help` prints the script's $help_message. Source it after the defaults:
#   stage=0; nj=4; . utils/parse_options.sh
# Leaves positional arguments in "$@"; everything after `--` is positional as it is.

__positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; __positional+=("$@"); break ;;
    --help|-h)
      printf '%s\n' "${help_message:-usage: $0 [--option value]...}"
      exit 0 ;;
    --*=*) __name=${1%%=*}; __value=${1#*=}; shift ;;
    --*)
      __name=$1
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 2; fi
      __value=$2; shift 2 ;;
    *) __positional+=("$1"); shift; continue ;;
  esac
  __var=${__name#--}
  __var=${__var//-/_}
  if ! [[ $__var =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!__var+set}" ]; then
    echo "$0: unknown option $__name (see $0 --help)" >&2
    exit 2
  fi
  printf -v "$__var" '%s' "$__value"
done
set -- "${__positional[@]+"${__positional[@]}"}"
unset __positional __name __value __var
