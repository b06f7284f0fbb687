"""Every environment variable the toolkit reads, read here and nowhere else.

    bucket()                 # STEERING_BUCKET_NAME, checked: 'my-robocar-bucket'
    require("REGION")        # the value, or one line naming the fix

A missing or malformed value is one UserError naming the variable and an
example value (EXAMPLES): numbers must be finite and in range, URLs must be
URLs, names must be names. Nothing here writes the environment (a run's
private TMPDIR is core/scratch.py's).
"""
import math
import os
import re
import signal

from trainer.core.errors import UserError

EXAMPLES = {
    "REGION": "europe-west1",
    # build_image.sh tags it dk5.3 / dk5.4; a job picks the tag (trainer/generations.py)
    "TRAINER_IMAGE": "europe-west1-docker.pkg.dev/my-project/robocar/trainer",
    "STEERING_BUCKET_NAME": "my-robocar-bucket",
    "GOOGLE_CLOUD_PROJECT": "my-project",
    "WANDB_API_KEY_SECRET": "wandb-api-key",
}
GCS_DEADLINE = 90.0      # s of retrying transient Cloud Storage faults (TRAINER_GCS_DEADLINE)
GCS_DEADLINE_MAX = 86400.0   # a day: longer is a typo (or 'inf'), and would hang a script
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]+(-[a-z]+)+\d+$")
_TRUE = ("1", "true", "yes", "on")


def get(name):
    """NAME's value, stripped; '' when unset."""
    return os.environ.get(name, "").strip()


def require(name, hint=""):
    """The value of NAME, or one line naming the fix."""
    value = get(name)
    if not value:
        raise UserError(f"{name} is not set: export {name}={EXAMPLES.get(name, '...')}"
                        f"{hint}")
    return value


def require_all(*names):
    """One line naming every one of NAMES that is not set, with examples,
    when more than one is (a single one is named by its own check)."""
    missing = [n for n in names if not get(n)]
    if len(missing) > 1:
        exports = " ".join(f"{n}={EXAMPLES.get(n, '...')}" for n in missing)
        raise UserError(f"{', '.join(missing[:-1])} and {missing[-1]} are not set: "
                        f"export {exports}")


def bucket():
    """The bucket named by STEERING_BUCKET_NAME (a leading gs:// is tolerated)."""
    raw = get("STEERING_BUCKET_NAME")
    example = EXAMPLES["STEERING_BUCKET_NAME"]
    if not raw:
        raise UserError(f"STEERING_BUCKET_NAME is not set: export the bucket's name, "
                        f"e.g. export STEERING_BUCKET_NAME={example}")
    name = raw[len("gs://"):] if raw.startswith("gs://") else raw
    name = name.rstrip("/")
    if not _BUCKET_RE.match(name) or ".." in name:
        raise UserError(f"STEERING_BUCKET_NAME={raw!r} is not a bucket name: use the "
                        f"bare name in lowercase letters, digits, '-', '_' or '.', "
                        f"e.g. {example}")
    return name


def bucket_is_set():
    return bool(get("STEERING_BUCKET_NAME"))


def region():
    value = require("REGION")
    if not _REGION_RE.match(value):
        raise UserError(f"REGION={value} is not a Google Cloud region: export "
                        f"REGION={EXAMPLES['REGION']} (or another Vertex AI region)")
    return value


def trainer_image(hint=""):
    return require("TRAINER_IMAGE", hint)


# Google's rule for project ids (6 to 30 characters); old projects may have
# a domain in front: example.com:my-project.
_PROJECT_RE = re.compile(r"^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")


def project():
    """GOOGLE_CLOUD_PROJECT, or None (the credentials' or gcloud's is used then)."""
    value = get("GOOGLE_CLOUD_PROJECT")
    if value and not _PROJECT_RE.match(value):
        raise UserError(f"GOOGLE_CLOUD_PROJECT={value!r} is not a project id (6 to 30 "
                        "lowercase letters, digits or '-', starting with a letter): "
                        f"export GOOGLE_CLOUD_PROJECT={EXAMPLES['GOOGLE_CLOUD_PROJECT']}")
    return value or None


def gcs_deadline():
    """Seconds of retries before a Cloud Storage call gives up: a finite
    number above 0 and at most a day ('nan' or 'inf' would retry forever)."""
    raw = get("TRAINER_GCS_DEADLINE")
    if not raw:
        return GCS_DEADLINE
    try:
        deadline = float(raw)
    except ValueError:
        deadline = math.nan
    if not (math.isfinite(deadline) and 0 < deadline <= GCS_DEADLINE_MAX):
        raise UserError(f"TRAINER_GCS_DEADLINE={raw!r} is not a number of seconds "
                        f"between 0 and {GCS_DEADLINE_MAX:.0f}: unset it (default "
                        f"{GCS_DEADLINE:.0f}), or give e.g. 90")
    return deadline


_HOST_PORT = re.compile(r"^(https?://)?[A-Za-z0-9.-]+(:\d{1,5})?/?$")
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s]*)?$")


