#!/usr/bin/env bash
# Summary: upload a tub archive to gs://$STEERING_BUCKET_NAME/training/
# Usage: upload_tub_archive.sh [-a ARCHIVE] [-f]
#
# Puts ARCHIVE (default: the newest of wip.tgz, wip-2.tgz, ... here) at
# gs://$STEERING_BUCKET_NAME/training/ARCHIVE, where
# local_train.sh -a ARCHIVE and submit_cloud_train.sh find it. The bucket's
# copy is checked against the archive's md5 and crc32c. An identical copy
# already there is skipped; a different one is never replaced without -f,
# nor one that another upload put there meanwhile (a generation
# precondition). An archive above 8 MiB goes up in resumable 8 MiB pieces;
# if the upload stops (Ctrl-C, the network, the deadline), .ARCHIVE.upload
# beside it keeps the session (mode 0600, it lets its holder finish this one
# upload), and the next run carries on from where it stopped while the
# archive is unchanged. The file goes away once the upload is complete.
# Transient network faults are retried for TRAINER_GCS_DEADLINE seconds
# (default 90).
#
# Environment: STEERING_BUCKET_NAME (the bucket, e.g. my-robocar-bucket);
# credentials from GOOGLE_APPLICATION_CREDENTIALS or 'gcloud auth
# application-default login'; STORAGE_EMULATOR_HOST for an emulator.
#
#   -a, --archive ARCHIVE  the archive to upload (default: the newest of wip.tgz,
#                          wip-2.tgz, ... here)
#   -f, --force            replace a different archive of the same name in the bucket
#   -h, --help             print this help
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli upload "$@"
