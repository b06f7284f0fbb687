"""Will it drive? The check check_model.sh runs on a model in the car's
models/, however it arrived (download_models.sh runs it after a download;
rsync, scp, a USB stick), from the car folder:

    check("pilot-wip", "models")       # DonkeyCar here, TensorFlow or not

1. The files against their card (NAME.json): each file the card names and
   the folder holds must match its sha256 (a copy cut short is caught
   here). A model the training job judged no better than a constant guess
   (the card's verdict) is refused unless accept_poor.
2. The card's config against the car's (config.py + myconfig.py, loaded
   DonkeyCar's way): a frame size or depth the model was not trained on
   makes it fail or drive blind, so that ends the command (exit 1, the files
   kept); transformations, crop/ROI settings and a model type that differ
   may matter, and are warnings.
3. Each format here that the car can run, through the car's own DonkeyCar
   pilot (core/pilots.py): .tflite with whatever TFLite runtime DonkeyCar
   finds (a Raspberry Pi has no TensorFlow), .onnx with onnxruntime, .h5
   with TensorFlow. A format whose runtime is missing is skipped with why.
   The frames the training job shipped (NAME.frames.npz, with the job's own
   outputs for them) must come out within 1e-3; the median latency a frame
   is shown against the DRIVE_LOOP_HZ budget. Without a card or frames, a
   blank frame of the config's size shows that the model loads and how fast.
4. The model in the car's models/database.json (core/modeldb.py), so that
   `donkey models` lists it; then the drive command, for the format the car
   is set up for (DEFAULT_MODEL_TYPE) when it ran, else the fastest that did.

Without DonkeyCar, or outside a car folder, it says why it was skipped.
"""
import datetime
import json
import math
import os
import re
import time

from trainer.core import bucket, console, donkey, modeldb, modeltypes, pilots
from trainer.core.config import load_car_config
from trainer.core.errors import UserError
from trainer.core.storage import sha256

BOUND = 1e-3           # the same bound as the job's own parity check
POOR_FLAG = "--accept-poor-model"
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
        return ("no config.py here: run it from the car folder to check that the model "
                "will drive")
    try:
        donkey.quiet()
    except ImportError:
        return "DonkeyCar is not installed here"
    return None


class Check:
    """What one check found, and how it says it."""

    def __init__(self, name, models, say, warn):
        self.name, self.models, self.say, self.warn = name, models, say, warn
        self.kept = f"the files stay in {models}"
        self.card = None

    def path(self, suffix):
        return os.path.join(self.models, self.name + suffix)


def check(name, models, fmt=None, accept_poor=False, say=print, warn=None, car_dir="."):
    """Check model NAME in the folder MODELS against this car; returns
    {format: result} of what ran, or None when the check was skipped."""
    warn = warn or (lambda m: say(f"warning: {m}"))
    reason = skipped(car_dir)
    if reason:
        say(f"car check skipped: {reason}")
        return None
    c = Check(name, models, say, warn)
    present = {f: s for f, s in bucket.FORMATS.items()
               if os.path.isfile(c.path(s)) and (fmt is None or f == fmt)}
    if not present:
        there = ", ".join(sorted(n for n in os.listdir(models) if n.startswith(name + ".")))
        raise UserError(f"no {f'.{fmt} ' if fmt else ''}model {name} in {models}"
                        + (f" (only {there})" if there else "")
                        + ": copy it there, or download it with download_models.sh")
    c.card = read_card(c)
    verify(c)
    judge(c, accept_poor)
    cfg = load_car_config(car_dir)
    trained = c.card.get("config") if c.card and isinstance(c.card.get("config"), dict) \
        else {}
    compare_config(c, trained, cfg)
    model_type = model_type_of(c, cfg)
    ran = {f: run_format(c, f, model_type, cfg) for f in present}
    ran = {f: r for f, r in ran.items() if r}
    for f, r in ran.items():
        report(c, f, r, cfg)
    chosen = drive_format(ran, cfg)
    if chosen is None:
        say(f"car check: nothing of {name} could run here, so it was not added to "
            "DonkeyCar's model list")
        return ran
    lags(c, chosen, ran, cfg, model_type)
    drive_type = modeltypes.drive_type(model_type, chosen)
    register(c, drive_type, cfg)
    model = os.path.relpath(c.path(bucket.FORMATS[chosen]), car_dir)
    say(f"drive it: python manage.py drive --model {model} --type {drive_type}")
    return ran


