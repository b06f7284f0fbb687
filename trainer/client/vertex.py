"""Vertex AI custom jobs: the CustomJob body, create / get / cancel, and
following one job to its end with its log lines (Cloud Logging).

    body = job_body(display_name="pilot-wip-20250101-120000", image=IMAGE,
                    module="trainer.task", args=["--archive", "gs://b/training/wip.tgz",
                    "--output", "gs://b/models"], machine="n1-standard-8",
                    accelerator=("NVIDIA_TESLA_T4", 1), spot=False,
                    output_dir="gs://b/job/pilot-wip-20250101-120000/")
    jobs = Jobs(cloud.api("aiplatform", "v1", endpoint, creds), project, region)
    job = jobs.create(body)
    job = follow(jobs, LogTail(logging_api, project, job_id(job)), job["name"])

The body is plain JSON for aiplatform v1 `projects.locations.customJobs`;
tests/test_vertex_spec.py checks every variant against the discovery
document's schemas, which the client library itself does not do.
"""
import datetime
import re
import time
from urllib.parse import quote

from trainer.core.cloud import call, discovery_document
from trainer.core.errors import UserError

# Defaults of submit_cloud_train.sh; docs/cloud.md: what a run costs.
MACHINE = "n1-standard-8"           # 8 vCPU, 30 GB: feeds a T4 with JPEG decoding
ACCELERATOR = "NVIDIA_TESLA_T4:1"   # the cheapest GPU Vertex offers in most regions
BOOT_DISK = {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 100}  # Vertex's minimum
# A job that hangs must not bill a GPU for Vertex's default of 7 days.
TIMEOUT = "14400s"
# Polling: quick while something happens, backing off to POLL_MAX when idle.
# Cloud Logging allows 60 entries.list reads a minute per project: one read
# every 3 s is 20, so two followers (two terminals, a sweep) stay within it
# with room for a second page or gcloud's own reads.
POLL_MIN, POLL_MAX, POLL_FACTOR = 3.0, 30.0, 1.5
# After the end, log ingestion lags: the log counts as complete after LATE_QUIET
# quiet polls in a row, and, for a job that did not succeed, once its last
# error line has arrived (waited for at most LATE_MAX seconds).
LATE_QUIET, LATE_MAX = 2, 60.0
# Cloud Logging may deliver an entry after newer ones; its entries.tail holds
# entries back for a bufferWindow (60 s at most) to sort them. Each read here
# asks again for this many seconds before the newest entry seen.
LOG_WINDOW = 60.0
# A job still waiting for a machine this long gets a line saying why that
# usually is, and again at this interval.
QUEUE_HINT_AFTER, QUEUE_HINT_EVERY = 300.0, 600.0

ENDED = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
         "JOB_STATE_EXPIRED", "JOB_STATE_PARTIALLY_SUCCEEDED"}
_MACHINE_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")
_LABEL_BAD = re.compile(r"[^a-z0-9_-]+")
# A failed job's reason in its log: our one-line errors ("trainer: ...") or
# the last line of a Python traceback ("ValueError: ...").
_REASON = re.compile(r"^(trainer[\w.]*: |[A-Za-z_][\w.]*(Error|Exception|Exit)\b)")


def accelerator_types(retired=False):
    """The accelerator types aiplatform v1 offers, from its discovery document;
    with RETIRED, {type: why} of those it marks deprecated (the K80)."""
    schema = discovery_document("aiplatform", "v1")["schemas"]
    prop = schema["GoogleCloudAiplatformV1MachineSpec"]["properties"]["acceleratorType"]
    rows = zip(prop["enum"], prop.get("enumDeprecated", [False] * len(prop["enum"])),
               prop.get("enumDescriptions", [""] * len(prop["enum"])))
    if retired:
        return {t: why for t, old, why in rows if old}
    return [t for t, old, _ in rows if not old and t != "ACCELERATOR_TYPE_UNSPECIFIED"]


def parse_accelerator(text):
    """'NVIDIA_TESLA_T4:1' -> ('NVIDIA_TESLA_T4', 1); 'none' -> None."""
    text = (text or "").strip()
    if text.lower() in ("none", "cpu"):
        return None
    kind, _, count = text.partition(":")
    kind = kind.upper()
    known = accelerator_types()
    retired = accelerator_types(retired=True)
    if kind in retired:
        why = retired[kind].removeprefix("Deprecated: ").rstrip(".")
        raise UserError(f"-g {text}: Vertex AI no longer offers {kind} ({why}): use "
                        f"-g {ACCELERATOR} instead")
    if kind not in known:
        gpus = ", ".join(t for t in known if t.startswith("NVIDIA"))
        raise UserError(f"-g {text}: unknown accelerator {kind or '(empty)'}: use one of "
                        f"{gpus} (optionally :COUNT), or -g none for CPU only")
    if not count:
        return kind, 1
    if not count.isdigit() or not 1 <= int(count) <= 16:
        raise UserError(f"-g {text}: the count after ':' must be a whole number "
                        "from 1 to 16, e.g. -g NVIDIA_TESLA_T4:1")
    return kind, int(count)


