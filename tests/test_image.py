"""The cloud jobs' image, run on this machine: `make image` builds
robocar-trainer:dk5.3 from the Dockerfile, and these tests run the movie
job inside it against the GCS emulator, and submit_cloud_train.sh through
the Vertex stand-in running the training job in the image, as Vertex AI
would.

Each runs a job in a 6 GB image: make e2e. Without the image they skip with
the fix (make image), except in CI, where they fail: CI builds the image
first and must never skip them."""
import hashlib
import json
import os
import re
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
