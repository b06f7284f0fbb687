"""The loop a DonkeyCar owner runs after each day of driving (issue 20):
make_tub_archive -> local_train -> local_makemovie with no flags, twice,
and nothing refuses and nothing is lost: an unnamed default that is taken
moves on to the next name (wip-2.tgz, pilot-wip-2, ...), says which, and the
next step takes the newest; a name the user gave still refuses without -f.
The car's own myconfig (DEFAULT_MODEL_TYPE = 'tflite_linear', as
docs/car.md recommends) trains its Keras type. Cheap mistakes are refused
before TensorFlow starts or the network is touched."""
import hashlib
import json
import re
import time

import pytest
from helpers import one_line_error, script_env, write_synth_tub


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(car):
    """{relative path: sha256} of the archives, models and movies in CAR."""
    found = {}
    for p in [*car.glob("*.tgz"), *car.glob("*.mp4"), *(car / "models").glob("*")]:
        if p.name != "database.json":
            found[str(p.relative_to(car))] = digest(p)
    return found


def test_the_daily_loop_runs_twice_with_the_defaults(car, run):
    with open(car / "myconfig.py", "a") as f:
        f.write("\nDEFAULT_MODEL_TYPE = 'tflite_linear'\n")
    write_synth_tub(car / "data", records=200)

    r = run("make_tub_archive.sh")
    assert r.returncode == 0, r.stderr
    r = run("local_train.sh")
    assert r.returncode == 0, r.stderr[-2000:]
    assert ("the config's DEFAULT_MODEL_TYPE is tflite_linear, which runs a converted "
            "model on the car: training its Keras type linear (the .tflite is exported "
            "as always)") in r.stdout
    assert f"listed pilot-wip in {car}/models/database.json" in r.stdout
    r = run("local_makemovie.sh", "-e", "30")
    assert r.returncode == 0, r.stderr[-2000:]
    day_one = snapshot(car)
    assert {"wip.tgz", "pilot-wip.mp4", "models/pilot-wip.tflite"} <= set(day_one)

    r = run("make_tub_archive.sh")                        # the next day
    assert r.returncode == 0, r.stderr
    assert "wip.tgz exists: writing wip-2.tgz (-a NAME to choose, -f to replace wip.tgz)" \
        in r.stdout
    r = run("local_train.sh")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "taking wip-2.tgz, the newest archive here (-a to choose another)" in r.stdout
    assert re.search(r"^model pilot-wip-2: best val_loss", r.stdout, re.M), r.stdout
    r = run("local_makemovie.sh", "-e", "30")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "taking pilot-wip-2, the newest model in models/ (-m to choose another)" \
        in r.stdout
    assert "wrote pilot-wip-2.mp4" in r.stdout

    after = snapshot(car)
    assert {k: after.get(k) for k in day_one} == day_one            # nothing lost
    assert {"wip-2.tgz", "pilot-wip-2.mp4", "models/pilot-wip-2.tflite"} <= set(after)
    listed = json.loads((car / "models" / "database.json").read_text())
    assert [e["Name"] for e in listed] == ["pilot-wip", "pilot-wip-2"]
    assert {e["Type"] for e in listed} == {"linear"}        # as donkey train lists it

    # A name the user gave refuses without -f, and nothing changes.
    r = run("make_tub_archive.sh", "-a", "wip")
    assert r.returncode == 1
    assert one_line_error(r) == ("make_tub_archive.sh: wip.tgz already exists: pass -f to "
                                 "replace it, or -a NAME to write another")
    r = run("local_train.sh", "-m", "pilot-wip")
    assert r.returncode == 1
    assert one_line_error(r).startswith("local_train.sh: ./models/pilot-wip.h5 already "
                                        "exists: pass -f")
    # -m takes a bare name too, found in models/, as DonkeyCar's commands do
    r = run("local_makemovie.sh", "-m", "pilot-wip", "-e", "10", "-o", "again.mp4")
    assert r.returncode == 0, r.stderr[-2000:]
    assert snapshot(car) == {**after, "again.mp4": digest(car / "again.mp4")}


def test_a_typo_in_c_is_refused_naming_the_key(car, run, synth_tub):
    assert run("make_tub_archive.sh").returncode == 0
    r = run("local_train.sh", "-c", "MAX_EPOCH=3")
    assert r.returncode == 1
    assert one_line_error(r) == (
        "local_train.sh: -c MAX_EPOCH: the config has no MAX_EPOCH (a typo is ignored by "
        "DonkeyCar in silence): did you mean MAX_EPOCHS? see config.py for the keys")
    assert not list((car / "models").glob("pilot-wip*"))


@pytest.fixture
def no_tensorflow(tmp_path):
    """A tensorflow that leaves a mark when anything imports it."""
    site = tmp_path / "site"
    (site / "tensorflow").mkdir(parents=True)
    mark = tmp_path / "tensorflow-imported"
    (site / "tensorflow" / "__init__.py").write_text(
        f"open({str(mark)!r}, 'w').close()\nraise ImportError('tensorflow')\n")
    return site, mark


