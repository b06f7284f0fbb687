"""Which DonkeyCar (issue 26), the fast part: DONKEYCAR_SOURCE read as pip
reads it, the lock derived for it, DonkeyCar known by its content (PyPI's
release is stock wherever it was installed from), the fork image's tag, the
stock `make install` and `make image` left as they were, and the car's
check comparing the card's DonkeyCar with the car's. The fork itself, its
venv, image and trainings are tests/test_fork.py (e2e)."""
import json
import os
import re
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, one_line_error
from trained import NAME, copy_model

from trainer.core import donkeysource, generations
from trainer.core.errors import UserError

GIT = "git+https://github.com/team/donkeycar@race"
VERSION = donkeysource.here()["version"]
STOCK = f"DonkeyCar {VERSION} from PyPI, content {donkeysource.here()['content'][:12]}"


@pytest.mark.parametrize("spec,wanted", [
    ("5.3.0", "donkeycar==5.3.0"),
    ("v5.3.0", "donkeycar==5.3.0"),
    ("5.3", "donkeycar==5.3.*"),
    ("donkeycar==5.3.1", "donkeycar==5.3.1"),
    (GIT, f"donkeycar @ {GIT}"),
    (f"donkeycar @ {GIT}", f"donkeycar @ {GIT}"),
    (f"donkeycar[pc]@{GIT}", f"donkeycar @ {GIT}"),
])
def test_a_source_is_the_requirement_pip_installs(spec, wanted):
    assert donkeysource.requirement(spec) == wanted


def test_a_checkout_folder_is_a_file_url_and_anything_else_is_one_line(tmp_path):
    checkout = tmp_path / "my donkeycar"
    (checkout / "donkeycar").mkdir(parents=True)
    (checkout / "donkeycar" / "__init__.py").write_text("__version__ = '5.3.0'\n")
    (checkout / "setup.py").write_text("")
    assert donkeysource.requirement(str(checkout)) == \
        f"donkeycar @ {checkout.as_uri()}"           # the space quoted: %20
    with pytest.raises(UserError, match=r"^DONKEYCAR_SOURCE=/nowhere: not a DonkeyCar "
                       r"version \(5\.3\.0\), a pip requirement \(donkeycar @ git\+https"):
        donkeysource.requirement("/nowhere")
    with pytest.raises(UserError, match=f"{tmp_path} is not a DonkeyCar checkout"):
        donkeysource.requirement(str(tmp_path))
    with pytest.raises(UserError, match="installs opencv, not donkeycar"):
        donkeysource.requirement("opencv @ git+https://x/y", given="--donkeycar-source")


def test_the_derived_lock_keeps_every_pin_but_donkeycars():
    text = (Path(ROOT) / "locks" / "dk5.3.txt").read_text()
    derived = donkeysource.derive_lock(text, f"donkeycar @ {GIT}", GIT, "locks/dk5.3.txt")
    pins = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    kept = [ln for ln in derived.splitlines() if ln and not ln.startswith("#")]
    assert [p for p in pins if not p.startswith("donkeycar==")] == kept
    assert len(kept) == len(pins) - 1
    assert derived.splitlines()[:2] == [
        f"# locks/dk5.3.txt with DonkeyCar from {GIT} in place of PyPI's (derived by "
        "trainer/core/donkeysource.py); pip is given it beside this file:",
        f"# donkeycar @ {GIT}"]


def test_pypis_donkeycar_here_is_the_release_and_no_fork():
    found = donkeysource.here()
    assert found["source"] == "PyPI"
    assert found["content"] == donkeysource.RELEASES[found["version"]]
    assert found["release"] == found["version"]
    assert not donkeysource.is_fork(found)
    assert generations.local_fork(generations.local()) is None
    assert donkeysource.describe(found) == \
        f"DonkeyCar {found['version']} from PyPI, content {found['content'][:12]}"


def test_the_content_is_the_python_files_and_nothing_else(tmp_path):
    """A copy of the installed package hashes alike with compiled files and
    data beside it (a checkout has both), and as a wheel; one changed line
    makes another DonkeyCar."""
    here = Path(donkeysource.package_dir())
    copy = tmp_path / "donkeycar"
    shutil.copytree(here, copy, ignore=shutil.ignore_patterns("__pycache__"))
    release = donkeysource.RELEASES[donkeysource.here()["version"]]
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "utils.cpython-311.pyc").write_bytes(b"compiled")
    (copy / "notes.md").write_text("a checkout's own file")
    (copy / ".git").mkdir()
    (copy / ".git" / "hook.py").write_text("not DonkeyCar")
    assert donkeysource.content(copy) == release
    wheel = tmp_path / "donkeycar-5.3.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path in copy.rglob("*"):
            if path.is_file():
                z.write(path, "donkeycar/" + path.relative_to(copy).as_posix())
        z.writestr("donkeycar-5.3.0.dist-info/METADATA", "Name: donkeycar\n")
    assert donkeysource.wheel_content(wheel) == release
    with open(copy / "parts" / "keras.py", "a") as f:
        f.write("# the team's tweak\n")
    assert donkeysource.content(copy) != release


@pytest.mark.parametrize("direct_url,found", [
    (None, {"source": "PyPI"}),
    ('{"url": "https://github.com/team/donkeycar", "vcs_info": {"vcs": "git", '
     '"commit_id": "1a2b3c4d5e6f7a8b", "requested_revision": "race"}}',
     {"source": "git", "url": "https://github.com/team/donkeycar",
      "commit": "1a2b3c4d5e6f7a8b", "ref": "race"}),
    ('{"url": "file:///home/pi/projects/donkeycar", "dir_info": {"editable": true}}',
     {"source": "folder", "url": "file:///home/pi/projects/donkeycar", "editable": True}),
    ("not json", {"source": "unknown"}),
])
def test_where_it_came_from_is_what_pip_recorded(direct_url, found):
    assert donkeysource.origin(direct_url) == found


