"""The car's light install: `pip install` of the toolkit without extras runs
the bucket and cloud scripts (upload, submit, download); with DonkeyCar's own
package beside it (no extras, no TensorFlow) the car archives too. Proved in
a real virtual environment holding only that, against the GCS emulator."""
import hashlib
import json
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from helpers import ROOT, one_line_error, write_synth_tub
from trained import NAME

from trainer.core.bucket import OUTPUTS

# Each builds a venv and pip-installs into it: make e2e.
pytestmark = pytest.mark.e2e

HEAVY = ("tensorflow", "keras", "tf_keras", "tf2onnx", "onnxruntime", "matplotlib",
         "moviepy", "isal", "wandb", "h5py")


def pip(python, *args):
    r = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    """A venv with `pip install` of the toolkit (no extras) and nothing else,
    at the versions the tests passed with where the lock names them."""
    home = tmp_path_factory.mktemp("light")
    venv.create(home / "venv", with_pip=True)
    python = home / "venv" / "bin" / "python"
    generation = "5.3" if sys.version_info[:2] == (3, 11) else "5.4"
    lock = Path(ROOT) / "locks" / f"dk{generation}.txt"
    pip(python, "install", "--quiet", *(["-c", str(lock)] if lock.exists() else []), ROOT)
    return python, lock


def installed(python):
    return {json_line["name"].lower()
            for json_line in json.loads(pip(python, "list", "--format", "json"))}


def test_the_light_install_has_no_training_packages(light):
    python, _ = light
    names = installed(python)
    assert {"google-cloud-storage", "google-api-python-client", "tqdm"} <= names
    assert not names & {h.replace("_", "-") for h in HEAVY} and "donkeycar" not in names


def light_env(light, gcs, **extra):
    python, _ = light
    return dict(gcs.env, TRAINER_PYTHON=str(python), **extra)


def test_upload_and_a_dry_run_submit_work_from_the_light_install(light, gcs, car, run,
                                                                 vertex):
    (car / "laps.tgz").write_bytes(
        subprocess.run(["gzip", "-c"], input=b"tub", capture_output=True).stdout)
    env = light_env(light, gcs)
    r = run("upload_tub_archive.sh", "-a", "laps.tgz", env=env)
    assert r.returncode == 0, r.stderr
    assert "uploaded laps.tgz to gs://robocar-test/training/laps.tgz" in r.stdout
    generation = "5.3" if sys.version_info[:2] == (3, 11) else "5.4"
    r = run("submit_cloud_train.sh", "-n", "-a", "laps.tgz", "-g", "none", "-d", generation,
            env=dict(vertex.env, TRAINER_PYTHON=env["TRAINER_PYTHON"]))
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["args"][:2] == [
        "--archive", "gs://robocar-test/training/laps.tgz"]


def test_the_car_downloads_and_verifies_a_model_with_the_light_install(light, car, run,
                                                                      gcs):
    """Done-when 1: only Python and the light install: the set the card
    names arrives verified; the "will it drive?" check says why it was skipped."""
    files = {"pilot-wip.tflite": b"a tflite model", "pilot-wip.h5": b"an h5 model"}
    for name, data in files.items():
        gcs.put(f"models/{name}", data)
    gcs.put("models/pilot-wip.json", json.dumps({"name": "pilot-wip", "files": {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        for name, data in files.items()}}).encode())
    r = run("download_models.sh", "-m", "pilot-wip", env=light_env(light, gcs))
    assert r.returncode == 0, r.stderr
    for name, data in files.items():
        assert (car / "models" / name).read_bytes() == data
    assert "DonkeyCar" in r.stdout + r.stderr and "skipped" in r.stdout + r.stderr


def test_a_training_script_names_what_the_light_install_lacks(light, car, run, gcs):
    """local_train.sh there: one line naming the Python, the package and the fix."""
    python, _ = light
    r = run("local_train.sh", env=light_env(light, gcs))
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith(f"local_train.sh: the Python at {python} has no '")
    assert f"run 'make install' in {ROOT}, or {python} -m pip install '{ROOT}[train]'" \
        in line


