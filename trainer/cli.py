"""`python -m trainer.cli VERB ...`: the Python side of the scripts.

    python -m trainer.cli archive --name wip --tub data
    python -m trainer.cli deflate --archive wip.tgz --dest .

Each verb prints its report on stdout, warnings on stderr, and ends an
expected failure with one line `SCRIPT: what went wrong, and what to do`
and exit 1 (see run_main).
"""
import argparse
import os
import sys

from trainer.errors import UserError


def prog():
    return os.environ.get("TRAINER_PROG") or "trainer"


def warn(message):
    print(f"{prog()}: warning: {message}", file=sys.stderr)


def run_main(main, argv=None):
    """Run MAIN(argv) with the project's exit-code rules; returns the code."""
    try:
        return main(argv) or 0
    except UserError as e:
        print(f"{prog()}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog()}: interrupted; nothing half-written was left behind",
              file=sys.stderr)
        return 130


def cmd_archive(args):
    from trainer.archive import build_archive
    build_archive(".", args.tub, args.name, force=args.force, warn=warn)


def cmd_deflate(args):
    from trainer.archive import restore
    restore(args.archive, args.dest, force=args.force)


def get_args(argv):
    parser = argparse.ArgumentParser(prog="trainer.cli")
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("archive", help="pack tubs and configs (make_tub_archive.sh)")
    p.add_argument("--tub", action="append", help="tub folder (default: data)")
    p.add_argument("--name", default="wip", help="archive name (default: wip)")
    p.add_argument("--force", action="store_true", help="replace NAME.tgz")
    p.set_defaults(func=cmd_archive)
    p = verbs.add_parser("deflate", help="safe extract (deflate_tub_archive.sh)")
    p.add_argument("--archive", default="wip.tgz", help="default: wip.tgz")
    p.add_argument("--dest", default=".", help="default: .")
    p.add_argument("--force", action="store_true", help="replace tubs and configs")
    p.set_defaults(func=cmd_deflate)
    return parser.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(run_main(main))
