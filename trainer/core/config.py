"""The car's configuration, loaded the way DonkeyCar loads it.

    cfg = load_car_config(car_dir, overrides=["MAX_EPOCHS=3"])

DonkeyCar's load_config reads config.py then myconfig.py over it; --set
KEY=VALUE overrides go on top through Config.from_dict. No third mechanism.
"""
import ast
import difflib
import math
import os
import re

from trainer.core import donkey
from trainer.core.errors import UserError

# What the code reads before handing the config to DonkeyCar: a config.py
# without them is not a car's (donkey createcar writes them all).
REQUIRED = ("IMAGE_W", "IMAGE_H", "IMAGE_DEPTH", "DEFAULT_MODEL_TYPE")
# The settings that shape a model: what DonkeyCar's training pipeline, its
# model constructors (utils.get_model_by_type, parts/keras.py) and its image
# transformations read, and what this toolkit reads. The card and the W&B
# run get these only; a car's pins, ports, hosts and passwords stay home.
TRAINING_KEYS = frozenset((
    "DEFAULT_MODEL_TYPE", "BATCH_SIZE", "TRAIN_TEST_SPLIT", "MAX_EPOCHS",
    "SHOW_PLOT", "VERBOSE_TRAIN", "USE_EARLY_STOP", "EARLY_STOP_PATIENCE",
    "MIN_DELTA", "PRINT_MODEL_SUMMARY", "OPTIMIZER", "LEARNING_RATE",
    "LEARNING_RATE_DECAY", "CACHE_IMAGES", "CACHE_POLICY", "CREATE_TF_LITE",
    "CREATE_TENSOR_RT", "SAVE_MODEL_AS_H5", "FREEZE_LAYERS",
    "NUM_LAST_LAYERS_TO_TRAIN", "TRAIN_FILTER", "TRAIN_BEHAVIORS",
    "TRAIN_LOCALIZER", "MODEL_CATEGORICAL_MAX_THROTTLE_RANGE", "SEQUENCE_LENGTH",
    "MEM_DEPTH", "NUM_LOCATIONS", "BEHAVIOR_LIST", "DRIVE_LOOP_HZ",
    "TRANSFORMATIONS", "POST_TRANSFORMATIONS", "AUGMENTATIONS", "HAVE_IMU",
    "IMU_SENSOR", "HAVE_ODOM", "USE_SPEED_FOR_MODEL",
))
TRAINING_PREFIXES = ("IMAGE_", "ROI_", "AUG_", "PRUNE_", "BLUR", "CANNY_", "RESIZE_",
                     "SCALE_", "CROP", "TRAPEZE_", "BEHAVIOR_", "TRANSFER_")
# A key naming a secret: any of these words in it (PASSWORD in MQTT_PASSWORD,
# SECRET in AWS_SECRET_ACCESS_KEY), or KEY/AUTH/PASS/PWD as a whole word
# between underscores (API_KEY, PI_PASSWD, but not MONKEY or KEYBOARD_LAYOUT).
SECRET_WORDS = re.compile(r"PASSW|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|PRIVATE|APIKEY|"
                          r"ACCESSKEY|COOKIE")
SECRET_PARTS = {"KEY", "KEYS", "AUTH", "PASS", "PWD", "PASSWD", "CREDS", "SSH",
                "CERT", "SALT", "SIGNATURE", "DSN"}
REDACTED = "<redacted>"