def read_card(c):
    """NAME.json as a dict, or None when the model came without it."""
    path = c.path(bucket.CARD)
    if not os.path.isfile(path):
        c.say(f"car check: {c.name} came without its card ({c.name}{bucket.CARD}): its "
              "files, verdict and frames cannot be checked; copy the card with the model")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not a model card ({type(e).__name__}): copy it "
                        f"again; {c.kept}") from None
    if not isinstance(card, dict):
        raise UserError(f"{path} is not a model card: copy it again; {c.kept}")
    check_card(card, path, c.kept)
    return card


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(low, high):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _optional(ok):
    return lambda v: v is None or ok(v)


def _file_entry(v):
    return (isinstance(v, dict) and isinstance(v.get("sha256"), str)
            and _SHA256.fullmatch(v["sha256"]) is not None
            and isinstance(v.get("bytes"), int) and not isinstance(v["bytes"], bool)
            and v["bytes"] >= 0)


_SHA256 = re.compile(r"[0-9a-f]{64}")
# What the check reads from a card, and the shape each must have: a card
# copied from elsewhere (or edited) is input like any other.
CARD_FIELDS = {
    "files": (lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and _file_entry(e) for k, e in v.items()),
        "an object of file names, each with its sha256 and bytes"),
    "verdict": (lambda v: v is None or isinstance(v, dict), "the verdict object"),
    "verdict.better": (_optional(lambda v: isinstance(v, bool)), "true or false"),
    "verdict.steering": (_optional(lambda v: isinstance(v, dict)),
                         "an object of steering errors"),
    "verdict.steering.model": (_number, "a finite number"),
    "verdict.steering.constant": (_number, "a finite number"),
    "config": (lambda v: isinstance(v, dict), "an object of config values"),
    "config.IMAGE_W": (_whole(1, 4096), "a whole number of pixels"),
    "config.IMAGE_H": (_whole(1, 4096), "a whole number of pixels"),
    "config.IMAGE_DEPTH": (lambda v: v in (1, 3) and not isinstance(v, bool), "1 or 3"),
    "config.TRANSFORMATIONS": (_optional(lambda v: isinstance(v, list)), "a list"),
    "config.POST_TRANSFORMATIONS": (_optional(lambda v: isinstance(v, list)), "a list"),
    "model_type": (lambda v: isinstance(v, str) and v != "", "a model type's name"),
    "versions": (lambda v: isinstance(v, dict), "an object of versions"),
    "tubs": (lambda v: isinstance(v, list) and all(isinstance(t, dict) for t in v),
             "a list of tub objects"),
    "created_at": (lambda v: isinstance(v, str), "a date"),
    "best_val_loss": (_optional(_number), "a finite number"),
    "transfer": (_optional(lambda v: isinstance(v, str)), "a model's path"),
}


def check_card(card, path, kept):
    """One UserError for the first field the check reads whose type or
    shape is wrong (a string where a number goes, NaN, a list for an
    object), naming it."""
    for name, (ok, what) in CARD_FIELDS.items():
        *outer, key = name.split(".")
        holder = card
        for part in outer:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if not isinstance(holder, dict) or key not in holder:
            continue
        if not ok(holder[key]):
            shown = json.dumps(holder[key], default=str)
            shown = shown if len(shown) <= 60 else shown[:60] + "..."
            raise UserError(f"{path} says {name} is {shown}, which is not {what}: the "
                            f"card is damaged or was edited; copy it again, or train the "
                            f"model again; {kept}")


def verify(c):
    """Each file the card names and the folder holds matches its sha256."""
    files = (c.card or {}).get("files")
    if not isinstance(files, dict):
        return
    for name, entry in sorted(files.items()):
        path = os.path.join(c.models, str(name))
        if not (isinstance(entry, dict) and os.path.isfile(path)
                and str(name).startswith(c.name + ".")):
            continue
        if sha256(path) != entry.get("sha256"):
            raise UserError(f"{path} differs from its card (sha256): it was cut short or "
                            f"changed on the way; copy it again; {c.kept}")


