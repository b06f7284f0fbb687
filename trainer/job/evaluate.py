"""Parity and evaluation of the three exported formats on real frames.

Each format runs through the DonkeyCar pilot the car would use (KerasPilot.run
with the Keras, TFLite or ONNX interpreter), batch 1, on a fixed, evenly
spaced sample of the tubs' live records:

    h5_pilot = keras_pilot("linear", cfg, "models/x.h5")   # also feeds the ONNX export
    evaluate(plan, h5_pilot, images, driven)
    plan.results.parity      # {"tflite": max |diff| vs h5, "onnx": ...}
    plan.results.evaluation  # per format: steering/throttle MAE, max diff, latency
"""
import os

import numpy as np

from trainer.core import donkey
from trainer.core.bucket import FORMATS
from trainer.core.errors import UserError
from trainer.core.pilots import load_pilot, run_pilot

PARITY_BOUND = 1e-3
# 100 frames: the h5 runs eagerly at ~15 ms a frame, most of the check's cost.
SAMPLE_SIZE = 100


def sample_frames(tubs, cfg, size=SAMPLE_SIZE):
    """A contiguous stretch of up to SIZE live records from the middle of the
    largest of TUBS ([(shown name, path, records)]), as (images, driven,
    where): images as the car's camera delivers them, driven the user's
    (steering, throttle), where the tub and record numbers they came from."""
    donkey.quiet()
    from donkeycar.utils import load_image
    shown, path, records = max(tubs, key=lambda t: len(t[2]), default=(None, None, []))
    if not records:
        raise UserError("no live records to evaluate on")
    first = max(0, (len(records) - size) // 2)
    stretch = records[first:first + size]
    images = [load_image(os.path.join(path, "images", r["cam/image_array"]), cfg)
              for r in stretch]
    driven = np.array([(float(r.get("user/angle", 0.0)), float(r.get("user/throttle", 0.0)))
                       for r in stretch])
    where = {"tub": shown, "records": [stretch[0].get("_index"), stretch[-1].get("_index")],
             "frames": len(stretch)}
    return images, driven, where


def keras_pilot(model_type, cfg, h5):
    """DonkeyCar's Keras pilot for MODEL_TYPE, running the .h5 at H5."""
    return load_pilot("h5", model_type, cfg, h5)


def evaluate(plan, h5_pilot, images, driven):
    """PLAN's three formats on IMAGES (DRIVEN: the user's outputs), into
    plan.results: parity (each format's largest difference from the .h5,
    refused over PARITY_BOUND), evaluation and predictions per format."""
    files = plan.local_files()
    pilots = {"h5": h5_pilot, **{fmt: load_pilot(fmt, plan.model_type, plan.cfg,
                                                  files[FORMATS[fmt]])
                                 for fmt in ("tflite", "onnx")}}
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
