"""The car's configuration, loaded the way DonkeyCar loads it.

    cfg = load_car_config(car_dir, overrides=["MAX_EPOCHS=3"])

DonkeyCar's load_config reads config.py then myconfig.py over it; --set
KEY=VALUE overrides go on top through Config.from_dict. No third mechanism.
"""
import ast
import difflib
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
