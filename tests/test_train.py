"""local_train.sh: DonkeyCar's own training from an archive alone, three
exported formats the car's DonkeyCar loads, and a model card; its hardening
rows (tests/hardening.py) at the end."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
from hardening import (
    ARCHIVE_SAYS,
    BAD_ARCHIVES,
    Row,
    bad_archive,
    big_archive,
    elsewhere,
    good_archive,
    has_entries,
    interrupted,
    row_ids,
)
from helpers import one_line_error, write_legacy_archive, write_synth_tub
from untrusted import (
    MALFORMED,
    UNSAFE_PATH,
    archive_named,
    archive_with_tub,
    image_line,
    manifest_says,
    raw_manifest,
    transfer_with_code,
    without_default_model_type,
)

from trainer.core.bucket import OUTPUTS


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def trained_real(tmp_path_factory, car_template):
    """The real tub (1000 records of track-5015) archived from a createcar
    car folder, data/ moved away, then trained from wip.tgz alone."""
    import subprocess

    from helpers import car_from_template, copy_real_tub, script_env
    car = car_from_template(car_template, tmp_path_factory.mktemp("real") / "mycar")
    shutil.rmtree(car / "data")
    copy_real_tub(str(car / "data"))
    env = script_env()
    r = subprocess.run(["./make_tub_archive.sh"], cwd=car, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    shutil.move(car / "data", car.parent / "data-away")
    r = subprocess.run(["./local_train.sh"], cwd=car, env=env, capture_output=True,
                       text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return car, r


def test_real_tub_trains_from_the_archive_alone(trained_real):
    car, r = trained_real
    for ext in OUTPUTS:
        path = car / "models" / f"pilot-wip{ext}"
        assert path.stat().st_size > 0, path
    assert "best val_loss" in r.stdout
    assert not (car / "data").exists()


def test_card_records_where_the_model_came_from(trained_real):
    car, _ = trained_real
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    assert card["records"]["live"] == 1000 and card["records"]["held_out"] == 100
    assert card["records"]["train"] + card["records"]["validation"] == 900
    assert card["tubs"][0]["records"] == 1000 and card["tubs"][0]["deleted"] == 0
    assert card["archives"][0]["sha256"] == sha256(car / "wip.tgz")
    assert card["archives"][0]["bytes"] == (car / "wip.tgz").stat().st_size
    import donkeycar
    import tensorflow as tf
    assert card["versions"]["donkeycar"] == donkeycar.__version__
    assert card["versions"]["tensorflow"] == tf.__version__
    assert card["versions"]["donkeycar_generation"] == ".".join(
        donkeycar.__version__.split(".")[:2])
    assert len(card["history"]["val_loss"]) == card["epochs"] == 1
    assert card["best_val_loss"] == min(card["history"]["val_loss"])
    assert card["model_type"] == "linear" and card["config"]["MAX_EPOCHS"] == 1
    for ext in ("h5", "tflite", "onnx", "png", "pred.png"):
        entry = card["files"][f"pilot-wip.{ext}"]
        assert entry["sha256"] == sha256(car / "models" / f"pilot-wip.{ext}")
    assert set(card["parity"]) == {"tflite", "onnx"}
    assert max(card["parity"].values()) <= 1e-3
    h5 = card["evaluation"]["h5"]
    for fmt in ("h5", "tflite", "onnx"):
        ev = card["evaluation"][fmt]
        assert ev["frames"] == 100 and ev["median_latency_ms"] > 0
        # on the same frames each format errs as the h5 does, give or take how far
        # its answers are from the h5's
        for error in ("steering_mae", "throttle_mae"):
            assert abs(ev[error] - h5[error]) <= ev["max_diff_from_h5"] + 1e-9, (fmt, ev)


def test_the_cards_errors_are_the_models_own_and_its_verdict_on_real_driving(trained_real):
    """The card's h5 errors are what the model does on the frames the card
    says it was evaluated on (evaluation_frames: the held-out last tenth of
    the tub, records 900-999), recomputed here with the car's DonkeyCar. On
    this real driving, one epoch on 900 records learns little: measured,
    its steering error was 0.95, 0.96 and 1.02 of a constant guess's (95%
    intervals 0.94-0.96, 0.94-0.97, 1.02-1.03), so the verdict is "not
    clearly better", and says so, with no drive line."""
    from donkeycar.config import load_config
    from donkeycar.utils import get_model_by_type, load_image

    car, r = trained_real
    card = json.loads((car / "models" / "pilot-wip.json").read_text())
    cfg = load_config(str(car / "config.py"))
    pilot = get_model_by_type("linear", cfg)
    pilot.load(str(car / "models" / "pilot-wip.h5"))
    tub = car.parent / "data-away"
    records = [json.loads(ln) for ln in (tub / "catalog_0.catalog").read_text().splitlines()]
    where = card["evaluation_frames"]
    assert where["tub"] == "data" and where["frames"] == 100, where
    assert where["records"] == [900, 999] and where["seen_in_training"] is False
    first, last = where["records"]
    sample = [r for r in records if first <= r["_index"] <= last]
    assert len(sample) == 100, where
    driven = np.array([(r["user/angle"], r["user/throttle"]) for r in sample])
    predicted = np.array([[float(np.ravel(v)[0]) for v in pilot.run(
        load_image(str(tub / "images" / r["cam/image_array"]), cfg))] for r in sample])
    steering, throttle = np.abs(predicted - driven).mean(axis=0)
    ev = card["evaluation"]["h5"]
    assert ev["steering_mae"] == pytest.approx(steering, abs=1e-4)
    assert ev["throttle_mae"] == pytest.approx(throttle, abs=1e-4)
    verdict = card["verdict"]
    assert verdict["frames"] == 100 and verdict["held_out"] == [
        {"tub": "data", "count": 100, "records": [900, 999]}]
    # the constant guess is the mean of the 900 training records, judged here
    constant = np.mean([r["user/angle"] for r in records if r["_index"] < 900])
    assert verdict["steering"]["constant_value"] == pytest.approx(constant, abs=1e-6)
    assert verdict["steering"]["constant"] == pytest.approx(
        np.abs(driven[:, 0] - constant).mean(), abs=1e-6)
    assert verdict["better"] is False and 0.8 < verdict["steering"]["ratio"] < 1.1
    assert "to drive it" not in r.stdout and "is not clearly better" in r.stderr