def check_machine(machine):
    if not _MACHINE_RE.match(machine or ""):
        raise UserError(f"-M {machine}: not a Compute Engine machine type: give one "
                        f"such as {MACHINE}, g2-standard-8 (L4) or a2-highgpu-1g (A100)")
    return machine


# -- Machines and GPUs as Vertex AI accepts them for custom training ----------
# Source: Vertex AI, "Configure compute resources for custom training", its
# GPU table (https://cloud.google.com/vertex-ai/docs/training/configure-compute
# #gpu-compatibility-table), and Compute Engine's GPU machine types for the
# machines that come with theirs. A pair not in it is refused by Vertex AI
# with HTTP 400 when the job is created, after the inputs were staged.
#
# n1 machines take the older GPUs, in these counts only; each count feeds at
# most so many vCPUs (one V100 at most 8: an n1-standard-16 needs two).
N1_GPUS = {                                       # GPU: {count: most vCPUs}
    "NVIDIA_TESLA_T4": {1: 16, 2: 32, 4: 96},
    "NVIDIA_TESLA_P4": {1: 16, 2: 32, 4: 96},
    "NVIDIA_TESLA_P100": {1: 16, 2: 32, 4: 96},
    "NVIDIA_TESLA_V100": {1: 8, 2: 16, 4: 32, 8: 96},
}
# The n1 machines that take a GPU at all, by their vCPUs.
N1_SIZES = {"n1-standard": (4, 8, 16, 32, 64, 96), "n1-highmem": (2, 4, 8, 16, 32, 64, 96),
            "n1-highcpu": (16, 32, 64, 96)}
# g2, a2 and a3 machines come with their GPUs: family: (GPU, {size: count}).
GPU_MACHINES = {
    "g2-standard": ("NVIDIA_L4", {"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2,
                                  "48": 4, "96": 8}),
    "a2-highgpu": ("NVIDIA_TESLA_A100", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}),
    "a2-megagpu": ("NVIDIA_TESLA_A100", {"16g": 16}),
    "a2-ultragpu": ("NVIDIA_A100_80GB", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}),
    "a3-highgpu": ("NVIDIA_H100_80GB", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}),
    "a3-megagpu": ("NVIDIA_H100_MEGA_80GB", {"8g": 8}),
}
# Each GPU counts against a Vertex AI quota of its own per region (not
# Compute Engine's), another one on Spot; new projects have 0 of most.
# Source: https://cloud.google.com/vertex-ai/docs/quotas (custom training).
QUOTA_NAMES = {"NVIDIA_TESLA_T4": "nvidia_t4", "NVIDIA_TESLA_P4": "nvidia_p4",
               "NVIDIA_TESLA_P100": "nvidia_p100", "NVIDIA_TESLA_V100": "nvidia_v100",
               "NVIDIA_L4": "nvidia_l4", "NVIDIA_TESLA_A100": "nvidia_a100",
               "NVIDIA_A100_80GB": "nvidia_a100_80gb", "NVIDIA_H100_80GB": "nvidia_h100",
               "NVIDIA_H100_MEGA_80GB": "nvidia_h100_mega"}


def quota_metric(gpu, spot):
    """The Vertex AI quota metric a job with GPU counts against, e.g.
    aiplatform.googleapis.com/custom_model_training_preemptible_nvidia_t4_gpus."""
    name = QUOTA_NAMES.get(gpu, gpu.lower())
    return ("aiplatform.googleapis.com/custom_model_training_"
            f"{'preemptible_' if spot else ''}{name}_gpus")


def quota_page(project, metric):
    """The console page where PROJECT asks for more of METRIC."""
    return (f"https://console.cloud.google.com/iam-admin/quotas?project={project}"
            f"&metric={quote(metric, safe='')}")


def machine_gpus(machine):
    """(the GPU type, how many) a GPU machine type comes with, else None."""
    family = next((f for f in GPU_MACHINES if machine.startswith(f + "-")), None)
    if family is None:
        return None
    gpu, sizes = GPU_MACHINES[family]
    count = sizes.get(machine[len(family) + 1:])
    return (gpu, count) if count else None


