"""Will it drive? The check download_models.sh runs on the car, after the
files are verified against their card:

    car.check(paths, "models")     # from the car folder (config.py), DonkeyCar here

1. The card's config against the car's (config.py + myconfig.py, loaded
   DonkeyCar's way): a frame size or depth the model was not trained on
   makes it fail or drive blind, so that ends the command (exit 1, the files
   kept); transformations, crop/ROI settings and the model type that differ
   may matter, and are warnings.
2. The frames the training job shipped (NAME.frames.npz: camera frames and
   the job's own .h5 outputs for them) through the car's own DonkeyCar pilot,
   in the format the car's DEFAULT_MODEL_TYPE asks for (.tflite for tflite_*
   types, else .h5): the outputs must agree within 1e-3, and the median
   latency a frame is shown against the DRIVE_LOOP_HZ budget.
3. The model in the car's models/database.json through DonkeyCar's
   PilotDatabase, so `donkey models` lists it; then the drive command.

Without DonkeyCar, or outside a car folder, it says why it was skipped.
"""
import datetime
import json
import os
import time

from trainer.core import console, donkey
from trainer.core.bucket import CARD, FRAMES, H5, TFLITE
from trainer.core.config import load_car_config
from trainer.core.errors import UserError
from trainer.core.pilots import load_pilot, run_pilot

BOUND = 1e-3           # the same bound as the job's own parity check
# A mismatch here makes the model fail to load or see what it never saw.
FATAL = ("IMAGE_W", "IMAGE_H", "IMAGE_DEPTH")
# These change what the model sees: worth a warning when they differ.
TRANSFORMS = ("TRANSFORMATIONS", "POST_TRANSFORMATIONS")
ROI = {"CROP": ("ROI_CROP_TOP", "ROI_CROP_BOTTOM", "ROI_CROP_LEFT", "ROI_CROP_RIGHT"),
       "TRAPEZE": ("ROI_TRAPEZE_LL", "ROI_TRAPEZE_LR", "ROI_TRAPEZE_UL",
                   "ROI_TRAPEZE_UR", "ROI_TRAPEZE_MIN_Y", "ROI_TRAPEZE_MAX_Y")}


def skipped(car_dir="."):
    """Why the check cannot run here, or None."""
    if not os.path.isfile(os.path.join(car_dir, "config.py")):
        return ("no config.py here: run download_models.sh from the car folder to "
                "check that the model will drive")
    try:
        donkey.quiet()
    except ImportError:
        return "DonkeyCar is not installed here"
    return None


def check(paths, dest, fmt=None, say=print, warn=None, car_dir="."):
    """Run the check on the downloaded PATHS (the card last) in DEST."""
    warn = warn or (lambda m: say(f"warning: {m}"))
    reason = skipped(car_dir)
    if reason:
        say(f"car check skipped: {reason}")
        return None
    card_path = paths[-1]
    name = os.path.basename(card_path)[: -len(CARD)]
    with open(card_path, encoding="utf-8") as f:
        card = json.load(f)
    cfg = load_car_config(car_dir)
    kept = f"the files stay in {dest}"
    trained = card.get("config") if isinstance(card.get("config"), dict) else {}
    compare_config(name, trained, cfg, kept, warn)

    model_type = str(card.get("model_type") or "linear")
    wanted = str(getattr(cfg, "DEFAULT_MODEL_TYPE", "linear"))
    fmt = fmt or ("tflite" if wanted.startswith("tflite_") else "h5")
    if fmt == "onnx":
        say("car check: DonkeyCar has no ONNX pilot, so the frames check was skipped "
            "(download -F tflite or -F h5 for the car)")
        return None
    drive_type = ("tflite_" if fmt == "tflite" else "") + model_type
    if wanted.replace("tflite_", "") != model_type:
        warn(f"the car's DEFAULT_MODEL_TYPE is {wanted} but {name} is a {model_type} "
             f"model: drive it with --type {drive_type}, as below")
    model = os.path.join(dest, name + (TFLITE if fmt == "tflite" else H5))
    frames = os.path.join(dest, name + FRAMES)
    result = None
    if not os.path.isfile(frames):
        say(f"car check: {name} came without {name}{FRAMES} (trained before the "
            "toolkit shipped frames), so the frames check was skipped")
    else:
        result = run_frames(name, model, frames, drive_type, cfg, card, kept)
        if result is None:
            say("car check: TensorFlow is not installed here, so the frames check "
                "was skipped")
        else:
            report_frames(result, cfg, say, warn)
    register(name, drive_type, card, cfg, dest, say)
    say(f"drive it: python manage.py drive --model {os.path.relpath(model, car_dir)} "
        f"--type {drive_type}")
    return result


def compare_config(name, trained, cfg, kept, warn):
    """One UserError for a frame size or depth the model was not trained on;
    a warning for each difference that may matter."""
    bad = [k for k in FATAL if k in trained and trained[k] != getattr(cfg, k, None)]
    if bad:
        keys = "/".join(bad)
        then = ", ".join(f"{k}={trained[k]!r}" for k in bad)
        now = ", ".join(f"{k}={getattr(cfg, k, None)!r}" for k in bad)
        raise UserError(f"{name} will not drive this car: {keys} differ (the model was "
                        f"trained with {then}, the car's config has {now}): set "
                        f"{then} in myconfig.py, or train on tubs recorded with the "
                        f"car's settings; {kept}")
    for key in TRANSFORMS:
        if key in trained and _norm(trained[key]) != _norm(getattr(cfg, key, None)):
            warn(f"{key} differs: the model was trained with {trained[key]!r}, the car "
                 f"has {getattr(cfg, key, None)!r}; it will see other images than it "
                 "learned on: set the same in myconfig.py, or train again")
    used = {str(t).upper() for key in TRANSFORMS
            for t in (_norm(trained.get(key)) or []) + (_norm(getattr(cfg, key, None))
                                                        or [])}
    for transform, keys in ROI.items():
        if not any(transform in t for t in used):
            continue
        diff = [k for k in keys if k in trained and trained[k] != getattr(cfg, k, None)]
        if diff:
            warn(f"{transform} settings differ: " + ", ".join(
                f"{k}={getattr(cfg, k, None)!r} (trained with {trained[k]!r})"
                for k in diff) + ": set the trained values in myconfig.py, or "
                "train again")


