"""The model on frames it never trained on: parity of the three formats,
the variants' errors, and the verdict (verdict.py).

    h5_pilot = keras_pilot("linear", cfg, "models/x.h5")   # also feeds the ONNX export
    images, driven = evaluate(plan, h5_pilot, unseen)      # unseen: [(shown, path, records)]
    plan.results.parity      # {"tflite": max |diff| vs h5, "onnx": ...}: refused over 1e-3
    plan.results.evaluation  # per format, on the parity sample: errors, latency
    plan.results.verdict     # every unseen frame: errors, baselines, ratio, better

Each format runs through the DonkeyCar pilot the car would use (KerasPilot.run
with the Keras, TFLite or ONNX interpreter), batch 1. Parity runs every
format of the set (the fp16 and int8 variants too, which variants.py then
judges) on a contiguous sample of SAMPLE_SIZE unseen frames (the .h5 runs
eagerly at ~15 ms a frame); the verdict runs the .tflite, which the car
drives and which parity has just shown equal to the .h5, on every unseen frame.
"""
import os

import numpy as np

from trainer.core import donkey
from trainer.core.bucket import FORMATS
from trainer.core.errors import UserError
from trainer.core.pilots import load_pilot, run_pilot
from trainer.job import verdict

PARITY_BOUND = 1e-3
SAMPLE_SIZE = 100


def keras_pilot(model_type, cfg, h5):
    """DonkeyCar's Keras pilot for MODEL_TYPE, running the .h5 at H5."""
    return load_pilot("h5", model_type, cfg, h5)


def images_of(path, records, cfg):
    """The records' frames as the car's camera delivers them, resized as
    training resizes them (DonkeyCar's load_image)."""
    donkey.quiet()
    from donkeycar.utils import load_image
    return [load_image(os.path.join(path, "images", r["cam/image_array"]), cfg)
            for r in records]


def parity_sample(unseen, size=SAMPLE_SIZE):
    """(shown, path, records): a contiguous stretch of up to SIZE records
    from the middle of the largest of UNSEEN."""
    shown, path, records = max(unseen, key=lambda t: len(t[2]), default=(None, None, []))
    if not records:
        raise UserError("no live records to evaluate on")
    first = max(0, (len(records) - size) // 2)
    return shown, path, records[first:first + size]


def _parity(plan, h5_pilot, images, driven):
    files = plan.local_files()
    pilots = {"h5": h5_pilot, **{fmt: load_pilot(fmt, plan.model_type, plan.cfg,
                                                  files[suffix])
                                 for fmt, suffix in FORMATS.items()
                                 if fmt != "h5" and os.path.isfile(files[suffix])}}
    preds, evaluation = {}, {}
    for fmt, pilot in pilots.items():
        preds[fmt], latency = run_pilot(pilot, images)
        err = np.abs(preds[fmt] - driven).mean(axis=0)
        evaluation[fmt] = {
            "steering_mae": float(err[0]),
            "throttle_mae": float(err[1]),
            "max_diff_from_h5": float(np.abs(preds[fmt] - preds["h5"]).max()),
            "median_latency_ms": round(latency * 1000, 3),
            "frames": len(images),
        }
    parity = {fmt: evaluation[fmt]["max_diff_from_h5"] for fmt in ("tflite", "onnx")}
    bad = {fmt: d for fmt, d in parity.items() if not d <= PARITY_BOUND}
    if bad:
        fmt, d = next(iter(bad.items()))
        raise UserError(f"parity check failed: the {fmt} model differs from the h5 "
                        f"by {d:.2g} (> {PARITY_BOUND:g}) on real frames; do not put it "
                        "on the car, and report this with the model card")
    plan.results.parity, plan.results.evaluation = parity, evaluation
    plan.results.predictions = preds
    return pilots["tflite"]


def evaluate(plan, h5_pilot, unseen):
    """Parity on a sample of UNSEEN ([(shown tub, path, records)]), then the
    verdict on all of it; (sample images, driven) for the plots and the
    frames the car's check runs."""
    shown, path, stretch = parity_sample(unseen)
    images, driven = images_of(path, stretch, plan.cfg), verdict.labels(stretch)
    tflite = _parity(plan, h5_pilot, images, driven)
    plan.results.frames.update({"tub": shown, "frames": len(stretch),
                                "records": [stretch[0].get("_index"),
                                            stretch[-1].get("_index")]})
    if plan.results.baseline:
        predicted, labels = [], []
        for _, tub, records in unseen:
            for start in range(0, len(records), 256):     # a few MB of frames at a time
                chunk = records[start:start + 256]
                predicted.append(run_pilot(tflite, images_of(tub, chunk, plan.cfg))[0])
                labels.append(verdict.labels(chunk))
        base = plan.results.baseline
        plan.results.verdict = verdict.judge(np.concatenate(predicted),
                                             np.concatenate(labels), base["means"],
                                             base["spreads"])
    return images, driven
