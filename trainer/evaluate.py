"""Parity and evaluation of the three exported formats on real frames.

Each format runs through the DonkeyCar pilot the car would use (KerasPilot.run
with the Keras, TFLite or ONNX interpreter), batch 1, on a fixed, evenly
spaced sample of the tubs' live records:

    h5_pilot = keras_pilot("linear", cfg, "models/x.h5")   # also feeds the ONNX export
    result = evaluate("linear", cfg, {"tflite": ..., "onnx": ...}, h5_pilot, images, driven)
    result["parity"]         # {"tflite": max |diff| vs h5, "onnx": ...}
    result["evaluation"]     # per format: steering/throttle MAE, max diff, latency
"""
import os
import time

import numpy as np

from trainer import donkey
from trainer.errors import UserError
from trainer.onnx_pilot import onnx_pilot

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
    donkey.quiet()
    from donkeycar.utils import get_model_by_type
    pilot = get_model_by_type(model_type, cfg)
    pilot.load(h5)
    return pilot


def load_pilots(model_type, cfg, files, h5_pilot):
    from donkeycar.utils import get_model_by_type
    tfl = get_model_by_type("tflite_" + model_type, cfg)
    tfl.load(files["tflite"])
    return {"h5": h5_pilot, "tflite": tfl,
            "onnx": onnx_pilot(model_type, cfg, files["onnx"])}


def _extra_inputs(pilot):
    """Zeros for a pilot's inputs besides the image (IMU, behaviour state)."""
    shapes = pilot.output_shapes()[0] if hasattr(pilot, "output_shapes") else {}
    return [np.zeros(s, dtype=np.float32) for k, s in shapes.items()
            if k not in ("img_in", "mem_in")]


def run_pilot(pilot, images):
    extra = _extra_inputs(pilot)
    preds, times = [], []
    for img in images:
        t = time.perf_counter()
        out = pilot.run(img, *extra)
        times.append(time.perf_counter() - t)
        preds.append([float(np.ravel(out[0])[0]), float(np.ravel(out[1])[0])])
    return np.array(preds), float(np.median(times))


def evaluate(model_type, cfg, files, h5_pilot, images, driven, bound=PARITY_BOUND):
    pilots = load_pilots(model_type, cfg, files, h5_pilot)
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
    bad = {fmt: d for fmt, d in parity.items() if not d <= bound}
    if bad:
        fmt, d = next(iter(bad.items()))
        raise UserError(f"parity check failed: the {fmt} model differs from the h5 "
                        f"by {d:.2g} (> {bound:g}) on real frames; do not put it on "
                        "the car, and report this with the model card")
    return {"parity": parity, "evaluation": evaluation, "predictions": preds}
