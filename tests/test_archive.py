"""make_tub_archive.sh from a car folder made by `donkey createcar`; its
hardening rows (tests/hardening.py) at the end."""
import json
import os
import shutil
import subprocess
import tarfile

import pytest
from hardening import Row, elsewhere, has_bytes, interrupted, row_ids, tub, with_tub
from helpers import one_line_error, write_synth_tub
from untrusted import (
    config_without_default_model_type,
    keys_in_the_tub,
    linked_frame,
    only_tub_files,
    peak,
    set_meta,
    tub_pointing_out,
    v1_tub_pointing_out,
)

from trainer.core import archive as archive_module


def members(path):
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_real_tub_archive_mirrors_the_car_without_junk(car, real_tub, run):
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    # The per-tub report: records, deleted, missing images, image size.
    assert "data: 1000 records, 0 deleted, 0 missing images, images 160x120" in r.stdout
    names = members(car / "wip.tgz")
    assert {"config.py", "myconfig.py", "archive.json", "data/manifest.json",
            "data/catalog_0.catalog"} <= set(names)
    assert sum(n.startswith("data/images/") for n in names) == 1000
    assert not [n for n in names if os.path.basename(n).startswith("._")
                or n.endswith(".DS_Store")]
    with tarfile.open(car / "wip.tgz") as tar:
        meta = json.load(tar.extractfile("archive.json"))
        assert tar.extractfile("config.py").read() == (car / "config.py").read_bytes()
    assert meta["tubs"] == [{"path": "data", "records": 1000, "deleted": 0,
                             "missing_images": 0, "sessions": ["22-11-29_0"],
                             "image_size": [160, 120]}]


def test_several_tubs_and_a_name(car, run, tmp_path):
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data" / "tub_1", records=120)
    write_synth_tub(car / "data" / "tub_2", records=80)
    outside = write_synth_tub(tmp_path / "elsewhere", records=50)
    r = run("make_tub_archive.sh", "-t", "data", "-t", outside, "-a", "laps")
    assert r.returncode == 0, r.stderr
    assert "data/tub_1: 120 records" in r.stdout
    assert "data/tub_2: 80 records" in r.stdout
    assert "data/elsewhere: 50 records" in r.stdout     # outside the car: under data/
    names = members(car / "laps.tgz")
    assert "data/elsewhere/manifest.json" in names
    assert not (car / "wip.tgz").exists()


def test_deleted_records_are_not_counted(car, run):
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=150, deleted=30)
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    assert "data: 120 records, 30 deleted, 0 missing images" in r.stdout


def test_secrets_are_never_packed_and_the_user_is_told(car, synth_tub, run):
    (synth_tub / ".env").write_text("API_KEY=x\n")
    (synth_tub / "car.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (synth_tub / "sa.json").write_text(json.dumps(
        {"type": "service_account", "private_key": "-----BEGIN"}))
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    for secret in (".env", "car.pem", "sa.json"):
        assert f"skipped data/{secret}" in r.stderr
        assert f"data/{secret}" not in members(car / "wip.tgz")


def test_existing_archive_is_kept_without_f(car, synth_tub, run):
    (car / "wip.tgz").write_bytes(b"precious")
    r = run("make_tub_archive.sh", "-a", "wip")           # the name given: refused
    assert r.returncode == 1
    assert "wip.tgz already exists: pass -f" in one_line_error(r)
    assert (car / "wip.tgz").read_bytes() == b"precious"
    r = run("make_tub_archive.sh")                        # the default moves on
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wip.tgz exists: writing wip-2.tgz")
    assert (car / "wip.tgz").read_bytes() == b"precious"
    assert "data/manifest.json" in members(car / "wip-2.tgz")
    assert run("make_tub_archive.sh", "-f", "-a", "wip").returncode == 0
    assert "data/manifest.json" in members(car / "wip.tgz")


def test_image_size_other_than_config_warns(car, run):
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=60, size="80x60")
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    assert "frames are 80x60 but the config says IMAGE_W=160, IMAGE_H=120" in r.stderr


def _corrupt_line(tub):
    cat = tub / "catalog_0.catalog"
    lines = cat.read_text().splitlines(keepends=True)
    lines[5] = lines[5][:20] + "\n"
    cat.write_text("".join(lines))


