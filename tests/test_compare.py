"""compare_models.sh (issue 25): N models on the same unseen frames, ranked,
one page opened in headless chromium. The fast tests use the session's one
trained model (tests/trained.py) and copies of it whose cards say another
frame size or generation; the comparison of three models trained on the
real tub, one of them deliberately poor, is e2e."""
import json
import os
import re
import shutil

import browser
import pytest
from helpers import one_line_error
from trained import NAME

from trainer.core.bucket import CARD, OUTPUTS


def copy_model(src, dest, name, edit=None):
    """Model NAME's set as DEST/NAME.*, its card edited by EDIT(card)."""
    os.makedirs(dest, exist_ok=True)
    card = json.loads((src / f"{NAME}{CARD}").read_text())
    card["name"] = name
    card["files"] = {f.replace(NAME, name, 1): e for f, e in card["files"].items()}
    for suffix in OUTPUTS:
        if suffix != CARD and (src / f"{NAME}{suffix}").exists():  # a variant may be withheld
            shutil.copy(src / f"{NAME}{suffix}", dest / f"{name}{suffix}")
    if edit:
        edit(card)
    (dest / f"{name}{CARD}").write_text(json.dumps(card))
    return card


@pytest.fixture
def compared(car, trained):
    """The car holding the trained model's archive (wip.tgz) and in models/:
    pilot-a (the model), pilot-wide (its card says 320 pixels wide), pilot-54
    (DonkeyCar 5.4), pilot-cut (its .tflite cut short)."""
    shutil.copy(trained.car / "wip.tgz", car / "wip.tgz")
    out, models = trained.models, car / "models"
    card = copy_model(out, models, "pilot-a")
    copy_model(out, models, "pilot-wide", lambda c: c["config"].update(IMAGE_W=320))
    copy_model(out, models, "pilot-54",
               lambda c: c["versions"].update(donkeycar_generation="5.4"))
    copy_model(out, models, "pilot-cut")
    tflite = models / "pilot-cut.tflite"
    tflite.write_bytes(tflite.read_bytes()[:1000])
    return car, card, out


