"""Damaged tubs are found where it is cheap (issue 21): make_tub_archive.sh
decodes every live frame and checks every label, names the bad records and
writes no archive, or with --skip-bad marks them deleted the DonkeyCar way
(manifest.json's deleted_indexes, no file removed); catalogs and manifests
with impossible values are one line, not a traceback; training and movies
refuse bad records in an archive made elsewhere, in one line. The tubs are
compared by content hash before and after."""
import io
import json
import math
import re
import shutil
import time
from pathlib import Path

import pytest
from hardening import Row, row_ids, tub
from helpers import write_synth_tub
from lost_nothing import env_for, hashes, one_line, run_script
from PIL import Image
from untrusted import archive_with_tub

MAKE = "make_tub_archive.sh"
SKIP = (r"; skip them with make_tub_archive\.sh --skip-bad \(marked deleted in the "
        r"tub's manifest\.json, as donkey ui does; no file is removed\), or fix them$")
TRAIN_HINT = (r"; nothing was trained: make the archive again with make_tub_archive\.sh "
              r"--skip-bad \(marks them deleted in the tub\), or fix them$")


# -- damage, each to a copy of the stock 200-record tub --------------------------------

def frame_of(path, n):
    return Path(path) / "images" / f"{n}_cam_image_array_.jpg"


def emptied(n):
    return lambda t: frame_of(t, n).write_bytes(b"")


def truncated(n, keep=0.5):
    def damage(t):
        data = frame_of(t, n).read_bytes()
        frame_of(t, n).write_bytes(data[: int(len(data) * keep)])
    return damage


def not_an_image(n):
    return lambda t: frame_of(t, n).write_text("this is not a picture\n")


def gray(n):
    def damage(t):
        buf = io.BytesIO()
        Image.new("L", (160, 120), 90).save(buf, "JPEG")
        frame_of(t, n).write_bytes(buf.getvalue())
    return damage


def enormous(n):
    """A real frame whose header says 30000x30000: a bomb, or a damaged header."""
    def damage(t):
        data = bytearray(frame_of(t, n).read_bytes())
        sof = data.index(b"\xff\xc0")              # baseline frame header: ..., H, W
        data[sof + 5:sof + 9] = (30000).to_bytes(2, "big") * 2
        frame_of(t, n).write_bytes(bytes(data))
    return damage


def label(n, key, value=None, drop=False, raw=None):
    """Record N's KEY set to VALUE (NaN, Infinity, text, None), or dropped,
    or the record's JSON text with RAW (old, new) replaced."""
    def damage(t):
        catalog = Path(t) / "catalog_0.catalog"
        lines = catalog.read_text().splitlines()
        record = json.loads(lines[n])
        if drop:
            del record[key]
        else:
            record[key] = value
        lines[n] = json.dumps(record)
        if raw:
            lines[n] = lines[n].replace(*raw)
        catalog.write_text("\n".join(lines) + "\n")
    return damage


def catalog_line(n, raw):
    """Catalog line N replaced by the bytes RAW."""
    def damage(t):
        catalog = Path(t) / "catalog_0.catalog"
        lines = catalog.read_bytes().split(b"\n")
        lines[n] = raw
        catalog.write_bytes(b"\n".join(lines))
    return damage


def meta(**values):
    """manifest.json's catalog metadata (its fifth line) with VALUES."""
    def damage(t):
        path = Path(t) / "manifest.json"
        lines = path.read_text().splitlines()
        data = json.loads(lines[4])
        data.update(values)
        lines[4] = json.dumps(data)
        path.write_text("\n".join(lines) + "\n")
    return damage


def several(*damages):
    def damage(t):
        for d in damages:
            d(t)
    return damage


def damaged_tub(damage):
    """The row's setup: car/data a damaged copy of the stock tub (the runner
    hashes every file before and after: nothing may change, the tub least
    of all, and no wip.tgz may appear)."""
    def setup(ctx):
        damage(tub(ctx))
    return setup


def no_archive(ctx, r):
    assert not (ctx.car / "wip.tgz").exists()


