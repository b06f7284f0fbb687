"""The bucket's layout and the verbs that move files in and out of it.

    gs://$STEERING_BUCKET_NAME/training/NAME.tgz        archives   (upload_tub_archive.sh)
    gs://$STEERING_BUCKET_NAME/models/NAME.h5 ...       OUTPUTS    (download_models.sh)
    gs://$STEERING_BUCKET_NAME/movies/NAME.mp4          movies
    $JOB_DIR, default gs://$STEERING_BUCKET_NAME/job    each cloud job's staging folder

    resolve(storage, "wip", ARCHIVE)            # ./wip.tgz, else gs://B/training/wip.tgz
    upload_archive(storage, "wip.tgz", bucket)  # skipped when identical; resumable
    claimed = claim(storage, outputs, force)    # before training: taken names refused
    publish(storage, local, outputs, claimed)   # after: all or nothing, the card last
    download_models(storage, bucket, "pilot-wip", "models")   # the set the card names
    stage(storage, "wip.tgz", ARCHIVE, where)   # a cloud job's input, as a gs:// URI

Transfers compare checksums before moving a byte: what is already there and
identical is left alone, what differs is replaced only with force=True.
A model set is published with preconditions (never over another writer),
the card last; it names every other file's sha256, and a download takes
exactly the files the card names, each checked against it.
"""
import errno
import json
import os
import re
import shutil
from dataclasses import dataclass

from trainer.core import points, replace, settings
from trainer.core.errors import UserError
from trainer.core.names import (ARCHIVE_STEM, MODEL_STEM, newest, next_free, number_in,
                                plain_name)
from trainer.core.storage import (Conflict, checksums, human, join, local_stamp, parse_uri,
                                  sha256, shown)

TRAINING = "training"
MODELS = "models"
MOVIES = "movies"
JOBS = "job"
# The files of one model, NAME + suffix, in the order they are published
# (the card last: it names every other file's sha256).
H5, TFLITE, ONNX = ".h5", ".tflite", ".onnx"
# Smaller, faster .tflite variants (job/variants.py): each is published only
# within its tolerance of the .h5; the card says why one was withheld.
TFLITE_FP16, TFLITE_INT8 = ".fp16.tflite", ".int8.tflite"
LOSS_PLOT, PREDICTION_PLOT, CARD = ".png", ".pred.png", ".json"
FRAMES = ".frames.npz"       # a few frames and the job's outputs: the car's check
OUTPUTS = (H5, TFLITE, TFLITE_FP16, TFLITE_INT8, ONNX, LOSS_PLOT, PREDICTION_PLOT, FRAMES,
           CARD)
OPTIONAL = (TFLITE_FP16, TFLITE_INT8)     # a set may lack them: its card says why
# download_models.sh -F: one format, with what the car's check needs.
FORMATS = {"h5": H5, "tflite": TFLITE, "fp16": TFLITE_FP16, "int8": TFLITE_INT8,
           "onnx": ONNX}
# A TensorRT engine: built on the car from the .onnx (car/runtimes.py), for
# that car's GPU and TensorRT alone, so never published. The car's formats.
ENGINE = ".engine"
CAR_FORMATS = {**FORMATS, "engine": ENGINE}
# Longest first, so pilot.pred.png is the model 'pilot', not 'pilot.pred'.
_SUFFIXES = tuple(sorted((*OUTPUTS, ENGINE), key=len, reverse=True))
LOCAL_MODELS = "models"          # the car folder's models/, where models land
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Kind:
    """A kind of file the scripts take by path, bare name or gs:// URI."""
    what: str        # in messages: 'archive', 'model'
    folder: str      # where a bare name is looked up in the bucket
    suffix: str      # a bare name may leave it out (wip for wip.tgz)
    hint: str = ""   # how to make one, after 'check the name'
    local: str = ""  # a folder here where a bare name is looked up too


ARCHIVE = Kind("archive", TRAINING, ".tgz", ", or make it with ./make_tub_archive.sh")
MODEL = Kind("model", MODELS, H5, local=LOCAL_MODELS)


def folder(bucket, name):
    """gs://BUCKET/NAME, one of the folders above."""
    return f"gs://{bucket}/{name}"


def job_dir(bucket):
    """JOB_DIR, else gs://BUCKET/job: where Vertex stages each job's files."""
    value = settings.get("JOB_DIR").rstrip("/")
    if value and not value.startswith("gs://"):
        raise UserError(f"JOB_DIR={value} is not a gs:// URI: export "
                        f"JOB_DIR={folder(bucket, JOBS)}, or unset it")
    return value or folder(bucket, JOBS)