def test_each_model_is_judged_as_its_training_judged_it_and_the_rest_say_why_not(
        compared, run):
    car, card, _ = compared
    r = run("compare_models.sh", "pilot-a", "pilot-wide", "pilot-54", "pilot-cut",
            timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "XNNPACK" not in r.stdout + r.stderr
    out = r.stdout
    assert out.startswith("comparing 1 model on 30 frames: the held-out frames of "
                          "wip.tgz that training never saw (records 270-299 of data)")
    v = card["verdict"]
    # the same frames, the same .tflite, the same baseline: the training's numbers
    line = re.search(r"^1 +pilot-a +linear +(\d\.\d{3}) +(\d\.\d\d) +(\d\.\d{3}) +"
                     r"clearly better +", out, re.M)
    assert line, out
    assert float(line.group(1)) == pytest.approx(v["steering"]["model"], abs=5e-4)
    assert float(line.group(2)) == pytest.approx(v["steering"]["ratio"], abs=5e-3)
    assert float(line.group(3)) == pytest.approx(v["throttle"]["model"], abs=5e-4)
    assert ("not compared: pilot-wide was made for 320x120x3 frames, and these are "
            "160x120x3 (wip.tgz): compare models of one frame size") in out
    assert ("not compared: pilot-54 was trained with DonkeyCar 5.4; this machine runs "
            "5.3, which may not load it") in out
    assert ("not compared: pilot-cut has a .tflite that differs from its card (changed "
            "since training, or cut short)") in out
    assert re.search(r"^best: pilot-a \(linear; steering error \d\.\d{3}, \d\.\dx better "
                     r"than a constant guess\)$", out, re.M)
    assert out.rstrip().endswith("./download_models.sh -m pilot-a brings it from the bucket)")
    assert "report: compare.html" in out

    html = browser.rendered(str(car / "compare.html"))
    assert browser.pictures_shown(html) == 4
    text = browser.text(html)
    assert "Which model is best: 1 compared on 30 frames" in text
    assert "pilot-wide was made for 320x120x3 frames" in text
    assert f"{v['steering']['model']:.3f}" in text and "clearly better" in text
    before = sorted(os.listdir(car))
    r = run("compare_models.sh", "pilot-a", timeout=600)      # the report is kept
    assert r.returncode == 0, r.stderr[-2000:]
    assert "compare.html exists: writing compare-2.html" in r.stdout
    assert sorted(os.listdir(car)) == sorted(before + ["compare-2.html"])


def test_what_cannot_be_compared_is_one_line(compared, run):
    car, _, out = compared
    copy_model(out, car / "models", "pilot-x",
               lambda c: c["archives"][0].update(sha256="0" * 64, uri="other.tgz"))
    cases = [
        (("pilot-nope",), r"no model pilot-nope in models/ \(no pilot-nope\.json\): check "
         r"the name"),
        (("pilot-a", "pilot-x"), r"these models were trained on different archives "
         r"\(pilot-a on wip\.tgz \(\w{8}\); pilot-x on other\.tgz \(00000000\)\), so they "
         r"share no held-out frames: pass -E ARCHIVE"),
        (("pilot-a", "-E", "wip.tgz"), r"nothing to compare: pilot-a trained on wip\.tgz: "
         r"its frames are not unseen for it$"),
        (("pilot-a", "pilot-a"), r"pilot-a is named twice"),
        (("pilot-a", "-o", "report.txt"), r"-o report\.txt: the report is one \.html file"),
    ]
    for argv, says in cases:
        r = run("compare_models.sh", *argv, timeout=300)
        assert r.returncode == 1, (argv, r.stdout + r.stderr)
        assert re.search(says, one_line_error(r)), one_line_error(r)
    (car / "wip.tgz").write_bytes((car / "wip.tgz").read_bytes()[:-10])
    r = run("compare_models.sh", "pilot-a", timeout=300)
    assert one_line_error(r) == (
        "compare_models.sh: wip.tgz differs from the wip.tgz the models trained on "
        "(another archive of the same name?): pass -E ARCHIVE to compare them on it, or "
        "bring back the archive they trained on")
    (car / "wip.tgz").unlink()
    r = run("compare_models.sh", "pilot-a", timeout=300)
    assert one_line_error(r) == (
        "compare_models.sh: the archive the models trained on (wip.tgz) is neither here "
        "nor in the bucket: run this in the folder they trained in, or pass -E ARCHIVE")
    assert not list(car.glob("*.html"))


def test_models_and_their_archive_come_from_the_bucket(compared, run, gcs, tmp_path):
    """From a folder without them: the model's files, each checked against
    its card, and the archive its card names, from the bucket."""
    car, _, _ = compared
    for f in (car / "models").glob("pilot-a.*"):
        gcs.put(f"models/{f.name}", f.read_bytes())
    gcs.put("training/wip.tgz", (car / "wip.tgz").read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = run("compare_models.sh", "pilot-a", cwd=elsewhere, env=gcs.env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert re.search(r"^1 +pilot-a +linear +", r.stdout, re.M)
    assert sorted(os.listdir(elsewhere)) == ["compare.html"]   # nothing else left here
    assert "pilot-a (gs://robocar-test/models/)" in browser.text(
        browser.rendered(str(elsewhere / "compare.html")))


def set_steering(tub, value):
    """Every steering label of TUB set to VALUE: a model of it learns to
    steer VALUE, whatever it sees."""
    for catalog in sorted(tub.glob("catalog_*.catalog")):
        records = [json.loads(line) for line in catalog.read_text().splitlines()]
        for r in records:
            r["user/angle"] = value
        catalog.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.e2e
def test_three_models_of_the_real_tub_are_ranked_the_poor_one_last(car, run):
    """Done-when: three models trained on the real tub's first 1000 records,
    one deliberately poor (its copy of the tub says "full right" on every
    frame), compared on the next 1000 records (-E): the poor one ranks last;
    each model's numbers are those its own training found on the same
    frames; the page opens in chromium."""
    from donkeycar.parts.tub_v2 import Tub
    from helpers import copy_real_tub

    shutil.rmtree(car / "data")
    copy_real_tub(str(car / "data"))
    copy_real_tub(str(car / "today"), records=2000)
    today = Tub(str(car / "today"))
    today.delete_records(list(range(1000)))        # new laps: records 1000-1999
    today.close()
    shutil.copytree(car / "data", car / "wrong")
    set_steering(car / "wrong", 1.0)
    for tub, name in (("data", "wip"), ("today", "today"), ("wrong", "wrong")):
        r = run("make_tub_archive.sh", "-t", tub, "-a", name)
        assert r.returncode == 0, r.stderr
    for name, archive, kind in (("pilot-linear", "wip.tgz", "linear"),
                                ("pilot-categorical", "wip.tgz", "categorical"),
                                ("pilot-poor", "wrong.tgz", "linear")):
        r = run("local_train.sh", "-a", archive, "-m", name, "--type", kind, "-c",
                "MAX_EPOCHS=3", "-E", "today.tgz", timeout=1800)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    names = ("pilot-poor", "pilot-linear", "pilot-categorical")

    r = run("compare_models.sh", *names, timeout=600)      # all trained on every record
    assert r.returncode == 1
    assert one_line_error(r).startswith(
        "compare_models.sh: nothing to compare: pilot-poor held out no frames of its "
        "archive (it was judged on -E")

    r = run("compare_models.sh", *names, "-E", "today.tgz", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.startswith("comparing 3 models on 1000 frames: every record of "
                               "today.tgz (-E)")
    ranked = re.findall(r"^(\d) +(pilot-\w+) +\w+ +(\d\.\d{3}) ", r.stdout, re.M)
    assert [n for _, n, _ in ranked][-1] == "pilot-poor", r.stdout
    assert sorted(n for _, n, _ in ranked) == sorted(names)
    for _, name, error in ranked:     # the same frames its training was judged on
        card = json.loads((car / "models" / f"{name}.json").read_text())
        assert card["verdict"]["frames"] == 1000
        assert float(error) == pytest.approx(card["verdict"]["steering"]["model"], abs=5e-4)
    html = browser.rendered(str(car / "compare.html"))
    assert browser.pictures_shown(html) == 4
    rows = re.findall(r'<tr class="model">\s*<td class="num">(\d)</td><td>(pilot-\w+)</td>',
                      html)
    assert [n for _, n in rows] == [n for _, n, _ in ranked]
    assert "Where they disagree most" in browser.text(html)
