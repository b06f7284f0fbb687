#!/usr/bin/env bash
# Summary: train several models at once as Vertex AI jobs, then compare them
# Usage: submit_cloud_sweep.sh [-a ARCHIVE] [--type A,B,C] [--sweep KEY=V1,V2]... [-c KEY=VALUE]... [-m NAME] [-T TRANSFER] [-o OUT] [-E ARCHIVE] [-d 5.3|5.4] [-M MACHINE] [-g ACCEL[:N]|none] [-S] [--parallel N] [-n] [-f] [--trust-model-code]
#
# A sweep: one training of ARCHIVE per model type of --type and per value of
# each --sweep (3 types x 2 learning rates = 6 runs), each the very job
# submit_cloud_train.sh sends, with its own card. They go to Vertex AI as
# custom jobs, at most N at a time (--parallel): as one ends, the next is
# sent. All are followed together, one line per job as it changes (its
# state and its newest log line). A failed job stops none of the others. At
# the end: each run's outcome, time on the machine and cost, then
# compare_models.sh's report of the runs that finished (a table here and the
# page SWEEP.html), the best one named and, when it is clearly better than a
# constant guess, how to drive it. Exit 1 when any run failed.
#
# The runs share a sweep id (sw + the UTC time, e.g. sw20250612-120501): in
# their model names (NAME-SWEEP-TYPE-KEYVALUE, e.g.
# pilot-wip-sw20250612-120501-categorical-lr0.0005), their job labels, their
# cards ("sweep") and their W&B group. They go to OUT like any model; the
# bucket gains no folder. Types that learn from inputs a plain tub lacks
# (behavior, localizer, imu) are refused before anything is sent.
# DonkeyCar 5.3's training reads neither LEARNING_RATE nor OPTIMIZER: a
# sweep of them trains the same model twice (docs/compare.md).
# Ctrl-C stops following: the jobs sent keep running (it prints how to
# cancel each one), the ones not yet sent are not sent.
#
#   -a, --archive ARCHIVE     archive path, name or gs:// URI (default: the newest of
#                             wip.tgz, wip-2.tgz, ... here, else in the bucket)
#   --type A,B,C              the DonkeyCar model types, one run each (default: the
#                             config's DEFAULT_MODEL_TYPE)
#   --sweep KEY=V1,V2         one run per value (numbers or words; repeatable: every
#                             combination); a list-valued key such as AUGMENTATIONS
#                             takes -c for the whole sweep
#   -c, --set KEY=VALUE       a config value for every run, e.g. -c MAX_EPOCHS=20;
#                             repeatable
#   -m, --model-name NAME     the start of each run's name (default: pilot-STEM, STEM
#                             from the archive name)
#   -T, --transfer TRANSFER   every run starts from this .h5 model's weights
#   -o, --output OUT          gs:// folder for the model files (default:
#                             gs://$STEERING_BUCKET_NAME/models)
#   -E, --eval-archive ARCHIVE  judge and compare every run on this archive's frames
#                             (default: the held-out last tenth of each tub)
#   -d, --generation 5.3|5.4  the car's DonkeyCar generation, which picks the image
#                             (default: the DonkeyCar installed here)
#   -M, --machine MACHINE     machine type (default: n1-standard-8)
#   -g, --accelerator ACCEL[:N]  accelerator type and count (default: NVIDIA_TESLA_T4:1);
#                             -g none trains on the CPUs only
#   -S, --spot                Spot VMs: much cheaper, may be preempted
#   --parallel N              jobs at once (default: 2; mind the project's GPU quota)
#   -n, --dry-run             print every job and the cost estimate, send nothing
#   -f, --force               replace models of the same names, and a different
#                             archive of the same name in the bucket
#   --trust-model-code        let -T load a model whose Lambda layers run Python code
#                             when it loads (default: refuse it); only for models you trust
#   -h, --help                print this help
#
# The cost estimate: the machine's and GPU's price an hour (a small table in
# trainer/core/prices.py, from https://cloud.google.com/vertex-ai/pricing,
# us-central1, on demand) times an assumed 15 minutes a run, and the ceiling
# if every run hit the 4-hour timeout; at the end, the time each job really
# ran. Vertex AI bills no failed job (unless cancelled).
#
# Environment: as submit_cloud_train.sh: REGION, TRAINER_IMAGE,
# STEERING_BUCKET_NAME, optional JOB_DIR and GOOGLE_CLOUD_PROJECT; credentials
# from GOOGLE_APPLICATION_CREDENTIALS or 'gcloud auth application-default
# login'; the W&B settings (WANDB_PROJECT, ...: docs/tracking.md).
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_module trainer.client.sweep "$@"
