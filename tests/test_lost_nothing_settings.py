"""Every value the toolkit is given is checked before it is used, in one
line naming it (issue 21): environment variables (finite numbers, URLs,
names), config values training reads (-c and myconfig.py alike: sizes,
batch, epochs, split, crops), the fields of a model card the car's check
reads, and DonkeyCar's models/database.json, which a damaged copy never
replaces: it is kept as it is, copied beside itself, and the line says how
to repair it. Content hashes show nothing changed."""
import json
import math
import shutil

import pytest
from hardening import Row, bucket, cloud, good_archive, row_ids, tub
from lost_nothing import env_for, hashes, one_line, run_script
from trained import NAME
from untrusted import archive_with_tub

from trainer.core.bucket import OUTPUTS

TRAIN, MAKE, CHECK = "local_train.sh", "make_tub_archive.sh", "check_model.sh"
DEADLINE = (r"TRAINER_GCS_DEADLINE={} is not a number of seconds between 0 and 86400: "
            r"unset it \(default 90\), or give e\.g\. 90$")


# -- the environment --------------------------------------------------------------------

def uploading(ctx):
    good_archive(ctx)
    ctx.env.update(STEERING_BUCKET_NAME="robocar-test")


ENV_ROWS = [
    # was: 'nan' retried forever, 'inf' too
    *[Row(f"upload:deadline-{name}", uploading, ("upload_tub_archive.sh",), 1,
          DEADLINE.format(shown), env={"TRAINER_GCS_DEADLINE": value,
                                       "STORAGE_EMULATOR_HOST": "{dead}"})
      for name, value, shown in (("nan", "nan", r"'nan'"), ("inf", "inf", r"'inf'"),
                                 ("negative", "-1", r"'-1'"), ("zero", "0", r"'0'"),
                                 ("a-year", "31536000", r"'31536000'"),
                                 ("words", "ninety", r"'ninety'"))],
    Row("upload:emulator-host-not-a-host", uploading, ("upload_tub_archive.sh",), 1,
        r"STORAGE_EMULATOR_HOST='not a host!' is not a host:port or URL: export "
        r"STORAGE_EMULATOR_HOST=localhost:9023, or unset it to use Cloud Storage$",
        env={"STORAGE_EMULATOR_HOST": "not a host!"}),
    Row("upload:emulator-port-out-of-range", uploading, ("upload_tub_archive.sh",), 1,
        r"STORAGE_EMULATOR_HOST='http://127\.0\.0\.1:99999' is not a host:port or URL",
        env={"STORAGE_EMULATOR_HOST": "http://127.0.0.1:99999"}),
    Row("upload:project-not-an-id", uploading, ("upload_tub_archive.sh",), 1,
        r"GOOGLE_CLOUD_PROJECT='My Project' is not a project id \(6 to 30 lowercase "
        r"letters, digits or '-', starting with a letter\): export "
        r"GOOGLE_CLOUD_PROJECT=my-project$",
        env={"GOOGLE_CLOUD_PROJECT": "My Project", "STORAGE_EMULATOR_HOST": "{dead}"}),
    Row("train:accelerator-not-a-type", good_archive, (TRAIN,), 1,
        r"TRAINER_ACCELERATOR='T4 please' is not TYPE\[:COUNT\]: e\.g\. NVIDIA_TESLA_T4:1",
        env={"TRAINER_ACCELERATOR": "T4 please"}),
    Row("train:wandb-mode-unknown", good_archive, (TRAIN,), 1,
        r"WANDB_MODE='sometimes' is not one of W&B's modes: export WANDB_MODE=online "
        r"\(or offline, disabled\), or unset it$",
        env={"WANDB_PROJECT": "p", "WANDB_MODE": "sometimes"}),
    Row("submit:aiplatform-endpoint-not-a-url", cloud(good_archive, bucket),
        ("submit_cloud_train.sh",), 1,
        r"CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM='ftp://example' is not an http\(s\) "
        r"URL: unset it, or export", env={"CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM":
                                          "ftp://example"}),
]


@pytest.mark.parametrize("row", ENV_ROWS, ids=row_ids(ENV_ROWS))
def test_environment_values(row, harden):
    harden(row)


# -- config values: -c at once, myconfig.py before training -------------------------------

MUST = {"IMAGE_W": "a whole number of pixels from 1 to 4096", "BATCH_SIZE":
        "a whole number of 1 or more", "MAX_EPOCHS": "a whole number of 1 or more",
        "TRAIN_TEST_SPLIT": r"a fraction between 0 and 1 \(the share that trains\)",
        "LEARNING_RATE": "a number above 0, or None", "IMAGE_DEPTH": r"1 \(gray\) or 3 "
        r"\(colour\)"}
GIVEN = [("IMAGE_W", "0"), ("BATCH_SIZE", "0"), ("MAX_EPOCHS", "-1"),   # the issue's
         ("TRAIN_TEST_SPLIT", "1.5"), ("LEARNING_RATE", "nan"), ("IMAGE_DEPTH", "2"),
         ("BATCH_SIZE", "32.5"), ("MAX_EPOCHS", "ten")]