def judge(c, accept_poor):
    """Refuse a model the training job judged no better than a constant guess."""
    found = (c.card or {}).get("verdict")
    if not isinstance(found, dict) or found.get("better") is not False:
        return
    steering = found.get("steering") if isinstance(found.get("steering"), dict) else {}
    numbers = (f" (steering error {steering['model']:.3f} against {steering['constant']:.3f} "
               "for a constant guess)") if all(
        isinstance(steering.get(k), (int, float)) for k in ("model", "constant")) else ""
    if not accept_poor:
        raise UserError(f"{c.name} was judged no better than always steering straight on "
                        f"frames it never trained on{numbers}: train it again (more laps, "
                        f"more epochs), or pass {POOR_FLAG} to check it anyway; {c.kept}")
    c.warn(f"{c.name} is not clearly better than a constant guess{numbers}; checked "
           f"anyway ({POOR_FLAG})")


def model_type_of(c, cfg):
    """The card's model type (what trained), else the car's, without a prefix."""
    wanted = str(getattr(cfg, "DEFAULT_MODEL_TYPE", "linear"))
    model_type = (c.card or {}).get("model_type")
    if not isinstance(model_type, str) or not model_type:
        return modeltypes.base(wanted)
    if modeltypes.base(wanted) != model_type:
        c.warn(f"the car's DEFAULT_MODEL_TYPE is {wanted} but {c.name} is a {model_type} "
               "model: drive it with the --type below")
    return model_type