def model_files(output, name):
    """{suffix: path or URI} of model NAME's files in the folder OUTPUT."""
    return {suffix: join(output, name + suffix) for suffix in OUTPUTS}


def default_model_name(archive):
    """pilot-STEM for the archive STEM.tgz (a path or a gs:// URI)."""
    return f"pilot-{archive_stem(archive)}"


def archive_stem(archive):
    stem = parse_uri(archive).name
    for suffix in (".tgz", ".tar.gz"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


# -- the defaults of the daily loop -------------------------------------------------
# Each step takes the newest of its family (names.py): the archive made
# today, the model trained today, here first, then in the bucket.

def names_in(storage, where, suffix):
    """Stems of the files ending in SUFFIX in the folder WHERE (a path, or a
    gs:// folder; a missing local folder holds none)."""
    if parse_uri(where).scheme == "gs":
        prefix = where.rstrip("/") + "/"
        found = [r.uri[len(prefix):] for r in storage.list(prefix)]
    else:
        found = os.listdir(where) if os.path.isdir(where) else []
    return {f[: -len(suffix)] for f in found if f.endswith(suffix) and "/" not in f
            and not f.startswith(".")}


def model_names_in(storage, where):
    """The models with any file in WHERE (pilot.pred.png -> pilot)."""
    if parse_uri(where).scheme == "gs":
        prefix = where.rstrip("/") + "/"
        files = [r.uri[len(prefix):] for r in storage.list(prefix)]
    else:
        files = os.listdir(where) if os.path.isdir(where) else []
    return {model_of(f) for f in files if "/" not in f and not f.startswith(".")}


def newest_archive(storage, say=print, flag="-a", bucket_too=True):
    """The newest archive of the daily loop (wip.tgz, wip-2.tgz, ...): here,
    else in gs://BUCKET/training/ when STEERING_BUCKET_NAME is set (and
    BUCKET_TOO)."""
    stem = newest(ARCHIVE_STEM, names_in(storage, ".", ARCHIVE.suffix))
    where = "here"
    if stem is None and bucket_too and settings.bucket_is_set():
        remote = folder(settings.bucket(), TRAINING)
        stem = newest(ARCHIVE_STEM, names_in(storage, remote, ARCHIVE.suffix))
        where = f"in {remote}/"
    if stem is None:
        raise UserError(f"no archive here ({ARCHIVE_STEM}{ARCHIVE.suffix}): make one with "
                        f"./make_tub_archive.sh in the car folder, or pass {flag} ARCHIVE")
    if stem != ARCHIVE_STEM:
        say(f"taking {stem}{ARCHIVE.suffix}, the newest archive {where} ({flag} to choose "
            "another)")
    return stem + ARCHIVE.suffix if where == "here" else \
        join(folder(settings.bucket(), TRAINING), stem + ARCHIVE.suffix)


def newest_model(storage, say=print, models=LOCAL_MODELS, suffix=CARD, flag="-m",
                 bucket_too=True):
    """The newest model of the daily loop (pilot-wip, pilot-wip-2, ...) with a
    SUFFIX file (None: any of its files) in MODELS, else in
    gs://BUCKET/models/ (BUCKET_TOO): (its name, the folder it is in), said
    when it is not pilot-wip itself; (None, None) when there is none."""
    def found(where):
        names = model_names_in(storage, where) if suffix is None else \
            names_in(storage, where, suffix)
        return newest(MODEL_STEM, names)
    name, where = found(models), models
    if name is None and bucket_too and settings.bucket_is_set():
        where = folder(settings.bucket(), MODELS)
        name = found(where)
    if name is None:
        return None, None
    if name != MODEL_STEM:
        say(f"taking {name}, the newest model in {where.rstrip('/')}/ ({flag} to choose "
            "another)")
    return name, where


def no_model(where, flag="-m"):
    return UserError(f"no model {MODEL_STEM} in {where.rstrip('/')}/: train one with "
                     f"./local_train.sh, or pass {flag} NAME")


def free_model_name(archive, taken, force=False, say=print):
    """pilot-STEM of ARCHIVE, moved on to the next free name of its family
    when TAKEN (names of models already there) has it and not FORCE."""
    name = default_model_name(archive)
    if force or name not in taken:
        return name
    head = name.rpartition("-")[0]
    family = head if number_in(head, name) else name    # pilot-wip-2 is pilot-wip's second
    free = next_free(family, taken)
    say(f"a model {name} exists: naming this one {free} (-m NAME to choose, -f to "
        f"replace {name})")
    return free


# -- names -----------------------------------------------------------------------

def _local(given, kind):
    """GIVEN (or GIVEN + the kind's suffix) when it exists here, or a bare
    name in the kind's local folder (models/pilot-wip.h5 for -m pilot-wip);
    else None."""
    names = [given] + ([given + kind.suffix] if not given.endswith(kind.suffix) else [])
    if kind.local and _bare(given):
        names += [os.path.join(kind.local, n) for n in names]
    return next((n for n in names if os.path.exists(n)), None)


def _bare(given):
    return "/" not in given and os.sep not in given


def resolve(storage, given, kind, what=None, hint=None):
    """A local path as given when it exists or names a folder; a bare NAME
    missing here becomes gs://$STEERING_BUCKET_NAME/FOLDER/NAME[SUFFIX].
    WHAT names it in messages (default: the kind's), HINT ends a miss."""
    what = what or kind.what
    if parse_uri(given).scheme == "gs":
        return given
    local = _local(given, kind)
    if local or not _bare(given):
        return local or given
    if not settings.bucket_is_set():
        raise UserError(f"{what} {given} not found here, and STEERING_BUCKET_NAME "
                        f"is not set to look in gs://BUCKET/{kind.folder}/: check the "
                        f"name{kind.hint}, or export STEERING_BUCKET_NAME="
                        f"{settings.EXAMPLES['STEERING_BUCKET_NAME']}")
    remotes = _candidates(settings.bucket(), given, kind)
    for remote in remotes:
        if storage.exists(remote):
            return remote
    raise UserError(f"{what} {given} is neither here nor at {remotes[-1]}: check "
                    f"the name{kind.hint if hint is None else hint}")


def _candidates(bucket, given, kind):
    names = [given] + ([given + kind.suffix] if not given.endswith(kind.suffix) else [])
    return [join(folder(bucket, kind.folder), n) for n in names]


# -- cloud job inputs --------------------------------------------------------------

def stage(storage, given, kind, bucket, staging, what=None, force=False, say=print,
          dry=False):
    """The gs:// URI a cloud job reads GIVEN (a path, bare name or gs:// URI)
    from, uploading a local file; with DRY the same answer, planned: what is
    in the bucket is looked up, but nothing is sent. An archive goes to training/
    (replacing a different one only with FORCE); a model is used from
    models/ when identical there, else it travels with the job in STAGING
    (models/ is never changed). Returns (uri, the local file it comes from
    or None)."""
    what = what or kind.what
    if parse_uri(given).scheme == "gs":
        if not storage.exists(given):
            raise UserError(f"{what} {given} not found: check the name"
                            + (", or upload it with upload_tub_archive.sh"
                               if kind is ARCHIVE else ""))
        return given, None
    local = _local(given, kind)
    if local is None and _bare(given):        # a name to find in the bucket
        return resolve(storage, given, kind, what), None
    path = local or given
    if not os.path.isfile(path) and (dry or kind is not ARCHIVE):
        raise UserError(f"{what} {path} not found: check the path")
    if kind is ARCHIVE:
        if dry:
            return join(folder(bucket, TRAINING), os.path.basename(path)), path
        return upload_archive(storage, path, bucket, force=force, say=say).uri, path
    shared = join(folder(bucket, MODELS), os.path.basename(path))
    uri = join(staging, os.path.basename(path))
    if dry:
        return uri, path
    remote = storage.stat(shared)
    if remote is not None and remote.matches(checksums(path)):
        say(f"{shared} is identical to {path}: not uploaded again")
        return shared, None
    storage.upload(path, uri)
    say(f"uploaded {path} to {uri}")
    return uri, path


# -- archives up -------------------------------------------------------------------

def upload_archive(storage, archive, bucket, force=False, say=print):
    """Put ARCHIVE at gs://BUCKET/training/NAME; skip it when identical."""
    check_archive(archive)
    uri = join(folder(bucket, TRAINING), os.path.basename(archive))
    sums = checksums(archive)
    remote = storage.stat(uri)
    if remote is not None:
        if remote.matches(sums):
            say(f"{uri} is already in the bucket, identical to {archive}: skipped")
            return remote
        if not force:
            raise UserError(f"{uri} already exists and differs from {archive}: pass "
                            "-f to replace it, or upload under another name")
    remote = storage.upload(archive, uri, sums=sums,
                            if_generation_match=remote.generation if remote else 0,
                            tracker=upload_tracker(archive), say=say)
    say(f"uploaded {archive} to {uri} ({human(remote.size)}; md5 and crc32c verified)")
    return remote


def upload_tracker(path):
    """.NAME.upload beside PATH: an interrupted upload's session, to resume."""
    return os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".upload")


