"""`python -m trainer.cli VERB ...`: the Python side of the scripts.

    python -m trainer.cli archive --name wip --tub data
    python -m trainer.cli deflate --archive wip.tgz --dest .
    python -m trainer.cli upload --archive wip.tgz        # to gs://$STEERING_BUCKET_NAME
    python -m trainer.cli download --model pilot-wip --dest models
    python -m trainer.cli submit --archive wip.tgz --accelerator NVIDIA_TESLA_T4:1 --wait
    python -m trainer.cli submit-movie --model models/pilot-wip.h5 --end 60 --wait
    python -m trainer.cli image --source . --generation 5.4     # build_image.sh

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


def cmd_upload(args):
    from trainer import gcs
    from trainer.storage import Storage
    from trainer.transfer import upload_archive
    bucket = gcs.bucket_from_env()
    upload_archive(Storage(gcs.connect()), args.archive, bucket, force=args.force)


def cmd_download(args):
    from trainer import gcs
    from trainer.storage import Storage
    from trainer.transfer import download_models
    bucket = gcs.bucket_from_env()
    paths = download_models(Storage(gcs.connect()), bucket, args.model, args.dest,
                            force=args.force)
    from trainer.generations import mismatch
    cards = [p for p in paths if p.endswith(".json")]
    message = mismatch(cards[0]) if cards else None
    if message:            # the model may not load here: say so, but it is downloaded
        warn(message)


def cmd_submit(args):
    from trainer.submit import submit
    return submit(args)


def cmd_submit_movie(args):
    from trainer.submit import Movie, submit
    return submit(args, Movie(args))


def cmd_image(args):
    from trainer.image import build
    return build(args)


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
    p = verbs.add_parser("upload", help="archive to the bucket (upload_tub_archive.sh)")
    p.add_argument("--archive", default="wip.tgz", help="default: wip.tgz")
    p.add_argument("--force", action="store_true", help="replace a differing object")
    p.set_defaults(func=cmd_upload)
    p = verbs.add_parser("download", help="models from the bucket (download_models.sh)")
    p.add_argument("--model", default="pilot-wip", help="base name (default: pilot-wip)")
    p.add_argument("--dest", default="models", help="default: models")
    p.add_argument("--force", action="store_true", help="replace differing local files")
    p.set_defaults(func=cmd_download)
    p = verbs.add_parser("submit", help="train on Vertex AI (submit_cloud_train.sh)")
    p.add_argument("--archive", default="wip.tgz", help="default: wip.tgz")
    p.add_argument("--output", help="default: gs://$STEERING_BUCKET_NAME/models")
    p.add_argument("--model-name", help="default: pilot-STEM of the archive")
    p.add_argument("--type", help="default: the config's DEFAULT_MODEL_TYPE")
    p.add_argument("--transfer", help=".h5 to start from (default: none)")
    p.add_argument("--force", action="store_true",
                   help="replace models named NAME, and a different archive in the bucket")
    cloud_flags(p, "then download")
    p.set_defaults(func=cmd_submit)
    p = verbs.add_parser("submit-movie", help="a movie on Vertex AI "
                         "(submit_cloud_makemovie.sh)")
    p.add_argument("--model", default="models/pilot-wip.h5",
                   help="path, name or gs:// URI (default: models/pilot-wip.h5)")
    p.add_argument("--archive", default="wip.tgz", help="default: wip.tgz")
    p.add_argument("--start", help="first record (default: 0)")
    p.add_argument("--end", help="record to stop before (default: the end of the tub)")
    p.add_argument("--plain", action="store_true", help="no salient map")
    p.add_argument("--output", help="where -w puts the movie; its name in "
                   "gs://$STEERING_BUCKET_NAME/movies/ (default: MODEL's stem .mp4)")
    p.add_argument("--force", action="store_true",
                   help="replace the movie, and a different archive in the bucket")
    cloud_flags(p, "then download the movie")
    p.set_defaults(func=cmd_submit_movie)
    p = verbs.add_parser("image", help="build the training image (build_image.sh)")
    p.add_argument("--source", default=".", help="the toolkit folder (default: .)")
    p.add_argument("--image", help="default: $TRAINER_IMAGE")
    p.add_argument("--generation", help="DonkeyCar 5.3 or 5.4 (default: this machine's)")
    p.add_argument("--dry-run", action="store_true", help="print the gcloud command")
    p.set_defaults(func=cmd_image)
    return parser.parse_args(argv)


def cloud_flags(p, then):
    """The flags every cloud job takes."""
    p.add_argument("--machine", help="default: n1-standard-8")
    p.add_argument("--accelerator", help="TYPE[:N] or none (default: NVIDIA_TESLA_T4:1)")
    p.add_argument("--spot", action="store_true", help="Spot VM (default: on demand)")
    p.add_argument("--generation", help="DonkeyCar 5.3 or 5.4: picks the image "
                   "(default: this machine's DonkeyCar)")
    p.add_argument("--wait", action="store_true", help=f"follow it, {then}")
    p.add_argument("--dry-run", action="store_true", help="print the job, send nothing")


def main(argv=None):
    args = get_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(run_main(main))
