#!/usr/bin/env bash
# Summary: build the training image of a DonkeyCar generation with Cloud Build
# Usage: build_image.sh [-d 5.3|5.4] [-i IMAGE_URI] [--donkeycar-source SPEC] [-n]
#
# Sends the toolkit (this folder, less what .gcloudignore leaves out) to
# Cloud Build, which builds ./Dockerfile as cloudbuild.yaml says and pushes
# IMAGE_URI:dk5.3 or IMAGE_URI:dk5.4; no local Docker is needed. The cloud
# jobs of submit_cloud_train.sh and submit_cloud_makemovie.sh run in the
# image of the generation they are asked for (their -d), so a model trained
# there loads on a car running that DonkeyCar. Build again after changing
# the toolkit or setup.py. A build takes 10-20 minutes.
#
#   -d, --generation 5.3|5.4  the DonkeyCar generation (default: the DonkeyCar installed
#                             here): 5.3 is Python 3.11 with TensorFlow 2.15 (Keras 2),
#                             5.4 is Python 3.12 with TensorFlow 2.19 (Keras 3)
#   -i, --image IMAGE_URI     the image (default: $TRAINER_IMAGE), an Artifact Registry
#                             path such as europe-west1-docker.pkg.dev/my-project/robocar/trainer;
#                             its tag is always dk and the generation (a tag given is replaced)
#   --donkeycar-source SPEC   your DonkeyCar (a fork, a branch, a checkout): a version,
#                             a pip requirement such as 'donkeycar @ git+https://github.com/
#                             ORG/donkeycar@BRANCH', or a checkout folder. pip builds its
#                             wheel here (with -n too); the image is IMAGE_URI:dk5.3 (build
#                             it first) with only DonkeyCar replaced, pushed as
#                             IMAGE_URI:dk5.3-<its content>, the tag submit_cloud_train.sh
#                             picks where that DonkeyCar is installed (docs/donkeycar-source.md)
#   -n, --dry-run             print the gcloud command instead of running it
#   -h, --help                print this help
#
# Environment: TRAINER_IMAGE; GOOGLE_CLOUD_PROJECT (default: gcloud's project).
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli image --source "$ROOT" "$@"
