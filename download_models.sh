#!/usr/bin/env bash
# Summary: download a trained model's files from gs://$STEERING_BUCKET_NAME/models/
# Usage: download_models.sh [-m BASENAME] [-d DIR] [-f]
#
# Brings every BASENAME.* the bucket holds in models/ (.h5, .tflite, .onnx,
# .png, .pred.png, .json) into DIR. Each file is written under a temporary
# name and renamed only when its md5 and crc32c match the bucket's, so an
# interrupted download (Ctrl-C included) leaves no partial file. A local
# file identical to the bucket's is left alone; a different one is never
# replaced without -f. An unknown BASENAME lists the models the bucket has.
# Where DonkeyCar is installed (on the car), a model whose card names another
# DonkeyCar generation (5.3, 5.4) than the local one is still downloaded, with
# a warning on stderr: it may not load here.
# Transient network faults are retried for TRAINER_GCS_DEADLINE seconds
# (default 90).
#
# Environment: STEERING_BUCKET_NAME (the bucket, e.g. my-robocar-bucket);
# credentials from GOOGLE_APPLICATION_CREDENTIALS or 'gcloud auth
# application-default login'; STORAGE_EMULATOR_HOST for an emulator.
#
#   -m BASENAME  the model's name (default: pilot-wip)
#   -d DIR       where the files go (default: ./models)
#   -f           replace local files that differ from the bucket's
#   -h           print this help
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"

model=pilot-wip
dest=./models
force=()
while getopts ':m:d:fh' opt; do
  case $opt in
    m) model=$OPTARG ;;
    d) dest=$OPTARG ;;
    f) force=(--force) ;;
    h) rt_help; exit 0 ;;
    *) bad_flag "$opt" "$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
no_operands "$@"

rt_python_cli download --model "$model" --dest "$dest" "${force[@]}"
