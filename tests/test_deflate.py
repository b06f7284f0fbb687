"""deflate_tub_archive.sh: safe extraction that never clobbers; its
hardening rows (tests/hardening.py) at the end."""
import os
import shutil
import tarfile

import pytest

from conftest import one_line_error, tar_bytes, write_legacy_archive
from hardening import (ARCHIVE_SAYS, BAD_ARCHIVES, Row, bad_archive, big_archive,
                       good_archive, has_entries, interrupted, row_ids, usage_rows)


@pytest.fixture
def archive(car, synth_tub, run):
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    return car / "wip.tgz"


def tree(path):
    return {str(p.relative_to(path)): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_restores_a_car_folder_into_an_empty_dir(car, archive, run, tmp_path):
    dest = tmp_path / "restored"
    r = run("deflate_tub_archive.sh", "-a", archive, "-d", dest)
    assert r.returncode == 0, r.stderr
    assert (dest / "config.py").read_bytes() == (car / "config.py").read_bytes()
    assert tree(dest / "data") == tree(car / "data")
    assert not [p for p in dest.iterdir() if p.name.startswith(".deflate-")]
    # ... and that folder trains: archive it again and train from it.
    assert run("make_tub_archive.sh", cwd=dest).returncode == 0
    r = run("local_train.sh", cwd=dest)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (dest / "models" / "pilot-wip.tflite").stat().st_size > 0


def test_refuses_to_overwrite_without_f(car, archive, run):
    before = tree(car)
    (car / "myconfig.py").write_text("# my own edits\n")
    before = tree(car)
    r = run("deflate_tub_archive.sh")          # defaults: wip.tgz into .
    assert r.returncode == 1
    assert "already exists: pass -f to replace it" in one_line_error(r)
    assert tree(car) == before
    r = run("deflate_tub_archive.sh", "-f")
    assert r.returncode == 0, r.stderr
    assert (car / "myconfig.py").read_text() != "# my own edits\n"


def _tar(path, entries):
    path.write_bytes(tar_bytes(entries))
    return path


CONFIG = ({"name": "config.py"}, b"IMAGE_W = 160\n")
UNSAFE = {
    "dotdot": ({"name": "data/../../escaped.txt"}, b"x"),
    "absolute": ({"name": "/tmp/robocar-absolute.txt"}, b"x"),
    "symlink": ({"name": "data/link", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, None),
    "hardlink": ({"name": "data/hard", "type": tarfile.LNKTYPE, "linkname": "config.py"}, None),
    "device": ({"name": "data/dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, None),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_members_are_refused_and_nothing_is_written(case, car, run, tmp_path):
    bad = _tar(tmp_path / f"{case}.tgz", [CONFIG, UNSAFE[case]])
    dest = tmp_path / "dest"
    dest.mkdir()
    r = run("deflate_tub_archive.sh", "-a", bad, "-d", dest)
    assert r.returncode == 1
    assert "is unsafe" in one_line_error(r)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()
    assert not os.path.exists("/tmp/robocar-absolute.txt")


def test_damaged_archives(car, archive, run, tmp_path):
    data = archive.read_bytes()
    cases = {
        "truncated": (data[: len(data) // 2], "is truncated"),
        "not gzip": (b"just some text\n" * 100, "not a gzip tar"),
    }
    for case, (content, message) in cases.items():
        bad = tmp_path / "bad.tgz"
        bad.write_bytes(content)
        dest = tmp_path / case.replace(" ", "_")
        r = run("deflate_tub_archive.sh", "-a", bad, "-d", dest)
        assert r.returncode == 1, case
        assert message in one_line_error(r), case
        assert not dest.exists(), case           # the folder it made is gone again
    r = run("deflate_tub_archive.sh", "-a", tmp_path / "nothere.tgz", "-d", tmp_path / "d")
    assert r.returncode == 1 and "not found" in one_line_error(r)
    noconf = _tar(tmp_path / "noconf.tgz", [({"name": "data/manifest.json"}, b"[]\n")])
    r = run("deflate_tub_archive.sh", "-a", noconf, "-d", tmp_path / "d2")
    assert r.returncode == 1 and "has no config.py" in one_line_error(r)


def test_legacy_layout_is_restored_into_data(car, synth_tub, run, tmp_path):
    """robocar-gcp-trainer archives: the tub's files at the root beside the configs."""
    legacy = write_legacy_archive(tmp_path / "legacy.tgz", car, synth_tub)
    dest = tmp_path / "restored"
    r = run("deflate_tub_archive.sh", "-a", legacy, "-d", dest)
    assert r.returncode == 0, r.stderr
    assert tree(dest / "data") == tree(synth_tub)


# -- hardening rows (tests/hardening.py): archives missing, damaged or unsafe; nothing
# clobbered -----------------------------------------------------------------------------

def a_tub_in_the_way(ctx):
    good_archive(ctx)
    shutil.copytree(ctx.stock.tub, ctx.tmp / "other" / "data")


def extracting(ctx):
    """Frames are arriving in the staging folder of the restore."""
    return has_entries(ctx.tmp / "restored", ".deflate-*/data/images")


ROWS = [
    *usage_rows("deflate_tub_archive.sh"),
    Row("deflate:archive-missing", None, ("deflate_tub_archive.sh",), 1,
        r"archive wip\.tgz not found: make one with \./make_tub_archive\.sh, or pass "
        r"-a PATH$"),
    # into a new folder: it is not left behind either
    Row("deflate:truncated", bad_archive("truncated"),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored/car"), 1,
        ARCHIVE_SAYS["truncated"]),
    *[Row(f"deflate:{kind}", bad_archive(kind), ("deflate_tub_archive.sh",), 1,
          ARCHIVE_SAYS[kind]) for kind in BAD_ARCHIVES if kind != "truncated"],
    Row("deflate:configs-exist-without-f", good_archive, ("deflate_tub_archive.sh",), 1,
        r"\./config\.py already exists: pass -f to replace it, or -d an empty folder$"),
    Row("deflate:tub-exists-without-f", a_tub_in_the_way,
        ("deflate_tub_archive.sh", "-d", "../other"), 1,
        r"\.\./other/data already exists: pass -f to replace it, or -d an empty "
        r"folder$"),
    Row("deflate:ctrl-c-while-extracting", big_archive,
        ("deflate_tub_archive.sh", "-a", "big.tgz", "-d", "{tmp}/restored"), 130,
        interrupted("deflate_tub_archive.sh"), interrupt=extracting),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)
