"""upload_tub_archive.sh resumes a large upload that stopped (issue 15):
the network gave out, or Ctrl-C. .ARCHIVE.upload beside the archive keeps
the session; the next run sends only what the bucket lacks, and the tracker
goes once the upload is complete and verified. The emulator keeps resumable
sessions; tests/faultproxy.py cuts the upload off after its first piece."""
import gzip
import os
import subprocess

import pytest
from faultproxy import FaultProxy
from hardening import Row, interrupted, row_ids

from trainer.core.storage import CHUNK_SIZE

SIZE = 2 * CHUNK_SIZE + 4321
TRACKER = ".big.tgz.upload"


def big_archive_cut_after_one_piece(ctx):
    """big.tgz (gzip, 16 MiB and a bit) here; the bucket behind a proxy that
    answers 503 to every resumable piece after the first."""
    data = gzip.compress(os.urandom(SIZE - 100), compresslevel=1)[:SIZE]
    (ctx.car / "big.tgz").write_bytes(data)
    gcs = ctx.use_gcs()
    ctx.proxy = FaultProxy(gcs.url, every=0, cut_every=0, upload_chunks=1).start()
    ctx.finally_(ctx.proxy.stop)
    ctx.env["STORAGE_EMULATOR_HOST"] = ctx.proxy.url


def one_piece_sent(ctx):
    return (ctx.car / TRACKER).exists() and len(ctx.proxy.upload_ranges) >= 2


def resumes(ctx, r):
    """Run again on a healthy network: only the rest is sent."""
    assert "the upload stopped at 8.0 MiB of 16.0 MiB: the same command resumes it " \
        f"({TRACKER} keeps its session)" in r.stdout
    ctx.proxy.upload_chunks, ctx.proxy.upload_ranges = None, []
    again = subprocess.run(["./upload_tub_archive.sh", "-a", "big.tgz"], cwd=ctx.car,
                           env=ctx.env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert "resuming the upload of training/big.tgz at 8.0 MiB of 16.0 MiB" in again.stdout
    assert ctx.proxy.upload_ranges[0].startswith(f"bytes {CHUNK_SIZE}-")
    assert ctx.gcs.read("training/big.tgz") == (ctx.car / "big.tgz").read_bytes()
    assert not (ctx.car / TRACKER).exists()


ROWS = [
    Row("upload:cut-off-then-resumed", big_archive_cut_after_one_piece,
        ("upload_tub_archive.sh", "-a", "big.tgz"), 1,
        r"could not upload big\.tgz to gs://robocar-test/training/big\.tgz: "
        r"http://127\.0\.0\.1:\d+ kept answering 503 for 3s",
        env={"TRAINER_GCS_DEADLINE": "3"}, changes=(TRACKER,), then=resumes),
    Row("upload:ctrl-c-then-resumed", big_archive_cut_after_one_piece,
        ("upload_tub_archive.sh", "-a", "big.tgz"), 130,
        interrupted("upload_tub_archive.sh"), interrupt=one_piece_sent,
        changes=(TRACKER,), then=resumes),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)
