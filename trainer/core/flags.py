"""The flags of the two jobs, declared once: local_train.sh and local_makemovie.sh
hand theirs to these parsers, the submit scripts take the same ones (and
pass them on to the cloud job, jobs.py). Light on purpose: the submit
scripts run on a car whose light install has no TensorFlow.

    args = train_args(["-a", "wip.tgz", "-c", "MAX_EPOCHS=3"])
    args = movie_args(["-m", "models/pilot-wip.h5", "-e", "60"])
"""
import os

from trainer.core import bucket, modeltypes, sweeps
from trainer.core.config import check_overrides, parse_overrides
from trainer.core.errors import ArgumentParser, UserError
from trainer.core.names import is_plain, next_free, plain_name
from trainer.core.storage import parse_uri

NEWEST_ARCHIVE = "the newest of wip.tgz, wip-2.tgz, ... here, else in the bucket"
NEWEST_MODEL = (f"the newest of pilot-wip, pilot-wip-2, ... in ./{bucket.LOCAL_MODELS}, else "
                "in the bucket")
MOVIE = ".mp4"
# A model with Lambda layers runs Python when it loads: refused unless this.
TRUST_FLAG = "--trust-model-code"


def train_parser(add_help=True, sweep=True):
    """local_train.sh's flags, the training job's (trainer.task); the submit
    scripts take them too (jobs.Train), submit_cloud_train.sh without SWEEP's
    --sweep (it sends one job)."""
    p = ArgumentParser(prog="trainer.task", description="the training job",
                       add_help=add_help, allow_abbrev=False)
    p.add_argument("-a", "--archive", action="append",
                   help=f"tub archive: path, name or gs:// URI; repeatable "
                   f"(default: {NEWEST_ARCHIVE})")
    p.add_argument("-m", "--model-name", help="model base name (default: pilot-STEM "
                   "of the first archive, moved on to pilot-STEM-2, ... when taken)")
    p.add_argument("--type", help="DonkeyCar model type, or A,B,C for a sweep (default: "
                   "the config's DEFAULT_MODEL_TYPE)")
    p.add_argument("-T", "--transfer", help=".h5 model to start from (default: none)")
    p.add_argument("-o", "--output", help="folder or gs:// prefix for the model files "
                   f"(default: ./{bucket.LOCAL_MODELS} here, "
                   f"gs://$STEERING_BUCKET_NAME/{bucket.MODELS} in the cloud)")
    p.add_argument("-c", "--set", action="append", metavar="KEY=VALUE",
                   help="config override on top of myconfig.py; repeatable")
    if sweep:
        p.add_argument("--sweep", action="append", metavar="KEY=V1,V2",
                       help="a sweep: one run per value (times each --type), then the "
                       "comparison; repeatable; single values only (default: one run)")
    p.add_argument("-E", "--eval-archive", metavar="ARCHIVE",
                   help="evaluate on this archive's frames, which the model never "
                   "trains on: path, name or gs:// URI (default: the training tubs)")
    p.add_argument("-f", "--force", action="store_true",
                   help="replace existing model files of the same name (default: refuse)")
    p.add_argument(TRUST_FLAG, action="store_true",
                   help="let -T load a model whose Lambda layers run Python code "
                   "(default: refuse it)")
    p.hints = {"-t": "the model type is --type TYPE (-t is a tub, as in "
                     "make_tub_archive.sh)"}
    return p


def train_args(argv=None):
    args = settle_train(train_parser().parse_args(argv))
    args.output = args.output or f"./{bucket.LOCAL_MODELS}"
    return args


def settle_train(args):
    """The training flags' cheap checks, the same for local_train.sh and the
    submit scripts, before anything is read: -m a plain name, the type
    against DonkeyCar's list (each of a sweep's), -c's and --sweep's syntax,
    and the -c values training reads."""
    if args.model_name:
        plain_name(args.model_name, "-m")
    parse_overrides(args.set)
    check_overrides(args.set)
    if sweeps.is_sweep(args):
        sweeps.expand(args.type, args.sweep, args.set)
    elif args.type:
        modeltypes.check(args.type)
    return args


