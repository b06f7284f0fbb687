"""A small local stand-in for Vertex AI's job scheduler and Cloud Logging's
entries.list, over HTTP on 127.0.0.1, for tests only.

    with VertexStandin(storage_emulator="http://127.0.0.1:9023") as vx:
        env["CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM"] = vx.url
        env["CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING"] = vx.url

It is the suite's one fake, because no Vertex can run here, and it fakes
only the scheduling: `customJobs.create` checks the body against the real
discovery document and then runs the job's own containerSpec command and
args, with this machine's Python standing in for the image's `python`, in
an empty folder, with the environment Vertex gives a container
(CLOUD_ML_JOB_ID, CLOUD_ML_PROJECT_ID, AIP_*) and the GCS emulator for
Cloud Storage. The job's stdout and stderr lines become `ml_job` log
entries (INFO and ERROR); its exit status becomes the job's state.

Beside the jobs it serves the project the toolkit checks before it pays
(tests/google_standin.py, `vx.google`): the APIs enabled, the caller's
permissions, the GPU quota, the images built, the W&B secret. Creating a
job asks it too: a disabled Vertex AI API or a missing permission is a 403,
a GPU without quota in REGION a 429 RESOURCE_EXHAUSTED, as Google answers.
A log line can be made to arrive late (`vx.late`), with its own older
timestamp, as Cloud Logging delivers some.

With `images=Containers.find()` (make_vertex(gcs, images=...)), the job's
command runs inside the image `make image` built instead, as Vertex AI
runs it: `podman run --network host robocar-trainer:TAG python -m MODULE
ARGS`, TAG being the tag of the job's imageUri (dk5.3), with Vertex's
environment and the job body's own, and nothing of this machine's.
"""
import datetime
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from discovery_schema import check
from google_standin import GoogleProject, error, gpu_quota_metric

from trainer.core.cloud import discovery_document

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB = "GoogleCloudAiplatformV1CustomJob"
# What a container inherits from this machine: enough to run Python and TF.
PASS_ENV = ("PATH", "LANG", "LC_ALL", "TMPDIR")
PASS_PREFIX = ("TF_", "CUDA_", "OMP_")