def check_archive(archive):
    """One line unless ARCHIVE is a gzip file (what make_tub_archive.sh writes)."""
    if os.path.isdir(archive):
        raise UserError(f"{archive} is a folder: give the .tgz archive made by "
                        "make_tub_archive.sh")
    if not os.path.isfile(archive):
        raise UserError(f"archive {archive} not found: make it with "
                        "make_tub_archive.sh, or pass -a ARCHIVE")
    with open(archive, "rb") as f:
        if f.read(2) != GZIP_MAGIC:
            raise UserError(f"{archive} is not a tub archive (not gzip): make one "
                            "with make_tub_archive.sh")


# -- models down -------------------------------------------------------------------

def model_of(object_name):
    """The model an object name in models/ belongs to ('a.pred.png' -> 'a')."""
    for suffix in _SUFFIXES:
        if object_name.endswith(suffix) and len(object_name) > len(suffix):
            return object_name[: -len(suffix)]
    return object_name.rsplit(".", 1)[0] if "." in object_name[1:] else object_name


def belongs(object_name, basename):
    """True for BASENAME.EXT (one extension, or a known double one like .pred.png)."""
    if not object_name.startswith(basename + "."):
        return False
    rest = object_name[len(basename):]
    return rest in _SUFFIXES or "." not in rest[1:]


