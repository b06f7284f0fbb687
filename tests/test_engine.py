"""TensorRT on the car (issue 23): check_model.sh builds NAME.engine from
NAME.onnx where TensorRT is, drive.sh drives it; elsewhere one line says
why not. There is no GPU and no TensorRT here: the engine path runs up to
TensorRT's own calls against tests/fake_tensorrt (a FAKE of NVIDIA's
package, documented there), which records what it was asked to build and
stops where a GPU is needed. The real build and run: `make gpu-check`
(bench/gpu_check.py) on a machine with a GPU."""
import json
import re
import os
import subprocess
import sys

import pytest
from helpers import ROOT, one_line_error, script_env
from trained import NAME, copy_model


FAKE = os.path.join(ROOT, "tests", "fake_tensorrt")


@pytest.fixture
def copied(car, trained):
    """The trained model's files copied into the car's models/, as rsync would."""
    return copy_model(trained, car)


def after_donkeycar(r):
    """The check's lines after its first, which compares the DonkeyCars."""
    lines = r.stdout.splitlines()
    assert lines[0].startswith("car check: the car's DonkeyCar is the one that trained"), lines
    return lines[1:]


def with_tensorrt(**extra):
    return script_env(PYTHONPATH=FAKE, **extra)


def test_where_tensorrt_is_the_check_builds_the_engine_from_the_onnx(copied, run):
    r = run("check_model.sh", "-F", "engine", env=with_tensorrt())
    assert r.returncode == 0, r.stderr
    engine = copied / f"{NAME}.engine"
    assert after_donkeycar(r)[:3] == [
        f"car check: building models/{NAME}.engine from the .onnx with TensorRT (minutes on "
        "a Jetson; once)",
        f"car check: built models/{NAME}.engine with TensorRT 10.0.0-fake (FP16) in 0 s",
        "car check: the .engine was not run: RuntimeError: fake tensorrt "
        "(tests/fake_tensorrt): no GPU here to run an engine on"]
    # What TensorRT was asked for: FP16 (the GPU has it fast), the .onnx's input
    # at batch 1 as the pilot runs it, a workspace a Nano's 4 GB can spare.
    asked = json.loads(engine.read_text())
    assert asked["flags"] == ["FP16"] and asked["workspace"] == 256 << 20
    assert asked["profiles"] == [{"img_in": [[1, 120, 160, 3]] * 3}]
    assert r.stdout.rstrip().endswith(f"car check: nothing of {NAME} could run here, so it "
                                      "was not added to DonkeyCar's model list")
    # again: the engine is newer than the .onnx, so it is not built again
    r = run("check_model.sh", "-F", "engine", env=with_tensorrt())
    assert f"car check: models/{NAME}.engine is newer than the .onnx: not built again" \
        in r.stdout


def test_without_tensorrt_one_line_says_why(copied, run):
    r = run("check_model.sh", "-F", "engine")
    assert r.returncode == 0, r.stderr
    python = ".".join(map(str, sys.version_info[:3]))
    assert after_donkeycar(r)[0] == (
        "car check: no TensorRT .engine built: TensorRT's Python package (tensorrt) is not "
        f"installed for this Python ({python}); on a Jetson, JetPack's is for its system "
        "Python only (docs/car.md, TensorRT)")
    assert not (copied / f"{NAME}.engine").exists()


def test_drive_sh_takes_the_engine_as_far_as_tensorrt_goes(copied, run, car):
    """drive.sh --format engine: the car's manage.py gets an engine_linear
    pilot and the engine file (under a name it accepts); loading it is
    TensorRT's, which the fake refuses for want of a GPU: one line."""
    (copied / f"{NAME}.engine").write_bytes(b"an engine check_model.sh built")
    with open(car / "myconfig.py", "a") as f:
        f.write('\nCAMERA_TYPE = "MOCK"\nDRIVE_TRAIN_TYPE = "MOCK"\nMAX_LOOPS = 5\n')
    r = run("drive.sh", "--format", "engine", env=with_tensorrt(LOGLEVEL="INFO"))
    assert r.returncode == 1
    assert f"driving models/{NAME}.engine (TensorRT .engine) with the car's manage.py drive " \
        "--type engine_linear" in r.stdout
    assert re.search(rf"loading model /tmp/\S*/robocar-drive-\w+/{NAME}\.engine\.tflite$",
                     r.stdout, re.M), r.stdout
    assert one_line_error(r) == (
        "drive.sh: the car's DonkeyCar could not load the TensorRT .engine (RuntimeError: "
        "fake tensorrt (tests/fake_tensorrt): no GPU here to run an engine on): check it "
        "with ./check_model.sh")
    r = run("drive.sh", "--format", "engine")
    assert r.returncode == 1
    assert one_line_error(r).startswith("drive.sh: cannot drive the TensorRT .engine here: "
                                        "TensorRT's Python package (tensorrt) is not "
                                        "installed for this Python")


def test_the_fake_is_not_on_the_suites_path():
    """Only the tests that ask for it see the fake."""
    r = subprocess.run([sys.executable, "-c", "import tensorrt"], cwd=ROOT,
                       capture_output=True, text=True, env=script_env())
    assert r.returncode == 1 and "No module named 'tensorrt'" in r.stderr