def pick_accelerator(machine, given):
    """The (type, count) of -g GIVEN on -M MACHINE, or None for -g none; without
    -g, the GPU the machine comes with (an n1 machine gets a T4). A pair Vertex
    AI would refuse at create time is refused here, naming what fits."""
    fixed = machine_gpus(machine)
    if given is None:
        if fixed:
            return fixed
        if machine.startswith("n1-"):
            return _n1_pair(machine, parse_accelerator(ACCELERATOR), "")
        raise UserError(f"-M {machine} takes no GPU: pass -g none to train on its "
                        f"CPUs, or use an n1 machine such as {MACHINE} (with a T4), "
                        "g2-standard-8 (L4) or a2-highgpu-1g (A100)")
    wanted = parse_accelerator(given)
    if fixed and wanted != fixed:
        raise UserError(f"-M {machine} -g {given}: a {machine} comes with {fixed[1]} x "
                        f"{fixed[0]}: leave -g out, or pass -g {fixed[0]}:{fixed[1]}")
    if wanted and not fixed and not (machine.startswith("n1-") and wanted[0] in N1_GPUS):
        fits = (f"an n1 machine takes {', '.join(N1_GPUS)}" if machine.startswith("n1-")
                else f"-M {machine} takes no GPU")
        raise UserError(f"-M {machine} -g {given}: Vertex AI refuses this pair ({fits}; "
                        "g2-standard-* come with NVIDIA_L4, a2-highgpu-* with "
                        "NVIDIA_TESLA_A100): change -M or -g")
    return _n1_pair(machine, wanted, f" -g {given}") if wanted and not fixed else wanted


def _n1_pair(machine, wanted, given):
    """WANTED on an n1 MACHINE, if the table allows that count on that many vCPUs."""
    gpu, count = wanted
    family, _, size = machine.rpartition("-")
    sizes = N1_SIZES.get(family, ())
    vcpus = int(size) if size.isdigit() else 0
    said = f"-M {machine}{given}"
    if vcpus not in sizes:
        takes = ", ".join(f"{f}-{v[0]}" for f, v in N1_SIZES.items())
        raise UserError(f"{said}: Vertex AI attaches no GPU to {machine}: use one of "
                        f"{takes} or larger (e.g. {MACHINE}), or -g none")
    counts = N1_GPUS[gpu]
    if count not in counts:
        near = max((c for c in counts if c < count), default=min(counts))
        allowed = ", ".join(map(str, counts))
        raise UserError(f"{said}: Vertex AI attaches {gpu} in counts of {allowed} only: "
                        f"pass e.g. -g {gpu}:{near}")
    if vcpus > counts[count]:
        more = min(c for c, most in counts.items() if most >= vcpus)
        fewer = max((f"{family}-{v}" for v in sizes if v <= counts[count]),
                    key=lambda m: int(m.rpartition("-")[2]), default=None)
        smaller = f", or a smaller machine such as -M {fewer}" if fewer else ""
        raise UserError(f"{said}: Vertex AI gives {count} x {gpu} at most "
                        f"{counts[count]} vCPUs, and {machine} has {vcpus}: pass -g "
                        f"{gpu}:{more}{smaller}")
    return wanted