def check_format(fmt):
    """-F FMT as a known format (h5, tflite, fp16, int8, onnx), or None for all."""
    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"-F {shown(fmt)!r} is not a format: use "
                        f"{', '.join(FORMATS)} (or leave -F out for every file)")
    return fmt


def format_of(given):
    """The car's format of the file GIVEN names (models/x.int8.tflite: int8), or None."""
    for fmt, suffix in sorted(CAR_FORMATS.items(), key=lambda kv: -len(kv[1])):
        if given.endswith(suffix):
            return fmt
    return None


def model_name_of(given):
    """The model a -m names, as DonkeyCar's commands take it: a name, or a
    path to one of its files (models/mypilot.h5 -> mypilot)."""
    base = os.path.basename(given.rstrip("/")) or given
    for suffix in _SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    return plain_name(base, "-m")


def download_models(storage, bucket, basename, dest, force=False, say=print, fmt=None):
    """The files the card gs://BUCKET/models/BASENAME.json names (with FMT,
    'tflite' say, only that format and the frames file) into DEST, each
    checked against the card's sha256. A set without its card, a file the
    card names but the bucket lacks, or one that differs from the card is
    refused before anything is written. Returns the paths, the card last."""
    basename = model_name_of(basename)           # -m pilot-wip.h5 means pilot-wip
    check_format(fmt)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise UserError(f"{dest} is a file, not a folder: pass -d DIR")
    models = folder(bucket, MODELS) + "/"
    card_remote = storage.stat(models + basename + CARD)
    if card_remote is None:
        _no_card(storage, models, basename)
    if card_remote.size > CARD_LIMIT:
        raise UserError(f"{card_remote.uri} is {human(card_remote.size)}, too big for a "
                        "model card: nothing was downloaded; train the model again")
    created = not os.path.isdir(dest)
    try:
        os.makedirs(dest, exist_ok=True)
        replace.recover(dest, "download", say)
        with replace.Staging(dest, "download") as staging:
            return _download_set(storage, models, basename, dest, staging, card_remote,
                                 force, say, fmt)
    except PermissionError:
        raise UserError(f"cannot write in {dest}: permission denied: pass -d with a "
                        "folder you can write to") from None
    finally:
        if created and os.path.isdir(dest) and not os.listdir(dest):
            os.rmdir(dest)