def compare_config(c, trained, cfg):
    """One UserError for a frame size or depth the model was not trained on;
    a warning for each difference that may matter."""
    bad = [k for k in FATAL if k in trained and trained[k] != getattr(cfg, k, None)]
    if bad:
        keys = "/".join(bad)
        then = ", ".join(f"{k}={trained[k]!r}" for k in bad)
        now = ", ".join(f"{k}={getattr(cfg, k, None)!r}" for k in bad)
        raise UserError(f"{c.name} will not drive this car: {keys} differ (the model was "
                        f"trained with {then}, the car's config has {now}): set "
                        f"{then} in myconfig.py, or train on tubs recorded with the "
                        f"car's settings; {c.kept}")
    for key in TRANSFORMS:
        if key in trained and _norm(trained[key]) != _norm(getattr(cfg, key, None)):
            c.warn(f"{key} differs: the model was trained with {trained[key]!r}, the car "
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
            c.warn(f"{transform} settings differ: " + ", ".join(
                f"{k}={getattr(cfg, k, None)!r} (trained with {trained[k]!r})"
                for k in diff) + ": set the trained values in myconfig.py, or "
                "train again")


def _norm(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else value


def frames_of(c, cfg):
    """(images, expected outputs or None): the card's shipped frames, else one
    blank frame of the config's size (a load and latency check only)."""
    import numpy as np
    path = c.path(bucket.FRAMES)
    if os.path.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as data:    # not trusted: no pickles
                return data["images"], data["outputs"]
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{path} is not a frames file ({type(e).__name__}): copy it "
                            f"again; {c.kept}") from None
    c.say(f"car check: no {c.name}{bucket.FRAMES}, so the outputs were not compared with "
          "the training job's: only that it loads, on a blank frame")
    shape = (cfg.IMAGE_H, cfg.IMAGE_W, cfg.IMAGE_DEPTH)
    return np.zeros((3, *shape), dtype=np.uint8), None


def run_format(c, fmt, model_type, cfg):
    """{"latency_ms", "frames", "max_diff" or None, "runtime"} of the FMT
    file through the car's pilot; None when this car cannot run FMT."""
    missing = pilots.runtime_missing(fmt)
    if missing:
        c.say(f"car check: the .{fmt} was not run: {missing}")
        return None
    import numpy as np
    images, expected = frames_of(c, cfg)
    path = c.path(bucket.FORMATS[fmt])
    with console.filtered():        # TFLite's XNNPACK notice and the like, from C++
        try:
            pilot = pilots.load_pilot(fmt, model_type, cfg, path)
            pilots.run_pilot(pilot, images[:1])                   # warm-up
            got, latency = pilots.run_pilot(pilot, images)
        except Exception as e:   # DonkeyCar or the runtime refusing the model, in its words
            trained = ((c.card or {}).get("versions") or {}).get("donkeycar_generation", "?")
            raise UserError(f"the car's DonkeyCar {donkey.generation()} cannot run {path} "
                            f"as a {model_type} model ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:160]}); it was trained with "
                            f"DonkeyCar {trained}: train it for DonkeyCar "
                            f"{donkey.generation()}; {c.kept}") from None
    diff = None
    if expected is not None:
        diff = float(np.abs(got - np.asarray(expected)[:, :2]).max())
        if not diff <= BOUND:
            raise UserError(f"on the {len(images)} frames shipped with it, {path} gives "
                            f"other outputs here than in training (by {diff:.2g} > "
                            f"{BOUND:g}): do not drive it; check that DonkeyCar "
                            f"{donkey.generation()} here matches the card's; {c.kept}")
    return {"latency_ms": latency * 1000, "frames": len(images), "max_diff": diff,
            "runtime": pilots.runtime_name(fmt, pilot)}


def _budget(cfg):
    hz = getattr(cfg, "DRIVE_LOOP_HZ", 20) or 20
    return hz, 1000.0 / hz


def report(c, fmt, result, cfg):
    hz, budget = _budget(cfg)
    agrees = (f"agrees with the training job on {result['frames']} frames (max "
              f"difference {result['max_diff']:.1e})" if result["max_diff"] is not None
              else "loads")
    c.say(f"car check: the .{fmt} ({result['runtime']}) {agrees}; median "
          f"{result['latency_ms']:.1f} ms a frame of the {budget:.0f} ms a loop at "
          f"DRIVE_LOOP_HZ={hz}")


def lags(c, chosen, ran, cfg, model_type):
    """A warning when the format the car will drive takes longer than a loop."""
    hz, budget = _budget(cfg)
    took = ran[chosen]["latency_ms"]
    if took <= budget:
        return
    fast = [f for f in ("tflite",) if f in ran and ran[f]["latency_ms"] <= budget]
    fix = (f"the .tflite takes {ran['tflite']['latency_ms']:.1f} ms: drive it "
           f"(DEFAULT_MODEL_TYPE = '{modeltypes.drive_type(model_type, 'tflite')}' in "
           "myconfig.py)" if fast else "lower DRIVE_LOOP_HZ")
    c.warn(f"the .{chosen} takes {took:.0f} ms a frame here, more than the {budget:.0f} ms "
           f"a loop of DRIVE_LOOP_HZ={hz}: the car will lag; {fix}")


def drive_format(ran, cfg):
    """The format the car is set up for when it ran (tflite_ types take the
    .tflite, others the .h5), else the fastest that ran; .onnx is no
    DonkeyCar format (manage.py drive cannot load it)."""
    wanted = "tflite" if str(getattr(cfg, "DEFAULT_MODEL_TYPE", "")).startswith(
        "tflite_") else "h5"
    if wanted in ran:
        return wanted
    drivable = {f: r for f, r in ran.items() if f != "onnx"}
    return min(drivable, key=lambda f: drivable[f]["latency_ms"]) if drivable else None


def register(c, drive_type, cfg):
    """NAME in the car's models/database.json, so that `donkey models` lists
    it; only when MODELS is the car's MODELS_PATH."""
    models = getattr(cfg, "MODELS_PATH", None)
    if not models or not os.path.isdir(models) or not os.path.samefile(models, c.models):
        c.say(f"car check: {c.models} is not the car's MODELS_PATH ({models}), so "
              f"{c.name} was not added to DonkeyCar's model list")
        return None
    card = c.card or {}
    entry = modeldb.register(cfg, {
        "Name": c.name,
        "Type": drive_type,
        "Tubs": ",".join(str(t.get("path", "")) for t in card.get("tubs") or []
                         if isinstance(t, dict)),
        "Time": _epoch(card.get("created_at")),
        "Val loss": card.get("best_val_loss"),
        "Transfer": card.get("transfer"),
        "Comment": f"robocar-trainer, checked on this car {datetime.date.today()}",
    })
    c.say(f"car check: {c.name} added to {modeldb.path_of(cfg)} (donkey models lists it)")
    return entry


def _epoch(created_at):
    try:
        return datetime.datetime.fromisoformat(str(created_at)).timestamp()
    except ValueError:
        return time.time()
