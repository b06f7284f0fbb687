"""The Cloud Storage edge: the bucket from the environment, the client, the
retry policy, and Google's exceptions turned into one-line UserErrors.

    client = connect()                  # emulator: anonymous; else ADC
    with errors("upload wip.tgz"):
        blob.upload_from_filename(path, retry=policy().retry, timeout=policy().timeout)

Nothing here imports google.cloud at module level, so commands that never
touch a bucket do not pay for it.
"""
import contextlib
import re
from dataclasses import dataclass

from trainer.core import cloud, settings
from trainer.core.errors import UserError

# The deadline of retries is TRAINER_GCS_DEADLINE (settings.py; tests use short ones).
CONNECT_TIMEOUT = 10.0   # s to open a connection; bounds an unreachable endpoint
READ_TIMEOUT = 60.0      # s of silence in the middle of a response
# DEADLINE + CONNECT_TIMEOUT (+ one backoff) stays well under the 3 minutes
# in which an unreachable endpoint or a missing bucket must be reported.

cloud.quiet_google()      # its warnings no user can act on (cloud.py)


def endpoint():
    """What we talk to, for messages."""
    return (settings.get("STORAGE_EMULATOR_HOST") or settings.storage_endpoint()
            or "storage.googleapis.com")


@dataclass(frozen=True)
class Policy:
    deadline: float
    timeout: tuple      # (connect, read) for each HTTP request

    @property
    def retry(self):
        """google-api-core Retry: 429, 5xx, resets and cut-off bodies, bounded."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self.deadline).with_delay(
            initial=0.5, maximum=16.0, multiplier=2.0)


def policy():
    deadline = settings.gcs_deadline()
    return Policy(deadline, (min(CONNECT_TIMEOUT, deadline), min(READ_TIMEOUT, deadline)))


def connect():
    """The one storage client of a command, built at the edge."""
    with errors("connect to Cloud Storage"):
        from google.cloud import storage

        from google.auth.credentials import AnonymousCredentials

        emulator = settings.storage_emulator()
        if emulator:      # host:port is taken too, as other clients take it
            return storage.Client(project=settings.project() or "robocar-emulator",
                                  credentials=AnonymousCredentials(),
                                  client_options={"api_endpoint": emulator})
        # Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, or
        # `gcloud auth application-default login`, or the VM's service account),
        # billed to the project the other clients bill (cloud.bill), so a stale
        # login's quota project cannot make Storage alone refuse. No project is
        # needed to read and write objects of an existing bucket.
        creds, project = cloud.credentials_and_project(required=False)
        override = settings.storage_endpoint()
        return storage.Client(project=project, credentials=creds or AnonymousCredentials(),
                              client_options={"api_endpoint": override} if override else None)


@contextlib.contextmanager
def errors(doing):
    """Turn Google's exceptions into one line: what went wrong, what to do."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as aexc

    try:
        yield
    except UserError:
        raise
    except gexc.RetryError as e:
        raise UserError(f"could not {doing}: {_retry_reason(e)}") from None
    except aexc.DefaultCredentialsError as e:
        key = settings.credentials_file()
        if key:
            raise UserError(f"GOOGLE_APPLICATION_CREDENTIALS={key} is not a usable "
                            f"key file ({_first(e)}): fix the path, or unset it to use "
                            "'gcloud auth application-default login'") from None
        raise UserError("no Google Cloud credentials found: run 'gcloud auth "
                        "application-default login', or set "
                        "GOOGLE_APPLICATION_CREDENTIALS to a service-account key "
                        "file") from None
    except aexc.RefreshError as e:
        raise UserError(f"could not {doing}: the credentials were refused ({_first(e)}): "
                        "run 'gcloud auth application-default login' again") from None
    except aexc.TransportError as e:
        raise UserError(f"could not {doing}: cannot reach {endpoint()} "
                        f"({_first(e)}): check the network") from None
    except gexc.Unauthorized:
        raise UserError(f"could not {doing}: the credentials were refused (401): run "
                        "'gcloud auth application-default login' again") from None
    except gexc.Forbidden as e:
        raise UserError(f"could not {doing}: {forbidden(e)}") from None
    except gexc.PreconditionFailed:
        raise UserError(f"could not {doing}: the object changed in the bucket "
                        "meanwhile: run the command again") from None
    except gexc.GoogleAPICallError as e:
        if reason(e).lower() == "userprojectmissing":    # 400: a Requester Pays bucket
            raise UserError(f"could not {doing}: {forbidden(e)}") from None
        raise UserError(f"could not {doing}: Cloud Storage answered {e.code} "
                        f"({_first(e)}): try again later") from None
    except OSError as e:
        if _is_network(e):
            raise UserError(f"could not {doing}: cannot reach {endpoint()} "
                            f"({_first(e)}): check the network") from None
        raise


def _error(e):
    """cloud.error_of of a google-api-core exception (its details[] and
    errors[] as Cloud Storage sent them; its .reason fails on REST errors)."""
    return cloud.error_of({"error": {"details": list(getattr(e, "details", None) or []),
                                     "errors": list(getattr(e, "errors", None) or [])}})


def reason(e):
    """Google's reason for a refusal: the ErrorInfo's, else Cloud Storage's own
    error.errors[0].reason (forbidden, userProjectMissing, ...), else ''."""
    return _error(e)["reason"]


def forbidden(e):
    """Why Cloud Storage refused, from its reason, and the fix: the quota
    project, a disabled API, a Requester Pays bucket, or the role missing on
    the bucket (the one fix given before, which fits only the last)."""
    err = _error(e)
    why = err["reason"]
    fix = None
    if why.lower() not in ("forbidden", "insufficientpermissions", "iam_permission_denied",
                           ""):
        fix = cloud.denied_fix(why, err["metadata"], settings.project())
    target = f"gs://{settings.bucket()}" if settings.bucket_is_set() else "gs://BUCKET"
    fix = fix or (f"give your account the role Storage Object Admin on the bucket: "
                  f"`gcloud storage buckets add-iam-policy-binding {target} "
                  f"--member={cloud.account(None)} --role=roles/storage.objectAdmin`")
    said = re.sub(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ", "", str(getattr(e, "message", e)))
    return f"permission denied ({why or 'HTTP 403'}: {_first(said)}): {fix}"


def _is_network(exc):
    import requests
    return isinstance(exc, (requests.RequestException, ConnectionError, TimeoutError))


def _retry_reason(err):
    cause = getattr(err, "cause", None) or err.__cause__
    seconds = policy().deadline
    if cause is None:
        return f"gave up after {seconds:g}s of retries: try again later"
    code = getattr(cause, "code", None)
    if code is None and getattr(cause, "response", None) is not None:
        code = getattr(cause.response, "status_code", None)
    if code:
        return (f"{endpoint()} kept answering {int(code)} for {seconds:g}s: the "
                "service is busy or down, try again later")
    return (f"cannot reach {endpoint()} ({_first(cause)}) after {seconds:g}s of "
            "retries: check the network" +
            (" and STORAGE_EMULATOR_HOST" if settings.storage_emulator() else ""))


def _first(exc):
    """A short, one-line reason from an exception (requests' are long)."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    for marker in ("Connection refused", "Name or service not known",
                   "timed out", "Connection reset", "Temporary failure in name resolution",
                   "No route to host", "Network is unreachable"):
        if marker in text:
            return marker.lower()
    text = " ".join(text.split())
    return text[:160]
