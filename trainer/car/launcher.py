"""drive.sh: the car's own `manage.py drive`, with the model in any format
the car can run, from the car folder.

    drive("pilot-wip", "models", "onnx")            # python manage.py drive, an .onnx pilot
    drive("pilot-wip", "models", "int8", ["--js"])  # manage.py's own options after --

DonkeyCar's manage.py loads a model by its extension only (.h5, .tflite,
...; for any other it prints "ERR>> Unknown extension type on model
file!!" and returns, exit 0) and builds the pilot with get_model_by_type,
which knows tflite_ and tensorrt_ (TF-TRT) types only. Without a line of
manage.py edited, the launcher runs it in this process, as `python
manage.py drive --model M --type T` would (runpy, the same arguments), with:

- DonkeyCar's get_model_by_type answering onnx_X and engine_X as well:
  DonkeyCar's own tflite_X pilot (no Keras graph) with the ONNX interpreter
  (onnxruntime, its TensorRT or CUDA provider where the car has one) or the
  TensorRT engine's (car/runtimes.py);
- such a model handed to manage.py as a link named NAME.onnx.tflite in a
  scratch folder, an extension every manage.py accepts; the interpreter
  reads what the link points to, and DonkeyCar's reload-on-change sees the
  real file through it;
- the pilot watched: its loading, each run and its time. A drive that
  never loaded the model, never ran the pilot (DonkeyCar refused it, or the
  car stayed in user mode) or whose pilot failed ends with exit 1 and why.

The .h5 and every .tflite go through the same path with DonkeyCar's own
interpreters, watched alike. Each drive's telemetry (inference and loop
times, the model's sha256: car/telemetry.py) goes into the tub DonkeyCar
writes, for drive_report.sh.
"""
import json
import os
import runpy
import shutil
import sys
import tempfile
import time

from trainer.car import runtimes, telemetry
from trainer.core import bucket, donkey, modeldb, modeltypes, pilots
from trainer.core.config import load_car_config
from trainer.core.errors import UserError

MANAGE = "manage.py"


class Watch:
    """What the drive loop did with the pilot."""

    def __init__(self):
        self.made, self.loaded, self.runtime = 0, False, None
        self.times, self.error = [], None

    def pilot(self, pilot, fmt):
        """PILOT with its load and run watched (DonkeyCar calls them by name)."""
        load, run = pilot.load, pilot.run
        self.made += 1

        def watched_load(path):
            try:
                load(path)
            except Exception as e:      # one line, not manage.py's traceback
                raise UserError(f"the car's DonkeyCar could not load the "
                                f"{pilots.shown(fmt)} ({type(e).__name__}: "
                                f"{' '.join(str(e).split())[:200]}): check it with "
                                "./check_model.sh") from None
            self.loaded, self.runtime = True, pilots.runtime_name(fmt, pilot)

        def watched_run(*args):
            start = time.perf_counter()
            try:
                return run(*args)
            except Exception as e:          # DonkeyCar's loop prints it and stops
                self.error = e
                raise
            finally:
                self.times.append(time.perf_counter() - start)

        pilot.load, pilot.run = watched_load, watched_run
        return pilot


def default_format(name, cfg):
    """The format check_model.sh found fastest for NAME on this car (its
    entry in models/database.json), or a UserError saying how to choose."""
    entry = next((e for e in modeldb.read(cfg) if e.get("Name") == name), {}) \
        if getattr(cfg, "MODELS_PATH", None) else {}
    fmt = entry.get("Format")
    if fmt not in bucket.CAR_FORMATS:
        raise UserError(f"which file of {name} to drive? ./check_model.sh -m {name} finds the "
                        "fastest that agrees here (drive.sh then takes it), or pass "
                        f"--format ({', '.join(bucket.CAR_FORMATS)})")
    return fmt


def model_type_of(path_of_card, cfg):
    """The card's model type, else the car's DEFAULT_MODEL_TYPE without its prefix."""
    try:
        with open(path_of_card, encoding="utf-8") as f:
            found = json.load(f).get("model_type")
    except (OSError, ValueError, AttributeError):
        found = None
    if isinstance(found, str) and found:          # the card is not trusted: a known type
        return modeltypes.base(modeltypes.check(found, f"{path_of_card}'s model_type"))
    return modeltypes.base(str(getattr(cfg, "DEFAULT_MODEL_TYPE", "linear")))


