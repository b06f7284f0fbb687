"""Training from and to the bucket, the whole round trip as a user does it:
make_tub_archive.sh -> upload_tub_archive.sh -> local_train.sh -a NAME -o gs://
-> download_models.sh, through a faulty network."""
import hashlib
import json
import os

import pytest

from fixtures_gcs import md5_hex
from helpers import one_line_error

from trainer.core import bucket

OUTPUTS = sorted(f"pilot-wip{suffix}" for suffix in bucket.OUTPUTS)


def archive_in_bucket_only(car, run, env):
    """make_tub_archive.sh (unless done), upload_tub_archive.sh, then the local
    copy goes."""
    if not (car / "wip.tgz").exists():
        r = run("make_tub_archive.sh")
        assert r.returncode == 0, r.stderr
    r = run("upload_tub_archive.sh", env=env)
    assert r.returncode == 0, r.stderr
    md5 = md5_hex(car / "wip.tgz")
    os.remove(car / "wip.tgz")
    return md5


def check_models_in_bucket(gcs):
    """The six files are there, and the card's sha256s are the bucket's bytes."""
    assert gcs.names("models/") == [f"models/{f}" for f in OUTPUTS]
    card = json.loads(gcs.read("models/pilot-wip.json"))
    for name, entry in card["files"].items():
        data = gcs.read(f"models/{name}")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert len(data) == entry["bytes"]
    return card


def test_a_bare_name_missing_everywhere_is_one_clear_line(car, run, gcs):
    r = run("local_train.sh", "-a", "sunday.tgz", env=gcs.env)
    assert r.returncode == 1
    line = one_line_error(r)
    assert "sunday.tgz" in line and "gs://robocar-test/training/sunday.tgz" in line
    env = dict(gcs.env)
    del env["STEERING_BUCKET_NAME"]
    r = run("local_train.sh", "-a", "sunday.tgz", env=env)
    assert r.returncode == 1
    assert "export STEERING_BUCKET_NAME=my-robocar-bucket" in one_line_error(r)


@pytest.mark.e2e           # a whole run (or two) end to end: make e2e
def test_the_round_trip_through_a_faulty_network(car, synth_tub, run, tmp_path,
                                                 faulty_gcs):
    """Every third request answered 503, every third download cut halfway:
    upload, training from the bucket into the bucket (nothing written
    locally) and three downloads in a row all end with verified files. (On
    a clean network the cloud job does the same: test_submit.py.)"""
    gcs, proxy = faulty_gcs
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    data = (car / "wip.tgz").read_bytes()
    sha256, size = hashlib.sha256(data).hexdigest(), len(data)
    md5 = archive_in_bucket_only(car, run, gcs.env)
    assert gcs.md5("training/wip.tgz") == md5

    proxy.cut_next_download()                   # the archive will arrive in pieces
    r = run("local_train.sh", "-a", "wip.tgz", "-o", "gs://robocar-test/models",
            env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert proxy.cuts >= 1
    card = check_models_in_bucket(gcs)
    assert card["archives"][0] == {"uri": "gs://robocar-test/training/wip.tgz",
                                   "sha256": sha256, "bytes": size}
    assert card["records"]["live"] == 200
    assert gcs.md5("training/wip.tgz") == md5                # the archive is untouched
    assert not list(car.glob("**/pilot-wip*")) and not (car / "wip.tgz").exists()

    # Again with its name and without -f: refused before any training, the
    # bucket's model kept (without -m the default name would move on).
    before = {n: gcs.blob(n).generation for n in gcs.names("models/")}
    r = run("local_train.sh", "-a", "wip.tgz", "-m", "pilot-wip", "-o",
            "gs://robocar-test/models", env=gcs.env)
    assert r.returncode == 1
    assert "already exists" in one_line_error(r)
    assert {n: gcs.blob(n).generation for n in gcs.names("models/")} == before

    for i in range(3):
        here = tmp_path / f"laptop-{i}"
        here.mkdir()
        r = run("download_models.sh", cwd=here, env=gcs.env)
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(here / "models")) == OUTPUTS
        for name in OUTPUTS:
            assert (here / "models" / name).read_bytes() == gcs.read(f"models/{name}")
    assert proxy.faults_injected >= 10 and proxy.cuts >= 5
