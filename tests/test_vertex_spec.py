"""Every CustomJob submit_cloud_train.sh and submit_cloud_makemovie.sh can
make, checked against the real aiplatform v1 discovery document (the client
library sends any dict), and the dry run: it prints that job and a gcloud
command that sends the same. -d picks the image of a DonkeyCar generation."""
import json
import shlex
import subprocess

import pytest
from discovery_schema import check
from helpers import one_line_error

from trainer.client.vertex import job_body
from trainer.core.cloud import discovery_document
from trainer.core.flags import movie_args, train_args
from trainer.core.generations import GENERATIONS, local

GENERATION = local()


DOC = discovery_document("aiplatform", "v1")
JOB = "GoogleCloudAiplatformV1CustomJob"
IMAGE = "europe-west1-docker.pkg.dev/robocar-test/robocar/trainer:test"  # vertex_standin's
REGION, PROJECT, BUCKET = "europe-west1", "robocar-test", "robocar-test"
OTHER = next(g for g in GENERATIONS if g != GENERATION)   # the generation not here


def image(generation=GENERATION):
    """TRAINER_IMAGE's repository, tagged with the generation."""
    return IMAGE.rsplit(":", 1)[0] + ":dk" + generation


def dry_run(run, env, *flags, script="submit_cloud_train.sh"):
    r = run(script, "-n", *flags, env=env)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout), r.stderr


def test_the_checker_catches_what_vertex_would_refuse():
    """Without this the test below could pass on a checker that sees nothing."""
    good = job_body(display_name="pilot-wip-20250101-000000", image=IMAGE,
                    module="trainer.task", args=["--archive", "gs://b/training/wip.tgz"],
                    machine="n1-standard-8", accelerator=("NVIDIA_TESLA_T4", 1),
                    spot=True, output_dir="gs://b/job/x/", labels={"tool": "t"})
    assert check(DOC, JOB, good) == []
    pool = ("jobSpec", "workerPoolSpecs", 0)
    defects = {
        "unknown field": (pool + ("machineSpec",), "gpuType", "NVIDIA_TESLA_T4"),
        "is not one of": (pool + ("machineSpec",), "acceleratorType", "NVIDIA_T4"),
        "expected an integer": (pool + ("machineSpec",), "acceleratorCount", "1"),
        "is not an int64": (pool, "replicaCount", "one"),
        "output only": ((), "state", "JOB_STATE_QUEUED"),
        "not a duration": (("jobSpec", "scheduling"), "timeout", "4h"),
        "expected true or false": (("jobSpec", "scheduling"), "disableRetries", "yes"),
        "expected an array": (pool + ("containerSpec",), "args", "--archive x"),
    }
    for problem, (where, key, value) in defects.items():
        body = json.loads(json.dumps(good))
        node = body
        for step in where:
            node = node[step]
        node[key] = value
        found = check(DOC, JOB, body)
        assert len(found) == 1 and problem in found[0], (problem, found)
    body = json.loads(json.dumps(good))
    del body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"]
    assert check(DOC, JOB, body) == [
        "$.jobSpec.workerPoolSpecs[0].containerSpec.imageUri: required in "
        "GoogleCloudAiplatformV1ContainerSpec, missing"]


WANDB = {"WANDB_PROJECT": "robocar", "WANDB_ENTITY": "team", "WANDB_MODE": "online",
         "WANDB_API_KEY_SECRET": "wandb-api-key"}
WANDB_KEY = "0123456789abcdef0123456789abcdef01234567"    # must never reach the job

MACHINES = {     # -M and -g as typed -> the machineSpec fields expected
    "default": ([], "n1-standard-8", ("NVIDIA_TESLA_T4", 1)),
    "cpu": (["-g", "none"], "n1-standard-8", None),
    "v100x2": (["-g", "NVIDIA_TESLA_V100:2"], "n1-standard-8", ("NVIDIA_TESLA_V100", 2)),
    "g2": (["-M", "g2-standard-24"], "g2-standard-24", ("NVIDIA_L4", 2)),
    "a100": (["-M", "a2-highgpu-1g", "-g", "nvidia_tesla_a100"], "a2-highgpu-1g",
             ("NVIDIA_TESLA_A100", 1)),
}


# (machine, Spot, -T and everything else): each machine with and without -T,
# Spot with one of the two, so that every pair of choices meets (machine and
# Spot, machine and -T, Spot and -T) in half the dry runs of every triple.
PAIRS = [("default", False, False), ("default", True, True),
         ("cpu", True, False), ("cpu", False, True),
         ("v100x2", False, False), ("v100x2", True, True),
         ("g2", True, False), ("g2", False, True),
         ("a100", False, False), ("a100", True, True)]


