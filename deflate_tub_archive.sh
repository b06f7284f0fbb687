#!/usr/bin/env bash
# Summary: unpack a tub archive into a car folder, safely
# Usage: deflate_tub_archive.sh [-a ARCHIVE] [-d DEST] [-f]
#
# Restores the tubs, config.py and myconfig.py of ARCHIVE under DEST, giving
# back a car folder that trains. Members with absolute paths, '..', links or
# device files are refused (on any Python 3.11: where tarfile has no 'data'
# filter, the toolkit writes the checked members itself), nothing is written
# outside DEST, and an existing tub or config is never replaced without -f.
# Archives of the original robocar-gcp-trainer (one tub at the root beside the
# configs) are read too; their tub is restored as DEST/data.
#
# With -f it replaces exactly what the archive holds: each config, and each
# tub's own files (manifest.json, catalogs, images/); anything else in a tub's
# folder (another tub, notes) stays, and it says what it replaced and what it
# left. The archive is extracted beside DEST first; the old files are moved
# aside, the new ones in, and the old ones back if anything fails or a
# signal comes (Ctrl-C, SIGTERM, SIGHUP wait until the moves are done), so
# DEST holds the old state or the new. After a kill or a power cut half-way
# (DEST/.deflate-*), the next deflate into DEST puts the old files back first.
#
#   -a, --archive ARCHIVE  the archive (default: wip.tgz)
#   -d, --dest DEST        the folder to restore into (default: .)
#   -f, --force            replace existing tubs and configs
#   -h, --help             print this help
set -euo pipefail
# This file's real folder, through symlinks (readlink -f is missing on older macOS).
here=${BASH_SOURCE[0]}
while [ -L "$here" ]; do l=$(readlink "$here"); case $l in /*) here=$l ;; *) here=$(dirname "$here")/$l ;; esac; done
# shellcheck source=lib/common.sh
source "$(dirname "$here")/lib/common.sh"

rt_python_cli deflate "$@"
