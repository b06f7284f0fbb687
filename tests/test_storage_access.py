"""Cloud Storage bills the project the other clients bill, honours gcloud's
CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE, and a refusal names its real cause
(the quota project, a missing role, Requester Pays, the API off), read
from Cloud Storage's own error reason, not from its message.

A refusal needs a Cloud Storage that refuses, which the emulator never
does: REFUSING is a small HTTP server answering every request with one
error body in Cloud Storage's JSON API shape (error.errors[].reason, or an
ErrorInfo in error.details[]), reached through the override."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google_standin import service_disabled
from helpers import one_line_error, script_env

from trainer.core import gcs as edge
from trainer.core.storage import Storage


class Refusing:
    """Answers (CODE, BODY) to everything; keeps each request's headers."""

    def __init__(self, code, body):
        self.code, self.body, self.headers = code, body, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.headers.append(dict(self.headers))
                data = json.dumps(owner.body).encode()
                self.send_response(owner.code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def gcs_error(code, reason, message):
    return {"error": {"code": code, "message": message, "errors": [
        {"message": message, "domain": "global", "reason": reason}]}}


@pytest.fixture
def refusing():
    made = []

    def make(code, body):
        made.append(Refusing(code, body))
        return made[-1]
    yield make
    for server in made:
        server.close()


def storage_env(url, **extra):
    """A script's environment with Cloud Storage at URL, as gcloud's override
    names it (its JSON API path included), not the emulator."""
    env = script_env(CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=f"{url}/storage/v1/",
                     CLOUDSDK_AUTH_DISABLE_CREDENTIALS="True", STEERING_BUCKET_NAME="robocar-test",
                     GOOGLE_CLOUD_PROJECT="robocar-test", TRAINER_GCS_DEADLINE="3", **extra)
    for name in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
        env.pop(name, None)
    return env


REFUSALS = {
    "quota project": (403, gcs_error(
        403, "userProjectAccessDenied", "robocar@example.com does not have serviceusage."
        "services.use access to the Google Cloud project."),
        "your account may not bill project robocar-test (the quota project): ask for the "
        "role Service Usage Consumer there (roles/serviceusage.serviceUsageConsumer), or "
        "`gcloud auth application-default set-quota-project` a project of yours"),
    "missing role": (403, gcs_error(
        403, "forbidden", "robocar@example.com does not have storage.objects.list access "
        "to the Google Cloud Storage bucket."),
        "give your account the role Storage Object Admin on the bucket: `gcloud storage "
        "buckets add-iam-policy-binding gs://robocar-test --member=user:YOUR_ACCOUNT "
        "--role=roles/storage.objectAdmin`"),
    "requester pays": (400, gcs_error(
        400, "userProjectMissing", "Bucket is a requester pays bucket but no user project "
        "provided."),
        "the bucket is Requester Pays, which the jobs cannot read: `gcloud storage buckets "
        "update gs://BUCKET --no-requester-pays`, or use another"),
    "API off": (*service_disabled("storage.googleapis.com"),
                "storage.googleapis.com is not enabled in the project your calls are billed "
                "to (projects/123456789012): run `gcloud services enable "
                "storage.googleapis.com --project robocar-test`"),
}


@pytest.mark.parametrize("cause", REFUSALS)
def test_a_refusal_names_its_real_cause(car, run, refusing, tmp_path, cause):
    """Before, every 403 said 'give your account Storage Object Admin', the
    wrong fix for all but one of these."""
    code, body, fix = REFUSALS[cause]
    server = refusing(code, body)
    r = run("download_models.sh", "-m", "pilot-wip",
            env=storage_env(server.url, CLOUDSDK_CONFIG=str(tmp_path / "gcloud")))
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith("download_models.sh: could not look up gs://robocar-test/models/"
                           "pilot-wip.json: permission denied ("), line
    assert "http://" not in line.split(": permission denied")[1]     # no request URL
    assert fix in line, line
    assert len(r.stderr.strip().splitlines()) == 1
    assert server.headers, "the override was not used"


def test_storage_bills_the_project_the_other_clients_bill(refusing, monkeypatch):
    """A user's login made for an older project would bill that one: the
    Storage client now carries the same quota project as Vertex AI's."""
    from google.oauth2.credentials import Credentials

    server = refusing(403, gcs_error(403, "forbidden", "no"))
    old_login = Credentials(token="t", quota_project_id="an-old-project")
    monkeypatch.setattr("google.auth.default", lambda scopes=None: (old_login, None))
    for name, value in storage_env(server.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLOUDSDK_AUTH_DISABLE_CREDENTIALS")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    with pytest.raises(Exception):
        Storage(edge.connect()).exists("gs://robocar-test/models/pilot-wip.h5")
    sent = {k.lower(): v for k, v in server.headers[0].items()}
    assert sent["x-goog-user-project"] == "robocar-test"
    assert sent["authorization"] == "Bearer t"


def test_the_storage_override_is_where_storage_is(gcs, monkeypatch, tmp_path):
    """gcloud's CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE takes the place of
    Google's endpoint: the emulator, reached without STORAGE_EMULATOR_HOST."""
    gcs.put("models/pilot-x.h5", b"h5 bytes")
    for name, value in storage_env(gcs.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    storage = Storage(edge.connect())
    assert storage.stat("gs://robocar-test/models/pilot-x.h5").size == len(b"h5 bytes")
    storage.download("gs://robocar-test/models/pilot-x.h5", str(tmp_path / "pilot-x.h5"))
    assert (tmp_path / "pilot-x.h5").read_bytes() == b"h5 bytes"
