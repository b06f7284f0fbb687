"""A cloud job that Vertex AI starts again, told what its earlier attempt did.

Vertex AI restarts a worker whose process exits non-zero, and one whose VM is
preempted (Spot) or maintained, with the same CLOUD_ML_JOB_ID: up to 5 times
a worker, then the whole job up to 3 times (Vertex AI's "Understand the
custom training service"). So, inside a job:

    with restarts.remembered(storage):      # a user's error is final, not retried
        if restarts.published_by_this_job(storage, card_uri):
            return                          # an earlier attempt finished the job

- A model whose card names this job id was published by an earlier attempt
  (the card goes last): the restart has nothing left to do and exits 0.
- A failure that is the user's (a UserError: bad config, parity, a name
  taken) is written to the job's checkpoint folder (AIP_CHECKPOINT_DIR, which
  Vertex AI sets from the job's baseOutputDirectory); a restart finds it and
  ends at once with the same line, before fetching anything, so a retry of a
  mistake costs seconds, not a machine's worth of training. We do not set
  scheduling.disableRetries: it would end the job on the preemptions and
  maintenance that the restarts are there for.
Outside a Vertex AI job (no CLOUD_ML_JOB_ID) nothing here does anything.
"""
import contextlib
import json
import os
import tempfile

from trainer.core import settings
from trainer.core.errors import UserError
from trainer.core.storage import join

MARKER = "failed.txt"
PUBLISHED = "published.json"     # {uri: stamp} of what this job has published so far


def _marker():
    folder = settings.checkpoint_dir()
    if not (settings.job_id() and folder):
        return None
    return join(folder, MARKER)


@contextlib.contextmanager
def remembered(storage):
    """Stop at once where an earlier attempt failed for a reason of the
    user's; remember this attempt's own such failure for the next one."""
    marker = _marker()
    if marker and storage.exists(marker):
        raise UserError(f"{_read(storage, marker)} (an earlier attempt of job "
                        f"{settings.job_id()} ended so; Vertex AI's restart stops here)")
    try:
        yield
    except UserError as e:
        if marker:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, MARKER)
                with open(path, "w") as f:
                    f.write(str(e))
                storage.put(path, marker)
        raise


def published_by_this_job(storage, card_uri, say=print):
    """True when CARD_URI is the card of a model this very job published."""
    job = settings.job_id()
    if not job or not storage.exists(card_uri):
        return False
    try:
        card = json.loads(_read(storage, card_uri))
    except ValueError:
        return False
    if not isinstance(card, dict) or card.get("job_id") != job:
        return False
    say(f"{card_uri} was published by an earlier attempt of job {job}: "
        "the model is complete, nothing left to do")
    return True


def own_outputs(storage):
    """{uri: stamp} of the model files an earlier attempt of this job
    published before it was stopped (a worker restarted in the middle of
    publishing): its own to replace. {} outside a job."""
    uri = _published()
    if not uri or not storage.exists(uri):
        return {}
    try:
        found = json.loads(_read(storage, uri))
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    # a local file's stamp is a tuple, which JSON keeps as a list
    return {k: tuple(v) if isinstance(v, list) else v for k, v in found.items()}


def recorder(storage):
    """A function(uri, stamp) that remembers each file this attempt publishes,
    or None outside a job."""
    uri = _published()
    if not uri:
        return None
    done = own_outputs(storage)

    def record(output, stamp):
        done[output] = stamp
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, PUBLISHED)
            with open(path, "w") as f:
                json.dump(done, f)
            storage.put(path, uri)
    return record


def _published():
    folder = settings.checkpoint_dir()
    return join(folder, PUBLISHED) if settings.job_id() and folder else None


def _read(storage, uri):
    with tempfile.TemporaryDirectory() as tmp:
        with open(storage.fetch(uri, tmp), encoding="utf-8", errors="replace") as f:
            return f.read()
