"""drive.sh (issue 23): the car's own manage.py drive (`donkey createcar`'s,
never edited) with the model in any format, the .onnx included, which
manage.py alone refuses. The drive loops are DonkeyCar's, with no hardware:
its IMAGE_LIST camera over real frames named as DonkeyCar names them, its
MOCK drive train, a bounded number of loops (MAX_LOOPS), the web controller
in pilot mode, recording switched on through it as a user would, and a new
tub the pilot's outputs are read back from."""
import glob
import hashlib
import os
import re
import subprocess

import numpy as np
import pytest
from driving import FRAMES, await_condition, catalog, hardware_free, listening, send
from helpers import one_line_error, script_env
from trained import NAME

LOOPS = 100          # 5 s at DRIVE_LOOP_HZ 20
TIMING_ROW = r"^\|\s+KerasLinear\s+\|"      # DonkeyCar's part-timing table: the pilot ran


@pytest.fixture
def drivable(car, trained):
    """The car with the session's model in models/, frames for the camera,
    and myconfig.py set for a drive without hardware."""
    return hardware_free(car, trained, LOOPS)


def drive(drivable, *args, record=True, timeout=300):
    """./drive.sh ARGS in CAR; with RECORD, recording switched on through the
    web controller's websocket as soon as it listens (DonkeyCar's web page
    does the same; a POST to /drive is overwritten by the loop's own state
    at its next turn)."""
    car = drivable.path
    manage = hashlib.sha256((car / "manage.py").read_bytes()).hexdigest()
    # DonkeyCar's own log level (this process may have set another for itself)
    p = subprocess.Popen(["./drive.sh", *args], cwd=car, env=script_env(LOGLEVEL="INFO"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if record:
            await_condition("the web controller",
                            lambda: listening(drivable.port) or p.poll() is not None, p)
            if p.poll() is None:
                send(drivable.port, recording=True)
        stdout, stderr = p.communicate(timeout=timeout)
    finally:
        p.kill()
    assert hashlib.sha256((car / "manage.py").read_bytes()).hexdigest() == manage
    return subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)


def recorded(car):
    """[(source frame index, pilot/angle, pilot/throttle)] of the drive's new
    tub: each recorded image (a JPEG of the camera's frame) matched to the
    frame it came from."""
    from PIL import Image
    [tub] = glob.glob(str(car / "data" / "tub_*"))
    sources = np.stack([np.asarray(Image.open(f)) for f in frame_files(car)]).astype(float)
    out = []
    for record in catalog(tub):
        img = np.asarray(Image.open(f"{tub}/images/{record['cam/image_array']}"))
        far = np.abs(sources - img).mean(axis=(1, 2, 3))
        assert far.min() < 1 < np.sort(far)[1], far        # one frame, clearly
        out.append((int(far.argmin()), record["pilot/angle"], record["pilot/throttle"]))
    return out


def frame_files(car):
    return sorted(glob.glob(str(car / "frames" / "*.jpg")),
                  key=lambda f: int(os.path.basename(f).split("_")[0]))


@pytest.mark.e2e
def test_the_onnx_drives_in_the_cars_own_drive_loop(drivable):
    """Done when: drive.sh starts DonkeyCar's drive loop with the .onnx, and
    the pilot's outputs the tub recorded are the model's on those frames."""
    import onnxruntime as ort
    from PIL import Image

    r = drive(drivable, "-m", NAME, "--format", "onnx")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"driving models/{NAME}.onnx (.onnx) with the car's manage.py drive --type " \
        "onnx_linear" in r.stdout
    assert "Unknown extension" not in r.stdout + r.stderr
    assert f"the pilot (.onnx, onnxruntime) ran {LOOPS} times in the drive loop" in r.stdout
    assert re.search(TIMING_ROW, r.stderr, re.M), r.stderr[-3000:]
    got = recorded(drivable.path)
    assert len(got) >= LOOPS // 2, len(got)
    session = ort.InferenceSession(str(drivable.path / "models" / f"{NAME}.onnx"))
    name = session.get_inputs()[0].name
    model = [[float(o.ravel()[0]) for o in session.run(None, {name: (np.asarray(
        Image.open(f), dtype=np.float32) / 255.0)[None]})] for f in frame_files(drivable.path)]
    worst = max(max(abs(model[i][0] - angle), abs(model[i][1] - throttle))
                for i, angle, throttle in got)
    assert worst <= 1e-3
    assert len({i for i, _, _ in got}) == FRAMES            # every frame came round
    print(f"{len(got)} records of {LOOPS} loops; pilot outputs within {worst:.1e} of "
          f"onnxruntime's own; {r.stdout.strip().splitlines()[-1]}")


@pytest.mark.e2e
def test_it_drives_what_check_model_sh_recommended(drivable, run):
    """No --format: the format the car's check found fastest (the int8 here),
    through DonkeyCar's own TfLite pilot, as the drive line said."""
    r = run("check_model.sh")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("the fastest here that agrees: int8 .tflite") and line.endswith(
        f"python manage.py drive --model models/{NAME}.int8.tflite --type tflite_linear")
    r = drive(drivable, record=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"the pilot (int8 .tflite, ai_edge_litert) ran {LOOPS} times" in r.stdout


@pytest.mark.e2e
def test_a_drive_whose_pilot_never_ran_fails(drivable):
    """In user mode DonkeyCar never runs the pilot: the drive ends, exit 1."""
    with open(drivable.path / "myconfig.py", "a") as f:
        f.write('WEB_INIT_MODE = "user"\nMAX_LOOPS = 20\n')
    r = drive(drivable, "-m", f"models/{NAME}.onnx", record=False)
    assert r.returncode == 1
    assert one_line_error(r) == (
        "drive.sh: the drive loop ran, but never the pilot: DonkeyCar runs it only in a "
        "pilot mode: choose one in the web controller, or set WEB_INIT_MODE = 'local' in "
        "myconfig.py")
    assert "Vehicle executed 20 steps" in r.stderr


def test_what_it_cannot_drive_is_one_line_before_donkeycar_starts(drivable, run, tmp_path):
    r = run("drive.sh", "--format", "engine")
    assert r.returncode == 1
    assert one_line_error(r) == (
        f"drive.sh: no models/{NAME}.engine: ./check_model.sh builds it from the .onnx "
        "where TensorRT is, or pass another --format")
    r = run("drive.sh")
    assert r.returncode == 1
    assert one_line_error(r) == (
        f"drive.sh: which file of {NAME} to drive? ./check_model.sh -m {NAME} finds the "
        "fastest that agrees here (drive.sh then takes it), or pass --format (h5, tflite, "
        "fp16, int8, onnx, engine)")
    elsewhere = tmp_path / "laptop"
    (elsewhere / "models").mkdir(parents=True)
    r = run("drive.sh", "-m", "x", "--format", "onnx", cwd=elsewhere)
    assert r.returncode == 1
    assert one_line_error(r) == ("drive.sh: no manage.py here: run drive.sh in the car "
                                 "folder (donkey createcar made it)")