BAD = {        # name: (damage, what the line names)
    "empty-frame-mid-tub": (emptied(57), r"57 \(images/57_cam_image_array_\.jpg is empty\)"),
    "truncated-frame": (truncated(120), r"120 \(images/120_cam_image_array_\.jpg is "
                                        r"truncated\)"),
    "frame-cut-at-its-last-bytes": (truncated(3, 0.97), r"3 \(images/3_cam_image_array_"
                                                        r"\.jpg is truncated\)"),
    "empty-first-frame": (emptied(0), r"0 \(images/0_cam_image_array_\.jpg is empty\)"),
    "truncated-first-frame": (truncated(0, 0.2), r"0 \(images/0_cam_image_array_\.jpg is "
                                                 r"truncated\)"),
    "enormous-first-frame": (enormous(0), r"0 \(images/0_cam_image_array_\.jpg is "
                                          r"(30000x30000|900000000) pixels, larger than any camera "
                                          r"frame\)"),
    "text-as-a-frame": (not_an_image(9), r"9 \(images/9_cam_image_array_\.jpg is not an "
                                         r"image\)"),
    "gray-frame-in-a-colour-tub": (gray(11), r"11 \(images/11_cam_image_array_\.jpg is L, "
                                             r"not the RGB of IMAGE_DEPTH=3\)"),
    "angle-nan": (label(7, "user/angle", math.nan), r"7 \(user/angle is NaN\)"),
    "throttle-infinity": (label(8, "user/throttle", math.inf),
                          r"8 \(user/throttle is Infinity\)"),
    "angle-minus-infinity": (label(8, "user/angle", -math.inf),
                             r"8 \(user/angle is -Infinity\)"),
    "angle-text": (label(12, "user/angle", "left"), r"12 \(user/angle is 'left', not a "
                                                    r"number\)"),
    "throttle-missing": (label(13, "user/throttle", drop=True),
                         r"13 \(has no user/throttle\)"),
    "angle-null": (label(14, "user/angle", None), r"14 \(user/angle is null, not a number\)"),
    "angle-true": (label(15, "user/angle", True), r"15 \(user/angle is true, not a number\)"),
    "several-at-once": (several(emptied(5), label(7, "user/angle", math.nan),
                                truncated(9)),
                        r"3 bad records: 5 \(images/5_cam_image_array_\.jpg is empty\), "
                        r"7 \(user/angle is NaN\), 9 \(images/9_cam_image_array_\.jpg is "
                        r"truncated\)"),
}

DAMAGED = {    # catalogs and manifests: one line each (was: a traceback)
    "catalog-line-not-utf8": (catalog_line(4, b'{"_index": 4, "user/angle": "\xff\xfe"}'),
                              r"tub data: catalog_0\.catalog line 5 is not a valid record "
                              r"\(a corrupt catalog line\); delete that line, or copy the "
                              r"tub again from the car$"),
    "catalog-line-null": (catalog_line(6, b"null"),
                          r"tub data: catalog_0\.catalog line 7 is null, not a record; "
                          r"delete that line, or copy the tub again from the car$"),
    "catalog-line-a-list": (catalog_line(6, b"[1, 2]"),
                            r"catalog_0\.catalog line 7 is \[1, 2\], not a record"),
    "current-index-a-string": (meta(current_index="200"),
                               r"tub data: manifest\.json says current_index is '200', not "
                               r"a count of records; the tub is damaged"),
    "current-index-negative": (meta(current_index=-5),
                               r"manifest\.json says current_index is -5, not a count of "
                               r"records"),
    "more-deleted-than-recorded": (meta(deleted_indexes=list(range(0, 250))),
                                   r"manifest\.json marks record 200 deleted, but the tub "
                                   r"has only 200 records \(0 to 199\)"),
    "deleted-indexes-not-a-list": (meta(deleted_indexes="3,4"),
                                   r"manifest\.json has deleted_indexes '3,4', not a list "
                                   r"of record numbers"),
    "manifest-not-utf8": (lambda t: (Path(t) / "manifest.json").write_bytes(b"\xff\xfe\x00"),
                          r"tub data: manifest\.json is not UTF-8 text"),
    "manifest-truncated": (lambda t: (Path(t) / "manifest.json").write_bytes(
        (Path(t) / "manifest.json").read_bytes()[:60]),
        r"manifest\.json is not five lines of JSON, as DonkeyCar writes it"),
}

