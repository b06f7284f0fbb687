"""Training with the DonkeyCar the car runs (issue 26), end to end: DonkeyCar's
own source distribution from the package index, with a model type of its
own added as a team's fork would (tests/forked.py: `race`, its own layers
and head), installed with the toolkit by `make install DONKEYCAR_SOURCE=`
into a venv of its own, trained with local_train.sh, built into its image
with `make image DONKEYCAR_SOURCE=` and trained in that image by
submit_cloud_train.sh through the Vertex stand-in; both cards name the
fork; download_models.sh on a car with PyPI's DonkeyCar says it differs;
build_image.sh --donkeycar-source gives Cloud Build the fork's context.

The fork, its venv and its image are made once per session. Heavy: e2e,
about 9 minutes on 2 cores (the venv about 4, with the pip cache warm;
the image about 1 when the stock image is current).
"""
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from discovery_schema import check
from forked import make_fork
from helpers import ROOT, one_line_error, script_env, write_synth_tub
from vertex_standin import Containers

from trainer.core import donkeysource
from trainer.core.cloud import discovery_document

pytestmark = pytest.mark.e2e

BUCKET_MODELS = "gs://robocar-test/models"


def timed(what, command, **kwargs):
    """subprocess.run, its time printed (pytest -s shows it)."""
    t = time.time()
    r = subprocess.run(command, capture_output=True, text=True, **kwargs)
    print(f"{what}: {time.time() - t:.0f} s")
    return r


@pytest.fixture(scope="session")
def images():
    """What builds and runs the images here (podman, or a docker engine)."""
    found = Containers.find()
    assert found, "neither a docker engine nor podman is here: install podman"
    return found


@pytest.fixture(scope="session")
def fork_src(tmp_path_factory):
    """(the locked release unpacked, as a checkout of it is; the fork; its content)."""
    checkout, fork = make_fork(tmp_path_factory.mktemp("donkeycar"))
    return checkout, fork, donkeysource.content(fork / "donkeycar")


