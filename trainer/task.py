"""The training job, the same locally and in the cloud.

    python -m trainer.task --archive wip.tgz --output models
    python -m trainer.task --archive gs://B/training/wip.tgz --output gs://B/models \
        --model-name pilot-wip --type linear --set MAX_EPOCHS=20

Steps are in trainer/training.py; this file only parses the arguments and
turns expected failures into one line on stderr and exit 1.
"""
import argparse
import sys

from trainer.cli import run_main


def get_args(argv=None):
    p = argparse.ArgumentParser(prog="trainer.task", description=__doc__.split("\n")[0])
    p.add_argument("--archive", action="append", required=True,
                   help="tub archive, local path or gs:// URI; repeatable")
    p.add_argument("--output", required=True,
                   help="folder or gs:// prefix for the model files")
    p.add_argument("--model-name", help="model base name (default: pilot-STEM of "
                   "the first archive)")
    p.add_argument("--type", help="DonkeyCar model type (default: the config's "
                   "DEFAULT_MODEL_TYPE)")
    p.add_argument("--transfer", help=".h5 model to start from (default: none)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="config override on top of myconfig.py; repeatable")
    p.add_argument("--force", action="store_true",
                   help="replace existing model files of the same name (default: refuse)")
    return p.parse_args(argv)


def main(argv=None):
    args = get_args(argv)
    from trainer import gcs
    from trainer.storage import Storage
    # The client is built only if a gs:// URI, or a bare name found only in
    # the bucket, needs it: local runs never touch Google's libraries.
    storage = Storage(connect=gcs.connect)
    args.archive = [storage.resolve(a, "training", "archive", suffix=".tgz",
                                    hint=", or upload it with upload_tub_archive.sh")
                    for a in args.archive]
    if args.transfer:
        args.transfer = storage.resolve(args.transfer, "models", "transfer model",
                                        suffix=".h5")
    from trainer.training import run
    run(args, storage)


if __name__ == "__main__":
    sys.exit(run_main(main))