def _disagree(tub):
    lines = (tub / "manifest.json").read_text().splitlines()
    meta = json.loads(lines[4])
    meta["current_index"] += 40
    lines[4] = json.dumps(meta)
    (tub / "manifest.json").write_text("\n".join(lines) + "\n")


def _empty(tub):
    shutil.rmtree(tub)
    write_synth_tub(tub, records=0)


def _missing_images(tub):
    for name in sorted(os.listdir(tub / "images"))[:3]:
        os.remove(tub / "images" / name)


BAD_TUBS = {
    "no_manifest": (lambda t: os.remove(t / "manifest.json"), "has no manifest.json"),
    "corrupt_line": (_corrupt_line, "catalog_0.catalog line 6 is not a valid record"),
    "disagree": (_disagree, "counts 240 live records but the catalogs hold 200"),
    "empty": (_empty, "has no live records: drive a few laps"),
    "missing_images": (_missing_images, "3 live records have no image"),
}


def test_bad_tubs_fail_with_one_line_and_no_archive(car, synth_tub, run):
    for case, (damage, message) in BAD_TUBS.items():
        shutil.rmtree(synth_tub)
        write_synth_tub(synth_tub)
        damage(synth_tub)
        before = {p: p.read_bytes() for p in synth_tub.rglob("*") if p.is_file()}
        r = run("make_tub_archive.sh")
        assert r.returncode == 1, (case, r.stdout, r.stderr)
        line = one_line_error(r)
        assert line.startswith("make_tub_archive.sh: ") and message in line, (case, line)
        assert not (car / "wip.tgz").exists(), case
        assert not [p for p in car.iterdir() if p.name.startswith(".wip.tgz")], case
        after = {p: p.read_bytes() for p in synth_tub.rglob("*") if p.is_file()}
        assert after == before, f"{case}: the tub was changed"


def test_no_car_folder_and_missing_tub(car, synth_tub, run, tmp_path):
    r = run("make_tub_archive.sh", cwd=tmp_path)
    assert r.returncode == 1
    assert "no config.py in" in one_line_error(r) and "car folder" in r.stderr
    r = run("make_tub_archive.sh", "-t", "nowhere")
    assert r.returncode == 1
    assert "nowhere does not exist" in one_line_error(r)


# -- hardening rows (tests/hardening.py): the car folder and its tubs -------------------

def secrets(ctx):
    data = tub(ctx)
    (data / ".env").write_text("API_KEY=x\n")
    (data / "car.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (data / "sa.json").write_text(json.dumps(
        {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----"}))


def broken_myconfig(ctx):
    tub(ctx)
    with open(ctx.car / "myconfig.py", "a") as f:
        f.write("\nMAX_EPOCHS = (\n")


def precious_archive(ctx):
    tub(ctx)
    (ctx.car / "wip.tgz").write_bytes(b"precious")


def tiny_disk(ctx):
    """A 2 MiB filesystem at {tmp}/tiny: the archive (about 6 MB) cannot fit."""
    tub(ctx, "big_tub")
    tiny = ctx.tmp / "tiny"
    tiny.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(tiny)],
                       capture_output=True, text=True)
    if r.returncode:
        reason = (f"cannot mount a small tmpfs here ({r.stderr.strip()}): the "
                  "disk-full row needs root or a container allowed to mount")
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must run it")
        pytest.skip(reason)
    ctx.finally_(lambda: subprocess.run(["umount", str(tiny)], check=True))


def writing_archive(ctx):
    """The archive's temporary file (.wip.tgz.XXXX) has bytes in it."""
    return has_bytes(ctx.car, ".wip.tgz.*")


def secrets_skipped(ctx, r):
    names = members(ctx.car / "wip.tgz")
    for secret in (".env", "car.pem", "sa.json"):
        assert f"data/{secret}" not in names
        assert f"skipped data/{secret}: it looks like a secret" in r.stderr
    assert "data/manifest.json" in names


def archive_made(ctx, r):
    assert "data/manifest.json" in members(ctx.car / "wip.tgz")


