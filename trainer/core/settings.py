"""Every environment variable the toolkit reads, read here and nowhere else.

    bucket()                 # STEERING_BUCKET_NAME, checked: 'my-robocar-bucket'
    require("REGION")        # the value, or one line naming the fix

A missing or malformed value is one UserError naming the variable and an
example value (EXAMPLES). Nothing here writes the environment.
"""
import os
import re

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


def project():
    """GOOGLE_CLOUD_PROJECT, or None (the credentials' or gcloud's is used then)."""
    return get("GOOGLE_CLOUD_PROJECT") or None


def gcs_deadline():
    """Seconds of retries before a Cloud Storage call gives up."""
    raw = os.environ.get("TRAINER_GCS_DEADLINE")
    try:
        deadline = float(raw) if raw else GCS_DEADLINE
        if deadline <= 0:
            raise ValueError
    except ValueError:
        raise UserError(f"TRAINER_GCS_DEADLINE={raw!r} is not a number of seconds: "
                        "unset it, or give e.g. 90") from None
    return deadline


def storage_emulator():
    """STORAGE_EMULATOR_HOST as a URL (host:port gets http://), or None."""
    host = get("STORAGE_EMULATOR_HOST")
    if not host:
        return None
    return host if "://" in host else "http://" + host


def credentials_file():
    """GOOGLE_APPLICATION_CREDENTIALS, or None."""
    return get("GOOGLE_APPLICATION_CREDENTIALS") or None


def credentials_disabled():
    return get("CLOUDSDK_AUTH_DISABLE_CREDENTIALS").lower() in _TRUE


def endpoint(api, default):
    """gcloud's CLOUDSDK_API_ENDPOINT_OVERRIDES_API, else DEFAULT; ends with /."""
    url = get(f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api.upper()}") or default
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


def accelerator():
    """TRAINER_ACCELERATOR ('NVIDIA_TESLA_T4:1'): the GPU a cloud job was sent
    with (submit sets it in the job's environment), or None."""
    return get("TRAINER_ACCELERATOR") or None


# -- Weights & Biases -----------------------------------------------------------
# What a cloud job is given (containerSpec.env). Never WANDB_API_KEY: anyone
# who can view a job can read its environment.
WANDB_JOB_ENV = ("WANDB_PROJECT", "WANDB_ENTITY", "WANDB_MODE", "WANDB_API_KEY_SECRET")


def wandb_project():
    return get("WANDB_PROJECT")


def wandb_mode():
    return get("WANDB_MODE") or "online"


def wandb_key_secret():
    return get("WANDB_API_KEY_SECRET")


def wandb_key_set():
    return bool(os.environ.get("WANDB_API_KEY"))


def wandb_job_env():
    """The W&B settings that are set, for a cloud job's environment."""
    return {k: get(k) for k in WANDB_JOB_ENV if get(k)}
