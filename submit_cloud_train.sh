#!/usr/bin/env bash
# Summary: train an autopilot from a tub archive on a Vertex AI GPU
# Usage: submit_cloud_train.sh [-a ARCHIVE] [-m NAME] [--type TYPE] [-T TRANSFER] [-o OUT] [-c KEY=VALUE]... [-E ARCHIVE] [-d 5.3|5.4] [-M MACHINE] [-g ACCEL[:N]|none] [-S] [-w] [-n] [--check] [-f] [--trust-model-code]
#
# Runs the very job local_train.sh runs (python -m trainer.task), as one
# Vertex AI custom job in TRAINER_IMAGE:dk5.3 or :dk5.4 (see build_image.sh),
# the image of the DonkeyCar generation your car runs (-d). A local
# ARCHIVE is first uploaded to gs://$STEERING_BUCKET_NAME/training/ unless
# the bucket already holds it; a bare name is looked up here, then there.
# The model files (NAME.h5 .tflite .onnx .png .pred.png .frames.npz .json) go to OUT.
# Without -w it prints the job's console URL and how to follow or cancel it.
# With -w it prints the job's states and log lines until it ends, then
# downloads the model files into ./models; a failed or cancelled job exits 1
# with its error, and a job still waiting for a machine after 5 minutes gets
# a line on why that usually is. Ctrl-C while waiting leaves the job running.
# Before anything is uploaded it checks that the APIs are on, the image of
# the generation is built and the bucket is reachable, and refuses machine
# and GPU pairs Vertex AI refuses.
#
#   -a, --archive ARCHIVE     archive path, name or gs:// URI (default: the newest of
#                             wip.tgz, wip-2.tgz, ... here, else in the bucket)
#   -m, --model-name NAME     model name (default: pilot-STEM, STEM from the archive name,
#                             or the next free pilot-STEM-N in the bucket's models/)
#   --type TYPE               DonkeyCar model type (default: the config's DEFAULT_MODEL_TYPE)
#   -T, --transfer TRANSFER   start from this .h5 model's weights (path, name or gs:// URI)
#   -o, --output OUT          gs:// folder for the model files (default:
#                             gs://$STEERING_BUCKET_NAME/models)
#   -c, --set KEY=VALUE       a config value on top of myconfig.py, e.g. -c MAX_EPOCHS=20;
#                             repeatable
#   -E, --eval-archive ARCHIVE  evaluate on this archive, whose frames the model never
#                             trains on (path, name or gs:// URI; uploaded like -a)
#   -d, --generation 5.3|5.4  the car's DonkeyCar generation, which picks the image (default:
#                             the DonkeyCar installed here); a model trained for one
#                             generation may not load on a car running the other
#   -M, --machine MACHINE     machine type (default: n1-standard-8)
#   -g, --accelerator ACCEL[:N]  accelerator type and count (default: NVIDIA_TESLA_T4:1);
#                             -g none trains on the CPUs only
#   -S, --spot                use a Spot VM: much cheaper, may be preempted
#   -w, --wait                wait: follow the job, then download the models into ./models
#   -n, --dry-run             dry run: print the job and the gcloud equivalent, send nothing
#   --check                   check the project for this job instead, in one pass: the APIs,
#                             your roles, the bucket (region, access), the image of the
#                             generation, the GPU quota (with -S: Spot's), the W&B secret;
#                             each line OK or FIX and its command; exit 1 on a FIX; sends
#                             nothing (docs/cloud.md)
#   -f, --force               replace existing model files named NAME (bucket and ./models),
#                             and a different archive of the same name in the bucket
#   --trust-model-code        let -T load a model whose Lambda layers run Python code
#                             when it loads (default: refuse it); only for models you trust
#   -h, --help                print this help
#
# Environment: REGION (e.g. europe-west1), TRAINER_IMAGE (the image
# build_image.sh pushed; its tag is replaced by dk5.3 or dk5.4),
# STEERING_BUCKET_NAME, optional JOB_DIR (default gs://$STEERING_BUCKET_NAME/job)
# and GOOGLE_CLOUD_PROJECT (default: the credentials' project, else gcloud's);
# credentials from GOOGLE_APPLICATION_CREDENTIALS or 'gcloud auth
# application-default login'. With WANDB_PROJECT set, the job logs its run to
# Weights & Biases: WANDB_PROJECT, WANDB_ENTITY, WANDB_MODE and
# WANDB_API_KEY_SECRET (the Secret Manager secret holding the API key) are
# passed to it; WANDB_API_KEY itself never is (docs/tracking.md).
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli submit "$@"
