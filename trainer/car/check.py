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
   The card's DonkeyCar against the car's, by content: a fork's model
   type the car's DonkeyCar lacks ends it, any other difference is a
   warning (compare_donkeycar).
3. Where TensorRT is (a Jetson, car/runtimes.py), NAME.engine built from
   NAME.onnx (FP16 where the GPU has it); elsewhere one line says why not.
4. Each format here that the car can run, through the car's own DonkeyCar
   pilot (core/pilots.py): every .tflite (float, fp16, int8) with whatever
   TFLite runtime DonkeyCar finds (a Raspberry Pi has no TensorFlow), .onnx
   with onnxruntime (its TensorRT or CUDA provider where it has one), .h5
   with TensorFlow, .engine with TensorRT. A format whose runtime is missing
   is skipped with why. On the frames the training job shipped
   (NAME.frames.npz, with the .h5's outputs for them, and each published
   variant's own) each must come out within 1e-3 of the job's (int8 and the
   engine: within BOUNDS, else they are not recommended; the engine against
   the .h5's); the median latency a frame is shown against the
   DRIVE_LOOP_HZ budget. Without a card or frames, a blank frame of the
   config's size shows that the model loads and how fast.
5. The model in the car's models/database.json (core/modeldb.py), so that
   `donkey models` lists it; then the drive command for the fastest format
   that agrees, with what it costs: manage.py for the .h5 and every
   .tflite, drive.sh (car/launcher.py) for the .onnx and the .engine.

Without DonkeyCar, or outside a car folder, it says why it was skipped.
"""
import datetime
import json
import math
import os
import re
import time

from trainer.car import runtimes
from trainer.core import (bucket, console, donkey, donkeysource, modeldb, modeltypes,
                          pilots)
from trainer.core.config import load_car_config
from trainer.core.errors import UserError
from trainer.core.storage import sha256

BOUND = 1e-3           # the same bound as the job's own parity check
# Reduced precision rounds otherwise from one CPU or GPU to the next: the
# int8 within this of the job's own int8 outputs (a rounding step or two),
# the engine (built here, FP16) of the .h5's. Over it: not recommended.
BOUNDS = {"int8": 0.02, "engine": 0.02}
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
    onnx = os.path.isfile(c.path(bucket.ONNX))
    if not formats_here(c, fmt) and not (fmt == "engine" and onnx):
        there = ", ".join(sorted(n for n in os.listdir(models) if n.startswith(name + ".")))
        raise UserError(f"no {f'{pilots.shown(fmt)} ' if fmt else ''}model {name} in "
                        f"{models}" + (f" (only {there})" if there else "")
                        + ": copy it there, or download it with download_models.sh")
    c.card = read_card(c)
    verify(c)
    judge(c, accept_poor)
    cfg = load_car_config(car_dir)
    trained = c.card.get("config") if c.card and isinstance(c.card.get("config"), dict) \
        else {}
    compare_config(c, trained, cfg)
    model_type = model_type_of(c, cfg)
    compare_donkeycar(c, model_type)
    if onnx and fmt in (None, "engine"):
        engine(c)                           # NAME.engine where TensorRT is, or why not
    ran = {f: run_format(c, f, model_type, cfg) for f in formats_here(c, fmt)}
    ran = {f: r for f, r in ran.items() if r}
    for f, r in ran.items():
        report(c, f, r, cfg)
    chosen = fastest(ran)
    if chosen is None:
        say(f"car check: nothing of {name} could run here, so it was not added to "
            "DonkeyCar's model list")
        return ran
    lags(c, chosen, ran, cfg)
    drive_type = modeltypes.drive_type(model_type, chosen)
    register(c, drive_type, chosen, cfg)
    say(drive_line(c, chosen, ran, drive_type, car_dir))
    return ran


def formats_here(c, fmt=None):
    """{format: suffix} of the files of the model here (FMT: only that one)."""
    return {f: s for f, s in bucket.CAR_FORMATS.items()
            if os.path.isfile(c.path(s)) and (fmt is None or f == fmt)}


def engine(c):
    """NAME.engine built from NAME.onnx where TensorRT is (again when the
    .onnx is newer), or one line saying why not."""
    missing = runtimes.tensorrt_missing()
    if missing:
        c.say(f"car check: no TensorRT {bucket.ENGINE} built: {missing}")
        return
    onnx, target = c.path(bucket.ONNX), c.path(bucket.ENGINE)
    if os.path.isfile(target) and os.path.getmtime(target) >= os.path.getmtime(onnx):
        c.say(f"car check: {target} is newer than the .onnx: not built again")
        return
    c.say(f"car check: building {target} from the .onnx with TensorRT (minutes on a "
          "Jetson; once)")
    with console.filtered():
        built = runtimes.build_engine(onnx, target)
    c.say(f"car check: built {target} with TensorRT {built['tensorrt']} "
          f"({'FP16' if built['fp16'] else 'FP32: this GPU has no fast FP16'}) in "
          f"{built['seconds']:.0f} s")


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
               "model: drive it with the command below, which gives manage.py its type")
    return model_type


def compare_donkeycar(c, model_type):
    """The card's DonkeyCar against the car's, by content (donkeysource.py):
    the same, said; else a warning naming both and what it risks; a model
    type the car's DonkeyCar does not have ends the check (it cannot load)."""
    trained = ((c.card or {}).get("versions") or {}).get("donkeycar_source")
    car = donkeysource.here()
    if not isinstance(trained, dict) or not trained.get("content") or car is None:
        return                      # a card from before the field, or no DonkeyCar
    if trained["content"] == car["content"]:
        c.say(f"car check: the car's DonkeyCar is the one that trained {c.name}: "
              f"{donkeysource.describe(car)}")
        return
    types = modeltypes.known() or []
    if types and modeltypes.base(model_type) not in types:
        raise UserError(f"{c.name} is a {model_type} model, a type the car's "
                        f"{donkeysource.describe(car)} does not have: it was trained with "
                        f"{donkeysource.describe(trained)}; install that DonkeyCar on the "
                        "car (docs/donkeycar-source.md), or train a type the car has; "
                        f"{c.kept}")
    c.warn(f"the car's DonkeyCar differs from the one that trained {c.name}: the car has "
           f"{donkeysource.describe(car)}, the model was trained with "
           f"{donkeysource.describe(trained)}; a {model_type} model may be built, fed or "
           "read differently here (its layers, image processing, outputs): the check below "
           "runs it through the car's own pilot on the training job's frames, drive it only "
           "if they agree; to be sure, train with the car's DonkeyCar "
           "(docs/donkeycar-source.md)")


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


def job_outputs(c, fmt, keras):
    """What the training job's FMT file gave on the shipped frames (a variant
    it published ships its own), else KERAS, the .h5's."""
    if keras is None or fmt not in ("fp16", "int8"):
        return keras
    import numpy as np
    path, key = c.path(bucket.FRAMES), f"outputs_{fmt}"
    try:
        with np.load(path, allow_pickle=False) as data:     # not trusted: no pickles
            found = np.asarray(data[key], dtype=float) if key in data.files else keras
    except (OSError, ValueError) as e:
        raise UserError(f"{path} is not a frames file ({type(e).__name__}): copy it "
                        f"again; {c.kept}") from None
    if np.shape(found) != np.shape(keras):
        raise UserError(f"{path} holds {np.shape(found)} outputs of the "
                        f"{pilots.shown(fmt)} for {np.shape(keras)} of the .h5: copy it "
                        f"again; {c.kept}")
    return found


def run_format(c, fmt, model_type, cfg):
    """{"latency_ms", "frames", "max_diff", "steering_diff" (None without
    frames), "runtime", "agrees"} of the FMT file through the car's pilot;
    None when this car cannot run FMT."""
    missing = runtimes.tensorrt_missing() if fmt == "engine" else \
        pilots.runtime_missing(fmt)
    if missing:
        c.say(f"car check: the {bucket.CAR_FORMATS[fmt]} was not run: {missing}")
        return None
    import numpy as np
    images, keras = frames_of(c, cfg)
    expected = job_outputs(c, fmt, keras)
    path = c.path(bucket.CAR_FORMATS[fmt])
    with console.filtered():        # TFLite's XNNPACK notice and the like, from C++
        try:
            pilot = pilots.load_pilot(fmt, model_type, cfg, path, interpreter=(
                runtimes.engine_interpreter() if fmt == "engine" else
                pilots.onnx_interpreter(runtimes.onnx_providers(c.models))
                if fmt == "onnx" else None))
            pilots.run_pilot(pilot, images[:1])                   # warm-up
            got, latency = pilots.run_pilot(pilot, images)
        except Exception as e:   # DonkeyCar or the runtime refusing the model, in its words
            said = f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
            if fmt == "engine":      # the car's own build, not the model: the rest drives
                c.say(f"car check: the {bucket.ENGINE} was not run: {said}")
                return None
            trained = ((c.card or {}).get("versions") or {}).get("donkeycar_generation", "?")
            raise UserError(f"the car's DonkeyCar {donkey.generation()} cannot run {path} "
                            f"as a {model_type} model ({said}); it was trained with "
                            f"DonkeyCar {trained}: train it for DonkeyCar "
                            f"{donkey.generation()}; {c.kept}") from None
    found = {"latency_ms": latency * 1000, "frames": len(images), "max_diff": None,
             "steering_diff": None, "runtime": pilots.runtime_name(fmt, pilot),
             "agrees": True}
    if expected is not None:
        diff = np.abs(got - np.asarray(expected)[:, :2])
        found["max_diff"] = float(diff.max())
        found["steering_diff"] = float(np.abs(got - np.asarray(keras)[:, :2])[:, 0].max())
        bound = BOUNDS.get(fmt, BOUND)
        found["agrees"] = found["max_diff"] <= bound
        if not found["agrees"] and fmt in BOUNDS:      # reduced precision: not recommended
            c.warn(f"on the {len(images)} frames shipped with it, {path} differs from the "
                   f"training job's outputs by {found['max_diff']:.2g} (> {bound:g}): it is "
                   "not recommended")
        elif not found["agrees"]:
            raise UserError(f"on the {len(images)} frames shipped with it, {path} gives "
                            f"other outputs here than in training (by {found['max_diff']:.2g}"
                            f" > {bound:g}): do not drive it; check that DonkeyCar "
                            f"{donkey.generation()} here matches the card's; {c.kept}")
    return found


def _budget(cfg):
    hz = getattr(cfg, "DRIVE_LOOP_HZ", 20) or 20
    return hz, 1000.0 / hz


def report(c, fmt, result, cfg):
    hz, budget = _budget(cfg)
    within = f", within its {BOUNDS[fmt]:g}" if fmt in BOUNDS else ""
    agrees = (f"agrees with the training job on {result['frames']} frames (max "
              f"difference {result['max_diff']:.1e}{within})" if result["agrees"]
              and result["max_diff"] is not None else
              f"differs from the training job's outputs by {result['max_diff']:.1e}"
              if result["max_diff"] is not None else "loads")
    c.say(f"car check: the {bucket.CAR_FORMATS[fmt]} ({result['runtime']}) {agrees}; "
          f"median {result['latency_ms']:.1f} ms a frame of the {budget:.0f} ms a loop at "
          f"DRIVE_LOOP_HZ={hz}")


def lags(c, chosen, ran, cfg):
    """A warning when even the fastest format takes longer than a loop."""
    hz, budget = _budget(cfg)
    took = ran[chosen]["latency_ms"]
    if took > budget:
        c.warn(f"the {pilots.shown(chosen)}, the fastest here, takes {took:.0f} ms a frame, "
               f"more than the {budget:.0f} ms a loop of DRIVE_LOOP_HZ={hz}: the car will "
               "lag; lower DRIVE_LOOP_HZ in myconfig.py")


def fastest(ran):
    """The fastest format that ran and agrees with the training job: the one
    to drive (each agreed within its bound, so any of them drives as trained)."""
    agreeing = {f: r for f, r in ran.items() if r["agrees"]}
    return min(agreeing, key=lambda f: agreeing[f]["latency_ms"]) if agreeing else None


def drive_line(c, chosen, ran, drive_type, car_dir):
    """'the fastest here that agrees: int8 .tflite (ai_edge_litert), 0.4 ms a
    frame (float .tflite: 1.3 ms), steering within 0.003 of the Keras model;
    drive it: COMMAND'. DonkeyCar's manage.py drives the .h5 and every
    .tflite, drive.sh the .onnx and the .engine."""
    r = ran[chosen]
    model = os.path.relpath(c.path(bucket.CAR_FORMATS[chosen]), car_dir)
    if modeltypes.DRIVE_PREFIXES[chosen] in modeltypes.LAUNCHED:
        named = os.path.normpath(os.path.relpath(c.models, car_dir)) == bucket.LOCAL_MODELS
        command = f"./drive.sh -m {c.name} --format {chosen}" if named else \
            f"./drive.sh -m {model}"
    else:
        command = f"python manage.py drive --model {model} --type {drive_type}"
    base = next((f for f in ("tflite", "h5") if f in ran and f != chosen), None)
    against = f" ({pilots.shown(base)}: {ran[base]['latency_ms']:.1f} ms)" if base else ""
    steering = (f"steering within {r['steering_diff']:.2g} of the Keras model"
                if r["steering_diff"] is not None else "not compared with the Keras model "
                "(no frames came with it)")
    return (f"the fastest here that agrees: {pilots.shown(chosen)} ({r['runtime']}), "
            f"{r['latency_ms']:.1f} ms a frame{against}, {steering}; drive it: {command}")


def register(c, drive_type, fmt, cfg):
    """NAME in the car's models/database.json, so that `donkey models` lists
    it, with the format to drive (drive.sh's default); only when MODELS is
    the car's MODELS_PATH."""
    models = getattr(cfg, "MODELS_PATH", None)
    if not models or not os.path.isdir(models) or not os.path.samefile(models, c.models):
        c.say(f"car check: {c.models} is not the car's MODELS_PATH ({models}), so "
              f"{c.name} was not added to DonkeyCar's model list")
        return None
    card = c.card or {}
    entry = modeldb.register(cfg, {
        "Name": c.name,
        "Type": drive_type,
        "Format": fmt,
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
