# shellcheck shell=bash
# Shared by every script at the top of the toolkit; sourced, never run.
# Scripts reach it through their own real location (they are usually called
# through symlinks from the car folder), then call rt_init "$@".
#
# It provides: PROG (the script's name, prefix of every message), ROOT (the
# toolkit's folder), PY (the toolkit's Python), die, usage_error, rt_help,
# and rt_python_cli / rt_python_module to hand over to the Python engine.

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[1]}")
PROG=$(basename "$SCRIPT_PATH")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TRAINER_PROG="$PROG"

# TRACE=1 traces every command with the file and line it came from.
if [ "${TRACE:-}" = 1 ]; then
  export PS4='+ ${BASH_SOURCE##*/}:${LINENO}: '
  set -x
fi

die() {
  echo "$PROG: $*" >&2
  exit 1
}

# The header comment of the script, from its second line to the first line
# that is not a comment, without the leading '# '.
rt_help() {
  sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p;}' "$SCRIPT_PATH"
}

usage_error() {
  {
    echo "$PROG: $*"
    grep '^# Usage:' "$SCRIPT_PATH" | sed 's/^# //'
    echo "Run '$PROG -h' for help."
  } >&2
  exit 2
}

# getopts' error cases, in one place: call from the '?' and ':' branches.
bad_flag() {
  case "$1" in
    :) usage_error "-$2 needs a value" ;;
    *) usage_error "unknown flag -$2" ;;
  esac
}

no_operands() {
  [ "$#" -eq 0 ] || usage_error "unexpected argument '$1' (flags only)"
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

# Hand over to `python -m trainer.cli VERB ...` or `python -m MODULE ...`.
rt_python_cli() {
  rt_find_python
  exec "$PY" -m trainer.cli "$@"
}

rt_python_module() {
  rt_find_python
  exec "$PY" -m "$@"
}
