#!/usr/bin/env bash
# Summary: a movie of a tub with the model's steering and attention drawn
# Usage: local_makemovie.sh [-m MODEL] [-a ARCHIVE] [-s START] [-e END] [-p] [-o OUT] [--type TYPE] [-f] [--trust-model-code]
#
# Runs DonkeyCar's own makemovie (python -m trainer.movie) on the tub inside
# ARCHIVE: each frame shows your steering (green) and the model's (blue),
# labelled "you" and "model" in its corner, and, unless -p, the salient map: the pixels that move the model's output
# most, i.e. what it looks at. A model that watches the lane lines drives;
# one that watches the wall or the sky has learned the wrong thing.
# submit_cloud_makemovie.sh makes the same movie on a Vertex AI GPU.
# The records it draws are checked first (frames that do not decode, labels
# that are not numbers: one line naming them). A movie made but not written
# to OUT (a full disk) is kept in $TMPDIR/robocar-kept-NAME/, named in the
# last line; an OUT that is a folder is refused before the movie is made.
#
#   -m, --model MODEL      the .h5 model: a path, or a name in models/ (default: the
#                          newest of pilot-wip, pilot-wip-2, ... in models/)
#   -a, --archive ARCHIVE  the tub archive (default: the newest of wip.tgz, wip-2.tgz, ...)
#   -s, --start START      first record (default: 0)
#   -e, --end END          record to stop before (default: the end of the tub)
#   -p, --plain            plain: no salient map
#   --type TYPE            the model's DonkeyCar type (default: the config's
#                          DEFAULT_MODEL_TYPE)
#   -o, --output OUT       the movie (default: MODEL's stem .mp4 here, e.g. pilot-wip.mp4,
#                          or the next free pilot-wip-2.mp4, ... when it exists)
#   -f, --force            replace OUT if it exists
#   --trust-model-code     load a MODEL whose Lambda layers run Python code when it
#                          loads (default: refuse it); only for models you trust
#   -h, --help             print this help
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_module trainer.movie "$@"
