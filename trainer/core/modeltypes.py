"""DonkeyCar's model types, decided here and nowhere else.

    known()                      # ['3d', 'behavior', 'categorical', ...] of the DonkeyCar here
    check("linera", "--type")    # UserError: ... did you mean linear?
    trainable("tflite_linear")   # ('linear', 'the config's ... trains linear ...')
    drive_type("linear", "tflite")   # 'tflite_linear', what manage.py drive takes
    drive_type("linear", "onnx")     # 'onnx_linear': drive.sh's launcher adds it

The list comes from the installed DonkeyCar's own get_model_by_type
(donkeycar/utils.py), read as source, not imported: it costs milliseconds
and no TensorFlow, works on a car without TensorFlow, and a fork's own
types (an `elif used_model_type == "mine"` branch) are in it too.

A car's config may name a type that runs on the car but is not trained as
such: `tflite_linear` drives a .tflite converted from a `linear` model,
`tensorrt_linear` a TensorRT one. Training takes the Keras type under the
prefix, as `donkey train` does, and exports the .tflite anyway.
"""
import ast
import difflib
import importlib.util
import os

from trainer.core.errors import UserError

# Prefixes of types that run a converted model: the Keras type trains.
RUNTIME_PREFIXES = ("tflite_", "tensorrt_")
# The --type prefix of each format on the car: DonkeyCar's TfLite pilot runs
# every .tflite; onnx_ and engine_ types exist only inside drive.sh, whose
# launcher (car/launcher.py) teaches DonkeyCar's get_model_by_type them.
DRIVE_PREFIXES = {"h5": "", "tflite": "tflite_", "fp16": "tflite_", "int8": "tflite_",
                  "onnx": "onnx_", "engine": "engine_"}
LAUNCHED = ("onnx_", "engine_")
# fastai_ types train with PyTorch, which the toolkit does not install.
UNSUPPORTED_PREFIXES = ("fastai_",)
# Types that learn from more than the camera and the user's driving: the
# record keys DonkeyCar's parts/keras.py reads for them (KerasBehavioral,
# KerasLocalizer, KerasIMU). A tub recorded without them cannot train them.
NEEDS = {
    "behavior": ("behavior/one_hot_state_array",),
    "localizer": ("localizer/location",),
    "imu": tuple(f"imu/{f}_{x}" for f in ("acl", "gyr") for x in "xyz"),
}
_cache = {}


def _source():
    """donkeycar/utils.py of the DonkeyCar this Python would import, or None."""
    spec = importlib.util.find_spec("donkeycar")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "utils.py")
    return path if os.path.isfile(path) else None


def known():
    """The base model types the installed DonkeyCar's get_model_by_type
    builds ('linear', 'categorical', ...); None without DonkeyCar here."""
    path = _source()
    if path is None:
        return None
    if path not in _cache:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        found = set()
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef) and func.name == "get_model_by_type":
                for node in ast.walk(func):
                    if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) \
                            and node.left.id == "used_model_type":
                        found |= {c.value for c in node.comparators
                                  if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        _cache[path] = sorted(found)
    return _cache[path]


def base(model_type):
    """MODEL_TYPE without a runtime prefix: tflite_linear -> linear."""
    for prefix in RUNTIME_PREFIXES + LAUNCHED:
        if model_type.startswith(prefix):
            return model_type[len(prefix):]
    return model_type


def check(model_type, flag="--type"):
    """MODEL_TYPE when the DonkeyCar here knows it (with a tflite_ or
    tensorrt_ prefix too), else one line naming the closest; unchecked
    where DonkeyCar is not installed (the job checks it there)."""
    types = known()
    if model_type.startswith(UNSUPPORTED_PREFIXES):
        raise UserError(f"{flag} {model_type}: fastai (PyTorch) models are not trained "
                        "by this toolkit: give a Keras type such as "
                        f"{_example(types)}")
    if types is None or base(model_type) in types:
        return model_type
    close = difflib.get_close_matches(base(model_type), types, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UserError(f"{flag} {model_type}: DonkeyCar knows no such model type: "
                    f"{hint}use one of {', '.join(types)}")


def _example(types):
    return "linear" if not types or "linear" in types else types[0]


def trainable(model_type, where="the config's DEFAULT_MODEL_TYPE"):
    """(the type to train, a note or None): a car's tflite_X / tensorrt_X
    trains X, said in one line, as `donkey train` does."""
    check(model_type, "--type" if where.startswith("--type") else where)
    keras = base(model_type)
    if keras == model_type:
        return model_type, None
    return keras, (f"{where} is {model_type}, which runs a converted model on the car: "
                   f"training its Keras type {keras} (the .tflite is exported as always)")


def drive_type(model_type, fmt):
    """The --type manage.py drive takes for a MODEL_TYPE model in FMT (run by
    drive.sh for the onnx_ and engine_ types)."""
    return DRIVE_PREFIXES[fmt] + base(model_type)


def check_inputs(model_type, keys, tub):
    """One line when the records of TUB (their KEYS) lack what a MODEL_TYPE
    model learns from, before DonkeyCar's training fails on it mid-epoch."""
    missing = [k for k in NEEDS.get(base(model_type), ()) if k not in keys]
    if missing:
        raise UserError(f"a {base(model_type)} model learns from {', '.join(missing)}, "
                        f"which the records of {tub} do not have: record them on the car "
                        "(docs/training.md, model types), or train --type linear")


def judged_by_camera_alone(model_type):
    """False for types whose outputs need recorded inputs the verdict and the
    car check do not feed (they run them with zeros there)."""
    return base(model_type) not in NEEDS