def _no_card(storage, models, basename):
    """Why there is no model BASENAME: an incomplete set, or no such model."""
    # All of models/, not just BASENAME.*: a miss is answered with what is there.
    every = [r for r in storage.list(models) if "/" not in r.uri[len(models):]
             and not r.name.startswith(".")]    # hidden: a publish's copies, staging
    mine = [shown(r.name) for r in every if belongs(r.name, basename)]
    if mine:
        raise UserError(f"model {basename} in {models} has no card ({basename}{CARD}), "
                        f"only {', '.join(mine[:6])}: the set is incomplete (a training "
                        "run failed, or is still publishing), so nothing was "
                        "downloaded: train it again, or wait for the run to end")
    there = sorted({shown(model_of(r.name)) for r in every})
    if not there:
        raise UserError(f"no model {basename} in {models}, which holds no models "
                        "yet: train one with local_train.sh -o " + models.rstrip("/"))
    listed = ", ".join(there[:20]) + (f" and {len(there) - 20} more"
                                      if len(there) > 20 else "")
    raise UserError(f"no model {basename} in {models}: it holds {listed}; pass "
                    "one of them with -m")


_SHA256 = re.compile(r"[0-9a-f]{64}")
CARD_LIMIT = 1 << 20     # a card is a few KiB; a bigger one is not read


def card_files(card, basename, where):
    """{file name: {"sha256", "bytes"}} the model card CARD (parsed JSON)
    names; UserError when it names none, or names what is not this model's."""
    files = card.get("files") if isinstance(card, dict) else None
    if not isinstance(files, dict) or not files:
        raise UserError(f"the card {where} names no files with their sha256, so the "
                        "set cannot be verified: train the model again with this "
                        "toolkit")
    for name, entry in files.items():
        ok = (isinstance(name, str) and name.startswith(basename + ".")
              and name[len(basename):] in OUTPUTS and name[len(basename):] != CARD
              and isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
              and _SHA256.fullmatch(entry["sha256"]) is not None
              and isinstance(entry.get("bytes"), int) and entry["bytes"] >= 0)
        if not ok:
            raise UserError(f"the card {where} names {shown(name)!s} with "
                            f"{shown(json.dumps(entry))[:80]}, which is not a file "
                            f"of model {basename}: nothing was downloaded; train the "
                            "model again")
    return files


def _download_set(storage, models, basename, dest, staging, card_remote, force, say,
                  fmt):
    card_uri = card_remote.uri
    os.makedirs(staging.new)
    staged_card = os.path.join(staging.new, basename + CARD)
    storage.download(card_remote, staged_card)
    try:
        with open(staged_card, encoding="utf-8") as f:
            card = json.load(f)
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"the card {card_uri} is not JSON: nothing was downloaded; "
                        "train the model again") from None
    files = card_files(card, basename, card_uri)
    if fmt:
        wanted = basename + FORMATS[fmt]
        if wanted not in files:
            raise UserError(f"the card {card_uri} names no {wanted}"
                            f"{withheld_reason(card, fmt)}: leave -F out to take "
                            f"{', '.join(sorted(files))}")
        files = {n: e for n, e in files.items() if n in (wanted, basename + FRAMES)}

    todo, same, differ = [], [], []
    for name, entry in sorted(files.items(), key=lambda kv: _order(basename, kv[0])):
        target = os.path.join(dest, name)
        if os.path.isdir(target):
            raise UserError(f"{target} is a folder: move it away and run again")
        if not os.path.exists(target):
            todo.append((name, entry))
        elif sha256(target) == entry["sha256"]:
            same.append(target)
        else:
            differ.append((name, entry))
    card_target = os.path.join(dest, basename + CARD)
    card_same = (os.path.isfile(card_target)
                 and sha256(card_target) == sha256(staged_card))
    if os.path.isdir(card_target):
        raise UserError(f"{card_target} is a folder: move it away and run again")
    if os.path.exists(card_target) and not card_same:
        differ.append((basename + CARD, None))
    if differ and not force:
        first = os.path.join(dest, differ[0][0])
        more = f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""
        raise UserError(f"{first} differs from {models}{differ[0][0]}{more}: pass "
                        "-f to replace the local files with the bucket's")

    # Every file first into the staging folder, each checked against the card...
    fetched = []
    for name, entry in todo + [d for d in differ if d[1] is not None]:
        uri = models + name
        remote = storage.stat(uri)
        if remote is None:
            raise UserError(f"the card {card_uri} names {name}, but the bucket has no "
                            f"{uri}: the set is incomplete, so nothing was downloaded: "
                            "train the model again")
        if remote.size != entry["bytes"]:
            raise _mismatch(uri, card_uri)
        staged = os.path.join(staging.new, name)
        storage.download(remote, staged)
        if sha256(staged) != entry["sha256"]:
            raise _mismatch(uri, card_uri)
        fetched.append((name, staged, remote.size))
        points.point("download:fetched")
    # ...then all into place at once, the card last (old files back on any failure).
    if not card_same:
        fetched.append((basename + CARD, staged_card, card_remote.size))
    replaced = set(staging.commit([name for name, _, _ in fetched]))
    for name, staged, size in fetched:
        verb = "replaced" if name in replaced else "downloaded"
        say(f"{verb} {os.path.join(dest, name)} from {models}{name} ({human(size)}; "
            + ("the card" if name.endswith(CARD) else "sha256 as its card says") + ")")
    for target in same + ([card_target] if card_same else []):
        say(f"{target} is already here, identical: left alone")
    total = len(files) + 1
    say(f"model {basename}: {total} files in {dest} ({len(fetched)} transferred, "
        f"{total - len(fetched)} already identical), verified against its card")
    return [os.path.join(dest, n) for n in sorted(files, key=lambda n: _order(basename, n))
            ] + [card_target]


