"""A sweep: several trainings of one archive that differ in the model type
and in a few config values, each a normal run with its own card, named and
grouped by one sweep id.

    runs = expand("linear,categorical", ["LEARNING_RATE=0.001,0.0005"])
    # [Run(1, 'linear', ['LEARNING_RATE=0.001'], ...), ... 4 runs]
    sweep = new_id()                      # 'sw20250612-120501'
    run.name("pilot-wip", sweep)          # 'pilot-wip-sw20250612-120501-linear-lr0.001'

`--type A,B,C` and `--sweep KEY=V1,V2` (repeatable, scalars only: a
list-valued key such as AUGMENTATIONS stays a single -c value) multiply
into one run per combination. submit_cloud_sweep.sh sends them as Vertex
AI jobs (trainer/client/sweep.py), local_train.sh runs them one after the
other (trainer/job/sweep.py); both end with the comparison
(trainer/job/compare.py). The id travels to each run in TRAINER_SWEEP
(settings.sweep_id): the card and the W&B group carry it, the bucket
layout does not change.
"""
import ast
import datetime
import importlib.util
import itertools
import os
import re
from dataclasses import dataclass, field

from trainer.core import modeltypes
from trainer.core.config import check_overrides, parse_overrides
from trainer.core.errors import UserError
from trainer.core.names import MAX_LENGTH, is_plain

# A sweep is money: more runs than this is more likely a typo than a plan.
MAX_RUNS = 32
PREFIX = "sw"
ID = re.compile(rf"^{PREFIX}\d{{8}}-\d{{6}}$")
# Short forms of common keys in run names (the card has the full key).
SHORT = {"LEARNING_RATE": "lr", "MAX_EPOCHS": "ep", "BATCH_SIZE": "bs",
         "TRAIN_TEST_SPLIT": "split", "SEQUENCE_LENGTH": "seq"}


@dataclass
class Run:
    """One training of the sweep: its --type (None: the config's) and -c values."""
    index: int                  # 1, 2, ...
    model_type: str = None
    values: dict = field(default_factory=dict)    # {KEY: value text} swept

    def overrides(self):
        return [f"{k}={v}" for k, v in self.values.items()]

    def label(self):
        """'categorical LEARNING_RATE=0.0005': what sets it apart."""
        return " ".join(([self.model_type] if self.model_type else []) + self.overrides())

    def name(self, base, sweep):
        """BASE-SWEEP-TYPE-KEYVALUE...: a plain name, else BASE-SWEEP-INDEX."""
        parts = [base, sweep] + ([self.model_type] if self.model_type else [])
        parts += [SHORT.get(k, k.lower()) + v for k, v in self.values.items()]
        name = "-".join(parts)
        return name if is_plain(name) else f"{base}-{sweep}-{self.index}"


