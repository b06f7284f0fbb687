"""What the tests share besides fixtures (tests/conftest.py): the toolkit's
folder, the scripts, a script's environment, a car folder copied from the
session's `donkey createcar` one, tubs written by DonkeyCar's own Tub, the
real tub from ../shared, hand-made archives, and the one-line-error check.

    from helpers import ROOT, one_line_error, script_env, write_synth_tub
"""
import json
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_TUB = os.path.join(ROOT, "..", "shared", "data", "tubs", "track-5015")
SCRIPTS = sorted(f for f in os.listdir(ROOT) if f.endswith(".sh"))
# Tests train for one short epoch: enough to prove the pipeline, fast in CI.
TEST_CONFIG = "\n# tests: short runs\nMAX_EPOCHS = 1\nBATCH_SIZE = 32\n"


def script_env(**extra):
    # A developer's own W&B settings would send test runs to their project.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["TRAINER_PYTHON"] = sys.executable
    env.pop("TRAINER_PROG", None)
    env.update(extra)
    return env


def wandb_env(tmp, **extra):
    """A script's environment with W&B offline, project p, everything it
    writes under TMP (nothing in HOME)."""
    dirs = {name: str(tmp / name.lower()) for name in
            ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")}
    for path in dirs.values():
        os.makedirs(path, exist_ok=True)
    return script_env(WANDB_MODE="offline", WANDB_PROJECT="p", **dirs, **extra)


def car_from_template(template, path):
    """PATH as a copy of the createcar folder TEMPLATE (conftest.py's
    car_template), the scripts symlinked in as a user links them."""
    shutil.copytree(template, path, symlinks=True)
    for s in SCRIPTS:
        os.symlink(os.path.join(ROOT, s), os.path.join(path, s))
    return path


def write_synth_tub(path, records=200, deleted=0, size="160x120"):
    from synthtub import write_tub
    w, h = map(int, size.split("x"))
    return write_tub(str(path), records=records, deleted=deleted, width=w, height=h)


def write_v1_tub(path, records=200):
    """A Tub v1 (DonkeyCar 3) written by DonkeyCar's own legacy writer."""
    import numpy as np
    from donkeycar.parts.datastore import TubWriter
    from synthtub import frame
    rng = np.random.default_rng(1)
    w = TubWriter(str(path), inputs=["cam/image_array", "user/angle", "user/throttle",
                                     "user/mode"],
                  types=["image_array", "float", "float", "str"])
    for i in range(records):
        angle = float(np.sin(i / 15.0))
        w.run(frame(angle, 160, 120, rng), angle, 0.5, "user")
    return path


def save_model(path, width=160, height=120):
    """A real DonkeyCar linear model (untrained) taking WIDTHxHEIGHT frames."""
    from donkeycar.config import Config
    from donkeycar.utils import get_model_by_type
    cfg = Config()
    cfg.IMAGE_W, cfg.IMAGE_H, cfg.IMAGE_DEPTH = width, height, 3
    get_model_by_type("linear", cfg).interpreter.model.save(str(path))
    return path


def frames(path):
    """(fps, [frames]) of a movie file."""
    import imageio.v2 as iio
    reader = iio.get_reader(str(path))
    return reader.get_meta_data()["fps"], [f for f in reader]


def tar_bytes(entries):
    """A gzip tar of ENTRIES: (TarInfo attributes, bytes or None), for
    archives no honest tool would write (links, devices, '..')."""
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for attrs, data in entries:
            attrs = dict(attrs)
            info = tarfile.TarInfo(attrs.pop("name"))
            for key, value in attrs.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def write_legacy_archive(path, car, tub):
    """An archive in the original robocar-gcp-trainer layout: the tub's files
    at the root beside config.py and myconfig.py."""
    import tarfile
    with tarfile.open(path, "w:gz") as tar:
        tar.add(car / "config.py", "config.py")
        tar.add(car / "myconfig.py", "myconfig.py")
        for p in sorted(tub.rglob("*")):
            if p.is_file():
                tar.add(p, str(p.relative_to(tub)))
    return path


def copy_real_tub(dest, records=1000):
    """The first RECORDS records of ../shared's real tub (whole catalogs of
    1000), copied into DEST, with a manifest that says so. Read-only source."""
    if not os.path.isdir(SHARED_TUB):
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED_TUB} is missing: CI must run the real-tub tests")
        pytest.skip("../shared/data/tubs/track-5015 is not beside this clone "
                    "(it comes with the team's shared folder)")
    catalogs = max(1, records // 1000)
    os.makedirs(os.path.join(dest, "images"))
    with open(os.path.join(SHARED_TUB, "manifest.json")) as f:
        lines = f.read().splitlines()
    meta = json.loads(lines[4])
    meta["paths"] = meta["paths"][:catalogs]
    meta["current_index"] = min(meta["current_index"], catalogs * 1000)
    lines[4] = json.dumps(meta)
    with open(os.path.join(dest, "manifest.json"), "w") as f:
        f.write("\n".join(lines) + "\n")
    for name in meta["paths"]:
        for suffix in ("", "_manifest"):
            shutil.copy(os.path.join(SHARED_TUB, name + suffix), dest)
    for i in range(meta["current_index"]):
        name = f"{i}_cam_image_array_.jpg"
        shutil.copy(os.path.join(SHARED_TUB, "images", name),
                    os.path.join(dest, "images", name))
    for junk in (".DS_Store", "._.DS_Store"):     # the real tub's macOS junk comes along
        shutil.copy(os.path.join(SHARED_TUB, junk), dest)
    return dest


def one_line_error(result):
    """The last stderr line of a failed run, after checking there is no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines, "expected a message on stderr"
    return lines[-1]