def drive(name, models, fmt=None, manage_args=(), say=print, car_dir="."):
    """Run the car's manage.py drive with model NAME (in MODELS) in format
    FMT (default: what check_model.sh recommended); MANAGE_ARGS go to it."""
    if not os.path.isfile(os.path.join(car_dir, MANAGE)):
        raise UserError(f"no {MANAGE} here: run drive.sh in the car folder (donkey createcar "
                        "made it)")
    donkey.as_manage_py()
    cfg = load_car_config(car_dir)
    fmt = fmt or default_format(name, cfg)
    path = os.path.join(models, name + bucket.CAR_FORMATS[fmt])
    if not os.path.isfile(path):
        hint = ("./check_model.sh builds it from the .onnx where TensorRT is"
                if fmt == "engine" else "download it with download_models.sh")
        raise UserError(f"no {path}: {hint}, or pass another --format")
    missing = runtimes.tensorrt_missing() if fmt == "engine" else pilots.runtime_missing(fmt)
    if missing:
        raise UserError(f"cannot drive the {pilots.shown(fmt)} here: {missing}")
    model_type = model_type_of(os.path.join(models, name + bucket.CARD), cfg)
    drive_type = modeltypes.drive_type(model_type, fmt)
    say(f"driving {path} ({pilots.shown(fmt)}) with the car's {MANAGE} drive --type "
        f"{drive_type}")
    watch = Watch()
    scratch = tempfile.mkdtemp(prefix="robocar-drive-")
    try:
        given = path
        if modeltypes.DRIVE_PREFIXES[fmt] in modeltypes.LAUNCHED:
            given = os.path.join(scratch, os.path.basename(path) + bucket.TFLITE)
            os.symlink(os.path.abspath(path), given)
        # The drive's telemetry (car/telemetry.py) goes into the tub DonkeyCar writes.
        with _taught(watch, fmt, model_type, drive_type, models), telemetry.recorded(
                path, fmt, lambda: {"runtime": watch.runtime}, say) as recorded:
            _run_manage(car_dir, ["drive", "--model", given, "--type", drive_type,
                                  *manage_args])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    conclude(watch, path, fmt, say)
    for part in recorded:
        tub = os.path.relpath(os.path.dirname(part.path), car_dir)
        say(f"telemetry of {part.loop} loops in {tub}: ./drive_report.sh -t {tub}")
    return watch


def conclude(watch, path, fmt, say=print):
    """One line of how the pilot did, or a UserError when it never drove."""
    if not watch.made:
        raise UserError(f"{MANAGE} drive built no pilot for {path}: is it DonkeyCar's own "
                        "(donkey createcar)?")
    if not watch.loaded:
        raise UserError(f"{MANAGE} drive did not load {path} (DonkeyCar's lines above say "
                        "why), so the pilot never drove")
    if watch.error is not None:
        e = watch.error
        raise UserError(f"the pilot ({pilots.shown(fmt)}, {watch.runtime}) failed in the "
                        f"drive loop ({type(e).__name__}: {' '.join(str(e).split())[:160]}): "
                        "check it with ./check_model.sh")
    if not watch.times:
        raise UserError("the drive loop ran, but never the pilot: DonkeyCar runs it only in "
                        "a pilot mode: choose one in the web controller, or set "
                        "WEB_INIT_MODE = 'local' in myconfig.py")
    times = sorted(watch.times)
    say(f"the pilot ({pilots.shown(fmt)}, {watch.runtime}) ran {len(times)} times in the "
        f"drive loop: median {times[len(times) // 2] * 1000:.1f} ms a frame")
    return watch


class _taught:
    """DonkeyCar's get_model_by_type, for the time of the drive, making
    DRIVE_TYPE's pilot watched (and for onnx_/engine_ types at all)."""

    def __init__(self, watch, fmt, model_type, drive_type, models):
        self.watch, self.fmt, self.drive_type, self.models = watch, fmt, drive_type, models
        self.native = modeltypes.drive_type(model_type, "tflite") \
            if modeltypes.DRIVE_PREFIXES[fmt] in modeltypes.LAUNCHED else drive_type

    def __enter__(self):
        pilots.runtime_missing(self.fmt)          # DonkeyCar's parts, started quietly
        import donkeycar.utils
        self.utils, self.original = donkeycar.utils, donkeycar.utils.get_model_by_type

        def get_model_by_type(model_type, cfg):
            if model_type != self.drive_type:     # another model of the car's (a detector)
                return self.original(model_type, cfg)
            pilot = self.original(self.native, cfg)
            interpreter = self.interpreter()
            if interpreter is not None:
                pilot.interpreter = interpreter
                interpreter.set_model(pilot)
            return self.watch.pilot(pilot, self.fmt)

        self.utils.get_model_by_type = get_model_by_type
        return self

    def interpreter(self):
        if self.fmt == "onnx":
            return pilots.onnx_interpreter(runtimes.onnx_providers(self.models))
        if self.fmt == "engine":
            return runtimes.engine_interpreter()
        return None

    def __exit__(self, *exc):
        self.utils.get_model_by_type = self.original


def _run_manage(car_dir, args):
    """The car's manage.py with ARGS, in this process, as `python manage.py
    ARGS` runs it (its folder first on sys.path)."""
    script = os.path.abspath(os.path.join(car_dir, MANAGE))
    saved = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:                      # docopt's usage, or the script's own exit
        if e.code not in (None, 0):
            raise UserError(f"{MANAGE} {' '.join(args[:1])} stopped ({e.code}): see its "
                            "lines above") from None
    except ModuleNotFoundError as e:             # a part of the car's (its camera, ...)
        raise UserError(f"the car's {MANAGE} needs the Python module {e.name}, which "
                        f"{sys.executable} lacks (a part its config asks for, such as "
                        "CAMERA_TYPE's): run drive.sh with the Python the car drives with "
                        "(export TRAINER_PYTHON=...)") from None
    finally:
        sys.argv, sys.path[:] = saved