def with_myconfig(text):
    """wip.tgz of the stock tub, packed with the car's configs after TEXT is
    added to myconfig.py (as the user would have it)."""
    def setup(ctx):
        with open(ctx.car / "myconfig.py", "a") as f:
            f.write("\n" + text + "\n")
        archive_with_tub(lambda t: None)(ctx)
    return setup


def batch_size_0_here(ctx):
    tub(ctx)
    with open(ctx.car / "myconfig.py", "a") as f:
        f.write("\nBATCH_SIZE = 0\n")


CONFIG_ROWS = [
    *[Row(f"train:-c-{key}={value}", good_archive, (TRAIN, "-c", f"{key}={value}"), 1,
          rf"^local_train\.sh: -c {key}=\S+: {key} must be {MUST[key]}, e\.g\. -c {key}=")
      for key, value in GIVEN],
    Row("submit:-c-BATCH_SIZE=0", cloud(good_archive),
        ("submit_cloud_train.sh", "-n", "-c", "BATCH_SIZE=0"), 1,
        r"-c BATCH_SIZE=0: BATCH_SIZE must be a whole number of 1 or more"),
    Row("train:myconfig-MAX_EPOCHS=-1", with_myconfig("MAX_EPOCHS = -1"), (TRAIN,), 1,
        r"^local_train\.sh: myconfig\.py sets MAX_EPOCHS = -1: MAX_EPOCHS must be a whole "
        r"number of 1 or more: set e\.g\. MAX_EPOCHS = 100 in myconfig\.py$"),
    Row("train:myconfig-IMAGE_W=0", with_myconfig("IMAGE_W = 0"), (TRAIN,), 1,
        r"myconfig\.py sets IMAGE_W = 0: IMAGE_W must be a whole number of pixels"),
    Row("train:myconfig-crop-leaves-nothing",
        with_myconfig("TRANSFORMATIONS = ['CROP']\nROI_CROP_TOP = 100\nROI_CROP_BOTTOM = 30"),
        (TRAIN,), 1,
        r"myconfig\.py sets ROI_CROP_TOP = 100: ROI_CROP_TOP \+ ROI_CROP_BOTTOM \(100 \+ "
        r"30\) leave nothing of the 120 pixels of IMAGE_H for CROP: crop less, e\.g\. "
        r"ROI_CROP_TOP = 40$"),
    Row("train:-c-crop-leaves-nothing", good_archive,
        (TRAIN, "-c", "TRANSFORMATIONS=['CROP']", "-c", "ROI_CROP_LEFT=100", "-c",
         "ROI_CROP_RIGHT=60"), 1,
        r"-c ROI_CROP_LEFT=100: ROI_CROP_LEFT \+ ROI_CROP_RIGHT \(100 \+ 60\) leave "
        r"nothing of the 160 pixels of IMAGE_W for CROP"),
    Row("make:myconfig-BATCH_SIZE=0-is-a-warning", batch_size_0_here, (MAKE,), 0,
        r"^make_tub_archive\.sh: warning: myconfig\.py sets BATCH_SIZE = 0: BATCH_SIZE "
        r"must be a whole number of 1 or more: .* \(training refuses it; the archive is "
        r"written\)$", warnings=1, changes=("wip.tgz",)),
]


# These read the archive's config beside TensorFlow's start: two in the fast suite.
HEAVY = ("train:myconfig-IMAGE_W=0", "train:-c-crop-leaves-nothing")


@pytest.mark.parametrize("row", [pytest.param(r, marks=pytest.mark.e2e) if r.id in HEAVY
                                 else r for r in CONFIG_ROWS], ids=row_ids(CONFIG_ROWS))
def test_config_values(row, harden):
    harden(row)


# -- model cards: each field the car's check reads, of the wrong type or shape -----------

def card_with(change):
    """The trained model copied into models/, its card changed by CHANGE."""
    def setup(ctx):
        out = ctx.request.getfixturevalue("trained").models
        (ctx.car / "models").mkdir(exist_ok=True)
        for suffix in OUTPUTS:
            shutil.copy(out / f"{NAME}{suffix}", ctx.car / "models")
        path = ctx.car / "models" / f"{NAME}.json"
        card = json.loads(path.read_text())
        change(card)
        path.write_text(json.dumps(card))
    return setup


def setting(*keys, value):
    def change(card):
        holder = card
        for key in keys[:-1]:
            holder = holder[key]
        holder[keys[-1]] = value
    return change


