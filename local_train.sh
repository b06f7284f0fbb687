#!/usr/bin/env bash
# Summary: train an autopilot from a tub archive on this machine
# Usage: local_train.sh [-a ARCHIVE] [-m NAME] [-t TYPE] [-T TRANSFER] [-o OUT] [-f]
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
#   -a ARCHIVE   archive path or name (default: wip.tgz)
#   -m NAME      model name (default: pilot-STEM, STEM from the archive name)
#   -t TYPE      DonkeyCar model type (default: the config's DEFAULT_MODEL_TYPE)
#   -T TRANSFER  start from this .h5 model's weights
#   -o OUT       where the model files go (default: ./models)
#   -f           replace existing model files named NAME
#   -h           print this help
#
# Environment: WANDB_PROJECT (optional) also logs the run to Weights & Biases
# (config, loss per epoch, evaluation, archive -> model artifacts; needs
# pip install 'robocar-trainer[wandb]'), with WANDB_ENTITY and WANDB_MODE as
# W&B reads them (WANDB_MODE=offline keeps it in ./wandb for `wandb sync`).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"

args=()
archive=wip.tgz
out=./models
while getopts ':a:m:t:T:o:fh' opt; do
  case $opt in
    a) archive=$OPTARG ;;
    m) args+=(--model-name "$OPTARG") ;;
    t) args+=(--type "$OPTARG") ;;
    T) args+=(--transfer "$OPTARG") ;;
    o) out=$OPTARG ;;
    f) args+=(--force) ;;
    h) rt_help; exit 0 ;;
    *) bad_flag "$opt" "$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
no_operands "$@"

rt_python_module trainer.task --archive "$archive" --output "$out" "${args[@]}"