class VertexStandin:
    def __init__(self, storage_emulator, run_jobs=True, pending_seconds=1.0, images=None):
        self.storage_emulator = storage_emulator
        self.images = images              # a Containers: run jobs inside the local image
        self.run_jobs = run_jobs          # False: jobs stay pending (body checks only)
        # Workers started again after they end (Vertex AI restarts a worker on
        # another VM after maintenance or a Spot preemption, same job id): the
        # job's state is its last attempt's.
        self.restarts = 0
        self.pending_seconds = pending_seconds   # "waiting for a machine"
        self.jobs, self.logs, self.requests = {}, [], []
        self.lock = threading.Lock()
        self.procs = {}
        self.closed = False
        self.logs_denied = False
        self.google = GoogleProject()
        # {pattern: seconds}: a log line matching pattern is held back, and
        # delivered (with its own, older timestamp) that long after the job ended.
        self.late = {}
        self._held = []
        self.work = tempfile.mkdtemp(prefix="vertex-standin-")
        self._clock_lock = threading.Lock()
        self._last = datetime.datetime.now(datetime.timezone.utc)
        self.doc = discovery_document("aiplatform", "v1")
        self.logging_doc = discovery_document("logging", "v2")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        with self.lock:
            self.closed = True
        for jid, proc in list(self.procs.items()):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                if self.images:           # the container outlives its killed client
                    self.images.remove(_container_name(jid))
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.work, ignore_errors=True)

    # -- the API ------------------------------------------------------------

    def create(self, project, region, body):
        errors = check(self.doc, JOB, body)
        if errors:
            return 400, _error(400, "INVALID_ARGUMENT", "; ".join(errors))
        machine = body["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]
        if machine.get("acceleratorType"):
            spot = body["jobSpec"].get("scheduling", {}).get("strategy") == "SPOT"
            metric = gpu_quota_metric(machine["acceleratorType"], spot)
            if self.google.quota_of(metric) < machine["acceleratorCount"]:
                # Google's answer names the metric in its message only.
                return 429, error(429, "RESOURCE_EXHAUSTED", "The following quota metrics "
                                  f"exceed quota limits: {metric}")
        jid = str(random.randrange(10**18, 10**19))
        job = dict(body, name=f"projects/{project}/locations/{region}/customJobs/{jid}",
                   state="JOB_STATE_PENDING", createTime=self.now(),
                   updateTime=self.now())
        with self.lock:
            self.jobs[jid] = job
        if self.run_jobs:
            threading.Thread(target=self._run, args=(jid, project), daemon=True).start()
        return 200, job

    def get(self, jid):
        with self.lock:
            job = self.jobs.get(jid)
            return (200, json.loads(json.dumps(job))) if job else \
                (404, _error(404, "NOT_FOUND", f"CustomJob {jid} not found"))

    def cancel(self, jid):
        with self.lock:
            job = self.jobs.get(jid)
            if not job:
                return 404, _error(404, "NOT_FOUND", f"CustomJob {jid} not found")
            if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED",
                                "JOB_STATE_CANCELLED"):
                return 400, _error(400, "FAILED_PRECONDITION",
                                   f"CustomJob {jid} has already ended")
            proc = self.procs.get(jid)
            if proc is None:
                self._end(job, "JOB_STATE_CANCELLED", 1, "CANCELED")
            else:
                job["state"] = "JOB_STATE_CANCELLING"
                proc.terminate()
        return 200, {}

    def list_entries(self, body):
        if self.logs_denied:          # an account without Logs Viewer
            return 403, _error(403, "PERMISSION_DENIED", "Permission "
                               "'logging.logEntries.list' denied on resource")
        errors = check(self.logging_doc, "ListLogEntriesRequest", body)
        if errors:
            return 400, _error(400, "INVALID_ARGUMENT", "; ".join(errors))
        query = body.get("filter", "")
        jid = re.search(r'resource\.labels\.job_id="(\d+)"', query)
        since = re.search(r'timestamp(>=?)"([^"]+)"', query)
        with self.lock:
            entries = [e for e in self.logs
                       if (not jid or e["resource"]["labels"]["job_id"] == jid.group(1))
                       and (not since or (e["timestamp"] >= since.group(2)
                                          if since.group(1) == ">=" else
                                          e["timestamp"] > since.group(2)))]
        start = int(body.get("pageToken") or 0)
        size = min(int(body.get("pageSize") or 50), 1000)
        page = {"entries": entries[start:start + size]}
        if start + size < len(entries):
            page["nextPageToken"] = str(start + size)
        return 200, page

    # -- running a job ------------------------------------------------------

    def now(self):
        """RFC 3339, microseconds, strictly increasing (log order = time order)."""
        t = datetime.datetime.now(datetime.timezone.utc)
        with self._clock_lock:
            t = self._last = max(t, self._last + datetime.timedelta(microseconds=1))
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _run(self, jid, project):
        time.sleep(self.pending_seconds)
        with self.lock:
            job = self.jobs[jid]
            if job["state"] != "JOB_STATE_PENDING" or self.closed:
                return
            spec = job["jobSpec"]
            container = spec["workerPoolSpecs"][0]["containerSpec"]
            command = list(container.get("command", [])) + list(container.get("args", []))
            home = tempfile.mkdtemp(dir=self.work, prefix=f"job-{jid}-")
            vertex_env = dict(CLOUD_ML_JOB_ID=jid, CLOUD_ML_PROJECT_ID=project,
                              STORAGE_EMULATOR_HOST=self.storage_emulator)
            base = spec.get("baseOutputDirectory", {}).get("outputUriPrefix", "")
            base = base if not base or base.endswith("/") else base + "/"
            if base:
                vertex_env.update(AIP_MODEL_DIR=base + "model/",
                                  AIP_CHECKPOINT_DIR=base + "checkpoints/",
                                  AIP_TENSORBOARD_LOG_DIR=base + "logs/")
            vertex_env.update({e["name"]: e["value"] for e in container.get("env", [])})
            if self.images:
                command = self.images.run_command(
                    self.images.local(container["imageUri"]), command, vertex_env,
                    name=_container_name(jid))
                env = self.images.env()
            else:
                if command and command[0] in ("python", "python3"):
                    command[0] = sys.executable
                env = {k: v for k, v in os.environ.items()
                       if k in PASS_ENV or k.startswith(PASS_PREFIX)}
                env.update(HOME=home, PYTHONPATH=ROOT)
                env.update(vertex_env)
            job.update(state="JOB_STATE_RUNNING", startTime=self.now(),
                       updateTime=self.now())
        for attempt in range(1 + self.restarts):
            with self.lock:
                if job["state"] != "JOB_STATE_RUNNING":
                    break
                if attempt:                 # a new VM: a fresh working folder
                    home = tempfile.mkdtemp(dir=self.work, prefix=f"job-{jid}-")
                    env = dict(env, HOME=home) if not self.images else env
                proc = subprocess.Popen(command, cwd=home, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, errors="replace")
                self.procs[jid] = proc
            code = self._wait(jid, project, proc)
        with self.lock:
            if job["state"] == "JOB_STATE_CANCELLING":
                self._end(job, "JOB_STATE_CANCELLED", 1, "CANCELED")
            elif code == 0:
                self._end(job, "JOB_STATE_SUCCEEDED")
            else:
                self._end(job, "JOB_STATE_FAILED", 3,
                          f"The replica workerpool0-0 exited with a non-zero status of "
                          f"{code}. Termination reason: Error. To find out more about why "
                          f"your job exited please check the logs: https://console.cloud."
                          f"google.com/logs/viewer?project={project}&resource=ml_job%2F"
                          f"job_id%2F{jid}")

    def _wait(self, jid, project, proc):
        """The attempt's exit code, its output logged as it comes."""
        readers = [threading.Thread(target=self._log, args=(jid, project, stream, level))
                   for stream, level in ((proc.stdout, "INFO"), (proc.stderr, "ERROR"))]
        for r in readers:
            r.start()
        code = proc.wait()
        for r in readers:
            r.join()
        return code

    def _end(self, job, state, code=None, message=None):
        job.update(state=state, endTime=self.now(), updateTime=self.now())
        if code is not None:
            job["error"] = {"code": code, "message": message}
        for delay, entry in self._held:
            threading.Timer(delay, self._deliver, args=(entry,)).start()
        self._held = []

    def _deliver(self, entry):
        with self.lock:
            if not self.closed:
                self.logs.append(entry)

    def _log(self, jid, project, stream, severity):
        for line in stream:
            self.log(jid, line.rstrip("\n"), severity, project)

    def log(self, jid, text, severity="INFO", project=None, stamp=None):
        """Log TEXT as job JID's next line (now, or at STAMP); held back when
        a pattern of self.late matches it."""
        with self.lock:
            stamp = stamp or self.now()
            entry = {
                "insertId": f"{next(_INSERT_IDS):08x}",
                "logName": f"projects/{project or PROJECT}/logs/workerpool0-0",
                "resource": {"type": "ml_job", "labels": {
                    "job_id": jid, "project_id": project or PROJECT,
                    "task_name": "workerpool0-0"}},
                "severity": severity, "textPayload": text,
                "timestamp": stamp, "receiveTimestamp": stamp,
            }
            delay = next((d for p, d in self.late.items() if re.search(p, text)), None)
            if delay is None:
                self.logs.append(entry)
            else:
                self._held.append((delay, entry))
            return entry


