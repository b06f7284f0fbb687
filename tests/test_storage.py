"""trainer.core.storage and trainer.core.gcs called directly: URIs, the bucket variable,
verified transfers against a real emulator, and what bad networks do to them."""
import os
import subprocess
import sys

import pytest
from faultproxy import FaultProxy
from fixtures_gcs import free_port
from helpers import ROOT

from trainer.core import bucket, settings
from trainer.core import gcs as gcsmod
from trainer.core.errors import UserError
from trainer.core.storage import Location, Storage, checksums, join, parse_uri


@pytest.mark.parametrize("uri, expected", [
    ("gs://b/training/wip.tgz", Location("gs", "b", "training/wip.tgz")),
    ("gs://b", Location("gs", "b", "")),
    ("gs://b/models/", Location("gs", "b", "models/")),
    ("wip.tgz", Location("file", "", "wip.tgz")),
    ("/abs/models", Location("file", "", "/abs/models")),
])
def test_parse_uri(uri, expected):
    assert parse_uri(uri) == expected
    assert parse_uri(str(expected)) == expected


@pytest.mark.parametrize("bad", ["", "gs://", "gs:///x", "s3://b/x", "https://b/x"])
def test_parse_uri_refuses(bad):
    with pytest.raises(UserError):
        parse_uri(bad)


def test_join():
    assert join("gs://b", "x.h5") == "gs://b/x.h5"
    assert join("gs://b/models", "x.h5") == "gs://b/models/x.h5"
    assert join("gs://b/models/", "x.h5") == "gs://b/models/x.h5"
    assert join("models", "x.h5") == os.path.join("models", "x.h5")


def test_bucket_variable(monkeypatch):
    for value, name in (("my-car", "my-car"), ("gs://my-car/", "my-car")):
        monkeypatch.setenv("STEERING_BUCKET_NAME", value)
        assert settings.bucket() == name
    for value in (None, " "):
        if value is None:
            monkeypatch.delenv("STEERING_BUCKET_NAME")
        else:
            monkeypatch.setenv("STEERING_BUCKET_NAME", value)
        with pytest.raises(UserError, match=r"STEERING_BUCKET_NAME is not set.*"
                           r"export STEERING_BUCKET_NAME=my-robocar-bucket"):
            settings.bucket()
    monkeypatch.setenv("STEERING_BUCKET_NAME", "My Bucket/training")
    with pytest.raises(UserError, match="not a bucket name.*e.g. my-robocar-bucket"):
        settings.bucket()


def test_the_default_deadline_reports_a_dead_endpoint_within_3_minutes(monkeypatch):
    """Retrying stops after the deadline; the last attempt can still wait one
    connect (dead host) or read (silent host) timeout, and one backoff."""
    monkeypatch.delenv("TRAINER_GCS_DEADLINE", raising=False)
    p = gcsmod.policy()
    connect, read = p.timeout
    assert p.deadline + max(connect, read) + 16 < 180
    assert p.retry.timeout == p.deadline
    monkeypatch.setenv("TRAINER_GCS_DEADLINE", "2")
    assert gcsmod.policy().timeout == (2, 2)
    monkeypatch.setenv("TRAINER_GCS_DEADLINE", "soon")
    with pytest.raises(UserError, match="TRAINER_GCS_DEADLINE"):
        gcsmod.policy()


@pytest.fixture
def store(gcs, monkeypatch):
    """A Storage whose client talks to the emulator, built on first use."""
    def use(url):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        monkeypatch.setenv("TRAINER_GCS_DEADLINE", "30")
        return Storage(connect=gcsmod.connect)
    monkeypatch.setenv("STEERING_BUCKET_NAME", gcs.name)
    return use


def test_local_paths_need_no_client(tmp_path):
    s = Storage()           # no client, and none can be built
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    s.put(str(src), str(tmp_path / "out" / "b.bin"))
    assert (tmp_path / "out" / "b.bin").read_bytes() == b"abc"
    assert s.fetch(str(src), str(tmp_path)) == str(src)
    assert s.exists(str(src)) and not s.exists(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="gs://"):
        s.exists("gs://b/x")


def test_put_and_fetch_round_trip_verified(gcs, store, tmp_path):
    s = store(gcs.url)
    data = os.urandom(300_000)
    (tmp_path / "m.h5").write_bytes(data)
    s.put(str(tmp_path / "m.h5"), f"gs://{gcs.name}/models/m.h5")
    assert gcs.read("models/m.h5") == data
    remote = s.stat(f"gs://{gcs.name}/models/m.h5")
    assert remote.size == len(data) and remote.matches(checksums(tmp_path / "m.h5"))
    assert s.exists(f"gs://{gcs.name}/models/m.h5")
    assert not s.exists(f"gs://{gcs.name}/models/other.h5")
    got = s.fetch(f"gs://{gcs.name}/models/m.h5", str(tmp_path / "work"))
    assert open(got, "rb").read() == data
    assert [r.name for r in s.list(f"gs://{gcs.name}/models/")] == ["m.h5"]


