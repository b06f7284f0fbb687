"""What W&B runs share, the training job's (job/tracking.py) and the drive
report's (car/drive_run.py): one artifact naming rule, references to files
by URI, and an input artifact that works offline too.

    run = lineage.init("drive-tub_3", "drive")     # None when WANDB_MODE=disabled
    lineage.use(run, artifact)                     # the run's input, online or offline

On only when WANDB_PROJECT is set (core/settings.py); wandb is imported here
and nowhere before it is needed.
"""
import os
import pathlib
import re

from trainer.core import settings
from trainer.core.errors import UserError
from trainer.core.storage import parse_uri

INSTALL = "pip install 'robocar-trainer[wandb]'"


def import_wandb():
    """wandb, or one line saying why it cannot be used."""
    try:
        import wandb
    except ImportError as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name == "wandb"
        why = "is not installed" if missing else f"cannot be imported ({first_line(e)})"
        raise UserError(f"WANDB_PROJECT={settings.wandb_project()} asks for W&B tracking "
                        f"but wandb {why}: unset WANDB_PROJECT, or {INSTALL}") from None
    return wandb


def init(name, job_type):
    """A W&B run NAME of JOB_TYPE in WANDB_PROJECT; None when W&B is disabled."""
    wandb = import_wandb()
    try:
        run = wandb.init(project=settings.wandb_project(), name=name, job_type=job_type)
    except wandb.errors.Error as e:
        raise UserError(f"the W&B run could not start ({first_line(e)}): run `wandb "
                        "login`, or export WANDB_MODE=offline, or unset WANDB_PROJECT"
                        ) from None
    if run.disabled:            # WANDB_MODE=disabled, or `wandb disabled`: as if unset
        run.finish()
        return None
    return run


def use(run, artifact):
    """ARTIFACT as an input of RUN. wandb 0.28's use_artifact refuses offline
    runs (TypeError); this is what it does with a new artifact, and `wandb
    sync` makes it the run's input."""
    if run.offline:
        run._log_artifact(artifact, is_user_created=True, use_after_commit=True)
    else:
        run.use_artifact(artifact)


def where(run):
    """The run's page, or where it waits offline for `wandb sync`."""
    if not run.offline:
        return run.url
    folder = os.path.dirname(run.dir)
    return f"offline in {folder}; upload it with `wandb sync {folder}`"


def reference(uri):
    """gs:// URIs as they are; a local path as an absolute file:// URI."""
    if parse_uri(uri).scheme == "gs":
        return uri
    return pathlib.Path(os.path.abspath(uri)).as_uri()


def artifact_name(text):
    """W&B artifact names take letters, digits, '-', '_' and '.' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "unnamed"


def first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
