"""Smaller, faster .tflite files of a run, each judged against the .h5 on
frames training never saw before it is published.

    build(plan, keras_model)   # NAME.fp16.tflite, NAME.int8.tflite in the scratch folder
    # ... evaluate.py runs them beside the .h5 on the unseen frames ...
    gate(plan)                 # one over its tolerance is removed, with the reason
    table(plan)                # the card's "variants": every format's error, size, latency

- fp16: the weights stored as float16 (half the size), computed in float32:
  its outputs within FP16_BOUND of the .h5's on every frame compared.
- int8: integers throughout, the ranges calibrated on CALIBRATION_FRAMES of
  the archive's own training frames (none held out); input and output stay
  float32, so DonkeyCar's TfLite pilot runs it unchanged. Rounding moves its
  outputs a little: it passes when its steering error against the driven
  labels is at most INT8_MARGIN above the .h5's on the same frames.

Both are compared on the frames parity uses (evaluate.py: up to 100 unseen
frames, where the .h5 itself runs). A variant that cannot be built (a model
type the converter cannot quantize) or is over its tolerance is not
published; the card says why, and the run goes on: the .h5, the float
.tflite and the .onnx are the model.
"""
import os

from trainer.core import bucket, pilots
from trainer.core.errors import warn
from trainer.job.evaluate import images_of
from trainer.job.export import ONNX_OPSET, export_fp16, export_int8

VARIANTS = ("fp16", "int8")
FP16_BOUND = 1e-3          # max |fp16 - h5| on the frames compared
INT8_MARGIN = 0.02         # int8 steering error at most this above the .h5's
CALIBRATION_FRAMES = 200   # evenly spaced over the training frames
TOLERANCE = {"fp16": f"outputs within {FP16_BOUND:g} of the .h5's",
             "int8": f"steering error at most {INT8_MARGIN:g} above the .h5's"}


def calibration_frames(plan, n=CALIBRATION_FRAMES):
    """Up to N of the run's training frames (plan.train_frames), evenly spaced,
    as the pilot feeds them: [[normalized image, zeros for any other input]]."""
    import numpy as np
    from donkeycar.utils import normalize_image
    every = [(path, r) for path, records in plan.train_frames for r in records]
    if not every:
        return []
    picked = [every[i] for i in np.unique(np.linspace(0, len(every) - 1,
                                                      min(n, len(every))).astype(int))]
    frames = []
    for path in dict.fromkeys(p for p, _ in picked):
        records = [r for p, r in picked if p == path]
        frames += [normalize_image(img) for img in images_of(path, records, plan.cfg)]
    return frames


def model_inputs(model, frames):
    """[[the frame, zeros for each further input]] for MODEL, or why its
    inputs are not one camera frame (and flat vectors) to calibrate with."""
    import numpy as np
    shapes = [tuple(i.shape[1:]) for i in model.inputs]
    if not frames or shapes[0] != frames[0].shape:
        return None, (f"its first input is {shapes[0]}, not one camera frame "
                      f"{frames[0].shape if frames else ''}: only single-frame types are "
                      "quantized")
    if any(None in s or len(s) != 1 for s in shapes[1:]):
        return None, f"its further inputs {shapes[1:]} are not vectors to calibrate with"
    return [[f] + [np.zeros(s, np.float32) for s in shapes[1:]] for f in frames], None


def build(plan, model):
    """The fp16 and int8 .tflite of the Keras MODEL in the scratch folder;
    plan.results.variants says what was built, or why not."""
    files, found = plan.local_files(), plan.results.variants
    frames = calibration_frames(plan)
    found["int8"] = {"calibration_frames": len(frames)}
    calibrated, why = model_inputs(model, frames)
    for fmt, make in (("fp16", lambda out: export_fp16(model, out)),
                      ("int8", lambda out: export_int8(model, calibrated, out))):
        entry = found.setdefault(fmt, {})
        if fmt == "int8" and why:
            entry["reason"] = f"not built: {why}"
            continue
        try:
            make(files[bucket.FORMATS[fmt]])
        except Exception as e:      # the converter's refusal, in its words; the run goes on
            entry["reason"] = (f"not built: TensorFlow's converter failed "
                               f"({type(e).__name__}: {' '.join(str(e).split())[:200]})")


def gate(plan):
    """Remove each built variant over its tolerance (compared in
    plan.results.evaluation), saying why; the reasons go in the card."""
    files, ev = plan.local_files(), plan.results.evaluation
    for fmt in VARIANTS:
        entry = plan.results.variants.setdefault(fmt, {})
        if fmt not in ev:
            if "reason" in entry:
                warn(f"the {pilots.shown(fmt)} is not published: {entry['reason']}")
            continue
        reason = over_tolerance(fmt, ev[fmt], ev["h5"])
        if reason:
            entry["reason"] = reason
            os.remove(files[bucket.FORMATS[fmt]])
            warn(f"the {pilots.shown(fmt)} is not published: {reason}")


def over_tolerance(fmt, found, h5):
    """Why the FMT variant's errors (FOUND) are over its tolerance, or None."""
    n = found["frames"]
    if fmt == "fp16" and not found["max_diff_from_h5"] <= FP16_BOUND:
        return (f"its outputs differ from the .h5's by up to {found['max_diff_from_h5']:.2g} "
                f"on {n} unseen frames (tolerance {FP16_BOUND:g})")
    above = found["steering_mae"] - h5["steering_mae"]
    if fmt == "int8" and not above <= INT8_MARGIN:
        return (f"its steering error on {n} unseen frames is {found['steering_mae']:.3f}, "
                f"{above:.3f} above the .h5's {h5['steering_mae']:.3f} (tolerance "
                f"{INT8_MARGIN:g})")
    return None


def table(plan):
    """The card's "variants": for every format of the set, its file, size,
    errors and latency where it was built, whether it was published and why not."""
    files, ev = plan.local_files(), plan.results.evaluation
    out = {}
    for fmt, suffix in bucket.FORMATS.items():
        path = files[suffix]
        entry = {"file": os.path.basename(path), "published": os.path.isfile(path)}
        if entry["published"]:
            entry["bytes"] = os.path.getsize(path)
        if fmt in ev:
            entry.update({k: ev[fmt][k] for k in ("max_diff_from_h5", "steering_mae",
                                                 "throttle_mae", "median_latency_ms",
                                                 "frames")})
        if fmt in VARIANTS:
            entry.update(plan.results.variants.get(fmt, {}), tolerance=TOLERANCE[fmt])
            if fmt in ev:
                entry["steering_mae_above_h5"] = ev[fmt]["steering_mae"] - \
                    ev["h5"]["steering_mae"]
        if fmt == "onnx":
            entry["opset"] = ONNX_OPSET     # TensorRT 8.2 (Jetson Nano) reads up to 13
        out[fmt] = entry
    return out


def lines(variants):
    """What the console says of the variants: one line each that was published,
    with the number its tolerance is about."""
    out = []
    for fmt in VARIANTS:
        v = variants[fmt]
        if not v["published"]:
            continue
        judged = (f"outputs within {v['max_diff_from_h5']:.1g} of the .h5's" if fmt == "fp16"
                  else f"steering error {v['steering_mae_above_h5']:+.4f} against the .h5's")
        out.append(f"{pilots.shown(fmt)}: {v['bytes'] / 1e6:.1f} MB, "
                   f"{v['median_latency_ms']:.1f} ms a frame here, {judged} on "
                   f"{v['frames']} unseen frames (tolerance: {v['tolerance']})")
    return out
