"""The model card, BASENAME.json: where a model came from and how it did.

    written = build(plan)                 # from the run's plan and its results
    write("out/NAME.json", written, files)

The config travels with the artifact: data (archives with sha256, tubs),
the effective config, versions, history, parity and evaluation, the
variants (every format's size, error against the .h5 and latency, and why
a variant was withheld), and each output file's sha256 and size (the
.frames.npz the car's check runs too).
The card is published last: download_models.sh takes exactly the files it
names and checks each against it (bucket.py).
"""
import datetime
import json
import os
import platform

from trainer import __version__
from trainer.core import donkey, settings
from trainer.core.config import effective, redact_overrides
from trainer.core.storage import atomic_path, sha256


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


def build(plan, variants=None):
    """The card of PLAN's run, from what its steps found (plan.results);
    VARIANTS: variants.table(plan), every format's size, errors and latency."""
    found = plan.results
    history = {k: [float(x) for x in v] for k, v in found.history.items()}
    val = [(v, i + 1) for i, v in enumerate(history.get("val_loss", [])) if v == v]
    epochs = len(history.get("loss", []))
    trained = plan.steps.seconds.get("train")
    return {
        "name": plan.name, "created_at": now(), "model_type": plan.model_type,
        "versions": versions(), "archives": found.archives,
        "tubs": [t.as_dict() for t in found.tubs],
        "records": {"live": sum(t.records for t in found.tubs), **found.split,
                    "held_out": sum(h["count"] for h in found.held_out)},
        "transfer": plan.transfer, "overrides": redact_overrides(plan.overrides),
        "config": effective(plan.cfg),
        "history": history,
        "best_val_loss": min(val)[0] if val else None,
        "best_epoch": min(val)[1] if val else None,     # the one DonkeyCar kept
        "epochs": epochs,
        "seconds": dict(plan.steps.seconds),
        "device": {"gpus": found.gpus, "kind": "GPU" if found.gpus else "CPU"},
        # What the GPU (or CPU) did: training frames seen per second of train().
        "frames_per_second": round(found.split["train"] * epochs / trained, 1)
        if trained and found.split.get("train") else None,
        "parity": found.parity, "evaluation": found.evaluation,
        "variants": variants or {},
        "evaluation_frames": found.frames,
        # Judged on frames training never saw (verdict.py): held out, or -E's.
        "verdict": {**found.verdict, "held_out": found.held_out} if found.verdict else None,
        "job_id": settings.job_id(),
    }


def write(path, card, files):
    """Write CARD plus the sha256/bytes of FILES ({name: path}) to PATH."""
    card = dict(card)
    card["files"] = {os.path.basename(p): file_entry(p) for p in files}
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(card, f, indent=2, default=str)
        f.write("\n")
    return card


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