def test_a_forks_image_is_tagged_with_its_content():
    content = "9f2c4a1b0e3d" + "0" * 52
    assert generations.tag("5.3") == "dk5.3"
    assert generations.tag("5.3", content) == "dk5.3-9f2c4a1b0e3d"
    assert generations.image_for("r/p/trainer:latest", "5.3", fork=content) == \
        "r/p/trainer:dk5.3-9f2c4a1b0e3d"
    # a job sent from here (stock DonkeyCar) runs in the stock image
    assert generations.job_image("r/p/trainer", "5.3") == "r/p/trainer:dk5.3"


def make_n(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    r = subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_make_install_and_image_without_a_source_are_as_they_were(tmp_path):
    venv, python = tmp_path / "v", sys._base_executable
    lock = f"locks/dk{generations.for_python(platform.python_version())}.txt"
    assert make_n("install", f"VENV={venv}", f"PYTHON={python}") == [
        f"{python} -m venv {venv}",
        f"{venv}/bin/python -m pip install --quiet --disable-pip-version-check "
        f"-c {lock} -e '.[train,test,wandb,report]'",
        f"touch {venv}/.installed"]
    assert make_n("image") == ["bash lib/local_image.sh -d 5.3"]
    # with one: the derived lock, and the source beside it
    lines = make_n("install", f"VENV={venv}", f"PYTHON={python}",
                   f"DONKEYCAR_SOURCE=donkeycar @ {GIT}")
    assert lines[1] == (f"PYTHONPATH=. {python} -m trainer.core.donkeysource lock "
                        f"'donkeycar @ {GIT}' {lock} > {venv}/donkeycar-lock.txt")
    assert lines[2].endswith(f"-c {venv}/donkeycar-lock.txt -e '.[train,test,wandb,report]' "
                             f"\"$(PYTHONPATH=. {python} -m trainer.core.donkeysource "
                             f"requirement 'donkeycar @ {GIT}')\"")
    assert make_n("image", "DONKEYCAR_SOURCE=~/dk") == ["bash lib/local_image.sh -d 5.3 "
                                                        "-s '~/dk'"]


# -- the car's check: the card's DonkeyCar against the car's ---------------------------

@pytest.fixture
def copied(car, trained):
    """The trained model's files in the car's models/, its card's DonkeyCar
    replaceable: card(**donkeycar_source) rewrites it."""
    copy_model(trained, car)
    path = car / "models" / f"{NAME}.json"

    def card(model_type=None, **source):
        data = json.loads(path.read_text())
        data["versions"]["donkeycar_source"].update(source)
        if model_type:
            data["model_type"] = model_type
        path.write_text(json.dumps(data))
        return data
    return card


def test_the_card_names_the_donkeycar_that_trained(copied):
    assert copied()["versions"]["donkeycar_source"] == donkeysource.here()


def test_a_git_checkout_of_the_release_is_the_same_donkeycar(copied, run):
    """Same content, another origin: no warning."""
    copied(source="git", url="https://github.com/autorope/donkeycar", commit="0" * 40,
           ref="5.3.0", release=None)
    r = run("check_model.sh")
    assert r.returncode == 0, r.stderr
    assert "car check: the car's DonkeyCar is the one that trained pilot-wip: " \
        f"{STOCK}" in r.stdout
    assert "differs" not in r.stdout + r.stderr


def test_another_donkeycar_is_a_warning_and_the_pilot_decides(copied, run):
    copied(source="git", url="https://github.com/team/donkeycar", commit="1a2b3c4d5e6f7a8b",
           ref="race", content="9f2c4a1b0e3d" + "0" * 52, release=None)
    r = run("check_model.sh")
    assert r.returncode == 0, r.stderr
    assert ("check_model.sh: warning: the car's DonkeyCar differs from the one that trained "
            f"pilot-wip: the car has {STOCK}, the model was trained with DonkeyCar "
            f"{VERSION} from git https://github.com/team/donkeycar@race (commit 1a2b3c4d5e6f), "
            "content 9f2c4a1b0e3d; a linear model may be built") in r.stderr
    assert "agrees with the training job" in r.stdout       # its own pilot ran it
    assert re.search(r"drive it: python manage\.py drive --model models/pilot-wip\.\S+ "
                     r"--type \S*linear$", r.stdout.rstrip()), r.stdout


def test_a_type_only_the_trainers_donkeycar_has_ends_the_check(copied, run, car):
    copied(model_type="race", source="git", url="https://github.com/team/donkeycar",
           commit="1a2b3c4d5e6f7a8b", content="9f2c4a1b0e3d" + "0" * 52, release=None)
    r = run("check_model.sh")
    assert r.returncode == 1
    assert one_line_error(r) == (
        f"check_model.sh: pilot-wip is a race model, a type the car's {STOCK} does not have: "
        f"it was trained with DonkeyCar {VERSION} from git https://github.com/team/donkeycar "
        "(commit 1a2b3c4d5e6f), content 9f2c4a1b0e3d; "
        "install that DonkeyCar on the car (docs/donkeycar-source.md), or train a type the "
        "car has; the files stay in models")
    assert (car / "models" / f"{NAME}.tflite").exists()