def test_the_cars_donkeycar_loads_all_three_formats_and_they_agree(trained_real):
    """What the car does: get_model_by_type(...).load(...), run on a frame."""
    import onnxruntime as ort
    from donkeycar.config import load_config
    from donkeycar.utils import get_model_by_type, load_image

    car, _ = trained_real
    cfg = load_config(str(car / "config.py"))
    h5 = get_model_by_type("linear", cfg)
    h5.load(str(car / "models" / "pilot-wip.h5"))
    tfl = get_model_by_type("tflite_linear", cfg)
    tfl.load(str(car / "models" / "pilot-wip.tflite"))
    onnx = ort.InferenceSession(str(car / "models" / "pilot-wip.onnx"))
    images = car.parent / "data-away" / "images"
    for i in (3, 250, 517, 999):
        img = load_image(str(images / f"{i}_cam_image_array_.jpg"), cfg)
        a = np.array(h5.run(img), dtype=np.float64)
        b = np.array(tfl.run(img), dtype=np.float64)
        feed = {onnx.get_inputs()[0].name: (img.astype(np.float32) / 255.0)[None]}
        c = np.array([o.ravel()[0] for o in onnx.run(None, feed)], dtype=np.float64)
        assert np.abs(a - b).max() <= 1e-3 and np.abs(a - c).max() <= 1e-3, (a, b, c)


def test_tflite_runs_under_ai_edge_litert(trained_real):
    """ai-edge-litert is the TFLite runtime DonkeyCar 5.4 uses on a Pi: with it
    installed, DonkeyCar's own tflite pilot must pick it and agree with the h5."""
    from donkeycar.config import load_config
    from donkeycar.parts.interpreter import get_tflite_interpreter
    from donkeycar.utils import get_model_by_type, load_image

    assert get_tflite_interpreter().__module__.startswith("ai_edge_litert")
    car, _ = trained_real
    cfg = load_config(str(car / "config.py"))
    h5 = get_model_by_type("linear", cfg)
    h5.load(str(car / "models" / "pilot-wip.h5"))
    lite = get_model_by_type("tflite_linear", cfg)
    lite.load(str(car / "models" / "pilot-wip.tflite"))
    for i in (10, 640):
        img = load_image(str(car.parent / "data-away" / "images" /
                             f"{i}_cam_image_array_.jpg"), cfg)
        got = np.array(lite.run(img), dtype=np.float64)
        assert np.abs(got - np.array(h5.run(img), dtype=np.float64)).max() <= 1e-3