def withheld_reason(card, fmt):
    """': it was withheld (why)' when the card's variants say the FMT file was
    built and not published; '' otherwise."""
    variants = card.get("variants") if isinstance(card, dict) else None
    entry = variants.get(fmt) if isinstance(variants, dict) else None
    if not isinstance(entry, dict) or entry.get("published") is not False:
        return ""
    return f" (withheld by its training run: {shown(str(entry.get('reason')))[:200]})"


def _order(basename, name):
    suffix = name[len(basename):]
    return OUTPUTS.index(suffix) if suffix in OUTPUTS else len(OUTPUTS)


def _mismatch(uri, card_uri):
    return UserError(f"{uri} does not match its card {card_uri} (sha256 or size "
                     "differ: changed or tampered with since the card was written), so "
                     "nothing was downloaded: train the model again")


# -- models up ----------------------------------------------------------------------

class Claimed(dict):
    """{suffix: path or URI} of a run's outputs, with .stamps: what each was
    when the run started (0: nothing), the only thing publish() replaces."""

    def __init__(self, outputs, stamps):
        super().__init__(outputs)
        self.stamps = stamps


def claim(storage, outputs, force, ours=None):
    """Before a training run: OUTPUTS as Claimed. A model already there is
    refused without FORCE; with it, the stamps (generations) seen now are
    the only ones publish() will replace. OURS ({uri: stamp}): files an
    earlier attempt of this same cloud job published, which are its own to
    replace (a worker restarted in the middle of publishing)."""
    ours = ours or {}
    here = {os.path.dirname(u) or "." for u in outputs.values() if parse_uri(u).scheme == "file"}
    for folder in here:
        writable(folder)                # before training, not after
        if os.path.isdir(folder):       # a local publish a killed run left half-way
            replace.recover(folder, "publish")
    stamps = {suffix: storage.stamp(uri) for suffix, uri in outputs.items()}
    taken = [outputs[s] for s, stamp in stamps.items()
             if stamp and ours.get(outputs[s]) != stamp]
    if taken and not force:
        raise UserError(f"{taken[0]} already exists: pass -f to replace the model, "
                        "or -m NAME to train another")
    return Claimed(outputs, stamps)


def writable(folder):
    """FOLDER (or the nearest folder above it that exists) can be written
    in; else the OSError a write would meet (read-only file system,
    permission), at once."""
    path = os.path.abspath(folder)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    if not os.access(path, os.W_OK | os.X_OK):
        code = errno.EROFS if os.statvfs(path).f_flag & os.ST_RDONLY else errno.EACCES
        raise OSError(code, os.strerror(code), path)


