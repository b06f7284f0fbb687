#!/usr/bin/env bash
# Summary: train an autopilot from a tub archive on a Vertex AI GPU
# Usage: submit_cloud_train.sh [-a ARCHIVE] [-m NAME] [-t TYPE] [-T TRANSFER] [-o OUT] [-d 5.3|5.4] [-M MACHINE] [-g ACCEL[:N]|none] [-s] [-w] [-n] [-f]
#
# Runs the very job local_train.sh runs (python -m trainer.task), as one
# Vertex AI custom job in TRAINER_IMAGE:dk5.3 or :dk5.4 (see build_image.sh),
# the image of the DonkeyCar generation your car runs (-d). A local
# ARCHIVE is first uploaded to gs://$STEERING_BUCKET_NAME/training/ unless
# the bucket already holds it; a bare name is looked up here, then there.
# The model files (NAME.h5 .tflite .onnx .png .pred.png .json) go to OUT.
# Without -w it prints the job's console URL and how to follow or cancel it.
# With -w it prints the job's states and log lines until it ends, then
# downloads the model files into ./models; a failed or cancelled job exits 1
# with its error. Ctrl-C while waiting leaves the job running.
#
#   -a ARCHIVE   archive path, name or gs:// URI (default: wip.tgz)
#   -m NAME      model name (default: pilot-STEM, STEM from the archive name)
#   -t TYPE      DonkeyCar model type (default: the config's DEFAULT_MODEL_TYPE)
#   -T TRANSFER  start from this .h5 model's weights (path, name or gs:// URI)
#   -o OUT       gs:// folder for the model files (default:
#                gs://$STEERING_BUCKET_NAME/models)
#   -d 5.3|5.4   the car's DonkeyCar generation, which picks the image (default:
#                the DonkeyCar installed here); a model trained for one
#                generation may not load on a car running the other
#   -M MACHINE   machine type (default: n1-standard-8)
#   -g ACCEL[:N] accelerator type and count (default: NVIDIA_TESLA_T4:1);
#                -g none trains on the CPUs only
#   -s           use a Spot VM: much cheaper, may be preempted
#   -w           wait: follow the job, then download the models into ./models
#   -n           dry run: print the job and the gcloud equivalent, send nothing
#   -f           replace existing model files named NAME (bucket and ./models),
#                and a different archive of the same name in the bucket
#   -h           print this help
#
# Environment: REGION (e.g. europe-west1), TRAINER_IMAGE (the image
# build_image.sh pushed; its tag is replaced by dk5.3 or dk5.4),
# STEERING_BUCKET_NAME, optional JOB_DIR (default gs://$STEERING_BUCKET_NAME/job)
# and GOOGLE_CLOUD_PROJECT (default: the credentials' project, else gcloud's);
# credentials from GOOGLE_APPLICATION_CREDENTIALS or 'gcloud auth
# application-default login'. With WANDB_PROJECT set, the job logs its run to
# Weights & Biases: WANDB_PROJECT, WANDB_ENTITY, WANDB_MODE and
# WANDB_API_KEY_SECRET (the Secret Manager secret holding the API key) are
# passed to it; WANDB_API_KEY itself never is (README: Experiment tracking).
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"

args=()
archive=wip.tgz
while getopts ':a:m:t:T:o:d:M:g:swnfh' opt; do
  case $opt in
    a) archive=$OPTARG ;;
    m) args+=(--model-name "$OPTARG") ;;
    t) args+=(--type "$OPTARG") ;;
    T) args+=(--transfer "$OPTARG") ;;
    o) args+=(--output "$OPTARG") ;;
    d) args+=(--generation "$OPTARG") ;;
    M) args+=(--machine "$OPTARG") ;;
    g) args+=(--accelerator "$OPTARG") ;;
    s) args+=(--spot) ;;
    w) args+=(--wait) ;;
    n) args+=(--dry-run) ;;
    f) args+=(--force) ;;
    h) rt_help; exit 0 ;;
    *) bad_flag "$opt" "$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
no_operands "$@"

rt_python_cli submit --archive "$archive" "${args[@]}"
