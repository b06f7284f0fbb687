"""--check, and the checks every submit makes before it stages anything
(trainer/client/check.py), against the project stand-in
(tests/google_standin.py, served by the Vertex stand-in) and the GCS
emulator: each problem a first real run meets is named with the command
that fixes it, all in one run; a project where all is well is all OK."""
import gzip
import json
import shlex
import subprocess
import urllib.request

import pytest
from google_standin import gpu_quota_metric
from helpers import one_line_error

from trainer.core.generations import GENERATIONS, local

GENERATION = local()
OTHER = next(g for g in GENERATIONS if g != GENERATION)     # its image is never built here
IMAGE = "europe-west1-docker.pkg.dev/robocar-test/robocar/trainer"
ACCOUNT = "robocar@example.com"
EU_BUCKET = "robocar-eu"          # in the jobs' REGION, europe-west1


@pytest.fixture
def project(make_vertex, gcs, car):
    """The stand-ins, with gcloud's account set as a user's is."""
    vx = make_vertex(gcs, run_jobs=False)
    subprocess.run(["gcloud", "config", "set", "account", ACCOUNT], env=vx.env, check=True,
                   capture_output=True, timeout=120)
    return vx


@pytest.fixture
def eu_bucket(gcs):
    """A bucket of the emulator in europe-west1 (the default one is in US;
    the emulator takes a bucket's location from a patch, not at creation)."""
    client = gcs.bucket.client
    if client.lookup_bucket(EU_BUCKET) is None:
        client.bucket(EU_BUCKET).create()
    patch = urllib.request.Request(f"{gcs.url}/storage/v1/b/{EU_BUCKET}", method="PATCH",
                                   data=json.dumps({"location": "EUROPE-WEST1"}).encode(),
                                   headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(patch, timeout=30):
        pass
    return EU_BUCKET


def check(run, env, *flags, script="submit_cloud_train.sh"):
    """(result, the report's lines, the verdict: the last line of stdout when
    all is OK, else the one line on stderr)."""
    r = run(script, "--check", *flags, env=env)
    lines = r.stdout.splitlines()
    if r.returncode == 0:
        assert r.stderr == ""
        return r, lines[:-1], lines[-1]
    return r, lines, one_line_error(r)


def fixes(lines):
    return [line for line in lines if line.startswith("FIX ")]


def test_check_names_each_problem_with_its_fix_in_one_run(run, project, gcs):
    """Done-when 2: an API off, the image of the generation not built, no GPU
    quota, a secret this account may not see, the bucket in another region:
    each named with its fix, in one run, exit 1; nothing is sent or staged."""
    google = project.google
    google.disabled.add("compute.googleapis.com")
    google.quota[gpu_quota_metric("NVIDIA_TESLA_T4", spot=True)] = 0
    google.denied.add("secretmanager.versions.get")
    google.tags.discard(f"dk{OTHER}")
    env = dict(project.env, WANDB_PROJECT="robocar", WANDB_API_KEY_SECRET="wandb-api-key")
    r, lines, verdict = check(run, env, "-d", OTHER, "-S")
    assert r.returncode == 1, r.stdout + r.stderr
    found = fixes(lines)
    expected = [
        "FIX  APIs: not enabled: compute.googleapis.com: gcloud services enable "
        "compute.googleapis.com --project robocar-test",
        "FIX  bucket gs://robocar-test: in US, while the jobs run in europe-west1: every job "
        "would read and write across regions (slower, and egress is billed): gcloud storage "
        "buckets create gs://robocar-test-europe-west1 --location=europe-west1 --project "
        "robocar-test && export STEERING_BUCKET_NAME=robocar-test-europe-west1",
        f"FIX  image {IMAGE}:dk{OTHER}: not built: ./build_image.sh -d {OTHER} (10-20 "
        "minutes)",
        "FIX  GPU quota in europe-west1: 0 x NVIDIA_TESLA_T4 on Spot allowed "
        "(custom_model_training_preemptible_nvidia_t4_gpus), the job takes 1: ask for 1 in "
        "europe-west1 at https://console.cloud.google.com/iam-admin/quotas?project="
        "robocar-test&metric=aiplatform.googleapis.com%2Fcustom_model_training_preemptible_"
        "nvidia_t4_gpus (or -g none, or another -g or REGION)",
        "FIX  W&B key secret projects/robocar-test/secrets/wandb-api-key: you lack "
        "secretmanager.versions.get, so it cannot be checked (Secret Manager Viewer): gcloud "
        f"projects add-iam-policy-binding robocar-test --member=user:{ACCOUNT} "
        "--role=roles/secretmanager.viewer",
    ]
    assert found == expected, "\n".join(found)
    assert verdict == ("submit_cloud_train.sh: 5 of 8 checks need a fix: run the FIX "
                       "commands above, then --check again")
    # what the job runs as is said, not checked: testIamPermissions answers for us only
    assert any(line.startswith("NOTE W&B key secret") and "service-123456789012@gcp-sa-"
               "aiplatform-cc.iam.gserviceaccount.com, which needs roles/secretmanager."
               "secretAccessor on it (not checkable from here)" in line for line in lines)
    assert not any(p.endswith("/customJobs") for _, p, _ in project.requests)
    assert gcs.names() == []
    # each fix is a gcloud command gcloud knows, with flags it takes
    for line in found:
        for command in line.split(": ")[-1].split(" && "):
            if command.startswith("gcloud "):
                known(command, project.env)


def known(command, env):
    """COMMAND's gcloud group and verb exist, and take each of its --flags."""
    words = shlex.split(command.split(" (")[0])
    verb = [w for w in words[1:] if not w.startswith("-")][:4]
    for n in range(len(verb), 0, -1):        # the longest prefix gcloud has help for
        r = subprocess.run(["gcloud", *verb[:n], "--help"], env=env, capture_output=True,
                           text=True, timeout=120)
        if r.returncode == 0:
            break
    assert r.returncode == 0, command
    for flag in (w.split("=")[0] for w in words if w.startswith("--")):
        assert flag in r.stdout, (flag, command)


def test_check_of_a_ready_project_is_all_ok(run, project, eu_bucket):
    """Done-when 2: where all is well, every line is OK (or a NOTE of what
    cannot be checked from here), and it exits 0."""
    env = dict(project.env, STEERING_BUCKET_NAME=eu_bucket, WANDB_PROJECT="robocar",
               WANDB_API_KEY_SECRET="wandb-api-key")
    r, lines, verdict = check(run, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert fixes(lines) == []
    statuses = [line.split(None, 1)[0] for line in lines]
    assert set(statuses) == {"OK", "NOTE"} and statuses.count("OK") == 8, r.stdout
    assert verdict == "all 8 checks OK (the NOTEs say what cannot be checked from here)"
    assert f"OK   credentials and project: project robocar-test, as user:{ACCOUNT}" in lines
    assert f"OK   bucket gs://{eu_bucket}: in europe-west1, where the jobs run" in lines
    assert ("OK   GPU quota in europe-west1: up to 4 x NVIDIA_TESLA_T4 "
            "(custom_model_training_nvidia_t4_gpus); the job takes 1") in lines
    # Cloud Build's account as its API names it, not a guess
    assert any("builds run as 123456789012-compute@developer.gserviceaccount.com" in line
               for line in lines)


def test_check_of_the_movie_script_checks_its_job(run, project, eu_bucket):
    env = dict(project.env, STEERING_BUCKET_NAME=eu_bucket)
    r, lines, _ = check(run, env, "-g", "none", script="submit_cloud_makemovie.sh")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK   GPU quota: none needed (-g none)" in lines


def test_check_says_what_to_grant_when_roles_are_missing(run, project, eu_bucket):
    project.google.denied |= {"aiplatform.customJobs.create", "serviceusage.services.use",
                              "logging.logEntries.list"}
    r, lines, _ = check(run, dict(project.env, STEERING_BUCKET_NAME=eu_bucket))
    assert r.returncode == 1
    grant = ("gcloud projects add-iam-policy-binding robocar-test --member=user:"
             f"{ACCOUNT} --role=")
    assert fixes(lines) == [
        "FIX  your roles (Vertex AI User): you lack aiplatform.customJobs.create: "
        f"{grant}roles/aiplatform.user",
        "FIX  your roles (Logs Viewer): you lack logging.logEntries.list: "
        f"{grant}roles/logging.viewer",
        "FIX  your roles (Service Usage Consumer): you lack serviceusage.services.use: "
        f"{grant}roles/serviceusage.serviceUsageConsumer"]


def test_check_names_an_api_disabled_for_its_own_call(run, project, eu_bucket):
    """Resource Manager off in the project: Google's 403 SERVICE_DISABLED
    (an ErrorInfo with the service) is turned into the command enabling it."""
    project.google.disabled.add("cloudresourcemanager.googleapis.com")
    r, lines, _ = check(run, dict(project.env, STEERING_BUCKET_NAME=eu_bucket))
    assert r.returncode == 1
    assert fixes(lines) == [
        "FIX  your roles: cloudresourcemanager.googleapis.com is not enabled: gcloud "
        "services enable cloudresourcemanager.googleapis.com --project robocar-test"]


# -- what every submit checks first ------------------------------------------------

@pytest.fixture
def wip(car):
    (car / "wip.tgz").write_bytes(gzip.compress(b"stands for an archive"))


def test_a_disabled_api_stops_a_submit_before_anything_is_staged(run, project, gcs, wip):
    project.google.disabled.add("aiplatform.googleapis.com")
    r = run("submit_cloud_train.sh", env=project.env)
    assert r.returncode == 1
    assert one_line_error(r) == (
        "submit_cloud_train.sh: project robocar-test is not ready: APIs: not enabled: "
        "aiplatform.googleapis.com: gcloud services enable aiplatform.googleapis.com "
        "--project robocar-test (nothing was staged or sent; ./submit_cloud_train.sh "
        "--check checks everything)")
    assert gcs.names() == [] and project.jobs == {}


def test_an_image_never_built_stops_a_submit_before_anything_is_staged(run, project, gcs,
                                                                       wip):
    """-d names a generation whose image was not pushed: without this the job
    would be created, paid for, and fail pulling it."""
    project.google.tags.discard(f"dk{OTHER}")
    r = run("submit_cloud_train.sh", "-d", OTHER, env=project.env)
    assert r.returncode == 1
    assert one_line_error(r) == (
        f"submit_cloud_train.sh: project robocar-test is not ready: image {IMAGE}:dk{OTHER}: "
        f"not built: ./build_image.sh -d {OTHER} (10-20 minutes) (nothing was staged or "
        "sent; ./submit_cloud_train.sh --check checks everything)")
    assert gcs.names() == [] and project.jobs == {}


def test_a_check_this_account_may_not_make_is_a_warning_not_a_stop(run, project, gcs, wip):
    project.google.denied.add("artifactregistry.tags.get")
    r = run("submit_cloud_train.sh", env=project.env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0] == (
        f"submit_cloud_train.sh: warning: could not check image {IMAGE}:dk{GENERATION}: you "
        "lack artifactregistry.tags.get, so it cannot be checked (Artifact Registry Reader): "
        "gcloud projects add-iam-policy-binding robocar-test "
        f"--member=user:{ACCOUNT} --role=roles/artifactregistry.reader")
    assert len(project.jobs) == 1


def test_a_missing_bucket_stops_a_submit_naming_it(run, project, gcs, wip):
    env = dict(project.env, STEERING_BUCKET_NAME="robocar-nowhere")
    r = run("submit_cloud_train.sh", env=env)
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith("submit_cloud_train.sh: project robocar-test is not ready: bucket "
                           "gs://robocar-nowhere: bucket gs://robocar-nowhere does not exist")
    assert project.jobs == {}


def test_no_gpu_quota_at_create_names_the_quota_and_its_page(run, project, gcs, wip):
    """Vertex AI answers 429 RESOURCE_EXHAUSTED when the job is created."""
    project.google.quota[gpu_quota_metric("NVIDIA_TESLA_T4")] = 0
    r = run("submit_cloud_train.sh", env=project.env)
    assert r.returncode == 1
    assert one_line_error(r) == (
        "submit_cloud_train.sh: creating the Vertex AI job failed: HTTP 429 "
        "RESOURCE_EXHAUSTED: the project has no quota left for 1 x NVIDIA_TESLA_T4 in "
        "europe-west1 (custom_model_training_nvidia_t4_gpus): ask for more at "
        "https://console.cloud.google.com/iam-admin/quotas?project=robocar-test&metric="
        "aiplatform.googleapis.com%2Fcustom_model_training_nvidia_t4_gpus, or pass -g none "
        "or another -g; ./submit_cloud_train.sh --check shows the quota")
    assert project.jobs == {}


def test_a_refused_build_names_the_account_cloud_build_says_it_runs_as(project, monkeypatch):
    """Not a guessed PROJECT_NUMBER-compute@...: Cloud Build's own
    getDefaultServiceAccount names the account to grant the roles to."""
    from trainer.client import image
    from trainer.core.errors import UserError

    for name, value in project.env.items():
        monkeypatch.setenv(name, value)
    project.google.build_account = "987-compute@developer.gserviceaccount.com"
    refused = ["sh", "-c", "echo 'ERROR: 987-compute@developer.gserviceaccount.com does not "
               "have storage.objects.get access to the Google Cloud Storage object.' >&2; "
               "exit 1"]
    with pytest.raises(UserError) as e:
        image.run_build(refused, "robocar-test")
    assert ("grant its service account 987-compute@developer.gserviceaccount.com the roles "
            "roles/storage.objectViewer, roles/artifactregistry.writer, "
            "roles/logging.logWriter in project robocar-test") in str(e.value)
