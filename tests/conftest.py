"""Shared fixtures: a real car folder made by `donkey createcar` with the
scripts symlinked in, a helper that runs a script as a user would, tubs in
it, what the session trains once (tests/trained.py: `trained`, locally, and
`cloud_trained`, through the Vertex stand-in), and the runner of the
hardening rows (tests/hardening.py) with its stock inputs. Plain helpers
are in tests/helpers.py.

    def test_x(car, synth_tub, run):
        r = run("make_tub_archive.sh")
        assert r.returncode == 0, r.stderr
"""
import functools
import os
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT, TEST_CONFIG, car_from_template, copy_real_tub, script_env, write_synth_tub

# The GCS emulator and the Vertex stand-in fixtures, for every test module.
pytest_plugins = ["fixtures_gcs", "vertex_standin", "untrusted"]


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
    return car_from_template(car_template, tmp_path / "mycar")


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


@pytest.fixture
def synth_tub(car):
    """car/data as a 200-record synthetic tub."""
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data")
    return car / "data"


@pytest.fixture
def real_tub(car):
    """car/data holding the first 1000 records of the real track-5015 tub."""
    shutil.rmtree(car / "data")
    return copy_real_tub(str(car / "data"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory, car_template):
    """The session's one local training, for the tests that read what came
    out (tests/trained.py): .models, .car, .result, .run_dir, ..."""
    from trained import once, train
    return once(tmp_path_factory, "trained", lambda folder: train(folder, car_template))


@pytest.fixture(scope="session")
def cloud_trained(tmp_path_factory, car_template, gcs_emulator):
    """The session's one `submit_cloud_train.sh -g none -w` (tests/trained.py):
    .car, .result, .vertex, .bucket."""
    from fixtures_gcs import empty_bucket
    from trained import cloud_train, once
    return once(tmp_path_factory, "cloud", lambda folder: cloud_train(
        folder, car_template, empty_bucket(gcs_emulator)))


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