@pytest.fixture(scope="session")
def fork_python(tmp_path_factory, fork_src):
    """The toolkit installed with the fork, by make install, in a venv of its own."""
    venv = tmp_path_factory.mktemp("fork-venv") / "venv"
    r = timed("make install DONKEYCAR_SOURCE (the fork's venv)",
              ["make", "install", f"DONKEYCAR_SOURCE={fork_src[1]}", f"VENV={venv}",
               f"PYTHON={sys._base_executable}"], cwd=ROOT, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return venv / "bin" / "python"


@pytest.fixture(scope="session")
def fork_image(fork_src, images):
    """make image DONKEYCAR_SOURCE=fork: the stock image, then the fork's on it."""
    r = timed("make image DONKEYCAR_SOURCE (the stock image, then the fork's)",
              ["make", "image", f"DONKEYCAR_SOURCE={fork_src[1]}"], cwd=ROOT,
              env=images.env(), timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    tag = f"robocar-trainer:dk5.3-{fork_src[2][:12]}"
    assert re.search(rf"^local_image\.sh: built {re.escape(tag)} \(your DonkeyCar on "
                     r"robocar-trainer:dk5\.3\) with \w+ in (\d+) s$", r.stdout, re.M), r.stdout
    layers = subprocess.run([images.tool, "history", "--format", "{{.Size}}", tag],
                            env=images.env(), capture_output=True, text=True, timeout=120)
    print(f"{tag}: its own layers {layers.stdout.split()[:4]}")
    return tag


@pytest.fixture(scope="session")
def raced(tmp_path_factory, car_template, fork_python, fork_src):
    """A car folder (300 synthetic records, archived) and a `race` model
    trained there by local_train.sh with the fork: (car, models, stdout)."""
    car = tmp_path_factory.mktemp("race-car") / "mycar"
    shutil.copytree(car_template, car, symlinks=True)
    for script in ("make_tub_archive.sh", "local_train.sh", "check_model.sh"):
        (car / script).symlink_to(f"{ROOT}/{script}")
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=300)
    r = subprocess.run(["./make_tub_archive.sh"], cwd=car, env=script_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = timed("local_train.sh --type race (the fork)",
              ["./local_train.sh", "--type", "race", "-c", "MAX_EPOCHS=4"], cwd=car,
              env=script_env(TRAINER_PYTHON=str(fork_python)), timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return car, car / "models", r.stdout


def card_of(path):
    return json.loads(path.read_text())


def names_the_fork(card, fork_src):
    _, fork, content = fork_src
    source = card["versions"]["donkeycar_source"]
    assert source == {"version": "5.3.0", "source": "folder", "url": fork.as_uri(),
                      "editable": False, "content": content, "release": None}, source


def test_the_forks_venv_is_the_lock_with_the_fork_in_place(fork_python, fork_src):
    checkout, fork, content = fork_src
    # a checkout of the release itself is PyPI's DonkeyCar: no fork
    assert donkeysource.content(checkout / "donkeycar") == donkeysource.RELEASES["5.3.0"]
    assert content != donkeysource.RELEASES["5.3.0"]
    frozen = subprocess.run([str(fork_python), "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, timeout=300).stdout.split("\n")
    lock = (ROOT + "/locks/dk5.3.txt")
    pins = [ln for ln in open(lock).read().splitlines() if ln and not ln.startswith("#")]
    assert sorted(ln for ln in frozen if ln and not ln.startswith("#")) == sorted(
        [p for p in pins if not p.startswith("donkeycar==")]
        + [f"donkeycar @ {fork.as_uri()}"])
    r = subprocess.run([str(fork_python), "-c", "from trainer.core import donkeysource, "
                        "modeltypes; print(donkeysource.describe(donkeysource.here())); "
                        "print(*modeltypes.known())"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    described, types = r.stdout.splitlines()
    assert described == f"DonkeyCar 5.3.0 from the folder {fork}, content {content[:12]}"
    assert {"race", "squash", "linear"} <= set(types.split())


def test_a_forks_own_type_trains_exports_and_is_judged_here(raced, fork_src, fork_python):
    car, models, out = raced
    card = card_of(models / "pilot-wip.json")
    assert card["model_type"] == "race"
    names_the_fork(card, fork_src)
    assert max(card["parity"].values()) <= 1e-3            # .tflite and .onnx = .h5
    assert card["verdict"]["better"] is True, out
    assert "to drive it: python manage.py drive --model models/pilot-wip.tflite --type " \
        "tflite_race" in out
    # on a car running the fork, the check runs it like a stock type
    r = subprocess.run(["./check_model.sh"], cwd=car, capture_output=True, text=True,
                       env=script_env(TRAINER_PYTHON=str(fork_python)), timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "car check: the car's DonkeyCar is the one that trained pilot-wip: DonkeyCar " \
        f"5.3.0 from the folder {fork_src[1]}" in r.stdout
    ran = re.findall(r"^car check: the \.(\w+) \(\w+\) agrees with the training job on 8 "
                     r"frames", r.stdout, re.M)
    assert sorted(ran) == ["h5", "onnx", "tflite"], r.stdout
    # DonkeyCar's list and the drive line give the fork's type with the format
    # that was fastest here (the .onnx or the .tflite, by this machine's speed)
    [listed] = [e for e in json.loads((car / "models" / "database.json").read_text())
                if e["Name"] == "pilot-wip"]
    fmt = listed["Format"]
    assert listed["Type"] == {"onnx": "onnx_race", "tflite": "tflite_race"}[fmt], listed
    command = "./drive.sh -m pilot-wip --format onnx" if fmt == "onnx" else \
        "python manage.py drive --model models/pilot-wip.tflite --type tflite_race"
    assert r.stdout.rstrip().endswith(f"drive it: {command}"), r.stdout[-500:]
    assert "pilot-wip is a race model: drive it with the command below" in r.stderr


def test_a_forks_type_its_exports_cannot_handle_is_named_with_why(raced, fork_src,
                                                                  fork_python):
    car, _, _ = raced
    r = subprocess.run(["./local_train.sh", "--type", "squash", "-m", "pilot-squash",
                        "-c", "MAX_EPOCHS=1"], cwd=car, capture_output=True, text=True,
                       env=script_env(TRAINER_PYTHON=str(fork_python)), timeout=1800)
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith("local_train.sh: the squash model trained, but DonkeyCar's "
                           ".tflite converter failed on it (ValueError: Unknown layer: "
                           "'Squash'"), line
    assert f"DonkeyCar 5.3.0 from the folder {fork_src[1]}, content {fork_src[2][:12]} " \
        "builds it with a layer or an operation the exports cannot take: register its " \
        "layer classes (keras.utils.register_keras_serializable)" in line
    assert not (car / "models" / "pilot-squash.json").exists()


def test_the_forks_image_trains_its_type_in_the_cloud(tmp_path, raced, fork_src, fork_python,
                                                      fork_image, gcs, make_vertex, images):
    """submit_cloud_train.sh from the fork's venv picks the fork's tag; the
    stand-in runs the job in that image; the card it brings home names the
    fork, recorded in the image as pip would have."""
    car = tmp_path / "mycar"
    shutil.copytree(raced[0], car, symlinks=True, ignore=shutil.ignore_patterns("models"))
    (car / "submit_cloud_train.sh").symlink_to(f"{ROOT}/submit_cloud_train.sh")
    vertex = make_vertex(gcs, images=images)
    vertex.google.tags.add(fork_image.split(":")[1])    # build_image.sh pushed it
    r = timed("submit_cloud_train.sh --type race in the fork's image",
              ["./submit_cloud_train.sh", "-g", "none", "-w", "--type", "race"], cwd=car,
              env=dict(vertex.env, TRAINER_PYTHON=str(fork_python)), timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    [(_, _, body)] = [q for q in vertex.requests if q[1].endswith("/customJobs")]
    image = body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"]
    assert image.endswith(f"/trainer:{fork_image.split(':')[1]}")
    assert f"DonkeyCar 5.3 ({image})" in r.stdout
    card = card_of(car / "models" / "pilot-wip.json")
    assert card["model_type"] == "race" and max(card["parity"].values()) <= 1e-3
    names_the_fork(card, fork_src)


def test_a_car_with_pypis_donkeycar_says_it_differs(tmp_path, raced, fork_src, fork_python,
                                                    gcs, run, car):
    """download_models.sh on a stock car: a linear model the fork trained
    comes with a warning naming both DonkeyCars, and drives if the car's own
    pilot agrees; the fork's race model cannot load there, said in one line."""
    trained = raced[0]
    r = subprocess.run(["./local_train.sh", "--type", "linear", "-m", "pilot-lin",
                        "-c", "MAX_EPOCHS=4", "-o", f"{BUCKET_MODELS}"], cwd=trained,
                       capture_output=True, text=True, timeout=1800,
                       env=dict(gcs.env, TRAINER_PYTHON=str(fork_python)))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = run("download_models.sh", "-m", "pilot-lin", env=gcs.env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    fork, content = fork_src[1], fork_src[2]
    assert ("download_models.sh: warning: the car's DonkeyCar differs from the one that "
            "trained pilot-lin: the car has DonkeyCar 5.3.0 from PyPI, content "
            f"{donkeysource.RELEASES['5.3.0'][:12]}, the model was trained with DonkeyCar "
            f"5.3.0 from the folder {fork}, content {content[:12]}") in r.stderr
    assert "agrees with the training job" in r.stdout
    assert re.search(r"--type \S*linear$", r.stdout.rstrip()), r.stdout[-500:]

    for f in raced[1].glob("pilot-wip.*"):               # the race model, into the bucket
        gcs.bucket.blob(f"models/{f.name}").upload_from_filename(str(f))
    r = run("download_models.sh", "-m", "pilot-wip", env=gcs.env)
    assert r.returncode == 1
    assert one_line_error(r).startswith(
        "download_models.sh: pilot-wip is a race model, a type the car's DonkeyCar 5.3.0 "
        "from PyPI, content b1ec09994a79 does not have: it was trained with DonkeyCar 5.3.0 "
        f"from the folder {fork}, content {content[:12]}; install that DonkeyCar")
    assert (car / "models" / "pilot-wip.tflite").exists()     # downloaded, kept


def test_build_image_builds_the_forks_image_on_the_stock_one_with_cloud_build(fork_src, run):
    """build_image.sh --donkeycar-source: pip builds the wheel here; Cloud
    Build gets only that folder and a config it takes, tagged by content; a
    checkout of the release itself needs no image of its own."""
    checkout, fork, content = fork_src
    image = "europe-west1-docker.pkg.dev/my-project/robocar/trainer"
    r = run("build_image.sh", "-n", "-d", "5.3", "-i", image, "--donkeycar-source", fork,
            env=script_env(GOOGLE_CLOUD_PROJECT="proj-1"), timeout=900)
    assert r.returncode == 0, r.stderr
    command = shlex.split(r.stdout)
    staged = f"{ROOT}/build/image/donkeycar"
    assert command[:7] == ["gcloud", "builds", "submit", staged, "--config",
                           f"{staged}/cloudbuild.yaml", "--substitutions"]
    substitutions = dict(p.split("=", 1) for p in command[7].split(","))
    assert substitutions == {"_BASE": f"{image}:dk5.3", "_IMAGE": f"{image}:dk5.3-{content[:12]}",
                             "_CONTENT": content, "_DONKEYCAR": "5.3"}
    text = open(f"{staged}/cloudbuild.yaml").read()
    assert set(re.findall(r"\$\{(_[A-Z]+)\}", text)) == set(substitutions)
    for key, value in substitutions.items():
        text = text.replace("${%s}" % key, value)
    config = yaml.safe_load(text)
    assert check(discovery_document("cloudbuild", "v1"), "Build", config) == []
    assert config["images"] == [f"{image}:dk5.3-{content[:12]}"]
    wheel = [p.name for p in Path(staged, "donkeycar").glob("*.whl")]
    assert wheel == ["donkeycar-5.3.0-py3-none-any.whl"]
    assert donkeysource.wheel_content(Path(staged, "donkeycar", wheel[0])) == content
    assert Path(staged, "Dockerfile").read_text() == Path(ROOT, "Dockerfile.donkeycar").read_text()

    r = run("build_image.sh", "-n", "-d", "5.3", "-i", image, "--donkeycar-source", checkout,
            env=script_env(), timeout=900)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"{checkout} is DonkeyCar as PyPI released it: {image}:dk5.3 is its "
                        "image (build_image.sh -d 5.3)\n")