@pytest.fixture(scope="module")
def pi(light):
    """The light venv plus DonkeyCar without extras and ai-edge-litert: what a
    Raspberry Pi runs DonkeyCar with, TensorFlow nowhere (DonkeyCar's
    get_tflite_interpreter tries tflite-runtime, ai-edge-litert, then
    TensorFlow)."""
    python, lock = light
    generation = "5.3" if sys.version_info[:2] == (3, 11) else "5.4"
    pip(python, "install", "--quiet", *(["-c", str(lock)] if lock.exists() else []),
        f"donkeycar=={generation}.*", "ai-edge-litert")
    names = installed(python)
    assert {"donkeycar", "ai-edge-litert"} <= names
    assert not names & {h.replace("_", "-") for h in HEAVY}
    return light


def test_with_donkeycars_own_package_the_car_trains_in_the_cloud_by_itself(
        pi, car, run, gcs, vertex):
    """Done-when 1, and users who cannot rsync: DonkeyCar without extras (no
    TensorFlow), as on a car. make_tub_archive.sh packs with Python's own
    gzip (no ISA-L), and submit_cloud_train.sh -w uploads it, follows the job
    (the stand-in runs it) and brings the model into the car's models/."""
    write_synth_tub(car / "data", records=60)
    env = light_env(pi, gcs)
    r = run("make_tub_archive.sh", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "wrote wip.tgz" in r.stdout
    r = run("submit_cloud_train.sh", "-g", "none", "-w",
            env=dict(vertex.env, TRAINER_PYTHON=env["TRAINER_PYTHON"]), timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "uploaded wip.tgz to gs://robocar-test/training/wip.tgz" in r.stdout
    assert (car / "models" / "pilot-wip.tflite").stat().st_size > 0
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    assert card["records"]["live"] == 60


TFLITE_ON_A_PI = re.compile(
    r"^car check: the \.tflite \(ai_edge_litert\) agrees with the training job on 8 frames "
    r"\(max difference (\S+)\); median ([\d.]+) ms a frame of the 50 ms a loop at "
    r"DRIVE_LOOP_HZ=20$", re.M)


def test_on_a_pi_the_check_runs_the_tflite_without_tensorflow(pi, car, run, gcs, trained):
    """Issue 20: "will it drive?" runs on the car the user has. A trained
    model's .tflite, downloaded (-F tflite) and checked again with
    check_model.sh, both through DonkeyCar's own tflite pilot on
    ai-edge-litert, agreeing with the training job and timed."""
    out = trained.models
    for suffix in OUTPUTS:
        gcs.bucket.blob(f"models/{NAME}{suffix}").upload_from_filename(
            str(out / f"{NAME}{suffix}"))
    env = light_env(pi, gcs)
    r = run("download_models.sh", "-F", "tflite", env=env)
    assert r.returncode == 0, r.stderr
    m = TFLITE_ON_A_PI.search(r.stdout)
    assert m and float(m.group(1)) <= 1e-3, r.stdout
    print(f"a Pi-like car, download: .tflite {m.group(2)} ms a frame, diff {m.group(1)}")
    assert r.stdout.rstrip().endswith("drive it: python manage.py drive --model "
                                      "models/pilot-wip.tflite --type tflite_linear")
    assert "was not run" not in r.stdout                  # nothing was skipped
    r = run("check_model.sh", env=env)
    assert r.returncode == 0, r.stderr
    m = TFLITE_ON_A_PI.search(r.stdout)
    assert m, r.stdout
    print(f"a Pi-like car, check_model.sh: .tflite {m.group(2)} ms a frame")
    entries = json.loads((car / "models" / "database.json").read_text())
    assert [e["Type"] for e in entries if e["Name"] == NAME] == ["tflite_linear"]
