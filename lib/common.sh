# shellcheck shell=bash
# Shared by every script at the top of the toolkit; sourced, never run.
# Scripts reach it through their own real location (they are usually called
# through symlinks from the car folder), then hand their flags to Python:
#   rt_python_cli VERB "$@"        python -m trainer.client.cli VERB ...
#   rt_python_module MODULE "$@"   python -m MODULE ...
# -h/--help prints the script's header here; every other flag, and every
# usage error, is Python's (one parser per script, trainer/errors.py).
#
# It provides: PROG (the script's name, prefix of every message), ROOT (the
# toolkit's folder), USAGE (its header's Usage line), PY (the toolkit's
# Python), die, rt_usage_error, rt_help, rt_resolve.

# PATH with its symlinks followed to the real file; readlink -f is missing
# on older macOS, so the links are followed one at a time (as rbenv does).
rt_resolve() {
  local path=$1 link
  while [ -L "$path" ]; do
    link=$(readlink "$path")
    case $link in
      /*) path=$link ;;
      *) path=$(dirname "$path")/$link ;;
    esac
  done
  echo "$path"
}

SCRIPT_PATH=$(rt_resolve "${BASH_SOURCE[1]}")
PROG=$(basename "$SCRIPT_PATH")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
USAGE=$(grep '^# Usage:' "$SCRIPT_PATH" | sed 's/^# //')

# TRACE=1 traces every command with the file and line it came from.
if [ "${TRACE:-}" = 1 ]; then
  export PS4='+ ${BASH_SOURCE##*/}:${LINENO}: '
  set -x
fi

die() {
  echo "$PROG: $*" >&2
  exit 1
}

# A usage error of a script that parses its own flags in bash: one line, the
# Usage line of its header, exit 2 (as the Python parser does for the rest).
rt_usage_error() {
  {
    echo "$PROG: $*"
    echo "$USAGE"
  } >&2
  exit 2
}

# The header comment of the script, from its second line to the first line
# that is not a comment, without the leading '# '.
rt_help() {
  sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p;}' "$SCRIPT_PATH"
}

# The toolkit's Python: $TRAINER_PYTHON, else the toolkit's .venv, else python3.
rt_find_python() {
  if [ -n "${TRAINER_PYTHON:-}" ]; then
    PY=$TRAINER_PYTHON
  elif [ -x "$ROOT/.venv/bin/python" ]; then
    PY=$ROOT/.venv/bin/python
  else
    PY=python3
  fi
  command -v "$PY" >/dev/null 2>&1 ||
    die "no Python at '$PY': run 'make install' in $ROOT, or set TRAINER_PYTHON"
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
}

# -h or --help anywhere among the flags prints the header, and nothing runs.
rt_help_asked() {
  local arg
  for arg in "$@"; do
    case $arg in
      -h | --help) rt_help; exit 0 ;;
      --) return ;;
    esac
  done
}

# Hand over to `python -m trainer.client.cli VERB ...` or `python -m MODULE
# ...`, through `python -m trainer` (trainer/__main__.py), which names the
# script in every message and makes a package missing from $PY one line too.
rt_python_cli() {
  rt_python_module trainer.client.cli "$@"
}

rt_python_module() {
  rt_help_asked "${@:2}"
  rt_find_python
  exec "$PY" -m trainer --prog "$PROG" --usage "$USAGE" "$@"
}
