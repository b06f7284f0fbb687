"""The verdict of every run (issue 20): the model judged on frames training
never saw, against a constant guess (the training mean) and zero, in words
on the console and in numbers in the card. A model no better than a
constant gets no drive line, and the car's check refuses it unless
--accept-poor-model. The real tub's case is in test_train.py."""
import json
import random
import re

import pytest
from helpers import one_line_error, write_synth_tub
from trained import EPOCHS, NAME

FACTOR = re.compile(r"^steering error (\d\.\d{3}) on (\d+) unseen frames \(the last tenth "
                    r"of each training tub, held out of training\); a constant guess: "
                    r"(\d\.\d{3}) \((\d+\.\d)x better, 95% interval (\d+\.\d)x-(\d+\.\d)x\)$",
                    re.M)


def shuffle_steering(tub, seed=1):
    """The tub's steering labels shuffled among its frames: no image says
    anything about its label any more."""
    rng = random.Random(seed)
    for catalog in sorted(tub.glob("catalog_*.catalog")):
        records = [json.loads(line) for line in catalog.read_text().splitlines()]
        angles = [r["user/angle"] for r in records]
        rng.shuffle(angles)
        for r, a in zip(records, angles):
            r["user/angle"] = a
        catalog.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def poor(tmp_path_factory, car_template):
    """A model trained (4 epochs) on 300 frames whose steering was shuffled."""
    import os
    import shutil
    import subprocess

    from helpers import ROOT, SCRIPTS, script_env
    car = tmp_path_factory.mktemp("poor") / "mycar"
    shutil.copytree(car_template, car, symlinks=True)
    for s in SCRIPTS:
        os.symlink(os.path.join(ROOT, s), car / s)
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=300)
    shuffle_steering(car / "data")
    env = script_env()
    r = subprocess.run(["./make_tub_archive.sh"], cwd=car, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["./local_train.sh", "-c", "MAX_EPOCHS=4"], cwd=car, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return car, r


def test_a_model_of_shuffled_steering_is_called_no_better(poor):
    car, r = poor
    assert "to drive it" not in r.stdout
    line = [ln for ln in r.stderr.splitlines() if "not clearly better" in ln]
    assert len(line) == 1, r.stderr
    assert re.match(r"local_train\.sh: warning: pilot-wip is not clearly better than always "
                    r"steering -?\d\.\d\d: its error is \d\.\d\d of a constant guess's "
                    r"\(95% interval \d\.\d\d-\d\.\d\d; clearly better is below 0\.9\)\. "
                    r"More laps \(300 records now\), more epochs \(4 ran\) or checking the "
                    r"labels usually helps\. No drive line; the car's check refuses it unless "
                    r"--accept-poor-model$", line[0]), line[0]
    assert re.search(r"^steering error .* on 30 unseen frames .*\(about as good", r.stdout,
                     re.M), r.stdout
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    verdict = card["verdict"]
    assert verdict["better"] is False and verdict["frames"] == 30
    assert verdict["steering"]["interval"][1] >= 0.9
    assert verdict["held_out"] == [{"tub": "data", "count": 30, "records": [270, 299]}]
    assert card["records"]["held_out"] == 30
    assert card["records"]["train"] + card["records"]["validation"] == 270


def test_the_cars_check_refuses_it_unless_accepted(poor):
    import os
    import subprocess

    from helpers import script_env
    car, _ = poor
    r = subprocess.run(["./check_model.sh"], cwd=car, env=script_env(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 1
    assert one_line_error(r).startswith(
        "check_model.sh: pilot-wip was judged no better than always steering straight on "
        "frames it never trained on (steering error ")
    assert "the files stay in models" in one_line_error(r)
    before = sorted(os.listdir(car / "models"))
    r = subprocess.run(["./check_model.sh", "--accept-poor-model", "-F", "tflite"], cwd=car,
                       env=script_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "check_model.sh: warning: pilot-wip is not clearly better than a constant guess" \
        in r.stderr
    assert r.stdout.rstrip().endswith("drive it: python manage.py drive --model "
                                      "models/pilot-wip.tflite --type tflite_linear")
    assert sorted(os.listdir(car / "models")) == before      # database.json was there


def test_the_synthetic_tubs_model_is_called_better_with_its_factor(trained):
    log = trained.result.stdout
    m = FACTOR.search(log)
    assert m, log[-2000:]
    model, frames, constant, factor, low, high = m.groups()
    assert int(frames) == 30 and float(model) < float(constant)
    assert float(low) > 1 / 0.9 and float(factor) == pytest.approx(
        float(constant) / float(model), abs=0.06)
    assert re.search(r"^to drive it: python manage\.py drive --model models/pilot-wip\."
                     r"tflite --type tflite_linear", log, re.M)
    card = json.loads((trained.models / f"{NAME}.json").read_text())
    assert card["epochs"] <= EPOCHS
    v = card["verdict"]
    assert v["better"] is True and v["steering"]["ratio"] < 0.9
    assert v["steering"]["model"] == pytest.approx(float(model), abs=5e-4)
    # the baselines on the same frames: the training mean, and zero
    assert abs(v["steering"]["constant_value"]) < 0.2
    assert v["steering"]["zero"] > 0 and v["throttle"]["constant_value"] > 0.3
    assert card["best_epoch"] == 1 + card["history"]["val_loss"].index(
        min(card["history"]["val_loss"]))


def test_with_e_every_record_trains_and_the_verdict_takes_all_of_e(car, run):
    """-E: all records train (as donkey train would), the verdict is on every
    record of the -E archive, not a sample."""
    write_synth_tub(car / "data", records=200)
    assert run("make_tub_archive.sh").returncode == 0
    import shutil
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=150)
    assert run("make_tub_archive.sh", "-a", "today").returncode == 0
    r = run("local_train.sh", "-a", "wip", "-E", "today.tgz")
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    assert card["records"]["held_out"] == 0
    assert card["records"]["train"] + card["records"]["validation"] == 200
    assert card["verdict"]["frames"] == 150 and card["verdict"]["held_out"] == []
    assert card["evaluation_frames"]["source"] == "today.tgz (never trained on)"
    assert re.search(r"^steering error \d\.\d{3} on 150 unseen frames \(today\.tgz \(never "
                     r"trained on\)\)", r.stdout, re.M), r.stdout


def test_the_users_train_filter_applies_with_the_hold_out(car, run):
    """A TRAIN_FILTER in myconfig.py keeps working: both it and the hold-out
    keep records out of training; the verdict judges what it keeps."""
    write_synth_tub(car / "data", records=200)
    with open(car / "myconfig.py", "a") as f:
        f.write("\nTRAIN_FILTER = lambda record: record.underlying['_index'] % 4 != 0\n")
    assert run("make_tub_archive.sh").returncode == 0
    r = run("local_train.sh")
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    # 180 not held out, of which the filter keeps 135; 20 held out, 15 kept
    assert card["records"]["train"] + card["records"]["validation"] == 135
    assert card["verdict"]["frames"] == 15
    assert "lambda" in card["config"]["TRAIN_FILTER"]
