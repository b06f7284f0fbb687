#!/usr/bin/env bash
# Summary: unpack a tub archive into a car folder, safely
# Usage: deflate_tub_archive.sh [-a ARCHIVE] [-d DEST] [-f]
#
# Restores the tubs, config.py and myconfig.py of ARCHIVE under DEST, giving
# back a car folder that trains. Members with absolute paths, '..', links or
# device files are refused, nothing is written outside DEST, and an existing
# tub or config is never replaced without -f. Archives of the original
# robocar-gcp-trainer (one tub at the root beside the configs) are read too;
# their tub is restored as DEST/data.
#
#   -a ARCHIVE  the archive (default: wip.tgz)
#   -d DEST     the folder to restore into (default: .)
#   -f          replace existing tubs and configs
#   -h          print this help
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"

archive=wip.tgz
dest=.
force=()
while getopts ':a:d:fh' opt; do
  case $opt in
    a) archive=$OPTARG ;;
    d) dest=$OPTARG ;;
    f) force=(--force) ;;
    h) rt_help; exit 0 ;;
    *) bad_flag "$opt" "$OPTARG" ;;
  esac
done
shift $((OPTIND - 1))
no_operands "$@"

rt_python_cli deflate --archive "$archive" --dest "$dest" "${force[@]}"
