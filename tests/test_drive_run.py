"""The telemetry part in a DonkeyCar Vehicle of its own (no manage.py, no
launcher: fast, so it runs in `make test` and on both generations with
`make integration`), and the drive's W&B run it feeds, offline, with each
pinned wandb (0.28.0 on Python 3.11, the newest on 3.12): the run names the
model artifact that drove, filled as the training run logs it."""
import hashlib
import json
import os

import numpy as np
import pytest
from helpers import one_line_error, wandb_env
from wandb_records import of_kind, read_run, the_run

from trainer.car import telemetry

LOOPS, PILOT_LOOPS = 30, 12
NAME = "pilot-x"


class Camera:
    def run(self):
        return np.full((120, 160, 3), 90, dtype=np.uint8)


class Pilot:
    """A pilot as DonkeyCar's manage.py adds one: load(), run(image)."""

    def load(self, path):
        self.path = path

    def run(self, image):
        return float(image.mean()) / 255.0 - 0.2, 0.3


class User:
    """The web controller's outputs: the pilot first, then a takeover."""

    def __init__(self):
        self.loop = 0

    def run(self):
        self.loop += 1
        mode = "local" if self.loop <= PILOT_LOOPS else "user"
        return 0.5 if mode == "user" else 0.0, 0.2, mode, True, mode != "user"


def model_set(models):
    """pilot-x's files (bytes only: W&B does not load them) and a card naming them."""
    models.mkdir(exist_ok=True)
    files = {}
    for suffix in (".tflite", ".h5", ".onnx"):
        path = models / f"{NAME}{suffix}"
        path.write_bytes(os.urandom(64))
        files[path.name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                            "bytes": 64}
    (models / f"{NAME}.json").write_text(json.dumps({
        "name": NAME, "model_type": "linear", "created_at": "2026-05-09T10:00:00+00:00",
        "verdict": {"better": True}, "files": files}))


def drive(car):
    """LOOPS loops of a DonkeyCar Vehicle with the telemetry attached as
    drive.sh attaches it; the tub it wrote."""
    from donkeycar.parts.tub_v2 import TubWriter
    from donkeycar.vehicle import Vehicle
    v = Vehicle()
    v.add(Camera(), outputs=["cam/image_array"])
    v.add(User(), outputs=["user/angle", "user/throttle", "user/mode", "recording",
                           "run_pilot"])
    v.add(Pilot(), inputs=["cam/image_array"], outputs=["pilot/angle", "pilot/throttle"],
          run_condition="run_pilot")
    tub = car / "data" / "tub_1"
    keys = ["cam/image_array", "user/angle", "user/throttle", "user/mode", "pilot/angle",
            "pilot/throttle"]
    v.add(TubWriter(str(tub), inputs=keys, types=["image_array", "float", "float", "str",
                                                  "float", "float"]),
          inputs=keys, outputs=["tub/num_records"], run_condition="recording")
    cwd = os.getcwd()
    os.chdir(car)               # paths as drive.sh has them, from the car folder
    try:
        model = telemetry.model_details(f"models/{NAME}.tflite", "tflite", "ai_edge_litert")
        part = telemetry.attach(v, 100, model)
        v.start(rate_hz=100, max_loop_count=LOOPS)
    finally:
        os.chdir(cwd)
    assert part.path == str(tub / "telemetry.jsonl")
    return tub


@pytest.fixture
def driven(car):
    model_set(car / "models")
    return car, drive(car)


def test_each_loop_is_recorded_beside_the_record_it_wrote(driven):
    car, tub = driven
    [header, *loops] = [json.loads(x) for x in (tub / "telemetry.jsonl").read_text().split()]
    assert header["model"]["sha256"] == hashlib.sha256(
        (car / "models" / f"{NAME}.tflite").read_bytes()).hexdigest()
    assert header["model"]["card"]["model_type"] == "linear" and header["drive_loop_hz"] == 100
    assert [lp["loop"] for lp in loops] == list(range(1, LOOPS + 1))
    assert [lp["index"] for lp in loops] == list(range(LOOPS))
    ran = [lp for lp in loops if lp["inference_ms"] is not None]
    assert len(ran) == PILOT_LOOPS and all(lp["mode"] == "local" for lp in ran)
    assert ran[0]["pilot"] == pytest.approx([90 / 255 - 0.2, 0.3], abs=1e-6)
    assert all(lp["pilot"] is None for lp in loops[PILOT_LOOPS:])      # stale: not kept
    assert all(lp["work_ms"] >= lp["inference_ms"] for lp in ran)
    assert all(lp["period_ms"] >= lp["work_ms"] * 0.99 for lp in loops[1:])


def test_the_drive_run_names_the_model_artifact_it_used(driven, run, tmp_path):
    car, tub = driven
    r = run("drive_report.sh", "-t", "data/tub_1", "--no-page",
            env=wandb_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert f"  takeover 1 at record {PILOT_LOOPS} (" in r.stdout
    run_dir = the_run(tmp_path)
    records = read_run(run_dir)
    [info] = of_kind(records, "run")
    assert info.display_name == "drive-tub_1" and info.job_type == "drive"
    assert f"W&B run drive-tub_1 ({info.run_id}): offline in {run_dir}" in r.stdout
    artifacts = {a.type: a for a in of_kind(records, "artifact")}
    model = artifacts["model"]
    assert model.name == NAME and model.use_after_commit          # an input of the run
    assert sorted(e.path for e in model.manifest.contents) == sorted(
        f"{NAME}{s}" for s in (".tflite", ".h5", ".onnx", ".json"))
    assert json.loads(model.metadata)["sha256"] == hashlib.sha256(
        (car / "models" / f"{NAME}.tflite").read_bytes()).hexdigest()
    data = artifacts["dataset"]
    assert data.name == "tub_1" and data.use_after_commit
    assert f"file://{tub}/manifest.json" in {e.ref for e in data.manifest.contents}
    steps = [h.step.num for h in of_kind(records, "history")]
    assert steps == list(range(LOOPS))
    summary = {}
    for s in of_kind(records, "summary"):
        summary.update({it.key: json.loads(it.value_json) for it in s.update})
    assert summary["takeovers"] == 1 and summary["takeover_records"] == [PILOT_LOOPS]


def test_wandb_project_without_wandb_is_one_line_before_the_report(driven, run, tmp_path):
    fake = tmp_path / "site" / "wandb"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'wandb'\", name='wandb')\n")
    r = run("drive_report.sh", "-t", "data/tub_1", env=wandb_env(
        tmp_path, PYTHONPATH=str(tmp_path / "site")))
    assert r.returncode == 1 and r.stdout == ""
    assert one_line_error(r) == (
        "drive_report.sh: WANDB_PROJECT=p asks for W&B tracking but wandb is not "
        "installed: unset WANDB_PROJECT, or pip install 'robocar-trainer[wandb]'")