def _error(code, status, message):
    return {"error": {"code": code, "status": status, "message": message}}


_INSERT_IDS = itertools.count()


def _container_name(jid):
    return f"vertex-standin-{jid}"


# -- the images `make image` builds, and running them -------------------------

# make image tags robocar-trainer:dk5.3 (and :dk5.4) in this machine's image
# store, and writes podman's settings for this machine (see lib/local_image.sh).
LOCAL_REPOSITORY = "robocar-trainer"
CONTAINERS_CONF = os.path.join(ROOT, "build", "image", "containers.conf")


class Containers:
    """docker, when its engine answers, else podman: what runs the images.

        images = Containers.find()      # None when neither is here
        images.has("robocar-trainer:dk5.3")
        subprocess.run(images.run_command(image, ["python", "-V"], {}), env=images.env())
    """

    def __init__(self, tool):
        self.tool = tool

    @classmethod
    def find(cls):
        docker = shutil.which("docker")
        if docker and subprocess.run([docker, "info"], capture_output=True,
                                     timeout=60).returncode == 0:
            return cls("docker")
        return cls("podman") if shutil.which("podman") else None

    def env(self):
        """This machine's environment, with make image's settings for podman."""
        env = dict(os.environ)
        if self.tool == "podman" and os.path.exists(CONTAINERS_CONF):
            env["CONTAINERS_CONF"] = CONTAINERS_CONF
        return env

    def has(self, image):
        return subprocess.run([self.tool, "image", "inspect", image], env=self.env(),
                              capture_output=True, timeout=60).returncode == 0

    @staticmethod
    def local(image_uri):
        """The local image of a job's imageUri: the same tag (dk5.3) of
        robocar-trainer."""
        return f"{LOCAL_REPOSITORY}:{image_uri.rpartition(':')[2]}"

    def run_command(self, image, argv, env, name=None, mounts=None):
        """`TOOL run` of ARGV in IMAGE with only the environment ENV, on the
        host's network, so that a server on 127.0.0.1 (the GCS emulator) is
        reachable as it is from here; MOUNTS ({folder here: path inside})
        read-only, as Vertex AI mounts the host's GPU driver."""
        command = [self.tool, "run", "--rm", "--network", "host"]
        if name:
            command += ["--name", name]
        for here, inside in (mounts or {}).items():
            command += ["--volume", f"{here}:{inside}:ro"]
        for key, value in env.items():
            command += ["--env", f"{key}={value}"]
        return command + [image, *argv]

    def remove(self, name):
        subprocess.run([self.tool, "rm", "--force", name], env=self.env(),
                       capture_output=True, timeout=120)