def model_name(args, taken=(), say=print):
    """-m NAME, else pilot-STEM of the first archive, moved on past the
    names TAKEN in the output (bucket.free_model_name) unless -f: a plain name
    either way (it names files in -o and objects in the bucket). The one
    place a model name is decided."""
    if args.model_name:
        return plain_name(args.model_name, "-m")
    name = bucket.default_model_name(args.archive[0])
    if not is_plain(name):
        raise UserError(f"archive {bucket.archive_stem(args.archive[0])!r} makes the "
                        f"model name {name!r}, which is not a plain name: rename the "
                        "archive (letters, digits, '.', '_', '-'), or pass -m NAME, "
                        "e.g. -m pilot-wip")
    return bucket.free_model_name(args.archive[0], taken, args.force, say)


def movie_parser(add_help=True):
    """local_makemovie.sh's flags, the movie job's (trainer.movie); the submit
    script takes them too (jobs.Movie)."""
    p = ArgumentParser(prog="trainer.movie", description="the makemovie job",
                       add_help=add_help, allow_abbrev=False)
    p.add_argument("-m", "--model",
                   help=f".h5 model: path, name or gs:// URI (default: {NEWEST_MODEL})")
    p.add_argument("-a", "--archive",
                   help=f"tub archive: path, name or gs:// URI (default: {NEWEST_ARCHIVE})")
    p.add_argument("-s", "--start", help="first record (default: 0)")
    p.add_argument("-e", "--end", help="record to stop before (default: the end of "
                   "the tub)")
    p.add_argument("-p", "--plain", action="store_true",
                   help="no salient map (default: drawn)")
    p.add_argument("-o", "--output", help=".mp4 path or gs:// URI (default: MODEL's "
                   "stem .mp4, moved on to STEM-2.mp4, ... when taken)")
    p.add_argument("--type", help="model type (default: the config's DEFAULT_MODEL_TYPE)")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing movie")
    p.add_argument(TRUST_FLAG, action="store_true",
                   help="load a model whose Lambda layers run Python code "
                   "(default: refuse it)")
    return p


def movie_args(argv=None):
    """The movie's flags, checked (the defaults of -m, -a, -o need the
    files: default_output() and bucket.newest_*)."""
    args = movie_parser().parse_args(argv)
    if args.type:
        modeltypes.check(args.type)
    if args.output and parse_uri(args.output).scheme == "gs":   # an object name
        plain_name(parse_uri(args.output).name, "-o", "pilot-wip.mp4")
    args.start, args.end = record_range(args.start, args.end)
    return args


def default_output(model, force=False, taken=None, say=print):
    """MODEL's stem .mp4 (models/pilot-wip.h5 -> pilot-wip.mp4); when that is
    TAKEN (default: a file here) and not FORCE, the next free STEM-N.mp4."""
    stem = os.path.splitext(parse_uri(model).name)[0]
    taken = bucket.names_in(None, ".", MOVIE) if taken is None else taken
    if force or stem not in taken:
        return stem + MOVIE
    free = next_free(stem, taken)
    say(f"{stem}{MOVIE} exists: writing {free}{MOVIE} (-o to choose, -f to replace it)")
    return free + MOVIE


def record_range(start, end):
    """(START, END) as record numbers, END -1 for the end of the tub; one
    line for anything else."""
    start, end = _record("-s", start, 0), _record("-e", end, -1)
    if end != -1 and end <= start:
        raise UserError(f"-s {start} -e {end}: END must be after START, "
                        f"e.g. -s {start} -e {start + 100}")
    return start, end


def _record(flag, value, default):
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < 0:
        raise UserError(f"{flag} {value}: give a record number (0 or more), e.g. "
                        f"{flag} 100")
    return number