def test_flags_name_type_transfer_and_output(trained_real, car, run):
    """-a (a bare name), -m, --type, -T and -o, on a tub with deleted records:
    they train and are not counted."""
    real_car, _ = trained_real
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=230, deleted=30)
    assert run("make_tub_archive.sh", "-a", "laps").returncode == 0
    out = car / "elsewhere"
    r = run("local_train.sh", "-a", "laps", "-m", "tuned", "--type", "linear",
            "-T", real_car / "models" / "pilot-wip.h5", "-o", out)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert sorted(os.listdir(out)) == sorted(f"tuned{suffix}" for suffix in OUTPUTS)
    card = json.loads((out / "tuned.json").read_text())
    assert card["transfer"].endswith("pilot-wip.h5")
    assert card["records"]["live"] == 200 and card["tubs"][0]["deleted"] == 30
    # The same name again is refused, the model kept; -f replaces it.
    before = (out / "tuned.h5").read_bytes()
    r = run("local_train.sh", "-a", "laps.tgz", "-m", "tuned", "-o", out)
    assert r.returncode == 1 and "tuned.h5 already exists: pass -f" in one_line_error(r)
    assert (out / "tuned.h5").read_bytes() == before


@pytest.mark.e2e           # a whole run (or two) end to end: make e2e
def test_legacy_gcp_trainer_archive_trains(car, synth_tub, run, tmp_path):
    write_legacy_archive(car / "old.tgz", car, synth_tub)
    r = run("local_train.sh", "-a", "old.tgz", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((tmp_path / "out" / "pilot-old.json").read_text())
    assert card["records"]["live"] == 200


def test_missing_and_bad_archives(car, run, tmp_path):
    r = run("local_train.sh")
    assert r.returncode == 1 and one_line_error(r) == (
        "local_train.sh: no archive here (wip.tgz): make one with ./make_tub_archive.sh in "
        "the car folder, or pass -a ARCHIVE")
    r = run("local_train.sh", "-a", "wip.tgz")
    assert r.returncode == 1 and one_line_error(r).startswith(
        "local_train.sh: archive wip.tgz not found here, and STEERING_BUCKET_NAME is not "
        "set to look in gs://BUCKET/training/: check the name, or make it with "
        "./make_tub_archive.sh")
    (car / "wip.tgz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    r = run("local_train.sh")
    assert r.returncode == 1 and "wip.tgz is" in one_line_error(r)
    assert not (car / "models" / "pilot-wip.h5").exists()


# -- hardening rows (tests/hardening.py): refused before any training ----------------

def trained_model_exists(ctx):
    good_archive(ctx)
    (ctx.car / "models" / "pilot-wip.h5").write_bytes(b"my best model so far")


def small_transfer_model(ctx):
    good_archive(ctx)
    shutil.copy(ctx.stock.small_model, ctx.car / "models" / "small.h5")


def train_extracting(ctx):
    """Frames are arriving in the training job's folder (in $TMPDIR), where its
    extraction process writes them while TensorFlow starts."""
    return has_entries(ctx.tmp / "tmp", "robocar-run-*/robocar-train-*/archive-0/data/images")


ROWS = [
    Row("train:archive-missing-outside-a-car-folder", elsewhere, ("local_train.sh",), 1,
        r"no archive here \(wip\.tgz\): make one with \./make_tub_archive\.sh in the car "
        r"folder, or pass -a ARCHIVE$"),
    *[Row(f"train:{kind}", bad_archive(kind), ("local_train.sh",), 1, ARCHIVE_SAYS[kind])
      for kind in BAD_ARCHIVES],
    # the extraction process is stopped too: nothing is left in $TMPDIR
    Row("train:ctrl-c-while-extracting", big_archive, ("local_train.sh", "-a", "big.tgz"),
        130, interrupted("local_train.sh"), interrupt=train_extracting),
    Row("train:model-exists-without-f", trained_model_exists,
        ("local_train.sh", "-m", "pilot-wip"), 1,
        r"\./models/pilot-wip\.h5 already exists: pass -f to replace the model, or -m "
        r"NAME to train another$"),
    # refused as the flags are read; the trainable types only, no tflite_ one
    Row("train:unknown-model-type", good_archive, ("local_train.sh", "--type", "lineer"), 1,
        r"--type lineer: DonkeyCar knows no such model type: did you mean linear\? use one "
        r"of (?!.*tflite_)(?=.*\bcategorical\b).*\blinear\b"),
    Row("train:transfer-model-missing", good_archive,
        ("local_train.sh", "-T", "models/nothere.h5"), 1,
        r"transfer model models/nothere\.h5 not found: check the path$"),
    Row("train:transfer-model-of-another-input-shape", small_transfer_model,
        ("local_train.sh", "-T", "models/small.h5"), 1,
        r"transfer model models/small\.h5 takes 128x96x3 images but the config gives "
        r"160x120x3 \(IMAGE_W x IMAGE_H x IMAGE_DEPTH\): transfer from a model trained "
        r"on this image size, or leave -T out$"),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)


# -- trust boundaries: what an archive, a tub, a config or a model someone
# else made can make the script do (the setups: tests/untrusted.py) --

TRUST = [
    Row("train:model-name-climbs-out", good_archive,
        ("local_train.sh", "-m", "../../x"), 1,
        r"-m '\.\./\.\./x' is not a plain name: use letters, digits, '\.', '_' and '-' "
        r"\(starting with a letter or digit\), e\.g\. -m pilot-wip$"),
    Row("train:model-name-absolute", good_archive, ("local_train.sh", "-m", "{tmp}/x"), 1,
        r"-m '/\S+' is not a plain name"),
    Row("train:archive-name-with-a-space", archive_named("my run.tgz"),
        ("local_train.sh", "-a", "my run.tgz"), 1,
        r"archive 'my run' makes the model name 'pilot-my run', which is not a plain "
        r"name: rename the archive \(letters, digits, '\.', '_', '-'\), or pass -m NAME, "
        r"e\.g\. -m pilot-wip$"),
    Row("train:archive-json-absolute-tub", manifest_says('[{"path": "{tmp}/hosttub"}]'),
        ("local_train.sh",), 1, UNSAFE_PATH.format(r"/\S+/hosttub")),
    Row("train:archive-json-a-list", raw_manifest(b"[]"), ("local_train.sh",), 1,
        MALFORMED.format("a JSON list, not an object")),
    Row("train:catalog-image-absolute", archive_with_tub(image_line("/etc/hostname")),
        ("local_train.sh",), 1,
        r"tub wip\.tgz/data: catalog_0\.catalog line 3 names the image '/etc/hostname'"),
    Row("train:config-without-default-model-type", without_default_model_type,
        ("local_train.sh",), 1, r"config\.py sets no DEFAULT_MODEL_TYPE: it is not a car's "
                                r"config\.py"),
    Row("train:transfer-model-runs-code", transfer_with_code,
        ("local_train.sh", "-T", "models/lambda.h5"), 1,
        r"the transfer model models/lambda\.h5 has a layer that runs Python code when it "
        r"loads \(Lambda scale\): pass --trust-model-code only if you trust who made it, or "
        r"use a model made by local_train\.sh$"),
]


@pytest.mark.parametrize("row", TRUST, ids=row_ids(TRUST))
def test_trust_boundaries(row, harden):
    harden(row)


def test_the_card_and_wandb_get_training_settings_with_secrets_redacted(car):
    from trainer.core.config import REDACTED, effective, load_car_config, redact_overrides
    from trainer.job import tracking
    with open(car / "myconfig.py", "a") as f:
        f.write('\nMQTT_PASSWORD = "hunter2"\nAWS_SECRET_ACCESS_KEY = "abc"\n'
                'AWS_ACCESS_KEY_ID = "AKIA"\nPI_PASSWD = "raspberry"\n'
                'IMAGE_TOKEN = "t"\nPI_HOSTNAME = "mycar.local"\n')
    cfg = load_car_config(str(car), ["MAX_EPOCHS=3"])
    card = effective(cfg)
    text = json.dumps(card)
    for secret in ("hunter2", "abc", "AKIA", "raspberry", "mycar.local"):
        assert secret not in text
    assert card["MAX_EPOCHS"] == 3 and card["IMAGE_W"] == 160
    assert card["DEFAULT_MODEL_TYPE"] and card["IMAGE_TOKEN"] == REDACTED
    assert "PI_HOSTNAME" not in card              # not a training setting
    assert tracking.effective is effective         # W&B's config comes from the same place
    assert redact_overrides(["MQTT_PASSWORD=x", "MAX_EPOCHS=3"]) == [
        f"MQTT_PASSWORD={REDACTED}", "MAX_EPOCHS=3"]


def test_a_model_with_code_loads_only_when_trusted(lambda_h5, stock):
    from trainer.core.errors import UserError
    from trainer.job.export import check_model_code, code_layers
    assert "Lambda scale" in code_layers(str(lambda_h5))     # Keras 3 names its function too
    assert code_layers(str(stock.small_model)) == []        # DonkeyCar's own: no code
    with pytest.raises(UserError, match="--trust-model-code"):
        check_model_code(str(lambda_h5), "model", trusted=False)
    check_model_code(str(lambda_h5), "model", trusted=True)
    from trainer.job.export import load_keras
    model = load_keras(str(lambda_h5), trusted=True)     # what --trust-model-code allows
    assert tuple(model.inputs[0].shape[1:]) == (120, 160, 3)
