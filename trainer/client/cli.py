"""`python -m trainer.cli VERB ...`: the Python side of the scripts, which
hand it their flags as the user typed them (local_train.sh and
local_makemovie.sh go to trainer.task and trainer.movie the same way).

    python -m trainer.cli archive -t data -a wip          # make_tub_archive.sh
    python -m trainer.cli deflate -a wip.tgz -d .          # deflate_tub_archive.sh
    python -m trainer.cli upload -a wip.tgz                # upload_tub_archive.sh
    python -m trainer.cli download -m pilot-wip -d models  # download_models.sh
    python -m trainer.cli check -m pilot-wip               # check_model.sh
    python -m trainer.cli drive -m pilot-wip --format onnx # drive.sh
    python -m trainer.cli submit -a wip.tgz -g NVIDIA_TESLA_T4:1 -w   # submit_cloud_train.sh
    python -m trainer.cli submit --check -d 5.4 -S    # is the project ready for that job?
    python -m trainer.cli submit-movie -m models/pilot-wip.h5 -e 60 -w
    python -m trainer.cli image -d 5.4                     # build_image.sh

Each verb's parser is the one place its flags are declared (the script's
header is their help). Each verb prints its report on stdout, warnings on
stderr, and ends an expected failure with one line `SCRIPT: what went
wrong, and what to do` and exit 1 (trainer/errors.py).
"""
import argparse
import os
import sys

from trainer.car import check as car_check
from trainer.client import image, jobs, submit
from trainer.core import bucket, donkey, flags, gcs, generations, names, settings
from trainer.core.errors import ArgumentParser, UserError, run_main, warn
from trainer.core.storage import Storage, shown


def cmd_archive(args):
    donkey.quiet()
    # Tubs and archives need DonkeyCar and its packages (numpy, Pillow), which
    # a car has and the light install alone (download, submit) does not.
    from trainer.core import archive
    name = args.archive or daily_archive_name(args.force)
    archive.build_archive(".", args.tub, name, force=args.force, warn=warn,
                          with_pilot=args.with_pilot, skip_bad=args.skip_bad)


def daily_archive_name(force):
    """wip, or the next of wip-2, wip-3, ... when wip.tgz is here (with -f:
    the newest, replaced)."""
    here = bucket.names_in(None, ".", bucket.ARCHIVE.suffix)
    if force:
        return names.newest(names.ARCHIVE_STEM, here) or names.ARCHIVE_STEM
    name = names.next_free(names.ARCHIVE_STEM, here)
    if name != names.ARCHIVE_STEM:
        print(f"{names.ARCHIVE_STEM}{bucket.ARCHIVE.suffix} exists: writing "
              f"{name}{bucket.ARCHIVE.suffix} (-a NAME to choose, -f to replace "
              f"{names.newest(names.ARCHIVE_STEM, here)}{bucket.ARCHIVE.suffix})")
    return name


def cmd_deflate(args):
    donkey.quiet()
    from trainer.core import archive        # DonkeyCar's packages: see cmd_archive
    archive.restore(args.archive, args.dest, force=args.force)


def cmd_upload(args):
    bucket_name = settings.bucket()
    storage = Storage(gcs.connect())
    given = args.archive or bucket.newest_archive(storage, bucket_too=False)
    bucket.upload_archive(storage, given, bucket_name, force=args.force)


def cmd_download(args):
    fmt = bucket.check_format(args.format)       # cheap checks first
    name = bucket.model_name_of(args.model) if args.model else None
    bucket_name = settings.bucket()
    storage = Storage(gcs.connect())
    if name is None:         # the newest with any file there: a set without its card says so
        name = bucket.newest_model(storage, models=bucket.folder(bucket_name, bucket.MODELS),
                                   suffix=None, bucket_too=False)[0] or names.MODEL_STEM
    paths = bucket.download_models(storage, bucket_name, name, args.dest,
                                   force=args.force, fmt=fmt)
    cards = [p for p in paths if p.endswith(bucket.CARD)]
    message = generations.mismatch(cards[0]) if cards else None
    if message:            # the model may not load here: say so, but it is downloaded
        warn(message)
    car_check.check(name, args.dest, fmt=fmt, accept_poor=args.accept_poor_model,
                    warn=warn)                             # will it drive?