def new_id(when=None):
    """sw + the UTC time to the second: sw20250612-120501."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    return PREFIX + when.strftime("%Y%m%d-%H%M%S")


def is_sweep(args):
    """True when the training flags ARGS ask for more than one run."""
    return bool(getattr(args, "sweep", None)) or "," in (args.type or "")


def expand(types, sweep_pairs, fixed=()):
    """The runs of --type TYPES ('a,b' or None) times each --sweep KEY=V1,V2
    of SWEEP_PAIRS; FIXED are the -c pairs, which a swept key may not be
    among. Refused in one line: unknown types, types a plain tub cannot
    train, non-scalar values, fewer than 2 or more than MAX_RUNS runs."""
    kinds = _types(types)
    swept = _swept(sweep_pairs, parse_overrides(fixed))
    combos = list(itertools.product(kinds, *swept.values()))
    if len(combos) < 2:
        raise UserError("a sweep needs at least two runs (--type A,B or --sweep "
                        "KEY=V1,V2): for one run, use local_train.sh or "
                        "submit_cloud_train.sh with -c KEY=VALUE")
    if len(combos) > MAX_RUNS:
        raise UserError(f"this sweep makes {len(combos)} runs, more than {MAX_RUNS}: "
                        "sweep fewer values at once")
    return [Run(i, combo[0], dict(zip(swept, combo[1:])))
            for i, combo in enumerate(combos, start=1)]


def _types(text):
    if text is None:
        return [None]
    kinds = [t.strip() for t in text.split(",")]
    if any(not t for t in kinds):
        raise UserError(f"--type {text}: an empty type in the list: write --type "
                        "linear,categorical")
    if len(set(kinds)) < len(kinds):
        raise UserError(f"--type {text}: a type is listed twice")
    for kind in kinds:
        modeltypes.check(kind)
        needs = modeltypes.NEEDS.get(modeltypes.base(kind))
        if needs:   # the verdict, and so the ranking, feeds it the camera alone
            base = modeltypes.base(kind)
            raise UserError(f"--type {kind}: {'an' if base[0] in 'aeiou' else 'a'} {base} "
                            "model learns from "
                            f"{', '.join(needs[:2])}{'...' if len(needs) > 2 else ''}, "
                            "which a plain tub lacks and the comparison cannot feed it: "
                            "leave it out of the sweep, or train it alone with "
                            "local_train.sh --type")
    return kinds


def _swept(pairs, fixed):
    """{KEY: [value texts]} of the --sweep pairs."""
    swept = {}
    for pair in pairs or []:
        key, sep, values = pair.partition("=")
        if not sep or not key.isidentifier() or not key.isupper():
            raise UserError(f"--sweep {pair}: expected KEY=V1,V2 with an upper-case "
                            "config key, e.g. --sweep LEARNING_RATE=0.001,0.0005")
        if key in swept or key in fixed:
            raise UserError(f"--sweep {pair}: {key} is given twice (in another --sweep "
                            "or as -c): give each key once")
        texts = [v.strip() for v in values.split(",")]
        for text in texts:
            _scalar(key, text)
            check_overrides([f"{key}={text}"], flag="--sweep")   # a value training refuses
        if len(set(texts)) < len(texts):
            raise UserError(f"--sweep {pair}: a value is listed twice")
        swept[key] = texts
    return swept


def _scalar(key, text):
    """TEXT as a config value a run name can carry: a number, True/False/None
    or a plain word; a list or dict is -c's, never a sweep's."""
    if text.startswith(("[", "(", "{")):
        raise UserError(f"--sweep {key}={text}: sweep values are single values (numbers, "
                        "words): a list-valued key such as AUGMENTATIONS takes one -c "
                        "KEY=[...] for the whole sweep")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if len(text) > MAX_LENGTH // 4 or not (number or (
            isinstance(value, (str, bool, type(None))) and is_plain(text))):
        raise UserError(f"--sweep {key}={text!s:.40}: each value must be a number or a "
                        "plain word (letters, digits, '.', '_', '-'), e.g. "
                        f"--sweep {key}=0.001,0.0005")
    return value


def unread(keys):
    """The KEYS no module of the installed DonkeyCar names, its config
    templates and tests aside: its training never reads them, so runs that
    differ only in one train the same model (DonkeyCar 5.3: LEARNING_RATE,
    OPTIMIZER). Empty where DonkeyCar is not installed (a car's light
    install: the image's DonkeyCar is the one that counts, unknown here)."""
    spec = importlib.util.find_spec("donkeycar")
    if spec is None or not spec.submodule_search_locations or not keys:
        return []
    root = list(spec.submodule_search_locations)[0]
    left = set(keys)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("templates", "tests", "__pycache__")]
        for name in files:
            if name.endswith(".py") and left:
                with open(os.path.join(folder, name), encoding="utf-8",
                          errors="replace") as f:
                    text = f.read()
                left = {k for k in left if not re.search(rf"\b{k}\b", text)}
    return sorted(left)


def unread_warnings(runs):
    """A warning for each swept key the DonkeyCar here never reads (unread)."""
    return [f"--sweep {key}: the DonkeyCar installed here never reads {key} in training "
            f"(only its config templates name it): runs that differ only in {key} train "
            "the same model" for key in unread(list(runs[0].values))]


def others(done):
    """'the other run is' / 'the 5 others are', of DONE runs that finished."""
    return "the other run is" if len(done) == 1 else f"the {len(done)} others are"


def check_id(value, where="TRAINER_SWEEP"):
    """A sweep id as new_id() makes it, or one line."""
    if not ID.match(value or ""):
        raise UserError(f"{where}={value!s:.40} is not a sweep id (such as "
                        f"{new_id()}): unset it; submit_cloud_sweep.sh and "
                        "local_train.sh --sweep set it for their runs")
    return value
