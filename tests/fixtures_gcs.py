"""Cloud Storage for tests: a real gcp-storage-emulator server, and the same
behind a fault-injecting proxy. conftest.py registers this module as a
plugin, so every test can ask for the fixtures gcs_emulator, gcs and
faulty_gcs:

    def test_x(gcs, run):
        r = run("upload_tub_archive.sh", env=gcs.env)
        assert gcs.md5("training/wip.tgz") == md5_of("wip.tgz")

`gcs.env` is the scripts' environment (STORAGE_EMULATOR_HOST,
STEERING_BUCKET_NAME, a short TRAINER_GCS_DEADLINE); `gcs.bucket` is a
google-cloud-storage Bucket talking to the emulator directly, for setting
up and checking what the bucket holds.
"""
import base64
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass, field

import pytest
from faultproxy import FaultProxy
from helpers import script_env

with warnings.catch_warnings():
    # google-api-core warns once, at import, about its Python 3.11 support window.
    warnings.simplefilter("ignore", FutureWarning)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

BUCKET = "robocar-test"
PROJECT = "robocar-test"
# Long enough to ride out the injected faults, short enough that a test of a
# dead endpoint stays quick (the default is 90 s; see trainer/gcs.py).
DEADLINE = "30"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", name="gcs_emulator")
def emulator_fixture(tmp_path_factory):
    """`gcp-storage-emulator start --in-memory` on a free port; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
         "--port", str(port), "--default-bucket", BUCKET, "--in-memory"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as r:
                    if r.read() == b"OK":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the storage emulator did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class Gcs:
    url: str                 # where the scripts talk to (the emulator, or a proxy)
    bucket: object           # google.cloud.storage Bucket, straight to the emulator
    name: str = BUCKET
    env: dict = field(default_factory=dict)

    def blob(self, name):
        return self.bucket.get_blob(name)

    def md5(self, name):
        """The bucket's md5 of NAME, in hex; None when absent."""
        blob = self.bucket.get_blob(name)
        return base64.b64decode(blob.md5_hash).hex() if blob else None

    def read(self, name):
        return self.bucket.blob(name).download_as_bytes()

    def put(self, name, data):
        self.bucket.blob(name).upload_from_string(data)

    def names(self, prefix=""):
        return sorted(b.name for b in self.bucket.client.list_blobs(self.name,
                                                                     prefix=prefix))


def _client(url):
    return storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": url})


def _env(url, **extra):
    env = script_env(STORAGE_EMULATOR_HOST=url, STEERING_BUCKET_NAME=BUCKET,
                     GOOGLE_CLOUD_PROJECT=PROJECT, TRAINER_GCS_DEADLINE=DEADLINE)
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    env.update(extra)
    return env


def empty_bucket(emulator):
    """The bucket in the emulator at EMULATOR (a URL), emptied."""
    with urllib.request.urlopen(emulator + "/wipe?keep-buckets=true", timeout=10):
        pass
    client = _client(emulator)
    return Gcs(emulator, client.bucket(BUCKET), env=_env(emulator))


@pytest.fixture(name="gcs")
def gcs_fixture(gcs_emulator):
    """An empty bucket in the emulator, and the scripts' environment for it."""
    return empty_bucket(gcs_emulator)


@pytest.fixture(name="faulty_gcs")
def faulty_gcs_fixture(gcs):
    """Like gcs, but the scripts reach the emulator through FaultProxy: every
    third request is answered 503, every third download is cut halfway.
    Yields (gcs, proxy); gcs.env points at the proxy."""
    with FaultProxy(gcs.url, every=3, faults=("503",), cut_every=3) as proxy:
        yield Gcs(proxy.url, gcs.bucket, env=_env(proxy.url)), proxy


def md5_hex(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()