def parse_overrides(pairs):
    """['A=1', 'B=foo'] -> {'A': 1, 'B': 'foo'}; values are Python literals
    where they parse as one, else strings."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier() or not key.isupper():
            raise UserError(f"--set {pair}: expected KEY=VALUE with an upper-case "
                            "config key, e.g. --set MAX_EPOCHS=10")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def load_car_config(car_dir, overrides=None):
    path = os.path.join(car_dir, "config.py")
    if not os.path.isfile(path):
        raise UserError(f"no config.py in {os.path.abspath(car_dir)}: run this from "
                        "your car folder (made by 'donkey createcar'), e.g. "
                        "cd ~/mycar")
    donkey.quiet()
    from donkeycar.config import load_config
    try:
        cfg = load_config(path, myconfig="myconfig.py")
    except Exception as e:  # the user's Python: any error is theirs to fix
        raise UserError(f"{path} or myconfig.py fails to load ({type(e).__name__}: "
                        f"{e}); fix it and run again") from None
    values = parse_overrides(overrides)
    for key in values:
        check_key(cfg, key)
    if values:
        cfg.from_dict(values, list(values))
    missing = [k for k in REQUIRED if not hasattr(cfg, k)]
    if missing:
        raise UserError(f"{path} sets no {', '.join(missing)}: it is not a car's "
                        "config.py; make the car folder with 'donkey createcar' and "
                        f"set {missing[0]} in myconfig.py")
    return cfg


def check_key(cfg, key):
    """-c KEY=VALUE sets a key the config has (or DonkeyCar reads for
    training, TRAINING_KEYS): a typo would otherwise be ignored in silence."""
    if hasattr(cfg, key) or key in TRAINING_KEYS:
        return
    known = sorted({k for k in vars(cfg) if k.isupper()} | TRAINING_KEYS)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UserError(f"-c {key}: the config has no {key} (a typo is ignored by DonkeyCar "
                    f"in silence): {hint}see config.py for the keys")


def is_secret_key(key):
    """KEY's name suggests a secret (MQTT_PASSWORD, AWS_SECRET_ACCESS_KEY, PI_PASSWD)."""
    key = key.upper()
    return bool(SECRET_WORDS.search(key)) or bool(SECRET_PARTS & set(key.split("_")))


def redact_overrides(pairs):
    """--set KEY=VALUE pairs as the card and W&B may show them: the value of a
    secret-looking KEY replaced by REDACTED."""
    out = []
    for pair in pairs or []:
        key, sep, _ = pair.partition("=")
        out.append(f"{key}={REDACTED}" if sep and is_secret_key(key) else pair)
    return out


def is_training_key(key):
    return key in TRAINING_KEYS or key.startswith(TRAINING_PREFIXES)


def effective(cfg):
    """The config's training settings (TRAINING_KEYS, TRAINING_PREFIXES) as
    JSON-friendly values, for the card and the W&B run; a key whose name
    suggests a secret has its value REDACTED."""
    out = {}
    for key, value in sorted(vars(cfg).items()):
        if not key.isupper() or not is_training_key(key):
            continue
        if is_secret_key(key):
            out[key] = REDACTED
        elif isinstance(value, (str, int, float, bool, type(None))):
            out[key] = value
        elif isinstance(value, (list, tuple, dict)):
            out[key] = _plain(value)
        else:
            out[key] = repr(value)
    return out


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return repr(value)


# -- the values training reads, checked before it starts ------------------------------
# {KEY: (check(value) -> bool, what a good value is, an example)}. DonkeyCar and
# Keras take these as they are and fail deep inside (a Keras traceback for
# BATCH_SIZE = 0, a silent no-op for MAX_EPOCHS = -1).

def _whole(low, high=None):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low \
        and (high is None or v <= high)


def _real(low, high=None, low_open=False, high_open=False, none=False):
    def ok(v):
        if v is None:
            return none
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        above = v > low if low_open else v >= low
        below = high is None or (v < high if high_open else v <= high)
        return above and below
    return ok


def _names(v):
    return isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)


VALUES = {
    "IMAGE_W": (_whole(1, 4096), "a whole number of pixels from 1 to 4096", 160),
    "IMAGE_H": (_whole(1, 4096), "a whole number of pixels from 1 to 4096", 120),
    "IMAGE_DEPTH": (lambda v: v in (1, 3) and not isinstance(v, bool),
                    "1 (gray) or 3 (colour)", 3),
    "BATCH_SIZE": (_whole(1), "a whole number of 1 or more", 128),
    "MAX_EPOCHS": (_whole(1), "a whole number of 1 or more", 100),
    "TRAIN_TEST_SPLIT": (_real(0, 1, low_open=True, high_open=True),
                         "a fraction between 0 and 1 (the share that trains)", 0.8),
    "LEARNING_RATE": (_real(0, low_open=True, none=True), "a number above 0, or None",
                      0.001),
    "LEARNING_RATE_DECAY": (_real(0), "a number of 0 or more", 0.0),
    "EARLY_STOP_PATIENCE": (_whole(0), "a whole number of 0 or more", 5),
    "MIN_DELTA": (_real(0), "a number of 0 or more", 0.0005),
    "SEQUENCE_LENGTH": (_whole(1), "a whole number of 1 or more", 3),
    "NUM_LAST_LAYERS_TO_TRAIN": (_whole(0), "a whole number of 0 or more", 7),
    "DRIVE_LOOP_HZ": (_real(0, 1000, low_open=True), "a number of loops a second "
                      "above 0", 20),
    "ROI_CROP_TOP": (_whole(0), "a whole number of pixels, 0 or more", 0),
    "ROI_CROP_BOTTOM": (_whole(0), "a whole number of pixels, 0 or more", 0),
    "ROI_CROP_LEFT": (_whole(0), "a whole number of pixels, 0 or more", 0),
    "ROI_CROP_RIGHT": (_whole(0), "a whole number of pixels, 0 or more", 0),
    "TRANSFORMATIONS": (_names, "a list of transformation names", []),
    "POST_TRANSFORMATIONS": (_names, "a list of transformation names", []),
    "AUGMENTATIONS": (_names, "a list of augmentation names", []),
}
MOVIE_KEYS = ("IMAGE_W", "IMAGE_H", "IMAGE_DEPTH", "DRIVE_LOOP_HZ", "ROI_CROP_TOP",
              "ROI_CROP_BOTTOM", "ROI_CROP_LEFT", "ROI_CROP_RIGHT", "TRANSFORMATIONS",
              "POST_TRANSFORMATIONS")


