"""submit_cloud_train.sh end to end: the archive goes up to the bucket (the
GCS emulator), the job is created on the Vertex stand-in, which runs the
job's own container command against the bucket, and -w follows it to the
end and brings the models home. Also: a crashing job, Ctrl-C, and each
missing setting; its hardening rows (tests/hardening.py) at the end."""
import gzip
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess

import pytest
from discovery_schema import check
from fixtures_gcs import free_port
from hardening import (
    NO_BUCKET_VAR,
    Lines,
    Row,
    cloud,
    ctrl_c_as_in_a_terminal,
    good_archive,
    gzip_archive,
    row_ids,
)
from helpers import one_line_error
from untrusted import archive_named

from trainer.core.bucket import OUTPUTS, bring_models_home
from trainer.core.cloud import discovery_document
from trainer.core.storage import Storage


def md5(data):
    return hashlib.md5(data).hexdigest()


def job_id(stdout):
    return re.search(r"created Vertex AI job (\d+) ", stdout).group(1)


def test_wait_trains_from_the_bucket_and_brings_the_models_home(cloud_trained):
    """Done-when 2: -w uploads the archive, the job trains from the bucket, the
    model files land in the bucket and in ./models, the car's DonkeyCar loads
    them, and the card holds the job id. An early log line that Cloud Logging
    delivers only after the job ended (with its own, older timestamp) is
    shown all the same, after the lines that overtook it. (The session's
    cloud run, which test_cloud_job.py reads too: tests/trained.py.)"""
    car, r = cloud_trained.car, cloud_trained.result
    vertex, gcs = cloud_trained.vertex, cloud_trained.bucket
    out = r.stdout
    late = out.index("TensorFlow sees no GPU: training on the CPU")
    assert out.index("model pilot-wip: best val_loss") < late < out.index(": succeeded")
    assert "uploaded wip.tgz to gs://robocar-test/training/wip.tgz" in out
    jid = job_id(out)
    # states as they changed, the job's own log lines, then the duration
    assert out.index(": pending") < out.index(": running") < out.index(": succeeded")
    assert "model pilot-wip: best val_loss" in out           # printed by the job
    assert re.search(rf"job {jid} succeeded: \d+m\d\ds on the machine", out)
    assert gcs.md5("training/wip.tgz") == md5((car / "wip.tgz").read_bytes())

    [(_, _, body)] = [q for q in vertex.requests if q[1].endswith("/customJobs")]
    # the stand-in answered with what Vertex's schema allows (keeps the fake honest)
    aiplatform = discovery_document("aiplatform", "v1")
    assert check(aiplatform, "GoogleCloudAiplatformV1CustomJob", vertex.jobs[jid],
                 response=True) == []
    assert body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["args"] == [
        "--archive", "gs://robocar-test/training/wip.tgz", "--model-name", "pilot-wip",
        "--output", "gs://robocar-test/models"]

    in_bucket = gcs.names("models/")
    assert in_bucket == sorted(f"models/pilot-wip{ext}" for ext in OUTPUTS)
    for ext in OUTPUTS:
        local = car / "models" / f"pilot-wip{ext}"
        assert md5(local.read_bytes()) == gcs.md5(f"models/pilot-wip{ext}"), local
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    assert card["job_id"] == jid
    assert card["archives"][0]["uri"] == "gs://robocar-test/training/wip.tgz"
    assert card["archives"][0]["sha256"] == hashlib.sha256(
        (car / "wip.tgz").read_bytes()).hexdigest()
    assert card["records"]["live"] == 200

    from donkeycar.config import load_config
    from donkeycar.utils import get_model_by_type
    cfg = load_config(str(car / "config.py"))
    for kind, ext in (("linear", "h5"), ("tflite_linear", "tflite")):
        pilot = get_model_by_type(kind, cfg)
        pilot.load(str(car / "models" / f"pilot-wip.{ext}"))
        steering, throttle = pilot.run(
            __import__("numpy").zeros((cfg.IMAGE_H, cfg.IMAGE_W, 3), "uint8"))
        assert -1.5 <= float(steering) <= 1.5 and -1.5 <= float(throttle) <= 1.5