ROWS = [
    *[Row(f"make:bad-record:{name}", damaged_tub(damage), (MAKE,), 1,
          rf"^{MAKE}: tub data: (\d+ bad records?: )?.*{says}.*" + SKIP, then=no_archive)
      for name, (damage, says) in BAD.items()],
    *[Row(f"make:damaged:{name}", damaged_tub(damage), (MAKE,), 1, rf"^{MAKE}: .*{says}",
          then=no_archive) for name, (damage, says) in DAMAGED.items()],
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)


# -- --skip-bad: deleted the DonkeyCar way, nothing removed ---------------------------

def donkey_tub(path):
    """(live record numbers, deleted indexes) as DonkeyCar's own Tub reads them."""
    from donkeycar.parts.tub_v2 import Tub
    t = Tub(str(path), read_only=True)
    try:
        return [r["_index"] for r in t], sorted(t.manifest.deleted_indexes)
    finally:
        t.close()


def test_skip_bad_marks_them_deleted_and_removes_nothing(car, synth_tub, tmp_path):
    several(emptied(5), label(7, "user/angle", math.nan), truncated(9),
            label(12, "user/throttle", "fast"), gray(30))(synth_tub)
    files = hashes(synth_tub, skip=("manifest.json",))
    env = env_for(tmp_path)
    r = run_script(car, MAKE, "--skip-bad", env=env)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^data: 195 records, 5 deleted \(of them 5 bad, marked deleted now: "
                     r"5 \(images/5_cam_image_array_\.jpg is empty\), 7 \(user/angle is "
                     r"NaN\), 9 .*, 12 .*, 30 .*\), 0 missing images", r.stdout, re.M), r.stdout
    assert hashes(synth_tub, skip=("manifest.json",)) == files       # no file removed
    live, deleted = donkey_tub(synth_tub)
    assert deleted == [5, 7, 9, 12, 30] and len(live) == 195
    import tarfile
    with tarfile.open(car / "wip.tgz") as tar:
        names = set(tar.getnames())
        packed = json.loads(tar.extractfile("data/manifest.json").read().splitlines()[4])
    assert packed["deleted_indexes"] == [5, 7, 9, 12, 30]
    assert "data/images/5_cam_image_array_.jpg" in names       # packed, as the tub has it
    # The next archive needs no flag; the manifest's other lines are as they were.
    r = run_script(car, MAKE, "-f", env=env)
    assert r.returncode == 0, r.stderr
    assert "data: 195 records, 5 deleted, 0 missing images" in r.stdout


def test_skip_bad_with_nothing_good_left_is_one_line(car, tmp_path):
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=3)
    several(emptied(0), emptied(1), emptied(2))(car / "data")
    r = run_script(car, MAKE, "--skip-bad", env=env_for(tmp_path))
    assert r.returncode == 1
    one_line(r, MAKE, r"tub data has no good records: every live record was bad \(0 "
             r"\(images/0_cam_image_array_\.jpg is empty\), 1 .*\); record it again$")
    assert not (car / "wip.tgz").exists()


# -- training and movies refuse what an archive made elsewhere holds -----------------------

def bad_archive(damage):
    """wip.tgz holding the stock tub with DAMAGE, packed without any check
    (an older toolkit, another tool)."""
    return archive_with_tub(damage)


