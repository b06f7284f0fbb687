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

from PIL import Image

from trainer.core import (bucket, console, donkey, gcs, interrupts, modeltypes, scratch,
                          settings)
from trainer.core.archive import extract, layout
from trainer.core.config import MOVIE_KEYS, check_values, load_car_config
from trainer.core.errors import UserError, os_error, run_main
from trainer.core.flags import MOVIE, default_output, movie_args
from trainer.core.interrupts import Interrupted
from trainer.core.names import MODEL_STEM
from trainer.core.storage import Storage, join, parse_uri
from trainer.core.tubs import FRAME, FrameCheck, bad_labels, bad_message, live_numbers, \
    read_records
from trainer.job.export import check_input_size, trust_model_code

SALIENT_TYPES = ("linear", "categorical")


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
    out = parse_uri(args.output)
    if out.scheme == "file" and os.path.isdir(out.path):
        raise UserError(f"{args.output} is a folder: give -o the movie's file name, e.g. "
                        f"-o {os.path.join(out.path, 'pilot-wip' + MOVIE)}")
    if not args.force and storage.exists(args.output):
        raise UserError(f"{args.output} already exists: pass -f to replace it, or "
                        "-o another name")
    work = tempfile.mkdtemp(prefix="robocar-movie-")
    try:
        return _make(args, storage, work, say)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _make(args, storage, work, say):
    archive = storage.fetch(args.archive, os.path.join(work, "download"), what="archive")
    root = extract(archive, os.path.join(work, "car"))
    config_path, tubs = layout(root, parse_uri(args.archive).name)
    cfg = load_car_config(os.path.dirname(config_path))
    check_values(cfg, car_dir=os.path.dirname(config_path), keys=MOVIE_KEYS)
    model_type = modeltypes.base(args.type or cfg.DEFAULT_MODEL_TYPE)   # the .h5's type
    salient = not args.plain
    if salient and model_type not in SALIENT_TYPES:
        raise UserError(f"the salient map needs a {' or '.join(SALIENT_TYPES)} model, "
                        f"not {model_type}: pass -p for a plain movie")
    live = read_records(tubs[0])[0]
    records = len(live)
    end = records if args.end == -1 else args.end
    if not 0 <= args.start < end <= records:
        raise UserError(f"frames {args.start} to {end} are outside the tub's {records} "
                        f"records: give 0 <= -s START < -e END <= {records}")
    check_records(tubs[0], live, max(args.start - 1, 0), end, cfg)
    model = storage.fetch(args.model, os.path.join(work, "download"), what="model")
    _check_model(model, model_type, cfg)
    resized = frames_as_trained(tubs[0], live[max(args.start - 1, 0):end], cfg)
    if resized:
        say(f"frames are {resized}, the config's {cfg.IMAGE_W}x{cfg.IMAGE_H}: resized as "
            "training resizes them, so the model sees what it was trained on")

    out = os.path.join(work, "movie.mp4")
    # MakeMovie(start=A, end=B) draws records A+1 .. B-1: moviepy reads its
    # first frame once to learn the size, and that record is not in the movie.
    # So A is one before the first record drawn, and a movie from record 0
    # starts at record 1 (there is none before it to spend).
    first = max(args.start, 1)
    if end - first < 1:
        raise UserError(f"-s {args.start} -e {end}: a movie needs two records or more: "
                        f"give e.g. -e {first + 100}")
    mm_args = argparse.Namespace(
        tub=tubs[0], out=out, config=config_path, model=model, type=model_type,
        salient=salient, start=first - 1, end=end, scale=2,
        draw_user_input=True)          # True means drawn (DonkeyCar's flag inverts it)
    mm = _legended()()
    with console.filtered():           # the movie's progress, not the libraries' chatter
        mm.run(mm_args, argparse.ArgumentParser())
        if getattr(mm, "tub", None):
            mm.tub.close()
    expected = end - first
    frames = count_frames(out) if os.path.isfile(out) else 0
    if frames != expected:
        raise UserError(f"DonkeyCar's makemovie wrote {frames} frames, expected "
                        f"{expected}: check the messages above")
    try:
        storage.put(out, args.output)
    except BaseException as e:
        raise _kept(e, out, args.output) from None
    say(f"wrote {args.output}: {frames} frames (records {first} to {end - 1}) at "
        f"{cfg.DRIVE_LOOP_HZ} fps{'' if salient else ', no salient map'}")
    return frames


