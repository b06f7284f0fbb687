"""Optional experiment tracking with Weights & Biases, on when WANDB_PROJECT is set.

    WANDB_PROJECT=robocar ./local_train.sh                       # a run named pilot-wip
    WANDB_MODE=offline WANDB_PROJECT=robocar ./local_train.sh    # ./wandb/offline-run-*

trainer.training opens one run per training job (start) and hands it the
config and archives before training (inputs), DonkeyCar's history after it
(history), the card's numbers (results) and the published files (model).
The run links data to model: each archive is an input artifact of type
`dataset` (a reference to its URI with its sha256; the data is neither
copied nor uploaded) and the model files with their card an output artifact
of type `model`. DonkeyCar's train() builds its own Keras callbacks and
takes no others, so loss and val_loss per epoch come from the history it
returns, logged right after training rather than live.

Without WANDB_PROJECT every method returns at once and wandb is never
imported. A cloud job gets the W&B settings (job_env), never the API key:
it reads the key from the Secret Manager secret WANDB_API_KEY_SECRET names.
"""
import os
import re
import tempfile

from trainer.core import cloud, lineage, settings
from trainer.core.config import effective, redact_overrides
from trainer.core.errors import UserError
from trainer.core.lineage import artifact_name, reference
from trainer.core.storage import parse_uri

KEYLESS = ("offline", "dryrun", "disabled")     # WANDB_MODEs that need no API key
INSTALL = "pip install 'robocar-trainer[wandb]'"


def project():
    return settings.wandb_project()


def check():
    """With WANDB_PROJECT set, wandb must import and WANDB_MODE be one of
    its modes: one line before any work."""
    if project():
        settings.wandb_mode()
        _wandb()


def _wandb():
    try:
        import wandb
    except ImportError as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name == "wandb"
        why = "is not installed" if missing else f"cannot be imported ({_first_line(e)})"
        raise UserError(f"WANDB_PROJECT={project()} asks for W&B tracking but wandb "
                        f"{why}: unset WANDB_PROJECT, or {INSTALL}") from None
    return wandb


def start(name, say=print):
    """A Tracker for the training job NAME: a W&B run named NAME when
    WANDB_PROJECT is set (wandb must be installed), else one that does nothing.
    Started after the archive's config has run: the API key may be read here."""
    if not project():
        return Tracker(None, say)
    wandb = _wandb()
    api_key_from_secret()
    try:
        # A sweep's runs share a group (its id): W&B shows them side by side.
        run = wandb.init(project=project(), name=name, job_type="train",
                         group=settings.sweep_id())
    except wandb.errors.Error as e:
        raise UserError(f"the W&B run could not start ({_first_line(e)}): run `wandb "
                        "login`, or export WANDB_MODE=offline, or unset WANDB_PROJECT"
                        ) from None
    if run.disabled:            # WANDB_MODE=disabled, or `wandb disabled`: as if unset
        run.finish()
        return Tracker(None, say)
    return Tracker(run, say)


