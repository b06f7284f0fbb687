"""Bucket transfers the scripts do: archives up, models down.

    upload_archive(storage, "wip.tgz", bucket)         # upload_tub_archive.sh
    download_models(storage, bucket, "pilot-wip", "models")   # download_models.sh

Both compare checksums before moving a byte: what is already there and
identical is left alone, what differs is replaced only with force=True.
"""
import os

from trainer.errors import UserError
from trainer.storage import checksums

TRAINING = "training"
MODELS = "models"
# Longest first, so pilot.pred.png is the model 'pilot', not 'pilot.pred'.
MODEL_SUFFIXES = (".pred.png", ".tflite", ".json", ".onnx", ".png", ".h5")
GZIP_MAGIC = b"\x1f\x8b"


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def upload_archive(storage, archive, bucket, force=False, say=print):
    """Put ARCHIVE at gs://BUCKET/training/NAME; skip it when identical."""
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
    uri = f"gs://{bucket}/{TRAINING}/{os.path.basename(archive)}"
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
                            if_generation_match=remote.generation if remote else 0)
    say(f"uploaded {archive} to {uri} ({human(remote.size)}; md5 and crc32c verified)")
    return remote


def model_of(object_name):
    """The model an object name in models/ belongs to ('a.pred.png' -> 'a')."""
    for suffix in MODEL_SUFFIXES:
        if object_name.endswith(suffix) and len(object_name) > len(suffix):
            return object_name[: -len(suffix)]
    return object_name.rsplit(".", 1)[0] if "." in object_name[1:] else object_name


def belongs(object_name, basename):
    """True for BASENAME.EXT (one extension, or a known double one like .pred.png)."""
    if not object_name.startswith(basename + "."):
        return False
    rest = object_name[len(basename):]
    return rest in MODEL_SUFFIXES or "." not in rest[1:]


def download_models(storage, bucket, basename, dest, force=False, say=print):
    """Every BASENAME.* of gs://BUCKET/models/ into DEST, verified."""
    for suffix in MODEL_SUFFIXES:           # -m pilot-wip.h5 means pilot-wip
        if basename.endswith(suffix) and len(basename) > len(suffix):
            basename = basename[: -len(suffix)]
            break
    if not basename or "/" in basename:
        raise UserError(f"-m {basename!r} is not a model name: give a base name "
                        "such as pilot-wip")
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise UserError(f"{dest} is a file, not a folder: pass -d DIR")
    folder = f"gs://{bucket}/{MODELS}/"
    # All of models/, not just BASENAME.*: a miss is answered with what is there.
    every = [r for r in storage.list(folder) if "/" not in r.uri[len(folder):]]
    mine = [r for r in every if belongs(r.name, basename)]
    if not mine:
        there = sorted({model_of(r.name) for r in every})
        if not there:
            raise UserError(f"no model {basename} in {folder}, which holds no models "
                            "yet: train one with local_train.sh -o " + folder.rstrip("/"))
        shown = ", ".join(there[:20]) + (f" and {len(there) - 20} more"
                                         if len(there) > 20 else "")
        raise UserError(f"no model {basename} in {folder}: it holds {shown}; pass "
                        "one of them with -m")

    todo, same, differ = [], [], []
    for remote in mine:
        target = os.path.join(dest, remote.name)
        if os.path.isdir(target):
            raise UserError(f"{target} is a folder: move it away and run again")
        if not os.path.exists(target):
            todo.append((remote, target))
        elif remote.matches(checksums(target)):
            same.append(target)
        else:
            differ.append((remote, target))
    if differ and not force:
        more = f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""
        raise UserError(f"{differ[0][1]} differs from {differ[0][0].uri}{more}: pass "
                        "-f to replace the local files with the bucket's")
    for target in same:
        say(f"{target} is already here, identical: left alone")
    for remote, target in todo + differ:
        try:
            storage.download(remote, target)
        except PermissionError:
            raise UserError(f"cannot write {target}: permission denied: pass -d with "
                            "a folder you can write to") from None
        verb = "replaced" if (remote, target) in differ else "downloaded"
        say(f"{verb} {target} from {remote.uri} ({human(remote.size)}; verified)")
    say(f"model {basename}: {len(mine)} files in {dest} "
        f"({len(todo) + len(differ)} transferred, {len(same)} already identical)")
    return [t for _, t in todo + differ] + same
