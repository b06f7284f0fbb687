#!/usr/bin/env bash
# Summary: a movie of a tub with the model's steering and attention drawn
# Usage: local_makemovie.sh [-m MODEL] [-a ARCHIVE] [-s START] [-e END] [-p] [-o OUT] [-f]
#
# Runs DonkeyCar's own makemovie (python -m trainer.movie) on the tub inside
# ARCHIVE: each frame shows your steering (green) and the model's (blue),
# and, unless -p, the salient map: the pixels that move the model's output
# most, i.e. what it looks at. A model that watches the lane lines drives;
# one that watches the wall or the sky has learned the wrong thing.
# submit_cloud_makemovie.sh makes the same movie on a Vertex AI GPU.
#
#   -m MODEL    the .h5 model (default: models/pilot-wip.h5)
#   -a ARCHIVE  the tub archive (default: wip.tgz)
#   -s START    first record (default: 0)
#   -e END      record to stop before (default: the end of the tub)
#   -p          plain: no salient map
#   -o OUT      the movie (default: MODEL's stem .mp4 here, e.g. pilot-wip.mp4)
#   -f          replace OUT if it exists
#   -h          print this help
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"

model=models/pilot-wip.h5
archive=wip.tgz
out=
args=()
while getopts ':m:a:s:e:po:fh' opt; do
  case $opt in
    m) model=$OPTARG ;;
    a) archive=$OPTARG ;;
    s) args+=(--start "$OPTARG") ;;
    e) args+=(--end "$OPTARG") ;;
    p) args+=(--plain) ;;
    o) out=$OPTARG ;;
    f) args+=(--force) ;;
    h) rt_help; exit 0 ;;
    *) bad_flag "$opt" "$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
no_operands "$@"
[ -n "$out" ] || out=$(basename "${model%.*}").mp4

rt_python_module trainer.movie --archive "$archive" --model "$model" --output "$out" "${args[@]}"