def car_format(fmt, flag="-F"):
    """-F/--format FMT of the car's scripts: a published format, or engine."""
    if fmt is not None and fmt not in bucket.CAR_FORMATS:
        raise UserError(f"{flag} {shown(fmt)!r} is not a format: use "
                        f"{', '.join(bucket.CAR_FORMATS)} (or leave it out)")
    return fmt


def model_here(given, script):
    """(folder, name) of the model -m GIVEN names on the car: a name in
    models/, or a path to one of its files (models/pilot.tflite); without
    -m, the newest of pilot-wip, pilot-wip-2, ... in models/."""
    if given and os.path.dirname(given):                 # -m models/pilot.tflite
        models, name = os.path.dirname(given), bucket.model_name_of(given)
    elif given:
        models, name = bucket.LOCAL_MODELS, bucket.model_name_of(given)
    else:
        models = bucket.LOCAL_MODELS
        name, _ = bucket.newest_model(Storage(), models=models, suffix=None,
                                      bucket_too=False)
        if name is None:
            raise bucket.no_model(models)
    if not os.path.isdir(models):
        raise UserError(f"no folder {models} here: run {script} in the car folder, "
                        "or pass -m PATH/NAME")
    return models, name


def cmd_check(args):
    fmt = car_format(args.format)
    models, name = model_here(args.model, "check_model.sh")
    reason = car_check.skipped()
    if reason:
        raise UserError(f"cannot check a model here: {reason}")
    car_check.check(name, models, fmt=fmt, accept_poor=args.accept_poor_model, warn=warn)


def cmd_drive(args):
    fmt = car_format(args.format, "--format") or (bucket.format_of(args.model)
                                                   if args.model else None)
    models, name = model_here(args.model, "drive.sh")
    from trainer.car import launcher     # DonkeyCar's parts: not for the light install
    launcher.drive(name, models, fmt, args.manage)


def cmd_submit(args):
    return submit.submit(args, jobs.Train(args))


def cmd_submit_movie(args):
    return submit.submit(args, jobs.Movie(args))


def cmd_image(args):
    return image.build(args)