CARDS = {
    "image-w-a-string": (setting("config", "IMAGE_W", value="160"),
                         r'config\.IMAGE_W is "160", which is not a whole number of pixels'),
    "config-a-list": (setting("config", value=[160, 120]),
                      r"config is \[160, 120\], which is not an object of config values"),
    "depth-2": (setting("config", "IMAGE_DEPTH", value=2), r"config\.IMAGE_DEPTH is 2, "
                                                           r"which is not 1 or 3"),
    "verdict-error-nan": (setting("verdict", "steering", "model", value=math.nan),
                          r"verdict\.steering\.model is NaN, which is not a finite number"),
    "verdict-better-a-word": (setting("verdict", "better", value="yes"),
                              r"verdict\.better is \"yes\", which is not true or false"),
    "verdict-a-list": (setting("verdict", value=[1]),
                       r"verdict is \[1\], which is not the verdict object"),
    "files-a-list": (setting("files", value=["pilot-wip.h5"]),
                     r"files is \[\"pilot-wip\.h5\"\], which is not an object of file "
                     r"names, each with its sha256 and bytes"),
    "files-sha-not-hex": (setting("files", f"{NAME}.h5", "sha256", value="xyz"),
                          r"files is .*, which is not an object of file names, each with "
                          r"its sha256 and bytes"),
    "model-type-a-number": (setting("model_type", value=7),
                            r"model_type is 7, which is not a model type's name"),
    "val-loss-a-word": (setting("best_val_loss", value="low"),
                        r"best_val_loss is \"low\", which is not a finite number"),
    "tubs-a-string": (setting("tubs", value="data"),
                      r"tubs is \"data\", which is not a list of tub objects"),
}
CARD_ROWS = [Row(f"check:card-{name}", card_with(change), (CHECK,), 1,
                 rf"^check_model\.sh: models/pilot-wip\.json says {says}: the card is damaged "
                 r"or was edited; copy it again, or train the model again; the files stay "
                 r"in models$")
             for name, (change, says) in CARDS.items()]


@pytest.mark.parametrize("row", CARD_ROWS, ids=row_ids(CARD_ROWS))
def test_card_fields(row, harden):
    harden(row)


# -- models/database.json damaged on the car: kept, copied, never replaced ----------------

DAMAGED_DB = {
    "truncated": lambda good: good[: len(good) // 2],          # a power cut mid-write
    "an-object": lambda good: b'{"Name": "pilot-old"}',
    "not-utf8": lambda good: b"\xff\xfe\x00[" + good[:40],
}


def earlier_entries():
    return json.dumps([{"Number": 0, "Name": "pilot-old", "Type": "linear",
                        "Comment": "last month's"},
                       {"Number": 1, "Name": "pilot-older", "Type": "linear"}],
                      indent=4).encode()


def damaged_database(kind):
    def setup(ctx):
        card_with(lambda card: None)(ctx)
        (ctx.car / "models" / "database.json").write_bytes(
            DAMAGED_DB[kind](earlier_entries()))
    return setup


def kept_as_it_was(ctx, r):
    db = ctx.car / "models" / "database.json"
    assert (ctx.car / "models" / "database.json.damaged").read_bytes() == db.read_bytes()


DB_ROWS = [Row(f"check:database-{kind}", damaged_database(kind), (CHECK, "-F", "tflite"), 1,
               r"models/database\.json is damaged \(.+\), so it was left as it is and a "
               r"copy kept as \S+/models/database\.json\.damaged: repair it \(a JSON list of "
               r"entries, as `donkey models` reads it\), or move it away to start a new "
               r"list$", changes=("models/database.json.damaged",), then=kept_as_it_was)
           for kind in DAMAGED_DB]


@pytest.mark.parametrize("row", [pytest.param(r, marks=pytest.mark.e2e)
                                 if r.id.endswith("not-utf8") else r for r in DB_ROWS],
                         ids=row_ids(DB_ROWS))
def test_a_damaged_model_list(row, harden):
    harden(row)


def test_a_download_over_a_truncated_model_list_loses_no_entry(car, gcs, tmp_path,
                                                               trained):
    """The issue's example: a power cut left models/database.json cut short;
    the download brings the model and checks it, but the list stays as it
    was (was: replaced, every earlier entry gone)."""
    out = trained.models
    for suffix in OUTPUTS:
        gcs.bucket.blob(f"models/{NAME}{suffix}").upload_from_filename(
            str(out / f"{NAME}{suffix}"))
    (car / "models").mkdir(exist_ok=True)
    db = car / "models" / "database.json"
    db.write_bytes(DAMAGED_DB["truncated"](earlier_entries()))
    before = hashes(car / "models")
    env = env_for(tmp_path, **{k: gcs.env[k] for k in (
        "STORAGE_EMULATOR_HOST", "STEERING_BUCKET_NAME", "TRAINER_GCS_DEADLINE",
        "GOOGLE_CLOUD_PROJECT")})
    r = run_script(car, "download_models.sh", "-F", "tflite", env=env)
    assert r.returncode == 1
    one_line(r, "download_models.sh", r"models/database\.json is damaged")
    after = hashes(car / "models")
    assert after["database.json"] == before["database.json"]
    assert after["database.json.damaged"] == before["database.json"]
    assert {f"{NAME}.tflite", f"{NAME}.json", f"{NAME}.frames.npz"} <= set(after)
    # Repaired as the line says, the next check lists the model beside the old ones.
    db.write_bytes(earlier_entries())
    r = run_script(car, CHECK, "-F", "tflite", env=env)
    assert r.returncode == 0, r.stderr
    names = [e["Name"] for e in json.loads(db.read_text())]
    assert names == ["pilot-old", "pilot-older", NAME]

