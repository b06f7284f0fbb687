#!/usr/bin/env bash
# Summary: upload a tub archive to gs://$STEERING_BUCKET_NAME/training/
# Usage: upload_tub_archive.sh [-a ARCHIVE] [-f]
#
# Puts ARCHIVE at gs://$STEERING_BUCKET_NAME/training/ARCHIVE, where
# local_train.sh -a ARCHIVE and submit_cloud_train.sh find it. The bucket's
# copy is checked against the archive's md5 and crc32c. An identical copy
# already there is skipped; a different one is never replaced without -f.
# Transient network faults are retried for TRAINER_GCS_DEADLINE seconds
# (default 90).
#
# Environment: STEERING_BUCKET_NAME (the bucket, e.g. my-robocar-bucket);
# credentials from GOOGLE_APPLICATION_CREDENTIALS or 'gcloud auth
# application-default login'; STORAGE_EMULATOR_HOST for an emulator.
#
#   -a ARCHIVE  the archive to upload (default: wip.tgz)
#   -f          replace a different archive of the same name in the bucket
#   -h          print this help
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"

archive=wip.tgz
force=()
while getopts ':a:fh' opt; do
  case $opt in
    a) archive=$OPTARG ;;
    f) force=(--force) ;;
    h) rt_help; exit 0 ;;
    *) bad_flag "$opt" "$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
no_operands "$@"

rt_python_cli upload --archive "$archive" "${force[@]}"
