#!/usr/bin/env bash
# Summary: will this model drive this car? Check it, list it, say how to drive it
# Usage: check_model.sh [-m NAME] [-F FORMAT] [--accept-poor-model]
#
# Run on the car, in the car folder, for a model in models/ however it came
# there (download_models.sh runs the same check after a download; rsync, scp
# or a USB stick bring it too). It checks:
#   - each file against the model's card (NAME.json, its sha256): a copy cut
#     short is caught; without the card, only what can be seen here;
#   - the verdict of training: a model no better than a constant guess on
#     frames it never trained on is refused unless --accept-poor-model;
#   - the card's IMAGE_W/IMAGE_H/IMAGE_DEPTH against the car's config (a
#     difference ends with exit 1, the files kept); transformations, crop
#     settings and model type (warnings);
#   - each format here the car can run, through the car's own DonkeyCar pilot:
#     .tflite with whatever TFLite runtime DonkeyCar finds (ai-edge-litert,
#     tflite-runtime or TensorFlow: no TensorFlow needed), .onnx with
#     onnxruntime, .h5 with TensorFlow; a format whose runtime is missing is
#     skipped with why. The frames the training job shipped with it
#     (NAME.frames.npz) must give the job's outputs within 1e-3; the median
#     latency a frame is shown against DRIVE_LOOP_HZ.
# Then it lists the model in models/database.json ('donkey models' shows
# it) and prints the drive command: the .tflite when DEFAULT_MODEL_TYPE is a
# tflite_ type, the .h5 otherwise, else the fastest format that ran.
#
#   -m, --model NAME       the model: a name in models/, or a path to one of its
#                          files, e.g. models/mypilot.tflite (default: the newest
#                          of pilot-wip, pilot-wip-2, ... in models/)
#   -F, --format FORMAT    only h5, tflite or onnx (default: every one here)
#   --accept-poor-model    check a model judged no better than a constant guess
#   -h, --help             print this help
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli check "$@"