# (script, flags, exit code, the line's start): each refused from what the
# command line and the folder say, before TensorFlow or the network.
CHEAP = [
    ("local_train.sh", ["--type", "linera"], 1,
     "local_train.sh: --type linera: DonkeyCar knows no such model type: did you mean "
     "linear?"),
    ("local_train.sh", ["-t", "linear"], 2,
     "local_train.sh: unknown flag -t: the model type is --type TYPE (-t is a tub, as in "
     "make_tub_archive.sh)"),
    ("local_train.sh", [], 1,
     "local_train.sh: no archive here (wip.tgz): make one with ./make_tub_archive.sh"),
    ("local_train.sh", ["-m", "../x"], 1, "local_train.sh: -m '../x' is not a plain name"),
    ("submit_cloud_train.sh", ["--type", "linnear", "-n"], 1,
     "submit_cloud_train.sh: --type linnear: DonkeyCar knows no such model type"),
    ("download_models.sh", ["-F", "tflit"], 1,
     "download_models.sh: -F 'tflit' is not a format: use h5, tflite, fp16, int8, onnx"),
    ("check_model.sh", ["-F", "tflit"], 1,
     "check_model.sh: -F 'tflit' is not a format"),
    ("local_makemovie.sh", ["-s", "50", "-e", "10"], 1,
     "local_makemovie.sh: -s 50 -e 10: END must be after START"),
    ("local_makemovie.sh", ["--type", "linaer"], 1,
     "local_makemovie.sh: --type linaer: DonkeyCar knows no such model type: did you mean "
     "linear?"),
]


@pytest.mark.parametrize("script, flags, code, says", CHEAP,
                         ids=[f"{s}:{' '.join(f) or 'no-archive'}" for s, f, _, _ in CHEAP])
def test_cheap_mistakes_are_refused_before_tensorflow_and_the_network(
        car, run, no_tensorflow, script, flags, code, says):
    site, mark = no_tensorflow
    env = script_env(PYTHONPATH=str(site), TRAINER_GCS_DEADLINE="1",
                     STORAGE_EMULATOR_HOST="http://127.0.0.1:9",   # nothing listens there
                     REGION="europe-west1", TRAINER_IMAGE="example.com/robocar/trainer",
                     GOOGLE_CLOUD_PROJECT="p", CLOUDSDK_AUTH_DISABLE_CREDENTIALS="true",
                     STEERING_BUCKET_NAME="robocar-test")
    if script not in ("download_models.sh", "submit_cloud_train.sh"):
        del env["STEERING_BUCKET_NAME"]          # else a missing archive is looked up there
    started = time.monotonic()
    r = run(script, *flags, env=env)
    took = time.monotonic() - started
    print(f"{script} {' '.join(flags)}: {took:.2f} s")
    assert r.returncode == code, r.stderr
    line = r.stderr.splitlines()[0] if code == 2 else one_line_error(r)
    assert line.startswith(says), line
    assert not mark.exists(), "TensorFlow was imported before the refusal"


@pytest.mark.e2e
def test_the_cloud_loop_runs_twice_with_the_defaults(car, run, vertex, gcs):
    """upload -> submit -w -> download with no flags, two days in a row,
    through the GCS emulator and the Vertex stand-in: each day's archive and
    model get their own names, the bucket keeps both sets, nothing is lost."""
    write_synth_tub(car / "data", records=300)
    with open(car / "myconfig.py", "a") as f:   # a model the download takes (trained.py)
        f.write("MAX_EPOCHS = 4\n")
    env = vertex.env
    for day, (archive, model) in enumerate((("wip", "pilot-wip"),
                                            ("wip-2", "pilot-wip-2")), start=1):
        assert run("make_tub_archive.sh", env=env).returncode == 0
        r = run("upload_tub_archive.sh", env=env)
        assert r.returncode == 0, r.stderr
        assert f"uploaded {archive}.tgz to gs://robocar-test/training/{archive}.tgz" \
            in r.stdout
        r = run("submit_cloud_train.sh", "-g", "none", "-w", env=env, timeout=900)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert re.search(rf"\({model}-\d{{8}}-\d{{6}}\)", r.stdout), r.stdout
        assert (car / "models" / f"{model}.tflite").exists()
        r = run("download_models.sh", env=env)
        assert r.returncode == 0, r.stderr
        if day == 2:
            assert f"taking {model}, the newest model in gs://robocar-test/models/" \
                in r.stdout
        assert "(0 transferred, 9 already identical)" in r.stdout
        if day == 1:
            first = snapshot(car)
    after = snapshot(car)
    assert {k: after.get(k) for k in first} == first
    names = {b.name for b in gcs.bucket.list_blobs(prefix="models/")}
    assert {"models/pilot-wip.json", "models/pilot-wip-2.json"} <= names
