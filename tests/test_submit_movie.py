"""submit_cloud_makemovie.sh end to end: the archive and the model go up to
the bucket (the GCS emulator), the job is created on the Vertex stand-in,
which runs its own `python -m trainer.movie` against the bucket, and -w
follows it and brings the mp4 home. The job bodies of every flag are
checked against the discovery document in test_vertex_spec.py; its
hardening rows (tests/hardening.py) at the end."""
import hashlib
import re

import pytest
from hardening import Row, cloud, good_archive, row_ids
from helpers import frames, one_line_error, save_model

from trainer.core import bucket
from trainer.core.storage import Storage

MOVIE = "movies/pilot-wip.mp4"


def md5(data):
    return hashlib.md5(data).hexdigest()


def creates(vertex):
    return [body for _, path, body in vertex.requests if path.endswith("/customJobs")]


@pytest.mark.e2e           # a whole run (or two) end to end: make e2e
def test_wait_makes_the_movie_in_the_cloud_and_brings_it_home(car, synth_tub, run,
                                                               vertex, gcs):
    """Done-when 2 of issue 5: a 60-frame mp4 in movies/ and at home."""
    assert run("make_tub_archive.sh").returncode == 0
    (car / "models").mkdir(exist_ok=True)
    save_model(car / "models" / "pilot-wip.h5")
    r = run("submit_cloud_makemovie.sh", "-m", "models/pilot-wip.h5", "-a", "wip.tgz",
            "-e", "60", "-g", "none", "-w", env=vertex.env, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    out = r.stdout
    assert "uploaded wip.tgz to gs://robocar-test/training/wip.tgz" in out
    assert re.search(r"uploaded models/pilot-wip\.h5 to gs://robocar-test/job/"
                     r"movie-pilot-wip-\d{8}-\d{6}/model/pilot-wip\.h5", out)
    jid = re.search(r"created Vertex AI job (\d+) ", out).group(1)
    assert out.index(": pending") < out.index(": running") < out.index(": succeeded")
    # the job's own report, as its log line, then the movie home
    assert f"wrote gs://robocar-test/{MOVIE}: 59 frames (records 1 to 59) at 20 fps" in out
    assert re.search(rf"job {jid} succeeded: \d+m\d\ds on the machine", out)
    assert f"downloaded pilot-wip.mp4 from gs://robocar-test/{MOVIE}" in out

    [body] = creates(vertex)
    container = body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    assert container["command"] == ["python", "-m", "trainer.movie"]
    assert container["args"][container["args"].index("--output") + 1] == \
        f"gs://robocar-test/{MOVIE}"
    assert gcs.names("movies/") == [MOVIE]
    home = car / "pilot-wip.mp4"
    assert md5(home.read_bytes()) == gcs.md5(MOVIE)
    fps, shown = frames(home)
    assert fps == 20 and len(shown) == 59 and shown[0].shape == (240, 320, 3)
    assert gcs.names("models/") == []           # the bucket's models/ was not touched

    # Again, naming it: the movie exists, in the bucket and then at home:
    # refused before a job (the default name would move on to pilot-wip-2.mp4).
    r = run("submit_cloud_makemovie.sh", "-e", "60", "-g", "none", "-w", "-o",
            "pilot-wip.mp4", env=vertex.env)
    assert r.returncode == 1
    assert one_line_error(r) == (
        f"submit_cloud_makemovie.sh: gs://robocar-test/{MOVIE} already exists: pass -f "
        "to replace it, or -o another name")
    gcs.bucket.blob(MOVIE).delete()
    r = run("submit_cloud_makemovie.sh", "-e", "60", "-g", "none", "-w", "-o",
            "pilot-wip.mp4", env=vertex.env)
    assert r.returncode == 1
    assert one_line_error(r) == (
        "submit_cloud_makemovie.sh: pilot-wip.mp4 already exists and -w would replace "
        "it: pass -f to replace it, or -o another name")
    assert len(creates(vertex)) == 1 and md5(home.read_bytes()) != gcs.md5(MOVIE)


def test_a_failing_movie_job_ends_the_wait_with_its_reason(car, synth_tub, run, vertex,
                                                           gcs):
    """Frames past the tub's end are found by the job (it reads the archive):
    its one-line reason ends the script, and nothing comes home."""
    assert run("make_tub_archive.sh").returncode == 0
    (car / "models").mkdir(exist_ok=True)
    (car / "models" / "pilot-wip.h5").write_bytes(b"not read: the range fails first")
    r = run("submit_cloud_makemovie.sh", "-s", "150", "-e", "500", "-g", "none", "-w",
            env=vertex.env,
            timeout=300)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    jid = re.search(r"created Vertex AI job (\d+) ", r.stdout).group(1)
    assert one_line_error(r).startswith(
        f"submit_cloud_makemovie.sh: job {jid} failed: trainer: frames 150 to 500 are "
        "outside the tub's 200 records")
    assert gcs.names("movies/") == [] and not (car / "pilot-wip.mp4").exists()


def test_without_wait_it_says_how_to_fetch_the_movie(car, run, gcs, make_vertex):
    (car / "wip.tgz").write_bytes(b"\x1f\x8b an archive")
    (car / "models").mkdir(exist_ok=True)
    (car / "models" / "pilot-wip.h5").write_bytes(b"a model")
    vx = make_vertex(gcs, run_jobs=False)
    r = run("submit_cloud_makemovie.sh", "-S", "-o", "films/first.mp4", env=vx.env)
    assert r.returncode == 0, r.stderr
    assert "then:    gcloud storage cp gs://robocar-test/movies/first.mp4 films/first.mp4" \
        in r.stdout
    [job] = vx.jobs.values()
    assert job["jobSpec"]["scheduling"]["strategy"] == "SPOT"      # -S: Spot
    assert job["displayName"].startswith("movie-first-")


def test_a_local_model_already_in_the_bucket_is_not_uploaded_again(gcs, tmp_path):
    """Identical to gs://BUCKET/models/NAME: the job uses that one. Different:
    it travels with the job, and the bucket's model stays as it was."""
    model = tmp_path / "pilot-wip.h5"
    model.write_bytes(b"the model")
    gcs.put("models/pilot-wip.h5", b"the model")
    storage = Storage(gcs.bucket.client)
    staging = f"gs://{gcs.name}/job/movie-x/model"
    said = []

    def stage():
        return bucket.stage(storage, str(model), bucket.MODEL, gcs.name, staging,
                            say=said.append)[0]
    assert stage() == f"gs://{gcs.name}/models/pilot-wip.h5"
    assert said == [f"gs://{gcs.name}/models/pilot-wip.h5 is identical to {model}: "
                    "not uploaded again"]
    model.write_bytes(b"retrained since")
    assert stage() == f"gs://{gcs.name}/job/movie-x/model/pilot-wip.h5"
    assert gcs.read("job/movie-x/model/pilot-wip.h5") == b"retrained since"
    assert gcs.read("models/pilot-wip.h5") == b"the model"


def test_help_names_the_spot_flag(run):
    """Its flags and the Usage line: test_flags.py and test_scripts.py."""
    r = run("submit_cloud_makemovie.sh", "-h")
    assert r.returncode == 0
    assert "-S is Spot here: -s is START" in r.stdout


# -- hardening rows (tests/hardening.py) ---------------------------------------------

ROWS = [
    Row("submit-movie:no-REGION", cloud(), ("submit_cloud_makemovie.sh",), 1,
        r"REGION is not set: export REGION=europe-west1$", env={"REGION": None}),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)


# -- trust boundaries: what an archive, a tub, a config or a model someone
# else made can make the script do (the setups: tests/untrusted.py) --

TRUST = [
    Row("submit-movie:movie-name-with-a-space", cloud(good_archive),
        ("submit_cloud_makemovie.sh", "-n", "-o", "my movie.mp4"), 1,
        r"-o 'my movie\.mp4' is not a plain name: .* e\.g\. -o pilot-wip\.mp4$"),
]


@pytest.mark.parametrize("row", TRUST, ids=row_ids(TRUST))
def test_trust_boundaries(row, harden):
    harden(row)