def test_a_missing_bucket_is_an_error_not_a_missing_object(gcs, store):
    s = store(gcs.url)
    with pytest.raises(UserError, match="bucket gs://nope does not exist"):
        s.exists("gs://nope/models/m.h5")
    with pytest.raises(UserError, match="bucket gs://nope does not exist"):
        s.list("gs://nope/models/")


def test_bare_names_are_looked_up_here_then_in_the_bucket(gcs, store, tmp_path,
                                                          monkeypatch):
    s = store(gcs.url)
    monkeypatch.chdir(tmp_path)
    gcs.put("training/wip.tgz", b"\x1f\x8b...")
    archive = bucket.ARCHIVE
    assert bucket.resolve(s, "wip", archive) == f"gs://{gcs.name}/training/wip.tgz"
    (tmp_path / "wip.tgz").write_bytes(b"local")
    assert bucket.resolve(s, "wip.tgz", archive) == "wip.tgz"       # here wins
    assert bucket.resolve(s, "./gone.tgz", archive) == "./gone.tgz"  # a path stays a path
    with pytest.raises(UserError, match=r"archive gone.tgz is neither here nor at "
                                        r"gs://robocar-test/training/gone.tgz"):
        bucket.resolve(s, "gone.tgz", archive)
    monkeypatch.delenv("STEERING_BUCKET_NAME")
    with pytest.raises(UserError, match="export STEERING_BUCKET_NAME=my-robocar-bucket"):
        bucket.resolve(s, "gone.tgz", archive)


def test_transient_faults_are_retried_until_the_bytes_match(gcs, store, tmp_path):
    """Every other request fails (429, reset connection, 503 in turn) and every
    other download is cut halfway: uploads and downloads still end intact."""
    faults = ("429", "reset", "503")
    data = os.urandom(200_000)
    src = tmp_path / "m.onnx"
    src.write_bytes(data)
    with FaultProxy(gcs.url, every=2, faults=faults, cut_every=2) as proxy:
        s = store(proxy.url)
        s.put(str(src), f"gs://{gcs.name}/models/m.onnx")
        for i in range(3):
            s.download(f"gs://{gcs.name}/models/m.onnx", str(tmp_path / f"{i}.onnx"))
            assert (tmp_path / f"{i}.onnx").read_bytes() == data
    assert set(proxy.faulted) == set(faults) and proxy.cuts >= 1
    assert gcs.read("models/m.onnx") == data


def test_a_corrupting_network_leaves_no_file(gcs, store, tmp_path):
    """Every download arrives with a flipped byte: the checksums catch it,
    three tries later the command gives up, and nothing was written."""
    gcs.put("models/m.h5", os.urandom(100_000))
    with FaultProxy(gcs.url, every=0, cut_every=0, corrupt_every=1) as proxy:
        s = store(proxy.url)
        with pytest.raises(UserError, match="arrived corrupted 3 times"):
            s.download(f"gs://{gcs.name}/models/m.h5", str(tmp_path / "models" / "m.h5"))
    assert proxy.corrupted == 3
    assert os.listdir(tmp_path / "models") == []


def test_a_corrupting_network_never_leaves_a_bad_object(gcs, store, tmp_path):
    """Every upload body gets a flipped byte: Cloud Storage checks the md5 and
    crc32c we send and refuses it; the bucket keeps the good copy it had."""
    good = os.urandom(50_000)
    gcs.put("training/wip.tgz", good)
    (tmp_path / "wip.tgz").write_bytes(os.urandom(50_000))
    with FaultProxy(gcs.url, every=0, cut_every=0, corrupt_uploads=True) as proxy:
        s = store(proxy.url)
        with pytest.raises(UserError, match="arrived corrupted .* 3 times"):
            s.upload(str(tmp_path / "wip.tgz"), f"gs://{gcs.name}/training/wip.tgz")
    assert proxy.corrupted == 3
    assert gcs.read("training/wip.tgz") == good


def test_a_dead_endpoint_gives_up_at_the_deadline(gcs, store, monkeypatch):
    s = store(f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("TRAINER_GCS_DEADLINE", "2")
    with pytest.raises(UserError, match=r"cannot reach .* after 2s of retries"):
        s.exists(f"gs://{gcs.name}/models/m.h5")


def test_the_transfer_commands_never_load_tensorflow(gcs):
    """upload_tub_archive.sh and download_models.sh start in a second, not ten."""
    code = ("import sys; from trainer.core import bucket, gcs, storage; "
            "from trainer.client import cli; gcs.connect(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'tensorflow', 'keras', 'donkeycar', 'torch'}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                       text=True, env={**gcs.env, "PYTHONPATH": ROOT}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