_ROUTES = [     # (HTTP method, path, handler, the API, the permission it takes)
    ("POST", re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/customJobs$"), "create",
     "aiplatform.googleapis.com", "aiplatform.customJobs.create"),
    ("GET", re.compile(r"^/v1/projects/[^/]+/locations/[^/]+/customJobs/(\d+)$"), "get",
     "aiplatform.googleapis.com", "aiplatform.customJobs.get"),
    ("POST", re.compile(r"^/v1/projects/[^/]+/locations/[^/]+/customJobs/(\d+):cancel$"),
     "cancel", "aiplatform.googleapis.com", "aiplatform.customJobs.cancel"),
    ("POST", re.compile(r"^/v2/entries:list$"), "list_entries", "logging.googleapis.com",
     "logging.logEntries.list"),
]


def _handler(standin):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method):
            url = urlsplit(self.path)
            path = url.path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return self._reply(400, _error(400, "INVALID_ARGUMENT", "body is not JSON"))
            for verb, pattern, name, service, permission in _ROUTES:
                m = pattern.match(path)
                if m and verb == method:
                    with standin.lock:
                        standin.requests.append((method, path, body))
                    refused = standin.google.refuse(service, permission, path[4:])
                    if refused:
                        return self._reply(*refused)
                    takes_body = method == "POST" and name != "cancel"
                    args = m.groups() + ((body,) if takes_body else ())
                    return self._reply(*getattr(standin, name)(*args))
            answer = standin.google.answer(method, path, parse_qs(url.query), body)
            if answer:
                return self._reply(*answer)
            self._reply(404, _error(404, "NOT_FOUND", f"no route for {method} {path}"))

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def _reply(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):      # quiet: pytest shows failures anyway
            pass

    return Handler


# -- fixtures (conftest.py registers this module as a plugin) -----------------

REGION = "europe-west1"
PROJECT = "robocar-test"
IMAGE = "europe-west1-docker.pkg.dev/robocar-test/robocar/trainer:test"
CLOSED = "http://127.0.0.1:9"          # the discard port: nothing listens there


# Every Google API the toolkit calls besides Cloud Storage (the GCS emulator).
APIS = ("AIPLATFORM", "LOGGING", "SERVICEUSAGE", "CLOUDRESOURCEMANAGER", "ARTIFACTREGISTRY",
        "CLOUDBUILD", "SECRETMANAGER")


def cloud_env(base, url, gcloud_config):
    """BASE plus what a user exports for the cloud, every API pointed at the
    stand-in; gcloud gets an empty configuration of its own."""
    env = dict(base)
    env.update(REGION=REGION, TRAINER_IMAGE=IMAGE, GOOGLE_CLOUD_PROJECT=PROJECT,
               CLOUDSDK_AUTH_DISABLE_CREDENTIALS="True",
               CLOUDSDK_CONFIG=str(gcloud_config))
    env.update({f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}": url for api in APIS})
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "JOB_DIR", "CLOUDSDK_CORE_PROJECT"):
        env.pop(name, None)
    return env


@pytest.fixture
def make_vertex(tmp_path):
    """make_vertex(gcs=None, run_jobs=True, images=None) -> a stand-in with
    .env for the scripts; without gcs, no Cloud Storage is reachable (nothing
    may be sent); with images (a Containers), jobs run inside the local image."""
    from helpers import script_env
    made = []

    def make(gcs=None, run_jobs=True, images=None):
        vx = VertexStandin(gcs.url if gcs else CLOSED, run_jobs=run_jobs, images=images)
        made.append(vx)
        base = gcs.env if gcs else script_env(
            STEERING_BUCKET_NAME=PROJECT, STORAGE_EMULATOR_HOST=CLOSED,
            TRAINER_GCS_DEADLINE="5")
        vx.env = cloud_env(base, vx.url, tmp_path / f"gcloud-config-{len(made)}")
        return vx

    yield make
    for vx in made:
        vx.close()


@pytest.fixture
def vertex(make_vertex, gcs):
    """The stand-in running jobs against the `gcs` emulator."""
    return make_vertex(gcs)


@pytest.fixture
def idle_vertex(make_vertex):
    """The stand-in without running jobs, and no Cloud Storage reachable."""
    return make_vertex(run_jobs=False)
