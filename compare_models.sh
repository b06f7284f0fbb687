#!/usr/bin/env bash
# Summary: which model is best? N models on the same unseen frames, ranked, in one page
# Usage: compare_models.sh NAME... [-E ARCHIVE] [-o REPORT] [-f]
#
# Runs each model through the DonkeyCar pilot the car would use (its .tflite)
# on the same frames none of them trained on, judges each by the training
# verdict's rule against a constant guess (the training mean) and steering
# straight, and ranks them: those clearly better than a constant guess
# first, then by steering error. It ends with the best one named and, when
# it is clearly better, the line that drives it.
#
# NAME is a model in ./models (or a path to one of its files, e.g.
# models/pilot-wip.tflite), else in gs://$STEERING_BUCKET_NAME/models/
# (downloaded into a temporary folder, each file checked against its card).
# The frames: every record of the -E archive (new laps, say), or else the
# held-out frames the runs share: the last tenth of each tub of the archive
# they all trained on, which their cards name with its sha256 (the archive is
# looked for where they trained, here, then in the bucket). Runs of different
# archives share no held-out frames: then pass -E.
#
# The report: a table here, and one HTML page (REPORT) with the steering and
# throttle errors against the baselines, latency per format on this machine,
# size, parameters, the epoch each run kept, training time and cost (cloud
# runs), loss curves and prediction traces overlaid, and a strip of the
# frames where the models disagree most. A model made for another frame size
# or DonkeyCar generation, one that needs inputs besides the camera, or one
# that trained on the -E archive is listed with why it was not compared.
# The archive's config.py runs here, as it does in training: compare models
# of archives you trust.
#
#   NAME...                    two or more models (one is judged alone)
#   -E, --eval-archive ARCHIVE  compare on every frame of this archive: path, name
#                              or gs:// URI (default: the held-out frames the runs share)
#   -o, --output REPORT        the HTML page (default: compare.html, moved on to
#                              compare-2.html, ... when taken)
#   -f, --force                replace an existing REPORT
#   -h, --help                 print this help
#
# Environment: STEERING_BUCKET_NAME (optional: models and archives in the
# bucket); credentials from GOOGLE_APPLICATION_CREDENTIALS or 'gcloud auth
# application-default login'.
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_module trainer.job.compare "$@"