class Tracker:
    """One W&B run, or nothing (run None). `with tracker:` finishes the run,
    marked failed when the job raised."""

    def __init__(self, run, say=print):
        self.run, self.say = run, say

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if self.run is not None:
            self.run.finish(exit_code=1 if kind else 0)
        return False

    def inputs(self, plan):
        """Before training: the effective config, and each archive (uri,
        sha256, bytes) as an input artifact of type `dataset`."""
        if self.run is None:
            return
        import wandb

        self.run.config.update({"model_type": plan.model_type,
                                "overrides": redact_overrides(plan.overrides),
                                "transfer": plan.transfer,
                                "job_id": settings.job_id(),
                                **effective(plan.cfg)})
        for archive in plan.results.archives:
            base = parse_uri(archive["uri"]).name
            data = wandb.Artifact(artifact_name(re.sub(r"(\.tgz|\.tar\.gz)$", "", base)),
                                  type="dataset", metadata=dict(archive),
                                  description="tub archive (robocar-trainer)")
            data.add_reference(reference(archive["uri"]), name=base, checksum=False)
            # A reference without checksum is known by its URI alone: this file
            # makes a new version when the bytes behind that URI change. Added
            # as a copy (W&B's staging), so it is still there for `wandb sync`.
            with tempfile.TemporaryDirectory() as tmp:
                digest = os.path.join(tmp, base + ".sha256")
                with open(digest, "w") as f:
                    f.write(f"{archive['sha256']}  {base}\n")
                data.add_file(digest)
            lineage.use(self.run, data)          # offline too

    def history(self, history):
        """After training: every value of DonkeyCar's history, one step per epoch."""
        if self.run is None:
            return
        epochs = max((len(v) for v in history.values()), default=0)
        for i in range(epochs):
            row = {k: float(v[i]) for k, v in history.items() if i < len(v)}
            self.run.log({"epoch": i + 1, **row}, step=i)

    def results(self, card):
        """Before the card is written: its numbers into the run's summary,
        and the run into the card (card["wandb"])."""
        if self.run is None:
            return
        self.run.summary.update({k: card[k] for k in (
            "best_val_loss", "epochs", "records", "parity", "evaluation", "seconds")})
        run = self.run
        card["wandb"] = {"project": run.project, "entity": run.entity or None,
                         "run_id": run.id, "name": run.name, "url": self.url(),
                         "group": run.group or None,
                         "mode": "offline" if run.offline else "online"}

    def url(self):
        """The run's page; None offline (wandb itself would warn)."""
        return None if self.run.offline else self.run.url

    def model(self, plan, card):
        """After publishing: the model files and card as an output artifact."""
        if self.run is None:
            return
        import wandb

        name, paths = plan.name, list(plan.local_files().values())
        outputs = list(plan.outputs.values())
        model = wandb.Artifact(artifact_name(name), type="model", metadata={
            "model_type": card["model_type"], "best_val_loss": card["best_val_loss"],
            "epochs": card["epochs"], "parity": card["parity"],
            "versions": card["versions"], "outputs": list(outputs)},
            description="DonkeyCar autopilot (robocar-trainer)")
        for path in paths:
            model.add_file(path)
        self.run.log_artifact(model)
        run = self.run
        folder = os.path.dirname(run.dir)
        where = self.url() or f"offline in {folder}; upload it with `wandb sync {folder}`"
        self.say(f"W&B run {run.name} ({run.id}): {where}")


def job_env(gcp_project):
    """The W&B settings a cloud job gets (containerSpec.env), {} without
    WANDB_PROJECT. An online run needs WANDB_API_KEY_SECRET, since the key
    itself never goes into a job: refused here, before anything is sent. A
    bare secret id is named in full with GCP_PROJECT (projects/P/secrets/S):
    inside a job, the default project is Google's, not the user's."""
    if not project():
        return {}
    env = settings.wandb_job_env()
    secret = env.get("WANDB_API_KEY_SECRET", "")
    if secret and "/" not in secret and gcp_project:
        env["WANDB_API_KEY_SECRET"] = f"projects/{gcp_project}/secrets/{secret}"
    if env.get("WANDB_MODE", "online") not in KEYLESS and "WANDB_API_KEY_SECRET" not in env:
        raise UserError("WANDB_PROJECT is set, but a cloud job never gets WANDB_API_KEY "
                        "(anyone who can view a job sees its environment): put the key "
                        "in Secret Manager and export WANDB_API_KEY_SECRET=wandb-api-key "
                        "(docs/tracking.md: in the cloud), or unset WANDB_PROJECT")
    return env


def api_key_from_secret():
    """In a cloud job: WANDB_API_KEY from the Secret Manager secret that
    WANDB_API_KEY_SECRET names, unless the key is set or not needed."""
    secret = settings.wandb_key_secret()
    if not secret or settings.wandb_key_set() or settings.wandb_mode() in KEYLESS:
        return
    # wandb reads its key from the environment; this process's only, never the job's.
    os.environ["WANDB_API_KEY"] = cloud.read_secret(secret).strip()


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
