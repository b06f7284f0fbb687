#!/usr/bin/env bash
# Summary: how a pilot drove a session: takeovers, latency, loop overruns, which model
# Usage: drive_report.sh [-t TUB] [-o PAGE] [--no-page] [-a NAME] [--models DIR] [-f]
#
# For a tub recorded while a pilot drove (drive.sh, RECORD_DURING_AI = True in
# myconfig.py). It prints a one-screen summary and writes one HTML page with
# its plots (no network needed to open it):
#   - which model drove: name, file, format, runtime, sha256, its card;
#   - time on the pilot and on the user, and each takeover (the user taking
#     the car back from the pilot) with the frames just before it: where
#     the model failed;
#   - the pilot's inference time a frame (p50/p95/p99) against the drive
#     loop's budget (1/DRIVE_LOOP_HZ), and the loops that overran it;
#   - the pilot's steering against the user's, where both are known.
# Latency, loop times and the model come from the telemetry drive.sh records
# in the tub (TUB/telemetry.jsonl); a tub driven without drive.sh gets the
# takeovers and steering only.
# The summary runs anywhere DonkeyCar is (the car too); the page needs
# matplotlib and Jinja2, which the car's light install lacks: copy the tub to
# the laptop (rsync -a car:mycar/data/tub_5_... data/) and run it there.
# With WANDB_PROJECT set, the same goes to a W&B run named drive-TUB, whose
# inputs are the model's artifact (as the training run logged it) and the tub.
#
#   -t, --tub TUB        the tub the drive recorded (default: the newest in data/,
#                        where AUTO_CREATE_NEW_TUB = True makes one a session)
#   -o, --output PAGE    the page (default: TUB.report.html, beside the tub)
#   --no-page            the console summary only
#   -a, --archive NAME   also write NAME.tgz holding the user's driving after each
#                        takeover (what the next training should see):
#                        ./local_train.sh -a wip.tgz -a NAME.tgz
#   --models DIR         where the model's files and card are, for W&B (default:
#                        models)
#   -f, --force          replace the page or NAME.tgz
#   -h, --help           print this help
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_module trainer.car.drive_report "$@"
