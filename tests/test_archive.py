"""make_tub_archive.sh from a car folder made by `donkey createcar`."""
import json
import os
import shutil
import tarfile

from conftest import one_line_error, write_synth_tub


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
    r = run("make_tub_archive.sh")
    assert r.returncode == 1
    assert "wip.tgz already exists: pass -f" in one_line_error(r)
    assert (car / "wip.tgz").read_bytes() == b"precious"
    assert run("make_tub_archive.sh", "-f").returncode == 0
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