def publish(storage, local, outputs, record=None):
    """Copy each LOCAL file ({suffix: path}) to OUTPUTS (Claimed), in OUTPUTS'
    order so the card goes last, each only over what was there when the run
    started; a variant the run withheld (OPTIONAL, no local file) is left
    out, and the replaced model's own copy of it removed. When another writer
    got there first, or anything else stops it
    (a full disk, the network, a signal), what this run created is removed
    again and what it replaced (-f) is put back: the set is the old one or
    the new one, never mixed with another run's. Into a local folder the set
    moves in at once (replace.Staging): a run killed half-way is undone by
    the next one there (claim())."""
    if all(parse_uri(uri).scheme == "file" for uri in outputs.values()):
        return _publish_here(local, outputs, record)
    done, copies = [], {}
    try:
        for suffix in OUTPUTS:
            uri, before = outputs[suffix], outputs.stamps[suffix]
            if before:              # -f: the old object, kept until the set is complete
                copies[uri] = storage.keep_copy(uri, before, hidden_copy(uri, before))
            if suffix in OPTIONAL and not os.path.isfile(local[suffix]):
                if before:          # the replaced model's variant: not this set's
                    storage.remove(uri, before)
                    done.append((uri, 0, before))       # 0: put back only where none is
                continue
            new = storage.put(local[suffix], uri, expect=before)
            done.append((uri, new, before))
            if record:                     # for a restart of this job (restarts.py)
                record(uri, new)
            points.point("publish:put")
    except BaseException as e:
        _take_back(storage, done, copies)
        _forget_copies(storage, copies)
        if isinstance(e, Conflict):
            raise _written_meanwhile(e.uri) from None
        raise
    _forget_copies(storage, copies)


def hidden_copy(uri, stamp):
    """Where the object URI of generation STAMP waits while it is replaced:
    beside it, hidden from listings (a leading '.')."""
    folder, _, name = uri.rpartition("/")
    return f"{folder}/.{name}.replaced-{stamp}"


def _take_back(storage, done, copies):
    """Undo DONE ([(uri, new stamp, old stamp)]), newest first: what was
    created goes, what was replaced comes back from its copy; each only
    while it is still this run's."""
    for uri, new, before in reversed(done):
        if before and uri in copies:
            storage.restore_copy(copies[uri], uri, expect=new)
        elif not before:
            storage.remove(uri, new)


def _forget_copies(storage, copies):
    for copy in copies.values():
        storage.remove(copy, None)


def _written_meanwhile(uri):
    return UserError(f"{shown(uri)} was written by another run while this one "
                     "trained, so this model was not published: pass -f to "
                     "replace that model, or -m NAME to train another")


def _publish_here(local, outputs, record):
    """The set into its local folder at once: staged beside it, then moved
    in, each file only over what claim() saw there."""
    folder = os.path.dirname(outputs[CARD]) or "."
    os.makedirs(folder, exist_ok=True)
    names = {os.path.basename(outputs[s]): s for s in OUTPUTS}

    def check(name):
        uri = outputs[names[name]]
        if local_stamp(uri) != outputs.stamps[names[name]]:
            raise Conflict(uri)
    try:
        with replace.Staging(folder, "publish") as stage:
            os.makedirs(stage.new)
            for suffix in OUTPUTS:
                if suffix in OPTIONAL and not os.path.isfile(local[suffix]):
                    continue        # withheld: the replaced model's copy goes aside
                shutil.copyfile(local[suffix], os.path.join(stage.new, os.path.basename(
                    outputs[suffix])))
                points.point("publish:staged")
            stage.commit(list(names), check=check)
    except Conflict as e:
        raise _written_meanwhile(e.uri) from None
    except FileExistsError as e:         # a file appeared between the check and the link
        raise _written_meanwhile(os.path.join(folder, os.path.basename(e.filename))) \
            from None
    if record:
        for suffix in OUTPUTS:
            if os.path.isfile(local[suffix]):
                record(outputs[suffix], local_stamp(outputs[suffix]))


def bring_models_home(storage, output, name, force=False, say=print):
    """Model NAME's files from the folder OUTPUT into ./models, verified."""
    out = parse_uri(output)
    if out.path.strip("/") == MODELS:           # the bucket's own layout
        return download_models(storage, out.bucket, name, LOCAL_MODELS, force=force,
                               say=say)
    paths = []
    for suffix, uri in model_files(output, name).items():
        if suffix in OPTIONAL and not storage.exists(uri):
            continue                            # withheld: the card says why
        target = os.path.join(LOCAL_MODELS, name + suffix)
        storage.download(uri, target)
        say(f"downloaded {target}")
        paths.append(target)
    return paths


def download_hint(output, bucket, name):
    """The command that brings model NAME home from OUTPUT."""
    out = parse_uri(output)
    if out.path.strip("/") == MODELS and out.bucket == bucket:
        return f"./download_models.sh -m {name}"
    return f"gcloud storage cp '{join(output, name)}.*' {LOCAL_MODELS}/"
