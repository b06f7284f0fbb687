"""upload_tub_archive.sh against a real storage emulator, run as a user would;
its hardening rows (tests/hardening.py) at the end."""
import gzip
import os
import tarfile
import time

import pytest
from fixtures_gcs import free_port, md5_hex
from hardening import (
    NO_BUCKET_VAR,
    NO_SUCH_BUCKET,
    Row,
    bad_archive,
    bucket,
    gzip_archive,
    row_ids,
    steps,
)
from helpers import one_line_error, script_env


def make_archive(run, *args):
    r = run("make_tub_archive.sh", *args)
    assert r.returncode == 0, r.stderr


def test_upload_puts_the_archive_then_skips_then_refuses_a_changed_one(car, synth_tub,
                                                                       run, gcs):
    make_archive(run)
    first = md5_hex(car / "wip.tgz")

    r = run("upload_tub_archive.sh", env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert gcs.md5("training/wip.tgz") == first
    assert gcs.read("training/wip.tgz") == (car / "wip.tgz").read_bytes()
    assert "gs://robocar-test/training/wip.tgz" in r.stdout
    assert r.stderr == ""                      # no progress bar off a terminal
    generation = gcs.blob("training/wip.tgz").generation

    r = run("upload_tub_archive.sh", env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stdout and "identical" in r.stdout
    assert gcs.blob("training/wip.tgz").generation == generation   # not rewritten

    make_archive(run, "-f")                    # re-made: a new creation time inside
    changed = md5_hex(car / "wip.tgz")
    assert changed != first
    r = run("upload_tub_archive.sh", env=gcs.env)
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith("upload_tub_archive.sh: ") and "-f" in line
    assert "differs" in line
    assert gcs.md5("training/wip.tgz") == first          # the bucket's copy is intact
    assert md5_hex(car / "wip.tgz") == changed           # and so is the local one

    r = run("upload_tub_archive.sh", "-f", env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert gcs.md5("training/wip.tgz") == changed


def test_a_named_archive_goes_under_its_own_name(car, run, gcs):
    path = car / "sunday.tgz"
    write_random_archive(path, 1000)
    r = run("upload_tub_archive.sh", "-a", "sunday.tgz", env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert gcs.names("training/") == ["training/sunday.tgz"]
    assert gcs.md5("training/sunday.tgz") == md5_hex(path)


def write_random_archive(path, size):
    """A gzip tar holding SIZE random bytes: it does not compress."""
    payload = path.parent / "payload.bin"
    payload.write_bytes(os.urandom(size))
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        tar.add(payload, arcname="payload.bin")
    payload.unlink()


def test_a_large_archive_arrives_intact_through_a_faulty_network(car, run, faulty_gcs):
    """Above 8 MiB the upload is resumable, in chunks; every third request is
    answered 503 on the way, and the bucket still gets the very bytes."""
    gcs, proxy = faulty_gcs
    write_random_archive(car / "big.tgz", 9 << 20)
    r = run("upload_tub_archive.sh", "-a", "big.tgz", env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert proxy.faults_injected >= 1
    assert gcs.md5("training/big.tgz") == md5_hex(car / "big.tgz")
    r = run("upload_tub_archive.sh", "-a", "big.tgz", env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stdout


def test_missing_bucket_variable_is_named_with_an_example(car, run, gcs):
    write_random_archive(car / "wip.tgz", 100)
    env = dict(gcs.env)
    del env["STEERING_BUCKET_NAME"]
    r = run("upload_tub_archive.sh", env=env)
    assert r.returncode == 1
    line = one_line_error(r)
    assert "STEERING_BUCKET_NAME" in line and "export STEERING_BUCKET_NAME=" in line
    assert gcs.names() == []


def test_a_bucket_that_does_not_exist_is_one_clear_line(car, run, gcs):
    write_random_archive(car / "wip.tgz", 100)
    r = run("upload_tub_archive.sh", env={**gcs.env, "STEERING_BUCKET_NAME": "no-such"})
    assert r.returncode == 1
    line = one_line_error(r)
    assert "gs://no-such" in line and "does not exist" in line
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1


def test_an_unreachable_endpoint_is_reported_within_the_deadline(car, run, gcs):
    write_random_archive(car / "wip.tgz", 100)
    dead = f"http://127.0.0.1:{free_port()}"       # nothing listens there
    start = time.monotonic()
    r = run("upload_tub_archive.sh",
            env={**gcs.env, "STORAGE_EMULATOR_HOST": dead, "TRAINER_GCS_DEADLINE": "3"})
    elapsed = time.monotonic() - start
    assert r.returncode == 1
    line = one_line_error(r)
    assert "cannot reach" in line and dead in line
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1
    assert elapsed < 3 + 10       # the retry deadline, plus starting Python


def test_bad_archives_are_refused_before_any_network(car, run, gcs):
    r = run("upload_tub_archive.sh", env=gcs.env)            # no wip.tgz here
    assert r.returncode == 1
    assert "make_tub_archive.sh" in one_line_error(r)
    (car / "notes.tgz").write_text("not an archive")
    r = run("upload_tub_archive.sh", "-a", "notes.tgz", env=gcs.env)
    assert r.returncode == 1
    assert "not a tub archive" in one_line_error(r)
    assert gcs.names() == []


def test_usage(run):
    """Its own flags (every script's usage errors: test_scripts.py)."""
    r = run("upload_tub_archive.sh", "-h", env=script_env())
    assert r.returncode == 0
    assert r.stdout.startswith("Summary: upload a tub archive")
    assert "Usage: upload_tub_archive.sh [-a ARCHIVE] [-f]" in r.stdout


# -- hardening rows (tests/hardening.py): settings, the bucket, the network --------------

def bucket_archive_differs(ctx):
    ctx.use_gcs().put("training/wip.tgz", gzip.compress(b"last week's laps"))
    (ctx.car / "wip.tgz").write_bytes(gzip.compress(b"this week's laps"))


ROWS = [
    Row("upload:no-bucket-variable", gzip_archive, ("upload_tub_archive.sh",), 1,
        NO_BUCKET_VAR),
    Row("upload:bucket-does-not-exist", steps(bucket, gzip_archive),
        ("upload_tub_archive.sh",), 1, NO_SUCH_BUCKET,
        env={"STEERING_BUCKET_NAME": "no-such-bucket"}),
    # TRAINER_GCS_DEADLINE (3 s here) of retries, then one line
    Row("upload:storage-unreachable", steps(bucket, gzip_archive),
        ("upload_tub_archive.sh",), 1,
        r"could not .*: cannot reach http://127\.0\.0\.1:\d+ \(connection refused\) "
        r"after 3s of retries: check the network and STORAGE_EMULATOR_HOST$",
        env={"STORAGE_EMULATOR_HOST": "{dead}", "TRAINER_GCS_DEADLINE": "3"}),
    Row("upload:archive-missing", bucket, ("upload_tub_archive.sh",), 1,
        r"no archive here \(wip\.tgz\): make one with \./make_tub_archive\.sh in the car "
        r"folder, or pass -a ARCHIVE$"),
    Row("upload:not-gzip", steps(bucket, bad_archive("not-gzip")),
        ("upload_tub_archive.sh",), 1,
        r"wip\.tgz is not a tub archive \(not gzip\): make one with make_tub_archive\.sh$"),
    Row("upload:bucket-copy-differs-without-f", bucket_archive_differs,
        ("upload_tub_archive.sh",), 1,
        r"gs://robocar-test/training/wip\.tgz already exists and differs from wip\.tgz: "
        r"pass -f to replace it, or upload under another name$"),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)
