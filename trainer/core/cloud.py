"""Where our Google Cloud is: settings from the environment, credentials,
project, and API clients built from the discovery documents that ship
inside google-api-python-client (nothing is downloaded to build them).

    creds, project = cloud.credentials_and_project()
    aiplatform = cloud.api("aiplatform", "v1", cloud.aiplatform_endpoint(region), creds)

Settings come from trainer/settings.py: gcloud's own switches
(CLOUDSDK_API_ENDPOINT_OVERRIDES_*, CLOUDSDK_AUTH_DISABLE_CREDENTIALS) are
honoured, so an emulator or a test stand-in is one `export` away.
"""
import json
import logging
import os
import re
import shutil
import subprocess
import warnings

from trainer.core import settings
from trainer.core.errors import UserError

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]



def quiet_google():
    """What Google's libraries say that no user of a script can act on:
    google-api-core's warning, on every import, about its own support window
    for this Python; googleapiclient's WARNING for each retry (a failure that
    outlasts the retries is reported once, as one line, by call())."""
    warnings.filterwarnings("ignore", message=r"(?s).*Python version.*",
                            category=FutureWarning)
    logging.getLogger("googleapiclient.http").setLevel(logging.ERROR)


quiet_google()


def credentials_and_project():
    """(credentials or None, project id); each missing piece named with its fix.

    Project: GOOGLE_CLOUD_PROJECT, else the credentials' project, else
    `gcloud config get-value project`.
    """
    creds, project = None, None
    if not settings.credentials_disabled():
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            creds, project = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError as e:
            key = settings.credentials_file()
            if key and not os.path.isfile(key):
                raise UserError(f"GOOGLE_APPLICATION_CREDENTIALS={key} names no file: "
                                "point it at a service-account key, or unset it to "
                                "use `gcloud auth application-default login`") from None
            if key:
                raise UserError(f"GOOGLE_APPLICATION_CREDENTIALS={key} is not a "
                                f"usable key ({_first_line(e)}): download a new "
                                "service-account key, or unset it") from None
            raise UserError("no Google Cloud credentials found: run `gcloud auth "
                            "application-default login`, or export "
                            "GOOGLE_APPLICATION_CREDENTIALS=/path/to/key.json") from None
    project = settings.project() or project or gcloud_project()
    if not project:
        raise UserError("no Google Cloud project: export GOOGLE_CLOUD_PROJECT="
                        f"{settings.EXAMPLES['GOOGLE_CLOUD_PROJECT']}, or run `gcloud config "
                        "set project my-project`")
    # A user's application-default login bills the project it was made for;
    # without this, an older login's project gets the quota and the 403s.
    if creds is not None and hasattr(creds, "with_quota_project") \
            and getattr(creds, "quota_project_id", None) != project \
            and type(creds).__module__.startswith("google.oauth2.credentials"):
        creds = creds.with_quota_project(project)
    return creds, project


def gcloud_project():
    """gcloud's configured project, or None (also when gcloud is absent)."""
    gcloud = shutil.which("gcloud")
    if not gcloud:
        return None
    try:
        out = subprocess.run([gcloud, "config", "get-value", "project"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.strip()
    return value if value and value != "(unset)" else None


def aiplatform_endpoint(region):
    """Vertex AI is regional: https://REGION-aiplatform.googleapis.com/."""
    return settings.endpoint("aiplatform", f"https://{region}-aiplatform.googleapis.com/")


def logging_endpoint():
    return settings.endpoint("logging", "https://logging.googleapis.com/")


def read_secret(name):
    """The text of a Secret Manager secret: NAME is a secret's id in this
    project (its latest version), projects/P/secrets/S, or .../versions/V."""
    import base64

    creds, project = credentials_and_project()
    if "/" not in name:
        name = f"projects/{project}/secrets/{name}"
    if "/versions/" not in name:
        name += "/versions/latest"
    if not re.match(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$", name):
        raise UserError(f"{name} is not a Secret Manager secret: give its id, e.g. "
                        "wandb-api-key, or projects/PROJECT/secrets/ID[/versions/N]")
    endpoint = settings.endpoint("secretmanager", "https://secretmanager.googleapis.com/")
    service = api("secretmanager", "v1", endpoint, creds)
    answer = call(service.projects().secrets().versions().access(name=name),
                  f"reading the secret {name}")
    return base64.b64decode(answer["payload"]["data"]).decode("utf-8")


def api(name, version, endpoint, creds):
    """A google-api-python-client service from its bundled discovery document."""
    from googleapiclient import discovery
    from googleapiclient.http import build_http

    http = build_http()
    if creds is not None:
        import google_auth_httplib2
        http = google_auth_httplib2.AuthorizedHttp(creds, http=http)
    return discovery.build(name, version, http=http, static_discovery=True,
                           cache_discovery=False,
                           client_options={"api_endpoint": endpoint})


def discovery_document(name, version):
    """The bundled discovery document itself (schemas, enums)."""
    from googleapiclient.discovery_cache import get_static_doc
    return json.loads(get_static_doc(name, version))


def call(request, what, retries=3):
    """Execute REQUEST; turn HTTP and network failures into one clear line."""
    import httplib2
    from googleapiclient.errors import HttpError

    try:
        return request.execute(num_retries=retries)
    except HttpError as e:
        raise UserError(f"{what} failed: {http_error_message(e)}") from None
    except (httplib2.HttpLib2Error, OSError) as e:
        host = request.uri.split("/")[2] if "://" in request.uri else request.uri
        raise UserError(f"{what} failed: cannot reach {host} ({_first_line(e)}): "
                        "check the network, or the CLOUDSDK_API_ENDPOINT_OVERRIDES_* "
                        "variables") from None


def http_error_message(e):
    """The API's own message, with the fix for the usual causes."""
    try:
        err = json.loads(e.content.decode("utf-8", "replace"))["error"]
        message, status = err.get("message", ""), err.get("status", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        message, status = _first_line(e), ""
    code = e.resp.status
    if code == 403 and ("SERVICE_DISABLED" in status or "has not been used in project"
                        in message):
        return (f"HTTP 403 {status}: {_first_line(message)}: if the API is enabled in "
                "your project, your application-default login bills another one: run "
                "`gcloud auth application-default set-quota-project YOUR_PROJECT`; "
                "else enable the API (docs/cloud.md: one-time set-up)")
    fix = {
        401: "run `gcloud auth application-default login` again",
        403: "enable the API (docs/cloud.md: one-time set-up) and check the account's "
             "roles in this project",
        404: "check GOOGLE_CLOUD_PROJECT and REGION",
        429: "a quota was reached: wait, or ask for more quota in the console",
    }.get(code, "see the message above" if code >= 500 else "check the settings")
    status = f" {status}" if status else ""
    return f"HTTP {code}{status}: {_first_line(message)}: {fix}"


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
