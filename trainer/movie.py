"""The makemovie job, the same locally and in the cloud: DonkeyCar's own
MakeMovie over a tub from an archive, with a model's steering (and, unless
--plain, its salient map: what the model looks at) drawn on each frame.

    python -m trainer.movie --archive wip.tgz --model models/pilot-wip.h5 \
        --output pilot-wip.mp4 --start 100 --end 220

DonkeyCar's makemovie returns quietly when moviepy is missing or 2.x, and
its --draw-user-input flag turns drawing *off*; this job calls MakeMovie
with explicit arguments and fails unless the movie has the expected frames.
"""
import argparse
import os
import shutil
import sys
import tempfile

from trainer.cli import run_main
from trainer.errors import UserError

SALIENT_TYPES = ("linear", "categorical")


def get_args(argv=None):
    p = argparse.ArgumentParser(prog="trainer.movie", description=__doc__.split("\n")[0])
    p.add_argument("--archive", required=True, help="tub archive, path or gs:// URI")
    p.add_argument("--model", required=True, help=".h5 model, path or gs:// URI")
    p.add_argument("--output", required=True, help=".mp4 path or gs:// URI")
    p.add_argument("--type", help="model type (default: the config's DEFAULT_MODEL_TYPE)")
    p.add_argument("--start", type=int, default=0, help="first record (default: 0)")
    p.add_argument("--end", type=int, default=-1, help="record to stop before "
                   "(default: -1, the end of the tub)")
    p.add_argument("--plain", action="store_true", help="no salient map (default: drawn)")
    p.add_argument("--force", action="store_true", help="replace an existing movie")
    return p.parse_args(argv)


def check_moviepy():
    try:
        import moviepy
        import moviepy.editor  # noqa: F401  (DonkeyCar needs moviepy 1's editor)
    except ImportError as e:
        version = getattr(sys.modules.get("moviepy"), "__version__", None)
        if version and not version.startswith("1."):
            raise UserError(f"moviepy {version} is installed but DonkeyCar's "
                            "makemovie needs moviepy 1: pip install 'moviepy<2'") from None
        raise UserError(f"moviepy is missing ({e}): pip install 'moviepy<2'") from None
    if not moviepy.__version__.startswith("1."):
        raise UserError(f"moviepy {moviepy.__version__} is installed but DonkeyCar's "
                        "makemovie needs moviepy 1: pip install 'moviepy<2'")


def count_frames(path):
    import imageio_ffmpeg
    return imageio_ffmpeg.count_frames_and_secs(path)[0]


def make_movie(args, storage, say=print):
    check_moviepy()
    if not args.force and storage.exists(args.output):
        raise UserError(f"{args.output} already exists: pass -f to replace it, or "
                        "-o another name")
    work = tempfile.mkdtemp(prefix="robocar-movie-")
    try:
        return _make(args, storage, work, say)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _make(args, storage, work, say):
    from trainer.archive import extract, layout
    from trainer.config import load_car_config
    from trainer.storage import parse_uri
    from trainer.tubs import read_records

    archive = storage.fetch(args.archive, os.path.join(work, "download"), what="archive")
    root = extract(archive, os.path.join(work, "car"))
    config_path, tubs = layout(root, parse_uri(args.archive).name)
    cfg = load_car_config(os.path.dirname(config_path))
    model_type = args.type or cfg.DEFAULT_MODEL_TYPE
    salient = not args.plain
    if salient and model_type not in SALIENT_TYPES:
        raise UserError(f"the salient map needs a {' or '.join(SALIENT_TYPES)} model, "
                        f"not {model_type}: pass -p for a plain movie")
    records = len(read_records(tubs[0])[0])
    end = records if args.end == -1 else args.end
    if not 0 <= args.start < end <= records:
        raise UserError(f"frames {args.start} to {end} are outside the tub's {records} "
                        f"records: give 0 <= -s START < -e END <= {records}")
    model = storage.fetch(args.model, os.path.join(work, "download"), what="model")
    _check_model(model, model_type, cfg)

    from trainer.donkey import donkeycar  # noqa: F401
    from donkeycar.management.makemovie import MakeMovie

    out = os.path.join(work, "movie.mp4")
    mm_args = argparse.Namespace(
        tub=tubs[0], out=out, config=config_path, model=model, type=model_type,
        # MakeMovie writes (end - start - 1) frames: one past END gives START..END-1.
        salient=salient, start=args.start, end=end + 1, scale=2,
        draw_user_input=True)          # True means drawn (DonkeyCar's flag inverts it)
    mm = MakeMovie()
    mm.run(mm_args, argparse.ArgumentParser())
    if getattr(mm, "tub", None):
        mm.tub.close()
    expected = end - args.start
    frames = count_frames(out) if os.path.isfile(out) else 0
    if frames != expected:
        raise UserError(f"DonkeyCar's makemovie wrote {frames} frames, expected "
                        f"{expected}: check the messages above")
    storage.put(out, args.output)
    say(f"wrote {args.output}: {frames} frames at {cfg.DRIVE_LOOP_HZ} fps"
        f"{'' if salient else ', no salient map'}")
    return frames


def _check_model(path, model_type, cfg):
    from trainer.donkey import import_tensorflow
    import_tensorflow()                 # the first TensorFlow of the job, quietly
    from trainer.export import check_input_size
    check_input_size(path, cfg, "model", "use a model trained on this car's config")


def main(argv=None):
    args = get_args(argv)
    from trainer import gcs
    from trainer.storage import Storage
    # As trainer.task: gs:// URIs (the cloud job's) and bare names found only
    # in the bucket build the storage client; local runs never touch it.
    storage = Storage(connect=gcs.connect)
    args.archive = storage.resolve(args.archive, "training", "archive", suffix=".tgz",
                                   hint=", or upload it with upload_tub_archive.sh")
    args.model = storage.resolve(args.model, "models", "model", suffix=".h5")
    make_movie(args, storage)


if __name__ == "__main__":
    sys.exit(run_main(main))