def test_a_crashing_job_fails_the_wait_with_its_error(car, run, vertex, gcs):
    """Done-when 3: the job's own error, exit 1, no model files locally. The
    archive (a bare name, found in the bucket) is damaged, so the job dies;
    its error line reaches Cloud Logging only seconds after the job ended,
    and is still the reason given."""
    gcs.put("training/wip.tgz", gzip.compress(b"not a tar"))
    vertex.late = {r"^trainer: archive ": 4.0}
    r = run("submit_cloud_train.sh", "-g", "none", "-w", env=vertex.env, timeout=300)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    line = one_line_error(r)
    jid = job_id(r.stdout)
    assert line.startswith(f"submit_cloud_train.sh: job {jid} failed: trainer: archive ")
    assert "is damaged or not a gzip tar" in line
    assert f"job {jid}: failed" in r.stdout                  # the state, as it came
    assert r.stdout.index(f"job {jid}: running") < r.stdout.index("trainer: archive ")
    assert not (car / "models").exists() or not any((car / "models").glob("pilot-wip.*"))
    assert gcs.names("models/") == []


def test_an_unreadable_log_is_one_warning_and_the_job_is_still_followed(car, run,
                                                                        vertex, gcs):
    gcs.put("training/wip.tgz", gzip.compress(b"not a tar"))
    vertex.logs_denied = True
    r = run("submit_cloud_train.sh", "-g", "none", "-w", env=vertex.env, timeout=300)
    assert r.returncode == 1
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "cannot read the job's log" in warnings[0]
    assert "HTTP 403 PERMISSION_DENIED" in warnings[0]
    assert "following its state only" in warnings[0]
    jid = job_id(r.stdout)
    assert one_line_error(r).startswith(
        f"submit_cloud_train.sh: job {jid} failed: The replica workerpool0-0 exited "
        "with a non-zero status of 1")


def test_without_wait_it_says_where_to_look_and_how_to_follow(car, run, gcs,
                                                                make_vertex):
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    vx = make_vertex(gcs, run_jobs=False)
    r = run("submit_cloud_train.sh", "-S", env=vx.env)
    assert r.returncode == 0, r.stderr
    jid = job_id(r.stdout)
    assert (f"console: https://console.cloud.google.com/ai/platform/locations/"
            f"europe-west1/training/{jid}?project=robocar-test") in r.stdout
    assert (f"gcloud ai custom-jobs stream-logs {jid} --region=europe-west1 "
            "--project=robocar-test") in r.stdout
    assert "./download_models.sh -m pilot-wip" in r.stdout
    assert vx.jobs[jid]["jobSpec"]["scheduling"]["strategy"] == "SPOT"


def test_ctrl_c_while_waiting_leaves_the_job_running_and_says_how_to_cancel(
        car, gcs, make_vertex):
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    vx = make_vertex(gcs, run_jobs=False)                   # the job stays pending
    env = vx.env
    proc = subprocess.Popen([str(car / "submit_cloud_train.sh"), "-g", "none", "-w"], cwd=car,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=ctrl_c_as_in_a_terminal)
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        out.wait(r": pending", proc, timeout=120)       # as a user watches it
        os.killpg(proc.pid, signal.SIGINT)              # what Ctrl-C in a terminal does
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out, err = out.rest(), err.rest()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    jid = job_id(out)
    assert f"job {jid} keeps running in the cloud" in err
    assert vx.jobs[jid]["state"] == "JOB_STATE_PENDING"
    cancel = next(ln.split(":", 1)[1] for ln in err.splitlines()
                  if ln.strip().startswith("cancel it:"))
    r = subprocess.run(shlex.split(cancel), env=env, capture_output=True, text=True,
                       timeout=120)                     # gcloud, as printed
    assert r.returncode == 0, r.stderr
    assert vx.jobs[jid]["state"] == "JOB_STATE_CANCELLED"


def test_an_existing_model_is_refused_before_a_job_is_paid_for(car, run, vertex, gcs):
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    gcs.put("models/pilot-wip.h5", b"an older model")
    r = run("submit_cloud_train.sh", "-m", "pilot-wip", env=vertex.env)
    assert r.returncode == 1
    assert one_line_error(r) == (
        "submit_cloud_train.sh: gs://robocar-test/models/pilot-wip.h5 already exists: "
        "pass -f to replace the model, or -m NAME to train another")
    assert vertex.requests == []



