#!/usr/bin/env bash
# Summary: download a trained model's files from gs://$STEERING_BUCKET_NAME/models/
# Usage: download_models.sh [-m BASENAME] [-d DIR] [-F FORMAT] [-f] [--accept-poor-model]
#
# Reads the model's card (BASENAME.json) first and brings exactly the files
# it names (.h5, .tflite, .fp16.tflite, .int8.tflite, .onnx, .png, .pred.png,
# .frames.npz; a variant its training run withheld is not among them) into
# DIR, each checked against the card's sha256. A set without its card, a file the card
# names but the bucket lacks, or one that differs from its card is refused in
# one line and nothing is written: files land in DIR/.download-* and move
# into DIR all at once only when every one is verified (Ctrl-C, SIGTERM and
# SIGHUP included: the old set or the new, never a mix or a partial file;
# after a kill or a power cut half-way, the next download into DIR puts the
# old files back first). A local file identical to the card's is left alone;
# a different one is never replaced without -f. A damaged
# models/database.json is never rewritten: it is kept, copied to
# database.json.damaged, and the last line says how to repair it. An unknown BASENAME lists
# the models the bucket has (names shown escaped).
# -F tflite takes only BASENAME.tflite, the card and the frames file: what a
# car (a Raspberry Pi) needs, without the 10 MB .h5; -F int8 the int8 .tflite
# (a quarter of the size, the fastest on a Pi), or why its run withheld it.
# On the car (run from the car folder, DonkeyCar installed) it then runs the
# check of check_model.sh on what arrived: the files against the card, the
# training's verdict (a model no better than a constant guess is refused
# unless --accept-poor-model), the card's IMAGE_W/IMAGE_H/IMAGE_DEPTH
# against the car's config (a difference ends with exit 1, the files kept),
# each format the car can run through its own DonkeyCar pilot (every .tflite
# with whatever TFLite runtime DonkeyCar finds, no TensorFlow needed; .onnx
# with onnxruntime; .h5 with TensorFlow; where TensorRT is, NAME.engine built
# from the .onnx) on the frames the training job shipped, agreeing with the
# job's outputs and timed against DRIVE_LOOP_HZ; then it lists the model in
# models/database.json ('donkey models' shows it) and prints the drive
# command for the fastest file that agrees (check_model.sh -h says more). A model whose card names another DonkeyCar generation (5.3, 5.4)
# comes with a warning.
# Transient network faults are retried for TRAINER_GCS_DEADLINE seconds
# (default 90).
#
# Environment: STEERING_BUCKET_NAME (the bucket, e.g. my-robocar-bucket);
# credentials from GOOGLE_APPLICATION_CREDENTIALS or 'gcloud auth
# application-default login'; STORAGE_EMULATOR_HOST for an emulator.
#
#   -m, --model BASENAME  the model's name, or a path to one of its files as DonkeyCar
#                         takes it (models/mypilot.h5) (default: the newest of
#                         pilot-wip, pilot-wip-2, ... in the bucket)
#   -d, --dest DIR        where the files go (default: ./models)
#   -F, --format FORMAT   only h5, tflite, fp16, int8 or onnx, with the card and the frames
#                         (default: every file the card names)
#   -f, --force           replace local files that differ from the bucket's
#   --accept-poor-model   check a model judged no better than a constant guess
#   -h, --help            print this help
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli download "$@"
