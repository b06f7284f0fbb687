"""The Cloud Storage edge: the bucket from the environment, the client, the
retry policy, and Google's exceptions turned into one-line UserErrors.

    client = connect()                  # emulator: anonymous; else ADC
    with errors("upload wip.tgz"):
        blob.upload_from_filename(path, retry=policy().retry, timeout=policy().timeout)

Nothing here imports google.cloud at module level, so commands that never
touch a bucket do not pay for it.
"""
import contextlib
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
    return settings.get("STORAGE_EMULATOR_HOST") or "storage.googleapis.com"


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

        project = settings.project()
        emulator = settings.storage_emulator()
        if emulator:      # host:port is taken too, as other clients take it
            from google.auth.credentials import AnonymousCredentials
            return storage.Client(project=project or "robocar-emulator",
                                  credentials=AnonymousCredentials(),
                                  client_options={"api_endpoint": emulator})
        # Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, or
        # `gcloud auth application-default login`, or the VM's service account).
        # No project is needed to read and write objects of an existing bucket.
        return storage.Client(project=project)


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
        raise UserError(f"could not {doing}: permission denied ({_first(e)}): give "
                        "your account the Storage Object Admin role on the "
                        "bucket") from None
    except gexc.PreconditionFailed:
        raise UserError(f"could not {doing}: the object changed in the bucket "
                        "meanwhile: run the command again") from None
    except gexc.GoogleAPICallError as e:
        raise UserError(f"could not {doing}: Cloud Storage answered {e.code} "
                        f"({_first(e)}): try again later") from None
    except OSError as e:
        if _is_network(e):
            raise UserError(f"could not {doing}: cannot reach {endpoint()} "
                            f"({_first(e)}): check the network") from None
        raise


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
