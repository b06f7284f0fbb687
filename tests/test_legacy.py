"""Legacy Tub v1 folders (DonkeyCar 3) are converted inside the archive."""
import json

from helpers import one_line_error, write_v1_tub


def tree(path):
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_v1_tub_is_converted_in_the_archive_and_trains(car, run):
    import shutil
    shutil.rmtree(car / "data")
    write_v1_tub(car / "data")
    before = tree(car / "data")
    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    assert "data: legacy Tub v1, 200 records converted to Tub v2" in r.stdout
    assert "data: 200 records, 0 deleted, 0 missing images, images 160x120" in r.stdout
    assert tree(car / "data") == before            # the car folder is untouched
    r = run("local_train.sh")
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    assert card["records"]["live"] == 200 and card["tubs"][0]["records"] == 200


def test_v1_record_with_missing_image_fails_clearly(car, run):
    import os
    import shutil
    shutil.rmtree(car / "data")
    write_v1_tub(car / "data", records=20)
    os.remove(car / "data" / "7_cam-image_array_.jpg")
    r = run("make_tub_archive.sh")
    assert r.returncode == 1
    assert "cannot be converted" in one_line_error(r)
    assert not (car / "wip.tgz").exists()