ROWS = [
    Row("make:outside-a-car-folder", elsewhere, ("make_tub_archive.sh",), 1,
        r"no config\.py in \S+/elsewhere: run this from your car folder \(made by "
        r"'donkey createcar'\), e\.g\. cd ~/mycar$"),
    Row("make:tub-path-missing", with_tub(), ("make_tub_archive.sh", "-t", "nowhere"), 1,
        r"tub nowhere does not exist: record some laps first, or name your tub with "
        r"-t PATH$"),
    Row("make:tub-without-manifest",
        with_tub(damage=lambda t: os.remove(t / "manifest.json")),
        ("make_tub_archive.sh",), 1,
        r"tub data has no manifest\.json: it is not a DonkeyCar tub, or it was copied "
        r"incompletely; copy it again from the car$"),
    Row("make:corrupt-catalog-line", with_tub(damage=_corrupt_line),
        ("make_tub_archive.sh",), 1,
        r"tub data: catalog_0\.catalog line 6 is not a valid record \(a corrupt catalog "
        r"line\); delete that line, or copy the tub again from the car$"),
    Row("make:catalog-and-manifest-disagree", with_tub(damage=_disagree),
        ("make_tub_archive.sh",), 1,
        r"tub data: manifest\.json counts 240 live records but the catalogs hold 200; "
        r"the tub is damaged: copy it again from the car$"),
    Row("make:empty-tub", with_tub(damage=_empty), ("make_tub_archive.sh",), 1,
        r"tub data has no live records: drive a few laps to record some, or leave it "
        r"out$"),
    Row("make:live-records-without-images", with_tub(damage=_missing_images),
        ("make_tub_archive.sh",), 1,
        r"tub data: 3 live records have no image \(first: images/\S+\); mark them "
        r"deleted in the tub manager of 'donkey ui', or restore the images$"),
    Row("make:frames-of-another-size-warn", with_tub("small_frames_tub"),
        ("make_tub_archive.sh",), 0,
        r"^make_tub_archive\.sh: warning: tub data: frames are 80x60 but the config says "
        r"IMAGE_W=160, IMAGE_H=120; DonkeyCar will resize every frame",
        out=r"^wrote wip\.tgz ", warnings=1, changes=("wip.tgz",), then=archive_made),
    Row("make:legacy-tub-v1-converted", with_tub("v1_tub"), ("make_tub_archive.sh",), 0,
        None, out=r"^data: legacy Tub v1, 50 records converted to Tub v2 in the archive "
                  r"\(the folder itself is untouched\)$",
        changes=("wip.tgz",), then=archive_made),
    Row("make:secrets-never-packed", secrets, ("make_tub_archive.sh",), 0,
        r"^make_tub_archive\.sh: warning: skipped data/sa\.json: it looks like a secret "
        r"\(key or \.env\) and is never packed; keep secrets out of tub folders$",
        warnings=3, changes=("wip.tgz",), then=secrets_skipped),
    Row("make:archive-exists-without-f", precious_archive,
        ("make_tub_archive.sh", "-a", "wip"), 1,
        r"wip\.tgz already exists: pass -f to replace it, or -a NAME to write another$"),
    Row("make:myconfig-does-not-load", broken_myconfig, ("make_tub_archive.sh",), 1,
        r"config\.py or myconfig\.py fails to load \(SyntaxError: .+\); fix it and run "
        r"again$"),
    Row("make:ctrl-c-while-writing", with_tub("big_tub"), ("make_tub_archive.sh",), 130,
        interrupted("make_tub_archive.sh"), interrupt=writing_archive),
    Row("make:disk-fills-up", tiny_disk,
        ("make_tub_archive.sh", "-a", "{tmp}/tiny/wip"), 1,
        r"no space left on the device while writing wip\.tgz; the partial file was "
        r"removed: free some space and run again$"),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)


# -- trust boundaries: what an archive, a tub, a config or a model someone
# else made can make the script do (the setups: tests/untrusted.py) --

