"""The cloud jobs' image, run on this machine: `make image` builds
robocar-trainer:dk5.3 from the Dockerfile, and these tests run the movie
job inside it against the GCS emulator, and submit_cloud_train.sh through
the Vertex stand-in running the training job in the image, as Vertex AI
would. A stub NVIDIA driver, mounted where Vertex AI mounts the real one,
shows that TensorFlow in the image finds it (no GPU is needed for that).

Each runs a job in a 6 GB image: make e2e. Without the image they skip with
the fix (make image), except in CI, where they fail: CI builds the image
first and must never skip them."""
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest
from helpers import frames, save_model
from vertex_standin import Containers

pytestmark = pytest.mark.e2e

IMAGE = "robocar-trainer:dk5.3"
OUTPUTS = ("h5", "tflite", "onnx", "png", "pred.png", "json")
ARCHIVE = "gs://robocar-test/training/wip.tgz"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="session")
def images():
    """What runs IMAGE here (docker or podman), once the image is built."""
    images = Containers.find()
    if images is None:
        missing = (f"neither a docker engine nor podman is here to run {IMAGE}: "
                   "install podman, then run make image")
    elif not images.has(IMAGE):
        missing = f"{IMAGE} is not built: run make image"
    else:
        return images
    if os.environ.get("CI"):
        pytest.fail(missing)
    pytest.skip(missing)


