"""The car's configuration, loaded the way DonkeyCar loads it.

    cfg = load_car_config(car_dir, overrides=["MAX_EPOCHS=3"])

DonkeyCar's load_config reads config.py then myconfig.py over it; --set
KEY=VALUE overrides go on top through Config.from_dict. No third mechanism.
"""
import ast
import os

from trainer.donkey import donkeycar  # noqa: F401
from donkeycar.config import load_config  # noqa: E402

from trainer.errors import UserError


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
    try:
        cfg = load_config(path, myconfig="myconfig.py")
    except Exception as e:  # the user's Python: any error is theirs to fix
        raise UserError(f"{path} or myconfig.py fails to load ({type(e).__name__}: "
                        f"{e}); fix it and run again") from None
    values = parse_overrides(overrides)
    if values:
        cfg.from_dict(values, list(values))
    return cfg


def effective(cfg):
    """The config's upper-case settings as JSON-friendly values (for the card)."""
    out = {}
    for key, value in sorted(vars(cfg).items()):
        if not key.isupper():
            continue
        if isinstance(value, (str, int, float, bool, type(None))):
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