@pytest.mark.parametrize("case,spot,transfer", PAIRS)
def test_every_job_the_script_makes_is_a_valid_custom_job(car, run, idle_vertex,
                                                          case, spot, transfer):
    (car / "wip.tgz").write_bytes(b"stands for an archive; a dry run does not read it")
    (car / "models").mkdir(exist_ok=True)
    (car / "models" / "pilot-old.h5").write_bytes(b"h5")
    flags, machine_type, expected = MACHINES[case]
    flags = flags + (["-S"] if spot else [])
    env = idle_vertex.env
    if transfer:      # with it, everything else a user can give as well
        flags += ["-T", "models/pilot-old.h5", "--type", "linear", "-m", "pilot-tuned", "-f",
                  "-o", "gs://other-bucket/models/"]
        env = dict(env, WANDB_API_KEY=WANDB_KEY, **WANDB)
    body, notes = dry_run(run, env, *flags)

    assert check(DOC, JOB, body) == []
    pool = body["jobSpec"]["workerPoolSpecs"]
    assert len(pool) == 1 and pool[0]["replicaCount"] == "1"
    machine = pool[0]["machineSpec"]
    assert machine["machineType"] == machine_type
    got = (machine["acceleratorType"], machine["acceleratorCount"]) \
        if "acceleratorType" in machine else None
    assert got == expected
    assert body["jobSpec"]["scheduling"].get("strategy") == ("SPOT" if spot else None)
    assert body["jobSpec"]["scheduling"]["timeout"].endswith("s")
    name = "pilot-tuned" if transfer else "pilot-wip"
    assert body["displayName"].startswith(name + "-")
    assert body["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"].startswith(
        f"gs://{BUCKET}/job/{body['displayName']}/")

    container = pool[0]["containerSpec"]
    assert container["imageUri"] == image()       # the DonkeyCar installed here
    assert container["command"] == ["python", "-m", "trainer.task"]
    # W&B settings go along, the secret named in the user's project; the API
    # key never does. The GPU the job was sent with, for its own check.
    wandb = dict(WANDB, WANDB_API_KEY_SECRET=f"projects/{PROJECT}/secrets/wandb-api-key")
    gpu = {"TRAINER_ACCELERATOR": "{}:{}".format(*expected)} if expected else {}
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "PYTHONUNBUFFERED": "1", **gpu, **(wandb if transfer else {})}
    assert WANDB_KEY not in json.dumps(body) + notes
    task = train_args(container["args"])            # the job's own parser takes them
    assert task.archive == [f"gs://{BUCKET}/training/wip.tgz"]
    if transfer:
        assert task.output == "gs://other-bucket/models"
        assert (task.model_name, task.type, task.force) == ("pilot-tuned", "linear", True)
        assert task.transfer.startswith(f"gs://{BUCKET}/job/{body['displayName']}/")
        assert task.transfer.endswith("/pilot-old.h5")
        assert "would upload models/pilot-old.h5 to " + task.transfer in notes
    else:                                         # what local_train.sh passes, in gs://
        assert container["args"] == ["--archive", f"gs://{BUCKET}/training/wip.tgz",
                                     "--model-name", "pilot-wip",
                                     "--output", f"gs://{BUCKET}/models"]
    assert "would upload wip.tgz to gs://" in notes
    assert idle_vertex.requests == []             # sent nothing


