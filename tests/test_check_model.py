"""check_model.sh (issue 20): a model that came to the car any way (rsync,
a USB stick) is checked against this car, listed in DonkeyCar's
models/database.json and given its drive line; a copy cut short is caught
by its card. download_models.sh runs the same check (test_car.py)."""
import json
import re
import subprocess
import sys

import pytest
from helpers import one_line_error
from trained import NAME, copy_model

from trainer.core.bucket import OUTPUTS

AGREES = re.compile(r"^car check: the \.(h5|tflite|onnx) \((tensorflow|ai_edge_litert|"
                    r"tflite_runtime|onnxruntime)\) agrees with the training job on 8 frames "
                    r"\(max difference (\S+)\); median ([\d.]+) ms a frame of the 50 ms a "
                    r"loop at DRIVE_LOOP_HZ=20$", re.M)


@pytest.fixture
def copied(car, trained):
    """The trained model's files copied into the car's models/, as rsync would."""
    return copy_model(trained, car)


def listed(car):
    """`donkey models` in the car folder: DonkeyCar's own list."""
    r = subprocess.run([sys.executable, "-m", "donkeycar.management.base", "models"],
                       cwd=car, capture_output=True, text=True, timeout=120)
    return r.stdout + r.stderr


def test_a_copied_model_is_checked_listed_and_given_its_drive_line(copied, run, car):
    r = run("check_model.sh")
    assert r.returncode == 0, r.stderr
    ran = {m.group(1): m for m in AGREES.finditer(r.stdout)}
    assert set(ran) == {"h5", "tflite", "onnx"}, r.stdout
    assert ran["tflite"].group(2) in ("ai_edge_litert", "tflite_runtime", "tensorflow")
    for fmt, m in ran.items():
        assert float(m.group(3)) <= 1e-3 and float(m.group(4)) > 0
        print(f"{fmt}: max diff {m.group(3)}, median {m.group(4)} ms a frame")
    assert f"car check: {NAME} added to {car}/models/database.json" in r.stdout
    assert r.stdout.rstrip().endswith(         # the fastest that agrees (issue 23)
        "drive it: python manage.py drive --model models/pilot-wip.int8.tflite --type "
        "tflite_linear")
    assert NAME in listed(car)
    # DonkeyCar's habit: a path to the model file names the model
    r = run("check_model.sh", "-m", "models/pilot-wip.tflite", "-F", "tflite")
    assert r.returncode == 0, r.stderr
    assert [m.group(1) for m in AGREES.finditer(r.stdout)] == ["tflite"]
    entries = json.loads((copied / "database.json").read_text())
    assert [e["Name"] for e in entries].count(NAME) == 1


def test_a_copy_cut_short_is_caught_by_its_card(copied, run):
    tflite = copied / f"{NAME}.tflite"
    data = tflite.read_bytes()
    tflite.write_bytes(data[: len(data) // 2])
    r = run("check_model.sh")
    assert r.returncode == 1
    assert one_line_error(r) == (
        f"check_model.sh: models/{NAME}.tflite differs from its card (sha256): it was cut "
        "short or changed on the way; copy it again; the files stay in models")
    assert not (copied / "database.json").exists()


def test_without_its_card_it_still_loads_and_times_it(copied, run, car):
    for suffix in OUTPUTS:
        if suffix != ".tflite":
            (copied / f"{NAME}{suffix}").unlink()
    r = run("check_model.sh", "-m", NAME)
    assert r.returncode == 0, r.stderr
    assert f"car check: {NAME} came without its card ({NAME}.json)" in r.stdout
    assert re.search(r"^car check: the \.tflite \(\w+\) loads; median [\d.]+ ms a frame",
                     r.stdout, re.M), r.stdout
    assert r.stdout.rstrip().endswith("drive it: python manage.py drive --model "
                                      "models/pilot-wip.tflite --type tflite_linear")


def test_no_model_and_no_car_folder_are_one_line_each(car, run, tmp_path):
    r = run("check_model.sh")
    assert r.returncode == 1
    assert one_line_error(r) == ("check_model.sh: no model pilot-wip in models/: train one "
                                 "with ./local_train.sh, or pass -m NAME")
    elsewhere = tmp_path / "laptop"
    (elsewhere / "models").mkdir(parents=True)
    r = run("check_model.sh", "-m", "x", cwd=elsewhere)
    assert r.returncode == 1
    assert one_line_error(r) == ("check_model.sh: cannot check a model here: no config.py "
                                 "here: run it from the car folder to check that the model "
                                 "will drive")
