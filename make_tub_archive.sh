#!/usr/bin/env bash
# Summary: pack the car's tubs, config.py and myconfig.py into NAME.tgz
# Usage: make_tub_archive.sh [-t TUB]... [-a NAME] [-f] [--skip-bad]
#
# Run it from your car folder (the one holding config.py). Each tub is
# checked first: live and deleted records, sessions, missing images, and
# the image size against the config; then every live record as it is
# packed: its frame is decoded (an empty, truncated or cut frame is found
# here, not in training) and its labels must be numbers (not NaN, Infinity,
# text or missing). Bad records are named, e.g.
#   tub data: 2 bad records: 17 (images/17_cam_image_array_.jpg is truncated),
#   42 (user/angle is NaN); skip them with make_tub_archive.sh --skip-bad ...
# and no archive is written; --skip-bad marks them deleted in the tub's
# manifest.json, as donkey ui's tub manager does (no file is removed: undo
# it there), then packs the rest. The archive mirrors the car folder
# (tubs at their paths, configs and archive.json at the root), so any
# machine can train from it alone. A tub carries only what DonkeyCar writes
# there (manifest.json, catalogs, images/); anything else in a tub folder
# (keys, dotfiles, notes) is skipped with a warning naming it, and catalogs
# naming images outside the tub's images/ are refused. Records a pilot drove
# (user/mode local or local_angle, recorded with RECORD_DURING_AI) are left
# out: their user/angle is the idle controller, not the user's steering;
# drive_report.sh -a packs the user's driving after each takeover instead.
# Run it again the next day with no flags: wip.tgz is kept and the new
# archive is wip-2.tgz (it says so); local_train.sh then takes the newest.
#
#   -t, --tub TUB       a tub folder, or a folder of tubs (default: data); repeatable
#   -a, --archive NAME  the archive to write, NAME.tgz (default: wip, or the next free
#                       wip-2, wip-3, ... when wip.tgz is here); a plain name:
#                       letters, digits, '.', '_', '-' (a folder may come before it)
#   -f, --force         replace NAME.tgz if it exists (without -a: the newest wip-N.tgz)
#   --with-pilot        keep the records a pilot drove (default: left out)
#   --skip-bad          mark bad records deleted in their tub and pack the rest
#                       (default: name them and write no archive)
#   -h, --help          print this help
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli archive "$@"