def check_records(tub, live, first, end, cfg):
    """The records the movie draws (FIRST to END of the live ones): labels
    and frames that DonkeyCar's makemovie would crash on, named in one line."""
    numbers = live_numbers(tub, live)[first:end]
    chosen = live[first:end]
    bad = bad_labels(tub, chosen, numbers)
    check = FrameCheck(cfg.IMAGE_DEPTH)
    for n, r in zip(numbers, chosen):
        if n not in bad:
            check.add_file(n, os.path.join(tub, "images", r[FRAME]), r[FRAME])
    bad.update(check.bad())
    if bad:
        raise UserError(bad_message(os.path.basename(tub), bad, BAD_HINT))


BAD_HINT = ("no movie was made: make the archive again with make_tub_archive.sh "
            "--skip-bad (marks them deleted in the tub), fix them, or choose other "
            "frames with -s/-e")


def _kept(error, movie, output):
    """The movie made, but not written to OUTPUT: kept where the last line says."""
    name = parse_uri(output).name
    try:
        kept = scratch.keep(movie, os.path.splitext(name)[0], name)
    except OSError:
        return error
    where = f"the movie is kept as {kept}: copy it from there"
    if isinstance(error, KeyboardInterrupt):
        return Interrupted(interrupts.signum_of(error), kept=where)
    if isinstance(error, UserError):
        return UserError(f"{error}; {where}")
    if isinstance(error, OSError):
        return UserError(f"{os_error(error)}; {where}")
    return error


# DonkeyCar draws the user's steering and throttle as a green bar, the
# model's as a blue one (makemovie.py, RGB frames); the legend says so.
LEGEND = (("you", (0, 255, 0)), ("model", (0, 0, 255)))


def _legended():
    """DonkeyCar's MakeMovie, whose frames say which bar is whose."""
    import cv2
    from donkeycar.management.makemovie import MakeMovie

    class LegendedMovie(MakeMovie):
        def make_frame(self, t):
            image = super().make_frame(t)
            if image is None:
                return image
            for i, (label, colour) in enumerate(LEGEND):
                y = 14 + 14 * i
                cv2.rectangle(image, (4, y - 9), (16, y + 1), colour, -1)
                cv2.putText(image, label, (20, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                            (255, 255, 255), 1, cv2.LINE_AA)
            return image

    return LegendedMovie


def frames_as_trained(tub, records, cfg):
    """Frames of another size than the config's, resized the way DonkeyCar's
    load_image does when it trains (makemovie's salient map would feed the
    raw frame to the model and fail on its shape). Only this job's extracted
    copy changes; saved as PNG, so the pixels are exactly the ones training
    used. Returns the original size ('128x120'), or None when all fit."""
    size, found = (cfg.IMAGE_W, cfg.IMAGE_H), None
    for record in records:
        path = os.path.join(tub, "images", record["cam/image_array"])
        with Image.open(path) as img:
            if img.size == size:
                continue
            found = found or f"{img.width}x{img.height}"
            resized = img.resize(size)
        resized.save(path, format="PNG")
    return found


def _check_model(path, model_type, cfg):
    donkey.import_tensorflow()          # the first TensorFlow of the job, quietly
    check_input_size(path, cfg, "model", "use a model trained on this car's config")


def main(argv=None):
    args = movie_args(argv)
    donkey.quiet()
    donkey.require_gpu(settings.accelerator())   # a paid GPU: before fetching anything
    if args.trust_model_code:
        trust_model_code()
    # As trainer.task: gs:// URIs (the cloud job's) and bare names found only
    # in the bucket build the storage client; local runs never touch it.
    storage = Storage(connect=gcs.connect)
    if args.model is None:                  # the daily loop's newest model
        name, where = bucket.newest_model(storage, suffix=bucket.H5)
        args.model = join(where or bucket.LOCAL_MODELS, (name or MODEL_STEM) + bucket.H5)
    args.archive = bucket.resolve(storage, args.archive or bucket.newest_archive(storage),
                                  bucket.ARCHIVE,
                                  hint=", or upload it with upload_tub_archive.sh")
    args.model = bucket.resolve(storage, args.model, bucket.MODEL)
    args.output = args.output or default_output(args.model, args.force)
    make_movie(args, storage)


if __name__ == "__main__":
    sys.exit(run_main(main))