TRAIN_ROWS = [
    Row("train:bad-record:truncated-frame", bad_archive(truncated(50)),
        ("local_train.sh",), 1,
        r"^local_train\.sh: tub data: 1 bad record: 50 \(images/50_cam_image_array_\.jpg "
        r"is truncated\)" + TRAIN_HINT),
    Row("train:bad-record:angle-nan", bad_archive(label(60, "user/angle", math.nan)),
        ("local_train.sh",), 1,
        r"^local_train\.sh: tub data: 1 bad record: 60 \(user/angle is NaN\)" + TRAIN_HINT),
    Row("train:bad-record:empty-frame-and-text-label",
        bad_archive(several(emptied(3), label(4, "user/throttle", "x"))),
        ("local_train.sh",), 1,
        r"^local_train\.sh: tub data: 2 bad records: 3 \(images/3_cam_image_array_\.jpg "
        r"is empty\), 4 \(user/throttle is 'x', not a number\)" + TRAIN_HINT),
    Row("train:bad-config:batch-size-0-in-myconfig", lambda ctx: batch_size_0(ctx),
        ("local_train.sh",), 1,
        r"^local_train\.sh: myconfig\.py sets BATCH_SIZE = 0: BATCH_SIZE must be a whole "
        r"number of 1 or more: set e\.g\. BATCH_SIZE = 128 in myconfig\.py$"),
]


def a_movie_model(ctx):
    (ctx.car / "models").mkdir(exist_ok=True)
    shutil.copy(ctx.stock.small_model, ctx.car / "models" / "pilot-wip.h5")


def movie_of(damage):
    def setup(ctx):
        bad_archive(damage)(ctx)
        a_movie_model(ctx)
    return setup


MOVIE_HINT = (r"; no movie was made: make the archive again with make_tub_archive\.sh "
              r"--skip-bad \(marks them deleted in the tub\), fix them, or choose other "
              r"frames with -s/-e$")
MOVIE_ROWS = [
    Row("movie:bad-record:truncated-frame", movie_of(truncated(20)),
        ("local_makemovie.sh", "-e", "40"), 1,
        r"^local_makemovie\.sh: tub data: 1 bad record: 20 \(images/20_cam_image_array_"
        r"\.jpg is truncated\)" + MOVIE_HINT),
    Row("movie:bad-record:angle-infinity", movie_of(label(10, "user/angle", math.inf)),
        ("local_makemovie.sh", "-e", "40"), 1,
        r"10 \(user/angle is Infinity\)" + MOVIE_HINT),
    Row("movie:bad-record:missing-throttle", movie_of(label(30, "user/throttle", drop=True)),
        ("local_makemovie.sh", "-s", "25", "-e", "40"), 1,
        r"30 \(has no user/throttle\)" + MOVIE_HINT),
]


def batch_size_0(ctx):
    """An archive whose myconfig.py says BATCH_SIZE = 0 (make_tub_archive.sh
    warns, and writes it: the data is fine)."""
    with open(ctx.car / "myconfig.py", "a") as f:
        f.write("\nBATCH_SIZE = 0\n")
    archive_with_tub(lambda t: None)(ctx)


# Each starts TensorFlow (the archive's records are checked beside its start):
# training's three and the movie's first in the fast suite, the rest in e2e.
REFUSING = [pytest.param(row, marks=pytest.mark.e2e) if row in MOVIE_ROWS[1:] else row
            for row in TRAIN_ROWS + MOVIE_ROWS]


@pytest.mark.parametrize("row", REFUSING, ids=row_ids(TRAIN_ROWS + MOVIE_ROWS))
def test_training_and_movies_refuse_in_one_line(row, harden):
    harden(row)


# -- how long decoding every frame takes ------------------------------------------------

def test_every_frame_of_a_real_tub_is_decoded_within_seconds(real_tub):
    """The first 1000 frames of the real track-5015 tub, decoded in threads as
    make_tub_archive.sh decodes them (make bench times a whole tub against
    `tar czf`)."""
    from trainer.core.tubs import FrameCheck
    check = FrameCheck(depth=3)
    t = time.perf_counter()
    for n, path in enumerate(sorted(Path(real_tub, "images").iterdir())):
        check.add_file(n, str(path), path.name)
    bad = check.bad()
    seconds = time.perf_counter() - t
    print(f"1000 real frames decoded in {seconds:.2f} s")
    assert bad == {} and seconds < 10, (bad, seconds)