@pytest.fixture(scope="session")
def image_python(images):
    """The Python version inside the image, which a model card made there names."""
    r = subprocess.run(images.run_command(IMAGE, ["python", "-c", "import platform; "
                                                  "print(platform.python_version())"], {}),
                       env=images.env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


# What Vertex AI (and GKE) mount into a GPU job's container: the host's driver.
DRIVER = "/usr/local/nvidia"
# A stand-in for the driver's libcuda.so.1 on a machine without a GPU: cuInit
# answers CUDA_ERROR_NO_DEVICE (100), and TensorFlow names the error through
# cuGetErrorName/cuGetErrorString (without them it logs "UNKNOWN ERROR (100)").
STUB_LIBCUDA = r"""
int cuInit(unsigned int flags) { (void)flags; return 100; }
int cuGetErrorName(int error, const char **name) {
  *name = error == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN"; return 0; }
int cuGetErrorString(int error, const char **text) {
  *text = error == 100 ? "no CUDA-capable device is detected" : "unknown error"; return 0; }
"""
# TensorFlow asks for the GPUs; nvidia-smi (a stub too) shows PATH has the driver's bin/.
PROBE = ("nvidia-smi; python -c \"import tensorflow as tf; "
         "print('GPUs:', len(tf.config.list_physical_devices('GPU')))\"")


@pytest.fixture(scope="session")
def stub_driver(tmp_path_factory):
    """A folder laid out as Vertex AI's mounted driver: lib64/libcuda.so.1
    (compiled here with gcc) and bin/nvidia-smi."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.fail("no C compiler here to build the stub libcuda.so.1: install gcc")
    root = tmp_path_factory.mktemp("nvidia")
    (root / "lib64").mkdir()
    (root / "bin").mkdir()
    source = root / "libcuda.c"
    source.write_text(STUB_LIBCUDA)
    subprocess.run([gcc, "-shared", "-fPIC", "-o", str(root / "lib64" / "libcuda.so.1"),
                    str(source)], check=True, capture_output=True)
    smi = root / "bin" / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'stub nvidia-smi: no devices'\n")
    smi.chmod(0o755)
    return root


def test_the_image_finds_the_gpu_driver_vertex_ai_mounts(images, stub_driver):
    """Done-when 1: with the driver where Vertex AI mounts it, TensorFlow in
    the image loads libcuda.so.1 and calls cuInit (which finds no device
    here); the same run without the image's LD_LIBRARY_PATH cannot load it,
    which is what every GPU job did before the Dockerfile set it."""
    mounts = {str(stub_driver / "lib64"): f"{DRIVER}/lib64",
              str(stub_driver / "bin"): f"{DRIVER}/bin"}
    env = {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_MAX_VLOG_LEVEL": "1"}

    def probe(script):
        r = subprocess.run(images.run_command(IMAGE, ["sh", "-c", script], env,
                                              mounts=mounts),
                           env=images.env(), capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return r

    found = probe(PROBE)
    assert "stub nvidia-smi: no devices" in found.stdout           # bin/ is on PATH
    assert "Successfully opened dynamic library libcuda.so.1" in found.stderr
    assert "failed call to cuInit: CUDA_ERROR_NO_DEVICE" in found.stderr
    assert "GPUs: 0" in found.stdout

    lost = probe("unset LD_LIBRARY_PATH; " + PROBE)
    assert "Could not load dynamic library 'libcuda.so.1'" in lost.stderr
    assert "Successfully opened dynamic library libcuda.so.1" not in lost.stderr
    assert "CUDA_ERROR_NO_DEVICE" not in lost.stderr


def in_image(images, gcs, *argv):
    """python -m ... inside the image, with the bucket reachable as a job has it."""
    return subprocess.run(
        images.run_command(IMAGE, list(argv), {"STORAGE_EMULATOR_HOST": gcs.url}),
        env=images.env(), capture_output=True, text=True, timeout=900)


def archive_in_bucket(car, run, gcs):
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    gcs.put("training/wip.tgz", (car / "wip.tgz").read_bytes())


def test_the_movie_job_runs_in_the_image_from_the_bucket_to_the_bucket(
        car, synth_tub, run, gcs, images, tmp_path):
    archive_in_bucket(car, run, gcs)
    gcs.put("models/pilot-wip.h5", save_model(tmp_path / "pilot-wip.h5").read_bytes())
    movie = "gs://robocar-test/movies/pilot-wip.mp4"
    r = in_image(images, gcs, "python", "-m", "trainer.movie", "--archive", ARCHIVE,
                 "--model", "gs://robocar-test/models/pilot-wip.h5", "--end", "60",
                 "--output", movie)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    reported = re.search(rf"wrote {movie}: (\d+) frames.* at 20 fps", r.stdout)
    assert reported, r.stdout

    # the movie is in the bucket, and holds the frames the job reported
    assert gcs.names("movies/") == ["movies/pilot-wip.mp4"]
    home = tmp_path / "pilot-wip.mp4"
    home.write_bytes(gcs.read("movies/pilot-wip.mp4"))
    fps, shown = frames(home)
    assert fps == 20 and len(shown) == int(reported.group(1)) > 0
    assert shown[0].shape == (240, 320, 3)                 # the 160x120 frames, scaled 2x


def test_submit_runs_the_job_in_the_image_and_brings_the_models_home(
        car, synth_tub, run, gcs, make_vertex, images, image_python):
    """submit_cloud_train.sh -g none -w, with the Vertex stand-in running the
    job's command (python -m trainer.task, from the bucket to the bucket)
    inside the image its body names (dk5.3), as Vertex AI does."""
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    archive = (car / "wip.tgz").read_bytes()
    vertex = make_vertex(gcs, images=images)
    r = run("submit_cloud_train.sh", "-g", "none", "-w", env=vertex.env, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    jid = re.search(r"created Vertex AI job (\d+) ", r.stdout).group(1)
    assert "model pilot-wip: best val_loss" in r.stdout      # the job's own log line

    [(_, _, body)] = [q for q in vertex.requests if q[1].endswith("/customJobs")]
    [pool] = body["jobSpec"]["workerPoolSpecs"]
    assert pool["containerSpec"]["imageUri"].endswith("/trainer:dk5.3")
    assert "acceleratorType" not in pool["machineSpec"]

    for ext in OUTPUTS:
        local = car / "models" / f"pilot-wip.{ext}"
        assert hashlib.md5(local.read_bytes()).hexdigest() == \
            gcs.md5(f"models/pilot-wip.{ext}"), local
    assert {f"models/pilot-wip.{ext}" for ext in OUTPUTS} <= set(gcs.names("models/"))
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    for name, entry in card["files"].items():          # the card names what is there
        assert sha256(gcs.read(f"models/{name}")) == entry["sha256"], name
    assert card["job_id"] == jid
    # trained from the bucket's archive, by the image's DonkeyCar 5.3 and Python
    assert [(a["uri"], a["sha256"]) for a in card["archives"]] == [(ARCHIVE,
                                                                     sha256(archive))]
    assert card["records"]["live"] == 200
    assert card["versions"]["donkeycar_generation"] == "5.3"
    assert card["versions"]["donkeycar"].startswith("5.3.")
    assert card["versions"]["python"] == image_python