TRUST = [
    Row("make:archive-name-with-a-space", with_tub(), ("make_tub_archive.sh", "-a", "my run"),
        1, r"-a 'my run' is not a plain name: use letters, digits, '\.', '_' and '-' "
           r"\(starting with a letter or digit\), e\.g\. -a wip$"),
    Row("make:tub-is-a-file", with_tub(),
        ("make_tub_archive.sh", "-t", "data/catalog_0.catalog"), 1,
        r"tub data/catalog_0\.catalog is a file, not a tub folder: give -t the folder that "
        r"holds manifest\.json, e\.g\. -t data$"),
    Row("make:keys-and-dotfiles-never-packed", keys_in_the_tub, ("make_tub_archive.sh",), 0,
        r"^make_tub_archive\.sh: warning: skipped data/images/notes\.txt: not a tub file",
        warnings=5, changes=("wip.tgz",), then=only_tub_files),
    Row("make:catalog-image-climbs-out", tub_pointing_out("../../secret.jpg"),
        ("make_tub_archive.sh",), 1,
        r"tub data: catalog_0\.catalog line 3 names the image '\.\./\.\./secret\.jpg' for "
        r"cam/image_array, which is not a file in the tub's images/ folder; the tub is "
        r"unsafe or damaged: record it again, or copy it again from the car$"),
    Row("make:catalog-image-absolute", tub_pointing_out("{tmp}/secret.jpg"),
        ("make_tub_archive.sh",), 1,
        r"tub data: catalog_0\.catalog line 3 names the image '/\S+/secret\.jpg' for "
        r"cam/image_array, which is not a file in the tub's images/ folder"),
    Row("make:legacy-v1-image-climbs-out", v1_tub_pointing_out, ("make_tub_archive.sh",), 1,
        r"legacy tub data: record_3\.json names the image '\.\./\.\./secret\.jpg' for "
        r"cam/image_array, which is not a file in the tub folder; the tub is unsafe or "
        r"damaged: fix or remove that record_N\.json and run again$"),
    Row("make:frame-is-a-link-to-the-host", linked_frame, ("make_tub_archive.sh",), 1,
        r"tub data: images/3_cam_image_array_\.jpg is a link, which is never packed or "
        r"read: copy the frame itself into the tub$"),
    Row("make:catalog-path-climbs-out",
        with_tub(damage=set_meta(paths=["../../catalog_0.catalog"])),
        ("make_tub_archive.sh",), 1,
        r"tub data: manifest\.json names the catalog '\.\./\.\./catalog_0\.catalog', which "
        r"is not a catalog_N\.catalog in the tub; the tub is unsafe or damaged"),
    Row("make:absurd-current-index", with_tub(damage=set_meta(current_index=20_000_000)),
        ("make_tub_archive.sh",), 1,
        r"tub data: manifest\.json counts 20000000 live records but the catalogs hold "
        r"200; the tub is damaged: copy it again from the car$"),
    Row("make:current-index-1e9", with_tub(damage=set_meta(current_index=10**9)),
        ("make_tub_archive.sh",), 1,
        r"manifest\.json counts 1000000000 live records but the catalogs hold 200"),
    Row("make:config-without-default-model-type", config_without_default_model_type,
        ("make_tub_archive.sh",), 1,
        r"config\.py sets no DEFAULT_MODEL_TYPE: it is not a car's config\.py; make the "
        r"car folder with 'donkey createcar' and set DEFAULT_MODEL_TYPE in myconfig\.py$"),
]


@pytest.mark.parametrize("row", TRUST, ids=row_ids(TRUST))
def test_trust_boundaries(row, harden):
    harden(row)


def test_absurd_current_index_ends_within_seconds_in_bounded_memory(car, tmp_path):
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=20)
    set_meta(current_index=10**9)(car / "data")
    code, stderr, seconds, mib = peak([str(car / "make_tub_archive.sh")], car)
    assert code == 1 and "counts 1000000000 live records" in stderr, stderr
    assert seconds < 30 and mib < 500, (seconds, mib)


def test_myconfig_travels_as_written(car, synth_tub):
    with open(car / "myconfig.py", "a") as f:
        f.write('\nMQTT_PASSWORD = "hunter2"\n')
    path = archive_module.build_archive(str(car), ["data"], "wip", say=lambda *a: None,
                                        warn=lambda *a: None)
    with tarfile.open(path) as tar:
        assert tar.extractfile("myconfig.py").read() == (car / "myconfig.py").read_bytes()