def storage_emulator():
    """STORAGE_EMULATOR_HOST as a URL (host:port gets http://), or None."""
    host = get("STORAGE_EMULATOR_HOST")
    if not host:
        return None
    if not _HOST_PORT.match(host) or not _port_ok(host):
        raise UserError(f"STORAGE_EMULATOR_HOST={host!r} is not a host:port or URL: "
                        "export STORAGE_EMULATOR_HOST=localhost:9023, or unset it to "
                        "use Cloud Storage")
    return host if "://" in host else "http://" + host


def _port_ok(url):
    port = url.split("://")[-1].rstrip("/").rpartition(":")[2]
    return not port.isdigit() or 0 < int(port) < 65536


def credentials_file():
    """GOOGLE_APPLICATION_CREDENTIALS, or None."""
    return get("GOOGLE_APPLICATION_CREDENTIALS") or None


def credentials_disabled():
    return get("CLOUDSDK_AUTH_DISABLE_CREDENTIALS").lower() in _TRUE


def endpoint(api, default):
    """gcloud's CLOUDSDK_API_ENDPOINT_OVERRIDES_API, else DEFAULT; ends with /."""
    name = f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api.upper()}"
    url = get(name) or default
    if not _URL.match(url) or not _port_ok(url.split("/")[2]):
        raise UserError(f"{name}={url!r} is not an http(s) URL: unset it, or export "
                        f"{name}={default}")
    return url if url.endswith("/") else url + "/"


def storage_endpoint():
    """Cloud Storage's CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE as the client
    library takes it (gcloud's form ends in storage/v1/, the client adds
    that itself), or None for Google's."""
    url = get("CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE").rstrip("/")
    return url.removesuffix("/storage/v1") or None


def job_id():
    """CLOUD_ML_JOB_ID: set by Vertex AI inside a job (each restart keeps it)."""
    return get("CLOUD_ML_JOB_ID") or None


def checkpoint_dir():
    """AIP_CHECKPOINT_DIR: Vertex AI's per-job folder under baseOutputDirectory."""
    return get("AIP_CHECKPOINT_DIR").rstrip("/") or None


_ACCELERATOR_RE = re.compile(r"^[A-Z][A-Z0-9_]*(:[1-9][0-9]?)?$")


def accelerator():
    """TRAINER_ACCELERATOR ('NVIDIA_TESLA_T4:1'): the GPU a cloud job was sent
    with (submit sets it in the job's environment), or None."""
    value = get("TRAINER_ACCELERATOR")
    if value and not _ACCELERATOR_RE.match(value):
        raise UserError(f"TRAINER_ACCELERATOR={value!r} is not TYPE[:COUNT]: e.g. "
                        "NVIDIA_TESLA_T4:1 (the submit scripts set it), or unset it")
    return value or None


def signal_at():
    """TRAINER_SIGNAL_AT=WHERE:SIGNAL[,WHERE:SIGNAL] (tests, core/points.py):
    {WHERE: signal number}, or {} when unset."""
    raw = get("TRAINER_SIGNAL_AT")
    out = {}
    for item in filter(None, raw.split(",")):
        where, _, sig = item.rpartition(":")
        number = getattr(signal, "SIG" + sig.upper().removeprefix("SIG"), None)
        if not where or not isinstance(number, int):
            raise UserError(f"TRAINER_SIGNAL_AT={raw!r} is not WHERE:SIGNAL (a test "
                            "setting, e.g. deflate:moved-aside:KILL): unset it")
        out[where] = int(number)
    return out


def machine():
    """{"machine", "accelerator", "spot"} a cloud job was sent with (submit
    sets TRAINER_MACHINE and TRAINER_SPOT beside TRAINER_ACCELERATOR), for
    the card's cost; None outside a cloud job."""
    kind = get("TRAINER_MACHINE")
    if not kind:
        return None
    return {"machine": kind, "accelerator": accelerator(),
            "spot": get("TRAINER_SPOT").lower() in _TRUE}


def sweep_id():
    """TRAINER_SWEEP: the sweep a run belongs to (submit_cloud_sweep.sh and
    local_train.sh --sweep set it for their runs), or None."""
    return get("TRAINER_SWEEP") or None


def environment(**extra):
    """A copy of this process's environment with EXTRA set, for a child."""
    return {**os.environ, **extra}


# -- Weights & Biases -----------------------------------------------------------
# What a cloud job is given (containerSpec.env). Never WANDB_API_KEY: anyone
# who can view a job can read its environment.
WANDB_JOB_ENV = ("WANDB_PROJECT", "WANDB_ENTITY", "WANDB_MODE", "WANDB_API_KEY_SECRET")


def wandb_project():
    return get("WANDB_PROJECT")


WANDB_MODES = ("online", "offline", "disabled", "dryrun", "run", "shared")


def wandb_mode():
    value = get("WANDB_MODE") or "online"
    if value not in WANDB_MODES:
        raise UserError(f"WANDB_MODE={value!r} is not one of W&B's modes: export "
                        "WANDB_MODE=online (or offline, disabled), or unset it")
    return value


def wandb_key_secret():
    return get("WANDB_API_KEY_SECRET")


def wandb_key_set():
    return bool(os.environ.get("WANDB_API_KEY"))


def wandb_job_env():
    """The W&B settings that are set, for a cloud job's environment."""
    return {k: get(k) for k in WANDB_JOB_ENV if get(k)}
