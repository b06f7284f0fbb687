"""Where our Google Cloud is: settings from the environment, credentials,
project, and API clients built from the discovery documents that ship
inside google-api-python-client (nothing is downloaded to build them).

    creds, project = cloud.credentials_and_project()
    aiplatform = cloud.service("aiplatform", "v1", creds, region=region)
    try:
        cloud.call(request, "creating the job")
    except cloud.ApiError as e:          # a UserError: one line, and
        e.reason, e.metadata            # Google's own reason (SERVICE_DISABLED, ...)

Settings come from trainer/settings.py: gcloud's own switches
(CLOUDSDK_API_ENDPOINT_OVERRIDES_<API> for every API called here,
CLOUDSDK_AUTH_DISABLE_CREDENTIALS) are honoured, so an emulator or a test
stand-in is one `export` away. What an error means is read from its
error.details[] (ErrorInfo reason and metadata) and error.status, never
from its message text, which Google may reword.
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


def credentials_and_project(required=True):
    """(credentials or None, project id); each missing piece named with its fix.

    Project: GOOGLE_CLOUD_PROJECT, else the credentials' project, else
    `gcloud config get-value project`; without REQUIRED, None when there is
    none (reading a bucket needs no project). User credentials are billed
    to that project (bill()).
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
    if not project and required:
        raise UserError("no Google Cloud project: export GOOGLE_CLOUD_PROJECT="
                        f"{settings.EXAMPLES['GOOGLE_CLOUD_PROJECT']}, or run `gcloud config "
                        "set project my-project`")
    return bill(creds, project), project


def bill(creds, project):
    """CREDS whose API calls are billed to PROJECT. A user's application-default
    login bills the project it was made for; without this, an older login's
    project gets the quota and the 403s (Storage included: every client of
    the toolkit gets its credentials here)."""
    if creds is not None and project and hasattr(creds, "with_quota_project") \
            and getattr(creds, "quota_project_id", None) != project \
            and type(creds).__module__.startswith("google.oauth2.credentials"):
        creds = creds.with_quota_project(project)
    return creds


def account(creds):
    """The IAM member CREDS act as, for fix commands: serviceAccount:EMAIL,
    user:EMAIL (gcloud's account), or user:YOUR_ACCOUNT when unknown."""
    email = getattr(creds, "service_account_email", None)
    if email and "@" in email:
        return f"serviceAccount:{email}"
    email = getattr(creds, "account", None) or gcloud_value("account")
    return f"user:{email}" if email else "user:YOUR_ACCOUNT"


def gcloud_project():
    """gcloud's configured project, or None (also when gcloud is absent)."""
    return gcloud_value("project")