def display_name(model_name, when=None):
    """MODEL-YYYYmmdd-HHMMSS in UTC; Vertex allows 128 characters."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    stamp = when.strftime("%Y%m%d-%H%M%S")
    return f"{model_name[:128 - len(stamp) - 1]}-{stamp}"


def label_value(text):
    """Label values: lowercase letters, digits, '-' and '_', 63 at most."""
    return _LABEL_BAD.sub("-", text.lower()).strip("-")[:63]


def job_body(*, display_name, image, module, args, machine, accelerator, spot,
             output_dir, labels=None, env=None):
    """A CustomJob (aiplatform v1) running `python -m MODULE ARGS` in IMAGE,
    with ENV ({name: value}) in its environment besides PYTHONUNBUFFERED."""
    machine_spec = {"machineType": machine}
    if accelerator:
        machine_spec["acceleratorType"], machine_spec["acceleratorCount"] = accelerator
    scheduling = {"timeout": TIMEOUT}
    if spot:
        scheduling["strategy"] = "SPOT"
    return {
        "displayName": display_name,
        "labels": {k: label_value(v) for k, v in (labels or {}).items()},
        "jobSpec": {
            "workerPoolSpecs": [{
                "machineSpec": machine_spec,
                "replicaCount": "1",        # int64: a string in JSON
                "diskSpec": dict(BOOT_DISK),
                "containerSpec": {
                    "imageUri": image,
                    # Explicit, so the job does not depend on the image's entrypoint.
                    "command": ["python", "-m", module],
                    "args": list(args),
                    "env": [{"name": k, "value": v} for k, v in
                            {"PYTHONUNBUFFERED": "1", **(env or {})}.items()],
                },
            }],
            "scheduling": scheduling,
            "baseOutputDirectory": {"outputUriPrefix": output_dir},
        },
    }


def job_id(job):
    """The numeric id at the end of projects/P/locations/R/customJobs/ID."""
    return job["name"].rsplit("/", 1)[-1]


def console_url(job):
    _, project, _, region, _, jid = job["name"].split("/")
    return (f"https://console.cloud.google.com/ai/platform/locations/{region}/"
            f"training/{jid}?project={project}")


def gcloud_hints(job, region, project):
    """(follow, cancel) gcloud commands for JOB."""
    tail = f"{job_id(job)} --region={region} --project={project}"
    return (f"gcloud ai custom-jobs stream-logs {tail}",
            f"gcloud ai custom-jobs cancel {tail}")


class Jobs:
    """projects.locations.customJobs of one project and region."""

    def __init__(self, service, project, region):
        self.api = service.projects().locations().customJobs()
        self.parent = f"projects/{project}/locations/{region}"

    def create(self, body):
        # Not retried: a create whose answer was lost may have made the job,
        # and a second one would be paid for twice.
        return call(self.api.create(parent=self.parent, body=body),
                    "creating the Vertex AI job", retries=0)

    def get(self, name):
        return call(self.api.get(name=name), "reading the job's state", retries=5)

    def cancel(self, name):
        return call(self.api.cancel(name=name, body={}), "cancelling the job")


class LogTail:
    """The job's log lines, each returned once, as they arrive (Cloud
    Logging v2 entries.list; Vertex logs under resource ml_job).

    A line that arrives late, with a timestamp older than lines already
    shown, is shown when it arrives: each read goes back LOG_WINDOW seconds
    before the newest entry seen (the idea of entries.tail's bufferWindow),
    and an entry already shown is known by its insertId."""

    def __init__(self, service, project, jid):
        self.entries = service.entries()
        self.project = project
        self.filter = f'resource.type="ml_job" AND resource.labels.job_id="{jid}"'
        self.newest = None           # the newest entry's time
        self.seen = {}               # insertId -> time, of the entries inside the window
        self.last_error = None       # the job's last error line: why it failed

    def fetch(self):
        since = self.newest - datetime.timedelta(seconds=LOG_WINDOW) if self.newest else None
        query = self.filter + (f' AND timestamp>="{rfc3339(since)}"' if since else "")
        body = {"resourceNames": [f"projects/{self.project}"], "filter": query,
                "orderBy": "timestamp asc", "pageSize": 1000}
        lines = []
        while True:
            page = call(self.entries.list(body=body), "reading the job's log")
            for entry in page.get("entries", []):
                key = entry.get("insertId") or (entry.get("timestamp"), str(entry))
                if key in self.seen:
                    continue
                when = parse_time(entry.get("timestamp"))
                self.seen[key] = when
                if when and (self.newest is None or when > self.newest):
                    self.newest = when
                text = entry_text(entry)
                if _REASON.match(text.strip()):
                    self.last_error = text.strip()
                lines.append(text)
            if not page.get("nextPageToken"):
                break
            body = dict(body, pageToken=page["nextPageToken"])
        if self.newest:          # what is older than the window is not read again
            edge = self.newest - datetime.timedelta(seconds=LOG_WINDOW)
            self.seen = {k: t for k, t in self.seen.items() if t is None or t >= edge}
        return lines


def rfc3339(when):
    """An aware datetime as Cloud Logging's filters take it, in UTC."""
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_text(entry):
    if "textPayload" in entry:
        return entry["textPayload"].rstrip("\n")
    payload = entry.get("jsonPayload") or {}
    return str(payload.get("message", payload)).rstrip("\n")


WAITING = {"JOB_STATE_QUEUED", "JOB_STATE_PENDING"}


def follow(jobs, tail, name, say=print, sleep=time.sleep, warn=print,
           clock=time.monotonic, waiting=None):
    """Poll job NAME until it ends, saying state changes and log lines as they
    come; returns the ended job. A log that cannot be read is warned about
    once, and the job is followed by its state alone. A job still queued or
    pending after QUEUE_HINT_AFTER seconds (by CLOCK) gets the line
    WAITING(seconds) returns, and again every QUEUE_HINT_EVERY seconds."""
    state, delay = None, POLL_MIN
    since, hint_at = None, None
    while True:
        job = jobs.get(name)
        lines = _fetch(tail, warn)
        changed = job.get("state") != state
        state = job.get("state")
        news = f"-- {_clock()} job {job_id(job)}: {describe_state(state)}"
        if changed and state not in ENDED:
            say(news)
        for line in lines:
            say(line)
        if state in ENDED:
            _late_lines(tail, state, say, sleep, warn)
            say(news)
            return job
        if state in WAITING:
            now = clock()
            since = now if since is None else since
            hint_at = now + QUEUE_HINT_AFTER if hint_at is None else hint_at
            if waiting and now >= hint_at:
                say(f"-- {_clock()} job {job_id(job)}: {waiting(now - since)}")
                hint_at = now + QUEUE_HINT_EVERY
        else:
            since = hint_at = None
        delay = POLL_MIN if (changed or lines) else min(delay * POLL_FACTOR, POLL_MAX)
        sleep(delay)


def waiting_hint(accelerator, spot, region, check, cancel):
    """The line for a job still waiting for a machine: the usual causes, and
    how to check each (CHECK: the --check command; CANCEL: gcloud's)."""
    if accelerator:
        gpu = f"{accelerator[1]} x {accelerator[0]}{' on Spot' if spot else ''}"
        quota = (f"no GPU quota for {gpu} in {region} "
                 f"({quota_metric(accelerator[0], spot).rsplit('/', 1)[-1]}: {check} "
                 "reads it)")
    else:
        quota = f"no quota for its vCPUs in {region} ({check} reads the GPU quota only)"
    capacity = ("no spare Spot capacity in the region right now" if spot else
                "no capacity for this machine in the region right now")

    def line(seconds):
        return (f"still waiting for a machine after {minutes(seconds)}: usually {quota}, "
                f"or {capacity}; it may wait for hours: Ctrl-C leaves it waiting, "
                f"`{cancel}` ends it (another REGION, -g or -S may start sooner)")
    return line


def _late_lines(tail, state, say, sleep, warn):
    """The lines Cloud Logging still delivers after the job ended."""
    quiet, waited = 0, 0.0
    while tail and tail.entries is not None and waited < LATE_MAX:
        if quiet >= LATE_QUIET and (state == "JOB_STATE_SUCCEEDED" or tail.last_error):
            return
        sleep(POLL_MIN)
        waited += POLL_MIN
        late = _fetch(tail, warn)
        quiet = 0 if late else quiet + 1
        for line in late:
            say(line)


def _fetch(tail, warn):
    if tail is None or tail.entries is None:
        return []
    try:
        return tail.fetch()
    except UserError as e:
        warn(f"cannot read the job's log ({e}); following its state only")
        tail.entries = None
        return []


def describe_state(state):
    return {
        "JOB_STATE_QUEUED": "queued",
        "JOB_STATE_PENDING": "pending (waiting for a machine and pulling the image)",
        "JOB_STATE_RUNNING": "running",
        "JOB_STATE_SUCCEEDED": "succeeded",
        "JOB_STATE_FAILED": "failed",
        "JOB_STATE_CANCELLING": "cancelling",
        "JOB_STATE_CANCELLED": "cancelled",
        "JOB_STATE_EXPIRED": "expired (no machine became available in time)",
    }.get(state, (state or "unknown").replace("JOB_STATE_", "").lower())


def _clock():
    return datetime.datetime.now().strftime("%H:%M:%S")


def parse_time(text):
    """RFC 3339 as Vertex writes it (up to nanoseconds, Z) -> aware datetime."""
    m = re.match(r"^(.*?T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text or "")
    if not m:
        return None
    base, frac, zone = m.groups()
    stamp = base + "." + (frac or "0")[:6].ljust(6, "0") + ("+00:00" if zone == "Z" else zone)
    return datetime.datetime.fromisoformat(stamp)


def durations(job):
    """(seconds waiting for a machine, seconds running) of an ended job."""
    created, started, ended = (parse_time(job.get(k)) for k in
                               ("createTime", "startTime", "endTime"))
    waited = (started - created).total_seconds() if created and started else None
    ran = (ended - started).total_seconds() if started and ended else None
    return waited, ran


def minutes(seconds):
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"
