#!/usr/bin/env bash
# Summary: a movie of a tub with the model's steering and attention, made on Vertex AI
# Usage: submit_cloud_makemovie.sh [-m MODEL] [-a ARCHIVE] [-s START] [-e END] [-p] [-o OUT] [--type TYPE] [-d 5.3|5.4] [-M MACHINE] [-g ACCEL[:N]|none] [-S] [-w] [-n] [--check] [-f] [--trust-model-code]
#
# Runs the very job local_makemovie.sh runs (python -m trainer.movie, DonkeyCar's
# own makemovie with the salient map unless -p), as one Vertex AI custom job
# in TRAINER_IMAGE:dk5.3 or :dk5.4 (see build_image.sh). The movie goes to
# gs://$STEERING_BUCKET_NAME/movies/ under OUT's name. A local ARCHIVE is
# first uploaded to training/ unless the bucket already holds it; a local
# MODEL is used from the bucket's models/ when identical there, else it
# travels with the job. Without -w it prints the job's console URL and how
# to follow it; with -w it follows the job, then downloads the movie to OUT.
# -S is Spot here: -s is START, as in local_makemovie.sh.
#
#   -m, --model MODEL         the .h5 model: path, name or gs:// URI (default: the newest
#                             of pilot-wip, pilot-wip-2, ... in models/, else the bucket)
#   -a, --archive ARCHIVE     the tub archive: path, name or gs:// URI (default: the newest
#                             of wip.tgz, wip-2.tgz, ... here, else in the bucket)
#   -s, --start START         first record (default: 0)
#   -e, --end END             record to stop before (default: the end of the tub)
#   -p, --plain               plain: no salient map
#   --type TYPE               the model's DonkeyCar type (default: the config's
#                             DEFAULT_MODEL_TYPE)
#   -o, --output OUT          where -w puts the movie, and its name in movies/ (default:
#                             MODEL's stem .mp4 here, e.g. pilot-wip.mp4, or the next free
#                             pilot-wip-2.mp4, ...); a gs:// URI
#                             puts it there instead of movies/
#   -d, --generation 5.3|5.4  DonkeyCar generation of the image (default: the one in
#                             MODEL's card beside it, MODEL.json, else the DonkeyCar here)
#   -M, --machine MACHINE     machine type (default: n1-standard-8)
#   -g, --accelerator ACCEL[:N]  accelerator type and count (default: NVIDIA_TESLA_T4:1);
#                             -g none for the CPUs only
#   -S, --spot                use a Spot VM: much cheaper, may be preempted
#   -w, --wait                wait: follow the job, then download the movie to OUT
#   -n, --dry-run             dry run: print the job and the gcloud equivalent, send nothing
#   --check                   check the project for this job instead (as
#                             submit_cloud_train.sh --check does), send nothing
#   -f, --force               replace the movie (bucket and OUT), and a different archive
#                             of the same name in the bucket
#   --trust-model-code        load a MODEL whose Lambda layers run Python code when it
#                             loads (default: refuse it); only for models you trust
#   -h, --help                print this help
#
# Environment: as submit_cloud_train.sh: REGION, TRAINER_IMAGE,
# STEERING_BUCKET_NAME, optional JOB_DIR and GOOGLE_CLOUD_PROJECT.
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli submit-movie "$@"