def gcloud_value(key):
    """`gcloud config get-value KEY`, or None (also when gcloud is absent)."""
    gcloud = shutil.which("gcloud")
    if not gcloud:
        return None
    try:
        out = subprocess.run([gcloud, "config", "get-value", key],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.strip()
    return value if value and value != "(unset)" else None


def endpoint(name, region=None):
    """Where API NAME answers: CLOUDSDK_API_ENDPOINT_OVERRIDES_NAME, else
    Google's (Vertex AI is regional: https://REGION-aiplatform.googleapis.com/)."""
    host = f"{region}-{name}" if region else name
    return settings.endpoint(name, f"https://{host}.googleapis.com/")


def service(name, version, creds, region=None):
    """The client of API NAME VERSION at its endpoint()."""
    return api(name, version, endpoint(name, region), creds)


def aiplatform_endpoint(region):
    return endpoint("aiplatform", region)


def logging_endpoint():
    return endpoint("logging")


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
    secrets = service("secretmanager", "v1", creds)
    answer = call(secrets.projects().secrets().versions().access(name=name),
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


class ApiError(UserError):
    """A Google API's refusal, as one line (str) and as Google states it:
    HTTP code, error.status, and the ErrorInfo reason and metadata of
    error.details[] (SERVICE_DISABLED with its service and activationUrl,
    IAM_PERMISSION_DENIED with its permission, ...)."""

    def __init__(self, line, code, status="", reason="", metadata=None):
        super().__init__(line)
        self.code, self.status, self.reason = code, status, reason
        self.metadata = metadata or {}


def call(request, what, retries=3):
    """Execute REQUEST; turn HTTP and network failures into one clear line
    (an ApiError for an answer, a UserError when there was none)."""
    import httplib2
    from googleapiclient.errors import HttpError

    try:
        return request.execute(num_retries=retries)
    except HttpError as e:
        err = error_of(e.content)
        raise ApiError(f"{what} failed: {http_error_message(e)}", e.resp.status,
                       err["status"], err["reason"], err["metadata"]) from None
    except (httplib2.HttpLib2Error, OSError) as e:
        host = request.uri.split("/")[2] if "://" in request.uri else request.uri
        raise UserError(f"{what} failed: cannot reach {host} ({_first_line(e)}): "
                        "check the network, or the CLOUDSDK_API_ENDPOINT_OVERRIDES_* "
                        "variables") from None


def error_of(content):
    """{message, status, reason, metadata} of a Google error body (bytes, text
    or parsed): the ErrorInfo of error.details[], else Cloud Storage's own
    error.errors[0].reason."""
    try:
        if not isinstance(content, dict):
            content = json.loads(content.decode("utf-8", "replace")
                                 if isinstance(content, bytes) else content)
        err = content["error"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return {"message": "", "status": "", "reason": "", "metadata": {}}
    info = next((d for d in err.get("details") or [] if isinstance(d, dict)
                 and d.get("@type", "").endswith("google.rpc.ErrorInfo")), {})
    reason = info.get("reason") or next(
        (x.get("reason", "") for x in err.get("errors") or [] if isinstance(x, dict)), "")
    return {"message": str(err.get("message", "")), "status": str(err.get("status", "")),
            "reason": reason, "metadata": info.get("metadata") or {}}


# The predefined role that grants a permission the toolkit's user needs
# (docs/cloud.md: roles for a non-owner): prefix -> (role, its title).
ROLES = (("aiplatform.", "roles/aiplatform.user", "Vertex AI User"),
         ("logging.", "roles/logging.viewer", "Logs Viewer"),
         ("serviceusage.", "roles/serviceusage.serviceUsageConsumer",
          "Service Usage Consumer"),
         ("storage.objects.", "roles/storage.objectAdmin", "Storage Object Admin"),
         ("storage.buckets.get", "roles/storage.bucketViewer", "Storage Bucket Viewer"),
         ("artifactregistry.", "roles/artifactregistry.reader", "Artifact Registry Reader"),
         ("cloudbuild.", "roles/cloudbuild.builds.editor", "Cloud Build Editor"),
         ("secretmanager.", "roles/secretmanager.viewer", "Secret Manager Viewer"))


def role_for(permission):
    """(role, title) that grants PERMISSION, or (None, None)."""
    return next(((role, title) for prefix, role, title in ROLES
                 if permission.startswith(prefix)), (None, None))


def denied_fix(reason, metadata, project=None):
    """What to do about a 403 whose ErrorInfo reason is REASON, or None:
    the quota project, the API, or the role that is missing."""
    project = project or "YOUR_PROJECT"
    service = metadata.get("service", "")
    reason = (reason or "").lower()     # Cloud Storage's XML API capitalises its codes
    if reason == "service_disabled":
        url = metadata.get("activationUrl", "")
        return (f"{service or 'the API'} is not enabled in the project your calls are "
                f"billed to ({metadata.get('consumer', '?')}): run `gcloud services enable "
                f"{service or 'SERVICE'} --project {project}`{f' ({url})' if url else ''}; "
                "if it is enabled there, your application-default login bills another "
                f"project: `gcloud auth application-default set-quota-project {project}`")
    if reason in ("user_project_denied", "userprojectaccessdenied"):
        return (f"your account may not bill project {project} (the quota project): ask "
                "for the role Service Usage Consumer there (roles/serviceusage."
                "serviceUsageConsumer), or `gcloud auth application-default "
                "set-quota-project` a project of yours")
    if reason == "userprojectmissing":
        return ("the bucket is Requester Pays, which the jobs cannot read: `gcloud "
                "storage buckets update gs://BUCKET --no-requester-pays`, or use another")
    if reason in ("iam_permission_denied", "forbidden", "insufficientpermissions"):
        permission = metadata.get("permission", "")
        role, title = role_for(permission)
        grant = f"the role {title} ({role})" if role else "a role that has it"
        return (f"your account lacks {permission or 'a permission'} here: ask for {grant} "
                f"in project {project} (docs/cloud.md: roles)")
    return None


def http_error_message(e):
    """The API's own message, with the fix for the usual causes (keyed on
    error.details[].reason and error.status, not on the message)."""
    err = error_of(e.content)
    message, status = err["message"] or _first_line(e), err["status"]
    code = e.resp.status
    fix = denied_fix(err["reason"], err["metadata"]) if code == 403 else None
    fix = fix or {
        401: "run `gcloud auth application-default login` again",
        403: "enable the API (docs/cloud.md: one-time set-up) and check the account's "
             "roles in this project",
        404: "check GOOGLE_CLOUD_PROJECT and REGION",
        429: "a quota was reached: wait, or ask for more quota in the console",
    }.get(code, "see the message above" if code >= 500 else "check the settings")
    status = f" {status}" if status else ""
    reason = f" {err['reason']}" if err["reason"] and err["reason"] not in status else ""
    return f"HTTP {code}{status}{reason}: {_first_line(message)}: {fix}"


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
