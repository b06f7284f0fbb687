#!/usr/bin/env bash
# Summary: train an autopilot from a tub archive on this machine
# Usage: local_train.sh [-a ARCHIVE] [-m NAME] [--type TYPE] [-T TRANSFER] [-o OUT] [-c KEY=VALUE]... [--sweep KEY=V1,V2]... [-E ARCHIVE] [-f] [--trust-model-code]
#
# Runs the very job a cloud run runs (python -m trainer.task): unpacks the
# archive into a temporary car folder, trains with DonkeyCar's own training
# code and the archive's config.py + myconfig.py (a tflite_ DEFAULT_MODEL_TYPE
# trains its Keras type, as donkey train does), exports .tflite and .onnx,
# checks all three formats agree on real frames, and writes into OUT:
#   NAME.h5 NAME.tflite NAME.onnx   the model, three ways (.onnx: opset 13, for TensorRT)
#   NAME.fp16.tflite                half the size: weights in float16, outputs within
#                                   0.001 of the .h5's on unseen frames, else withheld
#   NAME.int8.tflite                integers throughout, calibrated on the archive's own
#                                   training frames: a quarter of the size, several times
#                                   faster on a Pi; published when its steering error is
#                                   at most 0.02 above the .h5's, else withheld
#   NAME.png NAME.pred.png          loss plot; predicted vs driven steering
#   NAME.frames.npz                 8 frames and the model's outputs, for the car's check
#   NAME.json                       the model card: data, config, versions, history,
#                                   parity, evaluation, the verdict, and every format's
#                                   size, error and latency here (why a variant was withheld)
# A model written into the car folder's models/ is listed in its
# models/database.json, as donkey train does (donkey models shows it).
# The set moves into OUT at once (with -f the old one goes back if anything
# fails); an OUT that cannot be written (read-only, a file in the path) is
# refused before training. When the finished model cannot be published (a
# full disk, the network, another run first, a signal), its files are kept
# in $TMPDIR/robocar-kept-NAME and the last line says so.
# Ctrl-C, SIGTERM (kill) and SIGHUP (a closed terminal) stop it the same way:
# one line, its scratch folder (the extracted archive) removed, exit 130, 143,
# 129. Every record of the archive is checked before training (frames that
# do not decode, labels that are not numbers: one line naming them), and so
# are the config's values (-c and myconfig.py alike: sizes, batch, epochs,
# split, crops).
#
# The verdict: the model is judged on frames training never saw (the -E
# archive's, else the last tenth of each tub, kept out of training) against
# a constant guess, and the run ends with one line, e.g.
#   steering error 0.090 on 412 unseen frames (...); a constant guess: 0.290 (3.2x better, ...)
# A model not clearly better gets no drive line, and the car's check refuses
# it unless --accept-poor-model (docs/training.md says how it is judged).
#
# With no flags it takes the newest archive (wip.tgz, wip-2.tgz, ... here,
# else in the bucket) and names the model pilot-STEM; when that model exists
# it moves on to the next free name (pilot-wip-2, ...) and says which. A name
# you give with -m is never replaced without -f.
#
# A sweep here: --type A,B,C and --sweep KEY=V1,V2 (each value a number or a
# word) train one model per combination, one after the other, each exactly
# as above with its own card, named NAME-SWEEP-TYPE-KEYVALUE (SWEEP: sw and
# the UTC time, also in each card and W&B group); then compare_models.sh's
# report of those that finished (SWEEP.html here) names the best. A run that
# fails does not stop the others; the sweep then exits 1.
# submit_cloud_sweep.sh sends the same sweep to Vertex AI at once.
#
#   -a, --archive ARCHIVE    archive path or name (default: the newest of wip.tgz,
#                            wip-2.tgz, ... here, else in the bucket)
#   -m, --model-name NAME    model name (default: pilot-STEM, STEM from the archive name,
#                            or the next free pilot-STEM-N)
#   --type TYPE              DonkeyCar model type, or A,B,C for a sweep (default: the
#                            config's DEFAULT_MODEL_TYPE)
#   -T, --transfer TRANSFER  start from this .h5 model's weights
#   -o, --output OUT         where the model files go (default: ./models)
#   -c, --set KEY=VALUE      a config value on top of myconfig.py, e.g. -c MAX_EPOCHS=20;
#                            repeatable; KEY must be one the config has
#   --sweep KEY=V1,V2        a sweep: one run per value (times each --type); repeatable
#                            (default: one run); a list-valued key takes -c instead
#   -E, --eval-archive ARCHIVE  judge the model on every frame of this archive (e.g.
#                            today's new laps), and train on every record of -a
#                            (default: the last tenth of each tub, held out of training)
#   -f, --force              replace existing model files named NAME
#   --trust-model-code       let -T load a model whose Lambda layers run Python code
#                            when it loads (default: refuse it); only for models you trust
#   -h, --help               print this help
#
# Environment: WANDB_PROJECT (optional) also logs the run to Weights & Biases
# (config, loss per epoch, evaluation, archive -> model artifacts; needs
# pip install 'robocar-trainer[wandb]'), with WANDB_ENTITY and WANDB_MODE as
# W&B reads them (WANDB_MODE=offline keeps it in ./wandb for `wandb sync`).
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_module trainer.task "$@"