def test_a_changed_archive_replaces_the_bucket_copy_only_with_f(car, run, gcs, make_vertex):
    """Record more, archive again, submit: the bucket's older wip.tgz is kept
    unless -f, and the job then trains from the new one."""
    gcs.put("training/wip.tgz", gzip.compress(b"last week's laps"))
    (car / "wip.tgz").write_bytes(gzip.compress(b"this week's laps"))
    vx = make_vertex(gcs, run_jobs=False)
    r = run("submit_cloud_train.sh", env=vx.env)
    assert r.returncode == 1
    assert one_line_error(r) == (
        "submit_cloud_train.sh: gs://robocar-test/training/wip.tgz already exists and "
        "differs from wip.tgz: pass -f to replace it, or upload under another name")
    assert vx.jobs == {}
    r = run("submit_cloud_train.sh", "-f", env=vx.env)
    assert r.returncode == 0, r.stderr
    assert gcs.md5("training/wip.tgz") == md5((car / "wip.tgz").read_bytes())
    [job] = vx.jobs.values()
    assert "--force" in job["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["args"]

@pytest.mark.parametrize("variable,says", [
    ("REGION", "REGION is not set: export REGION=europe-west1"),
    ("TRAINER_IMAGE", "TRAINER_IMAGE is not set: export TRAINER_IMAGE="
                      "europe-west1-docker.pkg.dev/my-project/robocar/trainer, the image "
                      "./build_image.sh pushes"),
    ("STEERING_BUCKET_NAME", "e.g. export STEERING_BUCKET_NAME=my-robocar-bucket"),
    ("GOOGLE_CLOUD_PROJECT", "no Google Cloud project: export GOOGLE_CLOUD_PROJECT="
                             "my-project, or run `gcloud config set project my-project`"),
])
def test_each_missing_setting_is_one_line_naming_the_fix(car, run, vertex, gcs,
                                                         variable, says):
    """Done-when 4 (gcloud has no project configured here, and with
    CLOUDSDK_AUTH_DISABLE_CREDENTIALS there are no credentials to ask)."""
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    env = dict(vertex.env)
    env.pop(variable)
    r = run("submit_cloud_train.sh", "-g", "none", "-w", env=env)
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith("submit_cloud_train.sh: ") and says in line, line
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert vertex.requests == [] and gcs.names() == []      # nothing sent


def test_the_project_comes_from_gcloud_when_not_exported(car, run, gcs, make_vertex):
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    vx = make_vertex(gcs, run_jobs=False)
    env = dict(vx.env)
    env.pop("GOOGLE_CLOUD_PROJECT")
    subprocess.run(["gcloud", "config", "set", "project", "from-gcloud"], env=env,
                   check=True, capture_output=True)
    r = run("submit_cloud_train.sh", env=env)
    assert r.returncode == 0, r.stderr
    [job] = vx.jobs.values()
    assert job["name"].startswith("projects/from-gcloud/locations/europe-west1/")


@pytest.mark.parametrize("key,says", [
    ("/nowhere/key.json", "GOOGLE_APPLICATION_CREDENTIALS=/nowhere/key.json names no "
                          "file: point it at a service-account key"),
    (None, "no Google Cloud credentials found: run `gcloud auth application-default "
           "login`, or export GOOGLE_APPLICATION_CREDENTIALS=/path/to/key.json"),
])
def test_missing_credentials_are_one_line_naming_the_fix(car, run, vertex, gcs, tmp_path,
                                                         key, says):
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    env = dict(vertex.env, HOME=str(tmp_path), NO_GCE_CHECK="True")  # not on a GCE VM
    env.pop("CLOUDSDK_AUTH_DISABLE_CREDENTIALS")
    if key:
        env["GOOGLE_APPLICATION_CREDENTIALS"] = key
    r = run("submit_cloud_train.sh", env=env)
    assert r.returncode == 1
    assert says in one_line_error(r)
    assert vertex.requests == [] and gcs.names() == []



def test_an_unreachable_vertex_endpoint_is_one_line(car, run, gcs, make_vertex):
    (car / "wip.tgz").write_bytes(gzip.compress(b"an archive"))
    vx = make_vertex(gcs)
    env = dict(vx.env, CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM="http://127.0.0.1:9/")
    r = run("submit_cloud_train.sh", "-g", "none", "-w", env=env)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert one_line_error(r).startswith(
        "submit_cloud_train.sh: creating the Vertex AI job failed: cannot reach "
        "127.0.0.1:9 (")


def test_models_of_another_output_folder_come_home_too(gcs, tmp_path, monkeypatch):
    """-o gs://BUCKET/elsewhere: -w downloads from there (not models/)."""
    for ext in OUTPUTS:
        gcs.put(f"experiments/pilot-x{ext}", f"file {ext}".encode())
    monkeypatch.chdir(tmp_path)
    said = []
    bring_models_home(Storage(gcs.bucket.client), "gs://robocar-test/experiments",
                      "pilot-x", say=said.append)
    for ext in OUTPUTS:
        assert (tmp_path / "models" / f"pilot-x{ext}").read_text() == f"file {ext}"
    assert len(said) == len(OUTPUTS)


# -- hardening rows (tests/hardening.py): settings first, nothing sent ----------------

def cloud_with_dead_google(ctx):
    gzip_archive(ctx)
    ctx.use_gcs()
    ctx.use_cloud(aiplatform=f"http://127.0.0.1:{free_port()}/")     # and every other API


ROWS = [
    Row("submit:no-REGION", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
        r"REGION is not set: export REGION=europe-west1$", env={"REGION": None}),
    Row("submit:no-TRAINER_IMAGE", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
        r"TRAINER_IMAGE is not set: export TRAINER_IMAGE=europe-west1-docker\.pkg\.dev/"
        r"my-project/robocar/trainer, the image \./build_image\.sh pushes$",
        env={"TRAINER_IMAGE": None}),
    Row("submit:no-bucket-variable", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
        NO_BUCKET_VAR, env={"STEERING_BUCKET_NAME": None}),
    Row("submit:no-project", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
        r"no Google Cloud project: export GOOGLE_CLOUD_PROJECT=my-project, or run "
        r"`gcloud config set project my-project`$", env={"GOOGLE_CLOUD_PROJECT": None}),
    # JOB_DIR is optional: unset, the job stages under gs://BUCKET/job/
    Row("submit:no-JOB_DIR-means-gs://BUCKET/job", cloud(gzip_archive),
        ("submit_cloud_train.sh", "-n"), 0,
        r"^  gcloud ai custom-jobs create --region europe-west1 ",
        out=r'"outputUriPrefix": "gs://robocar-test/job/pilot-wip-\d{8}-\d{6}/"',
        warnings=None),
    Row("submit:JOB_DIR-not-gs", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
        r"JOB_DIR=/tmp/job is not a gs:// URI: export JOB_DIR=gs://robocar-test/job, or "
        r"unset it$", env={"JOB_DIR": "/tmp/job"}),
    Row("submit:unknown-accelerator", cloud(gzip_archive),
        ("submit_cloud_train.sh", "-g", "bogus"), 1,
        r"-g bogus: unknown accelerator BOGUS: use one of .*NVIDIA_TESLA_T4.*, or -g none "
        r"for CPU only$"),
    # the first call is the check of the APIs, before anything is staged
    Row("submit:google-unreachable", cloud_with_dead_google, ("submit_cloud_train.sh",), 1,
        r"checking the APIs failed: cannot reach 127\.0\.0\.1:\d+ \(.+\): "
        r"check the network, or the CLOUDSDK_API_ENDPOINT_OVERRIDES_\* variables$"),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)


# -- trust boundaries: what an archive, a tub, a config or a model someone
# else made can make the script do (the setups: tests/untrusted.py) --

TRUST = [
    Row("submit:model-name-climbs-out", cloud(good_archive),
        ("submit_cloud_train.sh", "-n", "-m", "../models/x"), 1,
        r"-m '\.\./models/x' is not a plain name"),
    Row("submit:archive-name-with-a-space", cloud(archive_named("my run.tgz")),
        ("submit_cloud_train.sh", "-n", "-a", "my run.tgz"), 1,
        r"archive 'my run' makes the model name 'pilot-my run', which is not a plain name"),
]


@pytest.mark.parametrize("row", TRUST, ids=row_ids(TRUST))
def test_trust_boundaries(row, harden):
    harden(row)