def test_dry_run_prints_a_gcloud_command_that_sends_the_same_job(car, run, idle_vertex,
                                                                tmp_path):
    """Done-when 1: -g NVIDIA_TESLA_T4:1 -S -n prints a valid job with the T4,
    SPOT and TRAINER_IMAGE and sends nothing; gcloud, run as printed with the
    jobSpec as job.yaml, creates exactly that job."""
    (car / "wip.tgz").write_bytes(b"archive")
    body, notes = dry_run(run, idle_vertex.env, "-g", "NVIDIA_TESLA_T4:1", "-S")
    machine = body["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]
    assert (machine["acceleratorType"], machine["acceleratorCount"]) == ("NVIDIA_TESLA_T4", 1)
    assert body["jobSpec"]["scheduling"]["strategy"] == "SPOT"
    assert body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"] == image()
    assert "nothing was uploaded or sent" in notes
    assert idle_vertex.requests == []

    command = shlex.split(next(ln for ln in notes.splitlines()
                               if ln.strip().startswith("gcloud ")))
    assert command[:6] == ["gcloud", "ai", "custom-jobs", "create", "--region", REGION]
    (tmp_path / "job.yaml").write_text(json.dumps(body["jobSpec"]))
    r = subprocess.run(command, cwd=tmp_path, env=idle_vertex.env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    [(method, path, sent)] = idle_vertex.requests
    assert (method, path) == ("POST", f"/v1/projects/{PROJECT}/locations/{REGION}/customJobs")
    assert sent == body


@pytest.mark.parametrize("flags,says", [
    (["-g", "NVIDIA_T4"], "unknown accelerator NVIDIA_T4: use one of "),
    (["-g", "NVIDIA_TESLA_T4:zero"], "the count after ':' must be a whole number"),
    (["-M", "N1 standard"], "not a Compute Engine machine type"),
    (["-o", "models"], "a cloud job can only write to gs://"),
    (["-a", "elsewhere/wip.tgz"], "elsewhere/wip.tgz not found"),
    (["-d", "5.5"], "-d 5.5: not a DonkeyCar generation the toolkit builds for: use "
                    "-d 5.3 or -d 5.4"),
    (["-d", "4"], "-d 4: not a DonkeyCar generation"),
])
def test_bad_cloud_flags_are_one_line_before_anything_is_sent(car, run, idle_vertex,
                                                               flags, says):
    (car / "wip.tgz").write_bytes(b"archive")
    r = run("submit_cloud_train.sh", "-n", *flags, env=idle_vertex.env)
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith("submit_cloud_train.sh: ") and says in line, line
    if "accelerator" in says:
        assert "NVIDIA_TESLA_T4" in line and "NVIDIA_L4" in line and "-g none" in line
    assert r.stdout == "" and idle_vertex.requests == []


def test_help_and_usage(run):
    r = run("submit_cloud_train.sh", "-h")
    assert r.returncode == 0 and r.stdout.startswith("Summary: ")
    for flag in ("-M MACHINE", "-g ACCEL[:N]", "[-S]", "[-w]", "[-n]", "NVIDIA_TESLA_T4:1",
                 "-d 5.3|5.4"):
        assert flag in r.stdout
    r = run("submit_cloud_train.sh", "-g")
    assert r.returncode == 2 and "-g needs a value" in r.stderr
    assert "Usage: submit_cloud_train.sh" in r.stderr


@pytest.mark.parametrize("flag,generation", [(None, GENERATION), ("5.3", "5.3"),
                                             ("5.4", "5.4"), ("v5.4.0", "5.4")])
def test_d_picks_the_image_of_the_cars_generation(car, run, idle_vertex, flag,
                                                  generation):
    """Without -d the image is that of the DonkeyCar installed here; -d 5.3 or
    -d 5.4 picks TRAINER_IMAGE:dk5.3 or :dk5.4 (any tag TRAINER_IMAGE has is
    replaced), so the cloud model loads on a car of that generation."""
    (car / "wip.tgz").write_bytes(b"archive")
    body, _ = dry_run(run, idle_vertex.env, *(["-d", flag] if flag else []))
    assert check(DOC, JOB, body) == []
    container = body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    assert container["imageUri"] == image(generation)
    assert body["labels"]["donkeycar"] == generation.replace(".", "-")
    assert idle_vertex.requests == []


# -- submit_cloud_makemovie.sh -------------------------------------------------

MOVIE_CASES = {           # flags -> what trainer.movie gets, and the rest of the job
    "defaults": ([], dict(start=0, end=-1, plain=False, force=False,
                          output=f"gs://{BUCKET}/movies/pilot-wip.mp4"),
                 dict(accelerator=("NVIDIA_TESLA_T4", 1), spot=None, generation=GENERATION,
                      machine="n1-standard-8")),
    "everything": (["-m", "models/pilot-old.h5", "-s", "20", "-e", "80", "-p",
                    "-o", "plain.mp4", "-f", "-S", "-g", "none", "-M", "n1-highcpu-16",
                    "-d", OTHER],
                   dict(start=20, end=80, plain=True, force=True,
                        output=f"gs://{BUCKET}/movies/plain.mp4"),
                   dict(accelerator=None, spot="SPOT", generation=OTHER,
                        machine="n1-highcpu-16")),
    "from the bucket": (["-m", f"gs://{BUCKET}/models/pilot-x.h5",
                         "-a", f"gs://{BUCKET}/training/laps.tgz", "-e", "60",
                         "-o", "gs://other-bucket/films/x.mp4", "-M", "g2-standard-24"],
                        dict(start=0, end=60, plain=False, force=False,
                             output="gs://other-bucket/films/x.mp4"),
                        dict(accelerator=("NVIDIA_L4", 2), spot=None,
                             generation=GENERATION, machine="g2-standard-24")),
}


@pytest.mark.parametrize("case", MOVIE_CASES)
def test_every_movie_job_is_a_valid_custom_job_running_trainer_movie(car, run, request,
                                                                     idle_vertex, case):
    flags, expected_args, expected_job = MOVIE_CASES[case]
    if case == "from the bucket":     # the dry run looks them up there: they must be
        gcs = request.getfixturevalue("gcs")
        gcs.put("models/pilot-x.h5", b"h5")
        gcs.put("training/laps.tgz", b"archive")
        idle_vertex = request.getfixturevalue("make_vertex")(gcs, run_jobs=False)
    (car / "wip.tgz").write_bytes(b"stands for an archive; a dry run does not read it")
    (car / "models").mkdir(exist_ok=True)
    for name in ("pilot-wip.h5", "pilot-old.h5"):
        (car / "models" / name).write_bytes(b"h5")
    body, notes = dry_run(run, idle_vertex.env, *flags, script="submit_cloud_makemovie.sh")

    assert check(DOC, JOB, body) == []
    [pool] = body["jobSpec"]["workerPoolSpecs"]
    container = pool["containerSpec"]
    assert container["command"] == ["python", "-m", "trainer.movie"]
    assert container["imageUri"] == image(expected_job["generation"])
    machine = pool["machineSpec"]
    assert machine["machineType"] == expected_job["machine"]
    assert ((machine["acceleratorType"], machine["acceleratorCount"])
            if "acceleratorType" in machine else None) == expected_job["accelerator"]
    assert body["jobSpec"]["scheduling"].get("strategy") == expected_job["spot"]
    assert body["labels"]["kind"] == "movie"
    staging = body["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"]
    assert staging == f"gs://{BUCKET}/job/{body['displayName']}/"

    job = movie_args(container["args"])        # the job's own parser takes them
    assert {k: getattr(job, k) for k in expected_args} == expected_args
    if case == "from the bucket":                  # used where they are, nothing uploaded
        assert (job.model, job.archive) == (f"gs://{BUCKET}/models/pilot-x.h5",
                                            f"gs://{BUCKET}/training/laps.tgz")
        assert "would upload" not in notes
    else:                                          # a local model travels with the job
        model = "pilot-old.h5" if case == "everything" else "pilot-wip.h5"
        assert job.archive == f"gs://{BUCKET}/training/wip.tgz"
        assert job.model == f"{staging}model/{model}"
        assert f"would upload models/{model} to {job.model}" in notes
        assert f"would upload wip.tgz to gs://{BUCKET}/training/wip.tgz" in notes
    assert idle_vertex.requests == []


def test_a_movie_job_runs_the_generation_of_the_models_card(car, run, idle_vertex):
    """The card beside the model (pilot-wip.json) says which DonkeyCar made it:
    without -d that generation's image makes the movie; -d still decides."""
    (car / "wip.tgz").write_bytes(b"archive")
    (car / "models").mkdir(exist_ok=True)
    (car / "models" / "pilot-wip.h5").write_bytes(b"h5")
    (car / "models" / "pilot-wip.json").write_text(json.dumps(
        {"versions": {"donkeycar": OTHER + ".0", "donkeycar_generation": OTHER}}))
    for flags, generation in (([], OTHER), (["-d", GENERATION], GENERATION)):
        body, _ = dry_run(run, idle_vertex.env, *flags, script="submit_cloud_makemovie.sh")
        assert body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["imageUri"] == \
            image(generation)


@pytest.mark.parametrize("flags,says", [
    (["-s", "x"], "-s x: give a record number (0 or more), e.g. -s 100"),
    (["-s", "50", "-e", "10"], "-s 50 -e 10: END must be after START"),
    (["-m", "elsewhere/pilot.h5"], "elsewhere/pilot.h5 not found"),
    (["-g", "NVIDIA_T4"], "unknown accelerator NVIDIA_T4"),
    (["-d", "6.0"], "-d 6.0: not a DonkeyCar generation"),
    (["-o", "films/"], "-o films/ names no file: give e.g. -o pilot-wip.mp4"),
])
def test_bad_movie_flags_are_one_line_before_anything_is_sent(car, run, idle_vertex,
                                                              flags, says):
    (car / "wip.tgz").write_bytes(b"archive")
    r = run("submit_cloud_makemovie.sh", "-n", *flags, env=idle_vertex.env)
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith("submit_cloud_makemovie.sh: ") and says in line, line
    assert r.stdout == "" and idle_vertex.requests == []
