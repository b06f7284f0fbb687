"""A cloud job honest about its GPU, its restarts and its project, and a
submit that checks what it can before a machine is paid for. The jobs run on
the Vertex stand-in (tests/vertex_standin.py) with this machine's Python,
which has no GPU: the one thing here that cannot be real."""
import gzip
import hashlib
import json
import re

import httplib2
import pytest
from google_standin import service_disabled
from googleapiclient.errors import HttpError
from helpers import one_line_error

from trainer.client import vertex
from trainer.core import cloud
from trainer.core.bucket import OUTPUTS, claim, model_files
from trainer.core.errors import UserError
from trainer.core.storage import Storage
from trainer.job import restarts


@pytest.fixture
def wip(car):
    """wip.tgz beside the car's config: what a dry run plans to upload."""
    (car / "wip.tgz").write_bytes(b"stands for an archive; a dry run does not read it")


def dry_run(run, env, *flags):
    r = run("submit_cloud_train.sh", "-n", *flags, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


def container(body):
    return body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]


def machine(body):
    return body["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]


# -- GPU truth -------------------------------------------------------------------

def test_a_gpu_job_without_a_gpu_fails_before_it_fetches_anything(car, run, vertex):
    """Done-when 2: sent with the default T4 to a machine with no GPU (the
    stand-in), the job stops at its first step with the GPU line, and -w
    exits 1 naming it. The archive is a stand-in: read, it would fail as
    damaged."""
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive, as far as gzip goes"))
    r = run("submit_cloud_train.sh", "-w", env=vertex.env, timeout=600)
    assert r.returncode == 1
    line = one_line_error(r)
    assert "this job asked for NVIDIA_TESLA_T4:1 but TensorFlow sees no GPU" in line
    assert "rebuild the image with build_image.sh, or submit with -g none" in line
    assert "records" not in r.stdout          # no tub was read: nothing was fetched
    env = container(next(b for m, p, b in vertex.requests if p.endswith("/customJobs")))
    assert {"name": "TRAINER_ACCELERATOR", "value": "NVIDIA_TESLA_T4:1"} in env["env"]


def test_a_cpu_job_says_so_and_records_its_speed(cloud_trained):
    """-g none trains on the CPU: the log says what TensorFlow sees, and the
    card names the device and the frames per second. (The session's cloud
    run, tests/trained.py.)"""
    car, r, vertex = cloud_trained.car, cloud_trained.result, cloud_trained.vertex
    assert "TensorFlow sees no GPU: training on the CPU" in r.stdout
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    assert card["device"] == {"gpus": [], "kind": "CPU"}
    assert card["frames_per_second"] > 0
    assert card["records"]["train"] + card["records"]["validation"] == 180   # 20 held out
    env = container(next(b for m, p, b in vertex.requests if p.endswith("/customJobs")))
    assert "TRAINER_ACCELERATOR" not in {e["name"] for e in env["env"]}


# -- restarts ----------------------------------------------------------------------

def test_a_worker_restarted_after_publishing_leaves_one_complete_set(cloud_trained):
    """Done-when 3: Vertex AI starts the worker again after it published (a
    maintenance event, a preemption): the restart finds the card of its own
    job, stops at once, and the job succeeds with the first attempt's set.
    (The session's cloud run, restarted once: tests/trained.py.)"""
    r, gcs = cloud_trained.result, cloud_trained.bucket
    assert cloud_trained.vertex.restarts == 1
    jid = re.search(r"created Vertex AI job (\d+) ", r.stdout).group(1)
    assert (f"gs://robocar-test/models/pilot-wip.json was published by an earlier "
            f"attempt of job {jid}: the model is complete, nothing left to do") in r.stdout
    assert r.stdout.count("model pilot-wip: best val_loss") == 1       # trained once
    card = json.loads(gcs.read("models/pilot-wip.json"))
    assert card["job_id"] == jid
    names = gcs.names("models/")
    assert names == sorted(f"models/pilot-wip{s}" for s in OUTPUTS)
    for name, entry in card["files"].items():          # one consistent set
        assert hashlib.sha256(gcs.read(f"models/{name}")).hexdigest() == entry["sha256"]


def test_a_restart_after_a_users_mistake_ends_at_once(car, synth_tub, run, vertex):
    """The first attempt fails on the user's config; Vertex AI's restart of
    the worker ends with the same line before fetching the archive again."""
    vertex.restarts = 1
    assert run("make_tub_archive.sh").returncode == 0
    r = run("submit_cloud_train.sh", "-g", "none", "-w", "-c", "MAX_EPOCH=3",
            env=vertex.env, timeout=900)
    assert r.returncode == 1
    jid = re.search(r"created Vertex AI job (\d+) ", r.stdout).group(1)
    assert f"an earlier attempt of job {jid} ended so; Vertex AI's restart stops here" \
        in one_line_error(r)
    assert "-c MAX_EPOCH: the config has no MAX_EPOCH" in one_line_error(r)
    assert r.stdout.count("TensorFlow sees") == 1       # the restart never got that far

@pytest.fixture
def job_env(tmp_path, monkeypatch):
    """Inside a Vertex AI job: its id, and its checkpoint folder (local here)."""
    monkeypatch.setenv("CLOUD_ML_JOB_ID", "123")
    monkeypatch.setenv("AIP_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    return tmp_path


def test_a_users_mistake_is_final_for_the_restarted_attempt(job_env):
    """The first attempt fails for a reason of the user's; Vertex AI starts
    it again with the same job id: the restart ends at once, same line."""
    storage = Storage()
    with pytest.raises(UserError, match="^the config is broken$"):
        with restarts.remembered(storage):
            raise UserError("the config is broken")
    ran = []
    with pytest.raises(UserError, match=r"^the config is broken \(an earlier attempt of "
                                        r"job 123 ended so; Vertex AI's restart stops"):
        with restarts.remembered(storage):
            ran.append("fetch")
    assert ran == []


def test_a_crash_is_not_remembered(job_env):
    """Only the user's errors are final: a bug or a preemption may be retried."""
    storage = Storage()
    with pytest.raises(ZeroDivisionError):
        with restarts.remembered(storage):
            raise ZeroDivisionError
    with restarts.remembered(storage):
        pass                                    # the restart runs


def test_the_card_of_this_job_means_the_model_is_complete(job_env):
    storage = Storage()
    card = job_env / "pilot-wip.json"
    said = []
    assert not restarts.published_by_this_job(storage, str(card), said.append)
    card.write_text(json.dumps({"job_id": "999"}))        # another job's model
    assert not restarts.published_by_this_job(storage, str(card), said.append)
    card.write_text(json.dumps({"job_id": "123"}))
    assert restarts.published_by_this_job(storage, str(card), said.append)
    assert said == [f"{card} was published by an earlier attempt of job 123: the model "
                    "is complete, nothing left to do"]


def test_a_restart_replaces_only_what_its_own_attempt_half_published(job_env):
    """Stopped in the middle of publishing (a preemption): the restart may
    replace the files its earlier attempt wrote, and still refuses files of
    another run."""
    storage = Storage()
    out = job_env / "models"
    out.mkdir()
    outputs = model_files(str(out), "pilot-wip")
    record = restarts.recorder(storage)
    for suffix in OUTPUTS[:2]:                      # the first attempt got this far
        (out / f"pilot-wip{suffix}").write_bytes(b"attempt 1")
        record(outputs[suffix], storage.stamp(outputs[suffix]))
    claimed = claim(storage, outputs, False, ours=restarts.own_outputs(storage))
    assert [claimed.stamps[s] != 0 for s in OUTPUTS[:3]] == [True, True, False]
    (out / f"pilot-wip{OUTPUTS[2]}").write_bytes(b"another run's")
    with pytest.raises(UserError, match=rf"pilot-wip\{OUTPUTS[2]} already exists: pass -f"):
        claim(storage, outputs, False, ours=restarts.own_outputs(storage))


def test_outside_a_job_nothing_is_remembered(tmp_path, monkeypatch):
    monkeypatch.delenv("CLOUD_ML_JOB_ID", raising=False)
    monkeypatch.setenv("AIP_CHECKPOINT_DIR", str(tmp_path))
    with pytest.raises(UserError):
        with restarts.remembered(Storage()):
            raise UserError("x")
    assert list(tmp_path.iterdir()) == []


# -- project and credentials ------------------------------------------------------------

def test_the_wandb_secret_is_named_in_the_users_project(car, wip, run, idle_vertex):
    """Done-when 4: inside a job the default project is Google's, so the
    secret goes with the project it lives in."""
    env = dict(idle_vertex.env, WANDB_PROJECT="robocar", WANDB_API_KEY_SECRET="wandb-api-key",
               GOOGLE_CLOUD_PROJECT="my-project")
    body, _ = dry_run(run, env)
    assert {"name": "WANDB_API_KEY_SECRET",
            "value": "projects/my-project/secrets/wandb-api-key"} in container(body)["env"]


def test_user_credentials_bill_the_project_they_are_used_for(monkeypatch):
    from google.oauth2.credentials import Credentials

    old_login = Credentials(token="t", quota_project_id="an-old-project")
    monkeypatch.setattr("google.auth.default", lambda scopes=None: (old_login, None))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    monkeypatch.delenv("CLOUDSDK_AUTH_DISABLE_CREDENTIALS", raising=False)
    creds, project = cloud.credentials_and_project()
    assert project == "my-project" and creds.quota_project_id == "my-project"


def test_a_403_for_a_disabled_api_names_the_api_and_the_quota_project_fix():
    """Google's SERVICE_DISABLED answer (its ErrorInfo reason and metadata)
    names the command that enables the API, and the quota-project fix; the
    same words without the ErrorInfo are not taken for it."""
    _, body = service_disabled("aiplatform.googleapis.com", "1234")
    answer = HttpError(httplib2.Response({"status": 403}), json.dumps(body).encode())
    line = cloud.http_error_message(answer)
    assert line.startswith("HTTP 403 PERMISSION_DENIED SERVICE_DISABLED: Vertex AI API has "
                           "not been used in project 1234")
    assert "`gcloud services enable aiplatform.googleapis.com --project YOUR_PROJECT`" in line
    assert "https://console.developers.google.com/apis/api/aiplatform.googleapis.com/" in line
    assert "gcloud auth application-default set-quota-project YOUR_PROJECT" in line
    del body["error"]["details"]
    words_only = HttpError(httplib2.Response({"status": 403}), json.dumps(body).encode())
    assert "gcloud services enable" not in cloud.http_error_message(words_only)


# -- checks before sending -------------------------------------------------------------

def test_every_missing_setting_is_named_at_once(car, wip, run, idle_vertex):
    env = {k: v for k, v in idle_vertex.env.items()
           if k not in ("REGION", "TRAINER_IMAGE", "STEERING_BUCKET_NAME")}
    r = run("submit_cloud_train.sh", "-n", env=env)
    assert r.returncode == 1
    assert one_line_error(r) == (
        "submit_cloud_train.sh: REGION, TRAINER_IMAGE and STEERING_BUCKET_NAME are not "
        "set: export REGION=europe-west1 TRAINER_IMAGE=europe-west1-docker.pkg.dev/"
        "my-project/robocar/trainer STEERING_BUCKET_NAME=my-robocar-bucket")


def test_the_dry_run_refuses_a_model_type_donkeycar_does_not_know(car, wip, run, idle_vertex):
    r = run("submit_cloud_train.sh", "-n", "--type", "linnear", env=idle_vertex.env)
    assert r.returncode == 1 and r.stdout == ""
    line = one_line_error(r)
    assert line.startswith("submit_cloud_train.sh: --type linnear: DonkeyCar knows no such "
                           "model type: did you mean linear? use one of ")
    assert {"linear", "categorical"} <= set(line.split("use one of ")[1].split(", "))
    assert idle_vertex.requests == []


def test_the_dry_run_refuses_an_archive_that_is_nowhere(car, run, idle_vertex):
    r = run("submit_cloud_train.sh", "-n", "-a", "nosuch/laps.tgz", env=idle_vertex.env)
    assert r.returncode == 1
    assert one_line_error(r) == ("submit_cloud_train.sh: archive nosuch/laps.tgz not "
                                 "found: check the path")


@pytest.mark.parametrize("flags,expected", [
    (["-M", "g2-standard-8"], ("NVIDIA_L4", 1)),
    (["-M", "g2-standard-24"], ("NVIDIA_L4", 2)),
    (["-M", "a2-highgpu-1g"], ("NVIDIA_TESLA_A100", 1)),
    (["-M", "n1-standard-16"], ("NVIDIA_TESLA_T4", 1)),
    (["-M", "n1-standard-8", "-g", "NVIDIA_TESLA_V100:2"], ("NVIDIA_TESLA_V100", 2)),
])
def test_a_gpu_machine_gets_its_own_gpu(car, wip, run, idle_vertex, flags, expected):
    body, _ = dry_run(run, idle_vertex.env, *flags)
    spec = machine(body)
    assert (spec["acceleratorType"], spec["acceleratorCount"]) == expected


@pytest.mark.parametrize("flags,says", [
    (["-M", "n1-standard-8", "-g", "NVIDIA_L4"], "Vertex AI refuses this pair (an n1 "
     "machine takes NVIDIA_TESLA_T4, "),
    (["-M", "g2-standard-8", "-g", "NVIDIA_TESLA_T4"], "a g2-standard-8 comes with 1 x "
     "NVIDIA_L4: leave -g out, or pass -g NVIDIA_L4:1"),
    (["-M", "e2-standard-8"], "-M e2-standard-8 takes no GPU: pass -g none"),
])
def test_a_pair_vertex_would_refuse_is_refused_here(car, wip, run, idle_vertex, flags, says):
    r = run("submit_cloud_train.sh", "-n", *flags, env=idle_vertex.env)
    assert r.returncode == 1 and says in one_line_error(r)
    assert idle_vertex.requests == []


@pytest.mark.parametrize("flags,says", [
    (["-g", "NVIDIA_TESLA_T4:3"], "-M n1-standard-8 -g NVIDIA_TESLA_T4:3: Vertex AI attaches "
     "NVIDIA_TESLA_T4 in counts of 1, 2, 4 only: pass e.g. -g NVIDIA_TESLA_T4:2"),
    (["-M", "n1-standard-16", "-g", "NVIDIA_TESLA_V100"], "-M n1-standard-16 -g "
     "NVIDIA_TESLA_V100: Vertex AI gives 1 x NVIDIA_TESLA_V100 at most 8 vCPUs, and "
     "n1-standard-16 has 16: pass -g NVIDIA_TESLA_V100:2, or a smaller machine such as "
     "-M n1-standard-8"),
    (["-g", "NVIDIA_TESLA_K80"], "-g NVIDIA_TESLA_K80: Vertex AI no longer offers "
     "NVIDIA_TESLA_K80 (Nvidia Tesla K80 GPU has reached end of support, see "
     "https://cloud.google.com/compute/docs/eol/k80-eol): use -g NVIDIA_TESLA_T4:1 instead"),
    (["-M", "n1-standard-32"], "-M n1-standard-32: Vertex AI gives 1 x NVIDIA_TESLA_T4 at "
     "most 16 vCPUs, and n1-standard-32 has 32: pass -g NVIDIA_TESLA_T4:2"),
])
def test_a_pair_vertex_refuses_at_create_is_refused_before_staging(car, run, gcs,
                                                                   make_vertex, flags, says):
    """Done-when 4: Vertex AI answers these with HTTP 400 when the job is
    created, after the archive went up; here nothing is uploaded or asked."""
    (car / "wip.tgz").write_bytes(b"an archive")
    vx = make_vertex(gcs, run_jobs=False)
    r = run("submit_cloud_train.sh", *flags, env=vx.env)
    assert r.returncode == 1
    assert one_line_error(r).startswith(f"submit_cloud_train.sh: {says}")
    assert gcs.names() == [] and vx.requests == [] and vx.google.requests == []


def test_the_dry_run_says_what_to_save_as_job_yaml(car, wip, run, idle_vertex):
    _, notes = dry_run(run, idle_vertex.env)
    assert 'save the "jobSpec" object printed above as job.yaml, then run:' in notes
    assert "--config job.yaml" in notes


# -- logs --------------------------------------------------------------------------------

class _Tail:
    """A log whose lines arrive late: a list of batches, one per poll."""

    def __init__(self, batches):
        self.batches, self.entries, self.last_error = list(batches), [], None

    def fetch(self):
        lines = self.batches.pop(0) if self.batches else []
        for line in lines:
            if line.startswith("trainer: "):
                self.last_error = line
        return lines


class _Jobs:
    def __init__(self, state):
        self.state = state

    def get(self, name):
        return {"name": name, "state": self.state}


def test_a_failed_jobs_last_line_is_waited_for():
    """Cloud Logging delivers the error after the job has ended: -w keeps
    reading until it has come, then until the log is quiet."""
    tail = _Tail([[], [], [], [], ["Epoch 3/10"], [], [],
                  ["trainer: parity check failed: the tflite model differs"], [], [], []])
    said = []
    vertex.follow(_Jobs("JOB_STATE_FAILED"), tail, "jobs/1", say=said.append,
                  sleep=lambda s: None)
    assert "trainer: parity check failed: the tflite model differs" in said
    assert tail.last_error == "trainer: parity check failed: the tflite model differs"


def test_a_succeeded_job_stops_reading_when_the_log_is_quiet():
    tail = _Tail([["done"]] + [[]] * 50)
    polls = []
    vertex.follow(_Jobs("JOB_STATE_SUCCEEDED"), tail, "jobs/1", say=lambda s: None,
                  sleep=polls.append)
    assert len(polls) == vertex.LATE_QUIET


def test_a_training_log_is_one_line_an_epoch_and_no_converter_chatter(trained):
    """Piped to a file (as in the cloud), DonkeyCar's VERBOSE_TRAIN is 2: no
    progress-bar backspaces; the TFLite converter's summary, XNNPACK's notice
    and the job's temporary paths stay out. (The session's training,
    `local_train.sh -c MAX_EPOCHS=2`, W&B's lines included: tests/trained.py.)"""
    r = trained.result
    both = r.stdout + r.stderr
    for noise in ("\x08", "Non-Converted Ops", "XNNPACK", "/tmp/robocar-train-",
                  "considered legacy"):
        assert noise not in both, noise
    assert re.search(r"^Epoch 2/2$", r.stdout, re.M)
    assert max(len(line) for line in both.splitlines()) < 400
    assert r.stdout.splitlines()[-1].startswith(
        "to drive it: python manage.py drive --model models/pilot-wip.tflite --type "
        "tflite_linear")
