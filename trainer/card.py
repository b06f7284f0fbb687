"""The model card, BASENAME.json: where a model came from and how it did.

The config travels with the artifact: data (archives with sha256, tubs),
the effective config, versions, history, parity and evaluation, and each
output file's sha256 and size (the .frames.npz the car's check runs too).
The card is published last: download_models.sh takes exactly the files it
names and checks each against it (bucket.py).
"""
import datetime
import json
import os
import platform

from trainer import __version__, donkey
from trainer.storage import atomic_path, sha256


def versions():
    import tensorflow as tf

    out = {"toolkit": __version__, "donkeycar": donkey.version(),
           "donkeycar_generation": donkey.generation(), "tensorflow": tf.__version__,
           "python": platform.python_version()}
    try:
        import keras
        out["keras"] = keras.__version__
    except ImportError:
        pass
    return out


def file_entry(path):
    return {"sha256": sha256(path), "bytes": os.path.getsize(path)}


def write_card(path, card, files):
    """Write CARD plus the sha256/bytes of FILES ({name: path}) to PATH."""
    card = dict(card)
    card["files"] = {os.path.basename(p): file_entry(p) for p in files}
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(card, f, indent=2, default=str)
        f.write("\n")
    return card


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
