"""deflate_tub_archive.sh: safe extraction that never clobbers; its
hardening rows (tests/hardening.py) at the end."""
import os
import shutil
import tarfile
import time

import pytest
from hardening import (
    ARCHIVE_SAYS,
    BAD_ARCHIVES,
    Row,
    bad_archive,
    big_archive,
    good_archive,
    has_entries,
    interrupted,
    row_ids,
)
from helpers import ROOT, one_line_error, tar_bytes, write_legacy_archive
from untrusted import (
    LONG,
    MALFORMED,
    MEMBER,
    UNSAFE_PATH,
    archive_with_tub,
    bomb,
    few_inodes,
    image_line,
    manifest_says,
    members,
    peak,
    raw_manifest,
    small_disk,
)

from trainer.core import archive as archive_module


@pytest.fixture
def archive(car, synth_tub, run):
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    return car / "wip.tgz"


def tree(path):
    return {str(p.relative_to(path)): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_restores_a_car_folder_into_an_empty_dir(trained):
    """The session's training restored its car folder into a new one with
    `deflate_tub_archive.sh -a wip.tgz -d DEST`, then archived it again and
    trained there (tests/trained.py)."""
    car, dest = trained.origin, trained.car
    assert trained.restored.returncode == 0, trained.restored.stderr
    assert (dest / "config.py").read_bytes() == (car / "config.py").read_bytes()
    assert tree(dest / "data") == tree(car / "data")
    assert not [p for p in dest.iterdir() if p.name.startswith(".deflate-")]
    # ... and that folder trains: archived again and trained from it.
    assert trained.result.returncode == 0
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
    return has_entries(ctx.tmp / "restored", ".deflate-*/new/data/images")


ROWS = [
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


# -- trust boundaries: what an archive, a tub, a config or a model someone
# else made can make the script do (the setups: tests/untrusted.py) --

TRUST = [
    Row("deflate:archive-json-absolute-tub", manifest_says('[{"path": "{tmp}/hosttub"}]'),
        ("deflate_tub_archive.sh", "-f", "-d", "{tmp}/restored"), 1,
        UNSAFE_PATH.format(r"/\S+/hosttub")),
    Row("deflate:archive-json-climbing-tub", manifest_says('[{"path": "../hosttub"}]'),
        ("deflate_tub_archive.sh", "-f", "-d", "{tmp}/restored"), 1,
        UNSAFE_PATH.format(r"\.\./hosttub")),
    Row("deflate:archive-json-dot-tub", manifest_says('[{"path": "data/../.."}]'),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        UNSAFE_PATH.format(r"data/\.\./\.\.")),
    Row("deflate:archive-json-a-list", raw_manifest(b"[1, 2]"),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format("a JSON list, not an object")),
    Row("deflate:archive-json-invalid", raw_manifest(b"{'tubs': "),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format("not valid JSON: .+")),
    Row("deflate:archive-json-without-path", raw_manifest(b'{"tubs": [{"records": 3}]}'),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format('tub 1 has no "path" string')),
    Row("deflate:archive-json-path-a-number", raw_manifest(b'{"tubs": [{"path": 7}]}'),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format('tub 1 has no "path" string')),
    Row("deflate:archive-json-tubs-not-a-list", raw_manifest(b'{"tubs": "data"}'),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MALFORMED.format('"tubs" is not a list')),
    Row("deflate:member-file-then-folder",
        members(({"name": "data"}, b"x"), ({"name": "data/manifest.json"}, b"[]\n")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MEMBER.format(r"member 'data/manifest\.json' is inside 'data', which is a file")),
    Row("deflate:member-folder-then-file",
        members(({"name": "data/manifest.json"}, b"[]\n"), ({"name": "data"}, b"x")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MEMBER.format(r"member 'data' is both a file and a folder")),
    Row("deflate:member-twice",
        members(({"name": "data/manifest.json"}, b"[]\n"),
                ({"name": "data/manifest.json"}, b"{}\n")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MEMBER.format(r"member 'data/manifest\.json' appears twice")),
    Row("deflate:member-name-of-300-characters", members(({"name": LONG}, b"x")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        MEMBER.format(r"member 'data/x+'\.\.\. has a name longer than a file system "
                      r"takes")),
    Row("deflate:catalog-image-climbs-out", archive_with_tub(image_line("../../x.jpg")),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        r"tub wip\.tgz/data: catalog_0\.catalog line 3 names the image '\.\./\.\./x\.jpg' "
        r"for cam/image_array, which is not a file in the tub's images/ folder"),
    Row("deflate:a-million-members", bomb("million"),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        r"archive wip\.tgz has more than 500,000 members, more than any car folder holds; "
        r"nothing was extracted: make it again with make_tub_archive\.sh$"),
    Row("deflate:a-million-duplicates", bomb("duplicates"),
        ("deflate_tub_archive.sh", "-d", "{tmp}/restored"), 1,
        r"archive wip\.tgz has more than 500,000 members"),
    Row("deflate:gigabyte-member-on-a-small-disk", small_disk("gigabyte"),
        ("deflate_tub_archive.sh", "-d", "{tmp}/small/car"), 1,
        r"archive wip\.tgz needs at least 1,280 MiB free to extract \(1,024 MiB of files, "
        r"256 MiB to spare\) but \S+/small/car has 512 MiB free: free some space, or "
        r"extract it on a larger disk; nothing was extracted$"),
    Row("deflate:disk-fills-up-while-extracting", few_inodes,
        ("deflate_tub_archive.sh", "-d", "{tmp}/small/car"), 1,
        r"no space left in \S+/small/car while extracting wip\.tgz, which needs \d+ MiB "
        r"or more; nothing was kept: free some space and run again$"),
]


@pytest.mark.parametrize("row", TRUST, ids=row_ids(TRUST))
def test_trust_boundaries(row, harden):
    harden(row)


@pytest.mark.parametrize("kind", ["million", "duplicates"])
def test_member_bombs_end_within_seconds_in_bounded_memory(kind, bombs, tmp_path):
    code, stderr, seconds, mib = peak(
        [os.path.join(ROOT, "deflate_tub_archive.sh"), "-a", str(bombs[kind]),
         "-d", str(tmp_path / "restored")], tmp_path)
    assert code == 1 and "more than 500,000 members" in stderr, stderr
    assert seconds < 30 and mib < 300, (seconds, mib)
    assert not (tmp_path / "restored").exists()


def test_limits_are_checked_before_anything_is_written(bombs, tmp_path, monkeypatch):
    """The size check stops at the bomb's header: no byte of it is inflated."""
    monkeypatch.setattr(archive_module, "DISK_MARGIN", 0)
    free = 512 * 2**20
    from trainer.core.errors import UserError
    t = time.time()
    with pytest.raises(UserError, match="needs at least 1,024 MiB"):
        archive_module.check_limits(str(bombs["gigabyte"]), "wip.tgz", str(tmp_path), free)
    assert time.time() - t < 5
