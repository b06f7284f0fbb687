"""Shared fixtures: a real car folder made by `donkey createcar` with the
scripts symlinked in, tubs written by DonkeyCar's own Tub, the real tub from
../shared, a helper that runs a script as a user would, and the runner of
the hardening rows (tests/hardening.py) with its stock inputs.

    def test_x(car, synth_tub, run):
        r = run("make_tub_archive.sh")
        assert r.returncode == 0, r.stderr
"""
import functools
import json
import os
import shutil
import subprocess
import sys

import pytest

# The GCS emulator and the Vertex stand-in fixtures, for every test module.
pytest_plugins = ["fixtures_gcs", "vertex_standin", "untrusted"]

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


@pytest.fixture(scope="session")
def car_template(tmp_path_factory):
    """One `donkey createcar` per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "mycar"
    subprocess.run([sys.executable, "-m", "donkeycar.management.base", "createcar",
                    "--path", str(path)], check=True, capture_output=True)
    with open(path / "myconfig.py", "a") as f:
        f.write(TEST_CONFIG)
    return path


@pytest.fixture
def car(tmp_path, car_template):
    """A car folder made by `donkey createcar`, scripts symlinked in."""
    path = tmp_path / "mycar"
    shutil.copytree(car_template, path, symlinks=True)
    for s in SCRIPTS:
        os.symlink(os.path.join(ROOT, s), path / s)
    return path


@pytest.fixture
def run(car):
    """run(script, *args, cwd=car, env=None, timeout=...) -> CompletedProcess."""
    def _run(script, *args, cwd=None, env=None, timeout=900, input=None):
        cwd = cwd or car
        exe = os.path.join(cwd, script) if os.path.exists(os.path.join(cwd, script)) \
            else os.path.join(ROOT, script)
        return subprocess.run([exe, *map(str, args)], cwd=cwd, env=env or script_env(),
                              capture_output=True, text=True, timeout=timeout,
                              input=input)
    return _run


def write_synth_tub(path, records=200, deleted=0, size="160x120"):
    from trainer.synthtub import write_tub
    w, h = map(int, size.split("x"))
    return write_tub(str(path), records=records, deleted=deleted, width=w, height=h)


@pytest.fixture
def synth_tub(car):
    """car/data as a 200-record synthetic tub."""
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data")
    return car / "data"


def write_v1_tub(path, records=200):
    """A Tub v1 (DonkeyCar 3) written by DonkeyCar's own legacy writer."""
    import numpy as np
    from donkeycar.parts.datastore import TubWriter

    from trainer.synthtub import frame
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


@pytest.fixture
def real_tub(car):
    """car/data holding the first 1000 records of the real track-5015 tub."""
    shutil.rmtree(car / "data")
    return copy_real_tub(str(car / "data"))


def one_line_error(result):
    """The last stderr line of a failed run, after checking there is no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines, "expected a message on stderr"
    return lines[-1]


@pytest.fixture(scope="session")
def stock(tmp_path_factory, car_template):
    """The hardening rows' stock tubs, archives and model, each made once."""
    from hardening import Stock
    return Stock(tmp_path_factory.mktemp("stock"), car_template)


@pytest.fixture
def harden(car, tmp_path, stock, request):
    """harden(row): run one hardening row (tests/hardening.py) from CAR in this
    test's folder and check all it promises."""
    from hardening import run_row
    return functools.partial(run_row, car=car, tmp=tmp_path, stock=stock, request=request)


def pytest_report_header(config):
    import importlib.metadata as md
    import platform
    return (f"DonkeyCar {md.version('donkeycar')}, TensorFlow {md.version('tensorflow')}, "
            f"Python {platform.python_version()}")