def check_values(cfg, overrides=None, car_dir=None, keys=None):
    """One UserError for the first value of KEYS (default: all of VALUES)
    that training cannot use, naming the key, where it was set (-c, or
    myconfig.py / config.py in CAR_DIR), and a good value. Crops are also
    checked against the frame when a CROP transformation uses them."""
    given = parse_overrides(overrides)
    for key in keys or VALUES:
        if not hasattr(cfg, key):
            continue
        ok, good, example = VALUES[key]
        value = getattr(cfg, key)
        if not ok(value):
            raise UserError(f"{_origin(key, value, given, car_dir)}: {key} must be "
                            f"{good}: set e.g. {key} = {example!r} in myconfig.py"
                            + (f", or -c {key}={example!r}" if key in given else ""))
    _check_crop(cfg, given, car_dir)


def check_overrides(overrides, flag="-c"):
    """-c KEY=VALUE values alone (or a sweep's, FLAG --sweep), before anything
    is read (flags.settle_train)."""
    given = parse_overrides(overrides)
    for key, value in given.items():
        if key in VALUES and not VALUES[key][0](value):
            ok, good, example = VALUES[key]
            raise UserError(f"{flag} {key}={_shown(value)}: {key} must be {good}, e.g. "
                            f"{flag} {key}={example!r}")


def _check_crop(cfg, given, car_dir):
    used = [str(t).upper() for key in ("TRANSFORMATIONS", "POST_TRANSFORMATIONS")
            for t in (getattr(cfg, key, None) or [])]
    if "CROP" not in used:
        return
    w, h = getattr(cfg, "IMAGE_W", 0), getattr(cfg, "IMAGE_H", 0)
    crop = {k: getattr(cfg, k, 0) for k in ("ROI_CROP_TOP", "ROI_CROP_BOTTOM",
                                             "ROI_CROP_LEFT", "ROI_CROP_RIGHT")}
    for a, b, size, side in (("ROI_CROP_TOP", "ROI_CROP_BOTTOM", h, "IMAGE_H"),
                             ("ROI_CROP_LEFT", "ROI_CROP_RIGHT", w, "IMAGE_W")):
        if crop[a] + crop[b] >= size:
            raise UserError(f"{_origin(a, crop[a], given, car_dir)}: {a} + {b} "
                            f"({crop[a]} + {crop[b]}) leave nothing of the {size} pixels "
                            f"of {side} for CROP: crop less, e.g. {a} = {size // 3}")


def _origin(key, value, given, car_dir):
    """Where KEY = VALUE came from: '-c KEY=V', 'myconfig.py sets KEY = V', ..."""
    if key in given:
        return f"-c {key}={_shown(value)}"
    for name in ("myconfig.py", "config.py"):
        path = os.path.join(car_dir or ".", name)
        if car_dir is not None and _assigns(path, key):
            return f"{name} sets {key} = {_shown(value)}"
    return f"{key} = {_shown(value)}"


def _assigns(path, key):
    """PATH assigns KEY at its top level (read, never run)."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, ValueError, SyntaxError):
        return False
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        if any(isinstance(t, ast.Name) and t.id == key for t in targets):
            return True
    return False


def _shown(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