def _norm(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else value


def run_frames(name, model, frames, drive_type, cfg, card, kept):
    """The shipped frames through the car's pilot: {"max_diff", "latency_ms",
    "frames"}; None when TensorFlow is missing here."""
    import numpy as np
    try:
        donkey.import_tensorflow()
    except ImportError:
        return None
    try:
        with np.load(frames, allow_pickle=False) as data:    # not trusted: no pickles
            images, expected = data["images"], data["outputs"]
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{frames} is not a frames file ({type(e).__name__}): "
                        f"download the model again; {kept}") from None
    with console.filtered():        # TFLite's XNNPACK notice and the like, from C++
        return _run_pilot(model, images, expected, drive_type, cfg, card, kept)


def _run_pilot(model, images, expected, drive_type, cfg, card, kept):
    import numpy as np
    fmt = "tflite" if drive_type.startswith("tflite_") else "h5"
    try:
        pilot = load_pilot(fmt, drive_type.replace("tflite_", ""), cfg, model)
        run_pilot(pilot, images[:1])                          # warm-up
        got, latency = run_pilot(pilot, images)
    except Exception as e:   # DonkeyCar/TensorFlow refusing the model, in its words
        trained = (card.get("versions") or {}).get("donkeycar_generation", "?")
        raise UserError(f"the car's DonkeyCar {donkey.generation()} cannot run "
                        f"{model} as {drive_type} ({type(e).__name__}: "
                        f"{' '.join(str(e).split())[:160]}); it was trained with "
                        f"DonkeyCar {trained}: train it for DonkeyCar "
                        f"{donkey.generation()}; {kept}") from None
    diff = float(np.abs(got - np.asarray(expected)[:, :2]).max())
    if not diff <= BOUND:
        raise UserError(f"on the {len(images)} frames shipped with it, {model} gives "
                        f"other outputs here than in training (by {diff:.2g} > "
                        f"{BOUND:g}): do not drive it; check that DonkeyCar "
                        f"{donkey.generation()} here matches the card's; {kept}")
    return {"max_diff": diff, "latency_ms": latency * 1000, "frames": len(images)}


def report_frames(result, cfg, say, warn):
    hz = getattr(cfg, "DRIVE_LOOP_HZ", 20) or 20
    budget = 1000.0 / hz
    say(f"car check: the car's pilot agrees with the training job on "
        f"{result['frames']} frames (max difference {result['max_diff']:.1e}); median "
        f"{result['latency_ms']:.1f} ms a frame of the {budget:.0f} ms a loop at "
        f"DRIVE_LOOP_HZ={hz}")
    if result["latency_ms"] > budget:
        warn(f"the model takes {result['latency_ms']:.0f} ms a frame here, more than "
             f"the {budget:.0f} ms a loop of DRIVE_LOOP_HZ={hz}: the car will lag; "
             "use the .tflite (-F tflite, DEFAULT_MODEL_TYPE = 'tflite_...'), or lower "
             "DRIVE_LOOP_HZ")


def register(name, drive_type, card, cfg, dest, say):
    """NAME in the car's models/database.json (DonkeyCar's PilotDatabase), so
    that `donkey models` lists it; only when DEST is the car's MODELS_PATH."""
    models = getattr(cfg, "MODELS_PATH", None)
    if not models or not os.path.isdir(models) or not os.path.samefile(models, dest):
        say(f"car check: {dest} is not the car's MODELS_PATH ({models}), so "
            f"{name} was not added to DonkeyCar's model list")
        return None
    from donkeycar.pipeline.database import PilotDatabase
    path = os.path.join(models, "database.json")
    if not os.path.exists(path):
        with open(path, "w") as f:          # else DonkeyCar warns that there is none
            f.write("[]")
    db = PilotDatabase(cfg)
    db.entries = [e for e in db.entries if e.get("Name") != name]
    numbers = [e.get("Number") for e in db.entries if isinstance(e.get("Number"), int)]
    best = card.get("best_val_loss")
    entry = {
        "Number": max(numbers) + 1 if numbers else 0,
        "Name": name,
        "Type": drive_type,
        "Tubs": ",".join(str(t.get("path", "")) for t in card.get("tubs") or []
                         if isinstance(t, dict)),
        "Time": _epoch(card.get("created_at")),
        "Val loss": best,
        "Transfer": card.get("transfer"),
        "Comment": f"robocar-trainer, downloaded {datetime.date.today()}",
    }
    db.add_entry(entry)
    db.write()
    if not any(e.get("Name") == name for e in PilotDatabase(cfg).entries):
        raise UserError(f"could not add {name} to {path}: check that the file is "
                        "writable; the model files were kept")
    say(f"car check: {name} added to {path} (donkey models lists it)")
    return entry


def _epoch(created_at):
    try:
        return datetime.datetime.fromisoformat(str(created_at)).timestamp()
    except ValueError:
        return time.time()