def get_args(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    passed = []
    if argv[:1] == ["drive"] and "--" in argv:       # drive.sh -m X -- --js: manage.py's
        argv, passed = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = parser().parse_args(argv)
    if args.verb == "drive":
        args.manage = passed
    return args


def parser():
    """The whole command line: one subparser per verb (see verbs())."""
    return _build()[0]


def verbs():
    """{verb: its parser}, e.g. verbs()["archive"].format_help()."""
    return _build()[1]


def _build():
    top = ArgumentParser(prog="trainer.cli", allow_abbrev=False)
    sub = top.add_subparsers(dest="verb", required=True)
    made = {}

    def verb(name, func, parents=(), **kwargs):
        made[name] = p = sub.add_parser(name, parents=list(parents), allow_abbrev=False,
                                        **kwargs)
        p.set_defaults(func=func)
        return p

    p = verb("archive", cmd_archive, help="pack tubs and configs (make_tub_archive.sh)")
    p.add_argument("-t", "--tub", action="append", help="tub folder (default: data)")
    p.add_argument("-a", "--archive", help="archive name (default: wip, then wip-2, ...)")
    p.add_argument("-f", "--force", action="store_true", help="replace NAME.tgz")
    p.add_argument("--with-pilot", action="store_true", help="keep records a pilot drove")
    p.add_argument("--skip-bad", action="store_true", help="mark bad records deleted "
                   "in the tub (default: refuse them)")
    p = verb("deflate", cmd_deflate, help="safe extract (deflate_tub_archive.sh)")
    p.add_argument("-a", "--archive", default="wip.tgz", help="default: wip.tgz")
    p.add_argument("-d", "--dest", default=".", help="default: .")
    p.add_argument("-f", "--force", action="store_true", help="replace tubs and configs")
    p = verb("upload", cmd_upload, help="archive to the bucket (upload_tub_archive.sh)")
    p.add_argument("-a", "--archive", help="default: the newest of wip.tgz, wip-2.tgz, ...")
    p.add_argument("-f", "--force", action="store_true", help="replace a differing object")
    p = verb("download", cmd_download, help="models from the bucket (download_models.sh)")
    p.add_argument("-m", "--model", help="name or path (default: the newest of pilot-wip, "
                   "pilot-wip-2, ...)")
    p.add_argument("-d", "--dest", default=bucket.LOCAL_MODELS,
                   help=f"default: {bucket.LOCAL_MODELS}")
    p.add_argument("-f", "--force", action="store_true", help="replace differing local files")
    p.add_argument("-F", "--format", help="h5, tflite, fp16, int8 or onnx only, with the "
                   "card and the frames (default: every file the card names)")
    p.add_argument(car_check.POOR_FLAG, action="store_true",
                   help="check a model judged no better than a constant guess")
    p = verb("check", cmd_check, help="will it drive? (check_model.sh)")
    p.add_argument("-m", "--model", help="name or path (default: the newest of pilot-wip, "
                   "pilot-wip-2, ... in models/)")
    p.add_argument("-F", "--format", help="h5, tflite, fp16, int8, onnx or engine only "
                   "(default: every one here)")
    p.add_argument(car_check.POOR_FLAG, action="store_true",
                   help="check a model judged no better than a constant guess")
    p = verb("drive", cmd_drive, help="the car's manage.py drive, any format (drive.sh)")
    p.add_argument("-m", "--model", help="name or path (default: the newest of pilot-wip, "
                   "pilot-wip-2, ... in models/)")
    p.add_argument("--format", help="h5, tflite, fp16, int8, onnx or engine (default: the "
                   "one check_model.sh found fastest here; a path's own)")
    # After --: manage.py drive's own options (--js, --myconfig=FILE): get_args.
    p = verb("submit", cmd_submit, [flags.train_parser(add_help=False, sweep=False)],
             help="train on Vertex AI (submit_cloud_train.sh)")
    p.hints = flags.train_parser().hints
    cloud_flags(p, "then download the models")
    p = verb("submit-movie", cmd_submit_movie, [flags.movie_parser(add_help=False)],
             help="a movie on Vertex AI (submit_cloud_makemovie.sh)")
    cloud_flags(p, "then download the movie")
    p = verb("image", cmd_image, help="build the training image (build_image.sh)")
    p.add_argument("-d", "--generation", help="DonkeyCar 5.3 or 5.4 (default: this "
                   "machine's)")
    p.add_argument("-i", "--image", help="default: $TRAINER_IMAGE")
    p.add_argument("--donkeycar-source", metavar="SPEC", help="your DonkeyCar (a "
                   "version, a pip requirement, a checkout folder): its image, on the "
                   "generation's")
    p.add_argument("-n", "--dry-run", action="store_true", help="print the gcloud command")
    p.add_argument("--source", default=".", help=argparse.SUPPRESS)  # build_image.sh's home
    return top, made


def cloud_flags(p, then):
    """The flags every cloud job takes besides its own."""
    p.add_argument("-d", "--generation", help="DonkeyCar 5.3 or 5.4: picks the image "
                   "(default: this machine's DonkeyCar)")
    p.add_argument("-M", "--machine", help="default: n1-standard-8")
    p.add_argument("-g", "--accelerator",
                   help="TYPE[:N] or none (default: NVIDIA_TESLA_T4:1)")
    p.add_argument("-S", "--spot", action="store_true", help="Spot VM (default: on demand)")
    p.add_argument("-w", "--wait", action="store_true", help=f"follow it, {then}")
    p.add_argument("-n", "--dry-run", action="store_true", help="print the job, send nothing")
    p.add_argument("--check", action="store_true", help="check the project for this job "
                   "(APIs, roles, bucket, image, GPU quota, secret), send nothing")


def main(argv=None):
    args = get_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(run_main(main))
