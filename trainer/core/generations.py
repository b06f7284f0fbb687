"""The DonkeyCar generations the toolkit trains for: which one is here, which
image a cloud job of each runs, and which one a model card names.

    generation = wanted(args.generation)     # -d, else the DonkeyCar here: '5.3', '5.4'
    image = image_for(settings.trainer_image(), generation)   # .../trainer:dk5.4
    job_image(settings.trainer_image(), "5.3")  # .../trainer:dk5.3-9f2c4a1b0e3d with a fork here
    card_generation("models/pilot-wip.json")  # '5.4', or None
    mismatch("models/pilot-wip.json")         # a warning when it is not the one here

The table is asked for by lib/local_image.sh and the Makefile too:

    python -m trainer.core.generations python 5.4     # 3.12: the image's Python
    python3.12 -m trainer.core.generations here       # 5.4: this Python's generation

A model loads on a car only under the DonkeyCar generation that trained it
(5.3: TensorFlow 2.15 / Keras 2; 5.4: TensorFlow 2.19 / Keras 3). The
Python picks the generation: setup.py's markers install DonkeyCar 5.3 on
Python 3.11 and 5.4 on 3.12, for `make install` and the image alike.

A team's own DonkeyCar (a fork, a branch, a checkout: donkeysource.py) gets
an image of its own, tagged with its content: dk5.3-9f2c4a1b0e3d, never
mistaken for the stock dk5.3. A cloud job sent from a machine running that
DonkeyCar runs in that image (job_image).
"""
import json
import os
import platform
import sys
from dataclasses import dataclass

from trainer.core import donkey, donkeysource
from trainer.core.errors import UserError, run_main


@dataclass(frozen=True)
class Generation:
    python: str         # the image's Python; setup.py's markers pick DonkeyCar by it
    tensorflow: str     # DonkeyCar's own pin, which the image's CUDA wheels follow


GENERATIONS = {
    "5.3": Generation(python="3.11", tensorflow="2.15.*"),
    "5.4": Generation(python="3.12", tensorflow="2.19.*"),
}
# The image of generation G is TRAINER_IMAGE tagged dkG (any tag it has is
# replaced): .../robocar/trainer -> .../robocar/trainer:dk5.3 and :dk5.4.
TAG_PREFIX = "dk"


def choices():
    return " or ".join(f"-d {g}" for g in GENERATIONS)


def local():
    """The generation of the DonkeyCar this Python imports, or None."""
    try:
        return donkey.generation()
    except ImportError:
        return None


def check(value):
    """VALUE as a known generation ('5.4', also 'v5.4', '5.4.0'), or one line."""
    text = (value or "").strip().lower().lstrip("v")
    generation = ".".join(text.split(".")[:2])
    if generation not in GENERATIONS:
        raise UserError(f"-d {value}: not a DonkeyCar generation the toolkit builds "
                        f"for: use {choices()}, the DonkeyCar your car runs (`donkey` "
                        "prints 'using donkey v5.x' there)")
    return generation


def wanted(value):
    """The generation asked for with -d, else this machine's DonkeyCar's."""
    if value:
        return check(value)
    here = local()
    if here is None:
        raise UserError(f"no DonkeyCar is installed here to take the generation from: "
                        f"pass {choices()}, the DonkeyCar your car runs")
    if here not in GENERATIONS:
        raise UserError(f"this machine has DonkeyCar {here}, a generation the toolkit "
                        f"has no image for: pass {choices()}")
    return here


def tag(generation, fork=None):
    """dk5.3, or dk5.3-9f2c4a1b0e3d for a DonkeyCar of content FORK."""
    return f"{TAG_PREFIX}{generation}" + (f"-{donkeysource.short(fork)}" if fork else "")


def local_fork(generation):
    """The content of the DonkeyCar here when it is of GENERATION and no
    PyPI release (a fork, a branch, a modified checkout), else None."""
    found = donkeysource.here()
    if found and donkeysource.is_fork(found) and \
            ".".join(str(found["version"]).split(".")[:2]) == generation:
        return found["content"]
    return None


def job_image(image, generation, given=None):
    """The image a cloud job of GENERATION runs: the fork's own when the
    DonkeyCar here is one (local_fork), else the stock one."""
    return image_for(image, generation, given, fork=local_fork(generation))


def image_for(image, generation, given=None, fork=None):
    """IMAGE with its tag set to dkGENERATION ('.../trainer:latest' and
    '.../trainer' both give '.../trainer:dk5.4' for 5.4), or to the tag of
    a fork of content FORK. GIVEN names where IMAGE came from in messages
    (default: TRAINER_IMAGE=IMAGE)."""
    given = given or f"TRAINER_IMAGE={image}"
    image = image.strip()
    if not image or any(c.isspace() for c in image) or image.startswith("-"):
        raise UserError(f"{given} is not an image: give one such as "
                        "europe-west1-docker.pkg.dev/my-project/robocar/trainer")
    head, slash, last = image.rpartition("/")
    if "@" in last:
        raise UserError(f"{given} names one image by its digest, so the "
                        "DonkeyCar generation cannot be chosen: give the repository "
                        f"path ({head}{slash}{last.split('@')[0].split(':')[0]}); the "
                        f"toolkit adds :{TAG_PREFIX}5.3 or :{TAG_PREFIX}5.4")
    return f"{head}{slash}{last.split(':')[0]}:{tag(generation, fork)}"


def card_generation(path):
    """The generation a model card (NAME.json) names, or None when the file is
    not a readable card or predates the field."""
    try:
        with open(path, encoding="utf-8") as f:
            versions = json.load(f).get("versions") or {}
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(versions, dict):
        return None
    named = versions.get("donkeycar_generation") or versions.get("donkeycar")
    if not isinstance(named, str) or named.count(".") < 1:
        return None
    return ".".join(named.split(".")[:2])


def mismatch(card):
    """A warning when the model card CARD names another generation than the
    DonkeyCar installed here; None when they agree or either is unknown."""
    here, model = local(), card_generation(card)
    if not here or not model or here == model:
        return None
    name = os.path.splitext(os.path.basename(card))[0]
    return (f"{name} was trained with DonkeyCar {model}, but this machine has DonkeyCar "
            f"{here}, which may fail to load it: train it for {here} with "
            f"submit_cloud_train.sh -d {here} (or local_train.sh here), or install "
            f"DonkeyCar {model} (pip install 'donkeycar[pi]=={model}.*' on the car)")


def for_python(version):
    """The generation setup.py's markers install on Python VERSION: 3.11 ->
    5.3, 3.12 and later -> 5.4; None before 3.11."""
    minor = tuple(int(x) for x in version.split(".")[:2])
    found = [g for g, gen in sorted(GENERATIONS.items())
             if tuple(int(x) for x in gen.python.split(".")) <= minor]
    return found[-1] if found else None


def main(argv=None):
    """`python G`: the Python of generation G; `here`: this Python's generation."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["python"] and len(argv) == 2:
        print(GENERATIONS[check(argv[1])].python)
    elif argv == ["here"]:
        found = for_python(platform.python_version())
        if not found:
            raise UserError(f"Python {platform.python_version()} installs no DonkeyCar "
                            f"generation the toolkit knows: use Python "
                            f"{' or '.join(g.python for g in GENERATIONS.values())}")
        print(found)
    else:
        raise UserError("usage: python -m trainer.core.generations python 5.3|5.4 | here")


if __name__ == "__main__":
    sys.exit(run_main(main))
