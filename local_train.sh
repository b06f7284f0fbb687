#!/usr/bin/env bash
# Summary: train an autopilot from a tub archive on this machine
# Usage: local_train.sh [-a ARCHIVE] [-m NAME] [--type TYPE] [-T TRANSFER] [-o OUT] [-c KEY=VALUE]... [-E ARCHIVE] [-f] [--trust-model-code]
#
# Runs the very job a cloud run runs (python -m trainer.task): unpacks the
# archive into a temporary car folder, trains with DonkeyCar's own training
# code and the archive's config.py + myconfig.py, exports .tflite and .onnx,
# checks all three formats agree on real frames, and writes into OUT:
#   NAME.h5 NAME.tflite NAME.onnx   the model, three ways
#   NAME.png NAME.pred.png          loss plot; predicted vs driven steering
#   NAME.json                       the model card: data, config, versions,
#                                   history, parity, evaluation
#
#   -a, --archive ARCHIVE    archive path or name (default: wip.tgz)
#   -m, --model-name NAME    model name (default: pilot-STEM, STEM from the archive name)
#   --type TYPE              DonkeyCar model type (default: the config's DEFAULT_MODEL_TYPE)
#   -T, --transfer TRANSFER  start from this .h5 model's weights
#   -o, --output OUT         where the model files go (default: ./models)
#   -c, --set KEY=VALUE      a config value on top of myconfig.py, e.g. -c MAX_EPOCHS=20;
#                            repeatable
#   -E, --eval-archive ARCHIVE  evaluate on this archive (e.g. today's new laps), whose
#                            frames the model never trains on (default: a stretch of
#                            the training tubs, which the card says it mostly saw)
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
