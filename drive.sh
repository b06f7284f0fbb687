#!/usr/bin/env bash
# Summary: drive the car with a model in any format it can run, through the car's own manage.py
# Usage: drive.sh [-m NAME] [--format FORMAT] [MANAGE_PY_OPTION... after --]
#
# Run on the car, in the car folder. It runs the car's own `manage.py drive`
# (nothing in it is edited) with the model and the --type its format needs:
#   h5, tflite, fp16, int8   DonkeyCar's own pilots (every .tflite with whatever
#                            TFLite runtime DonkeyCar finds);
#   onnx                     onnxruntime, with its TensorRT or CUDA provider where
#                            the car has one (engines cached in models/.trt-cache);
#   engine                   the TensorRT engine check_model.sh built on this car
#                            (a Jetson whose Python has TensorRT: docs/car.md).
# DonkeyCar's manage.py loads only the extensions it knows: for the .onnx and
# the .engine, drive.sh teaches its get_model_by_type the onnx_ and engine_
# types and hands it the file under a name it accepts. Drive as always (the
# web controller at port 8887, a joystick with -- --js); Ctrl-C ends it.
# At the end it says how often the pilot ran and how long a frame took; a
# drive where the model never loaded, the pilot never ran (the car stayed
# in user mode) or the pilot failed ends with exit 1 and why.
# Each drive's telemetry (per loop: the pilot's inference time, the loop's
# period, the record written; the model's sha256 and card) goes into the tub
# DonkeyCar writes (TUB/telemetry.jsonl), for drive_report.sh -t TUB.
#
#   -m, --model NAME   the model: a name in models/, or a path to one of its files
#                      (models/mypilot.onnx: the format is the file's) (default: the
#                      newest of pilot-wip, pilot-wip-2, ... in models/)
#   --format FORMAT    h5, tflite, fp16, int8, onnx or engine (default: the fastest
#                      that agreed in check_model.sh, noted in models/database.json)
#   -- OPTIONS         what follows goes to manage.py drive (--js, --myconfig=FILE,
#                      --meta=KEY:VALUE)
#   -h, --help         print this help
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli drive "$@"
