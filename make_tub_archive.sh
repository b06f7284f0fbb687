#!/usr/bin/env bash
# Summary: pack the car's tubs, config.py and myconfig.py into NAME.tgz
# Usage: make_tub_archive.sh [-t TUB]... [-a NAME] [-f]
#
# Run it from your car folder (the one holding config.py). Each tub is
# checked first: live and deleted records, sessions, missing images, and
# the image size against the config. The archive mirrors the car folder
# (tubs at their paths, configs and archive.json at the root), so any
# machine can train from it alone. macOS junk (.DS_Store, ._*) and secrets
# (.env, *.pem, service-account keys) are never packed.
#
#   -t TUB    a tub folder, or a folder of tubs (default: data); repeatable
#   -a NAME   the archive to write, NAME.tgz (default: wip)
#   -f        replace NAME.tgz if it exists
#   -h        print this help
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"

tubs=()
name=wip
force=()
while getopts ':t:a:fh' opt; do
  case $opt in
    t) tubs+=("--tub" "$OPTARG") ;;
    a) name=$OPTARG ;;
    f) force=(--force) ;;
    h) rt_help; exit 0 ;;
    *) bad_flag "$opt" "$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
no_operands "$@"

rt_python_cli archive --name "$name" "${tubs[@]}" "${force[@]}"
