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
#   - where TensorRT is (a Jetson whose Python has TensorRT's package):
#     NAME.engine built from NAME.onnx, FP16 where the GPU has it, once (again
#     when the .onnx is newer); elsewhere one line says why not;
#   - each format here the car can run, through the car's own DonkeyCar pilot:
#     every .tflite (float, fp16, int8) with whatever TFLite runtime DonkeyCar
#     finds (ai-edge-litert, tflite-runtime or TensorFlow: no TensorFlow
#     needed), .onnx with onnxruntime (its TensorRT or CUDA provider where it
#     has one), .h5 with TensorFlow, .engine with TensorRT; a format whose
#     runtime is missing is skipped with why. On the frames the training job
#     shipped with it (NAME.frames.npz) each must give the job's outputs within
#     1e-3 (the int8 and the engine, reduced precision: within 0.02, else they
#     are not recommended); the median latency a frame is shown against
#     DRIVE_LOOP_HZ.
# Then it lists the model in models/database.json ('donkey models' shows
# it) and recommends the fastest file that agrees, in the drive line, e.g.
#   the fastest here that agrees: int8 .tflite (ai_edge_litert), 0.5 ms a frame
#   (float .tflite: 1.6 ms), steering within 0.0061 of the Keras model; drive it:
#   python manage.py drive --model models/pilot-wip.int8.tflite --type tflite_linear
# (the .onnx and the .engine drive with ./drive.sh, which then takes that
# format by default).
#
#   -m, --model NAME       the model: a name in models/, or a path to one of its
#                          files, e.g. models/mypilot.tflite (default: the newest
#                          of pilot-wip, pilot-wip-2, ... in models/)
#   -F, --format FORMAT    only h5, tflite, fp16, int8, onnx or engine (default: every
#                          one here)
#   --accept-poor-model    check a model judged no better than a constant guess
#   -h, --help             print this help
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli check "$@"
