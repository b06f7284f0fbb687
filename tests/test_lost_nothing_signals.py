"""Ctrl-C, SIGTERM and SIGHUP at several moments of a download, a training
and an archive, and SIGKILL at their step boundaries (issue 21): each time
the old state or the new, one line, exit 128 + the signal, and nothing of
the run left in $TMPDIR; after a kill the next run undoes what it left.
The moments are the toolkit's own named points (trainer/core/points.py)."""
import os
import shutil
from pathlib import Path

import pytest
from hardening import has_bytes
from lost_nothing import (
    SIGNALS,
    empty_tmpdir,
    env_for,
    hashes,
    one_line,
    run_script,
    signal_when,
    stopped,
)
from trained import NAME

from trainer.core.bucket import OUTPUTS

SEVEN = sorted(NAME + s for s in OUTPUTS)
DOWNLOAD, TRAIN, MAKE = "download_models.sh", "local_train.sh", "make_tub_archive.sh"


# -- download_models.sh -f over last week's set ------------------------------------------

@pytest.fixture
def made(trained):
    """The session's trained model set (tests/trained.py)."""
    return trained.models


@pytest.fixture
def laptop(tmp_path, gcs, made):
    """The trained set in the bucket; last week's set in ./models of a folder
    that is no car folder (the car's check, which needs one, is not what
    these tests time)."""
    for name in SEVEN:
        gcs.bucket.blob(f"models/{name}").upload_from_filename(str(made / name))
    folder = tmp_path / "laptop"
    (folder / "models").mkdir(parents=True)
    for name in SEVEN:
        (folder / "models" / name).write_bytes(b"last week's " + name.encode())
    (folder / "models" / "notes.txt").write_text("not the model's\n")
    return folder


def download_env(tmp_path, gcs):
    return env_for(tmp_path, **{k: v for k, v in gcs.env.items()
                                if k in ("STORAGE_EMULATOR_HOST", "STEERING_BUCKET_NAME",
                                         "TRAINER_GCS_DEADLINE", "GOOGLE_CLOUD_PROJECT")})


def new_set(made, old):
    """./models after the download: the trained files, the note still there."""
    return {**{k: v for k, v in old.items() if k == "notes.txt"},
            **{name: hashes(made)[name] for name in SEVEN}}


# Before the moves: the old set; once they start, they finish (the signal waits).
DOWNLOAD_MOMENTS = [("download:fetched", "INT", "old"), ("download:fetched", "TERM", "old"),
                    ("download:fetched", "HUP", "old"), ("download:journal", "TERM", "new"),
                    ("download:moved-aside", "HUP", "new"),
                    ("download:moved-in", "INT", "new"),
                    ("download:committed", "TERM", "new")]


@pytest.mark.parametrize("moment,sig,state", DOWNLOAD_MOMENTS,
                         ids=[f"{m}-{s}" for m, s, _ in DOWNLOAD_MOMENTS])
def test_a_download_stopped_at_any_moment_leaves_the_old_set_or_the_new(
        moment, sig, state, laptop, gcs, made, tmp_path):
    old = hashes(laptop / "models")
    r = run_script(laptop, DOWNLOAD, "-f", env=download_env(tmp_path, gcs),
                   at=f"{moment}:{sig}")
    stopped(r, DOWNLOAD, sig)
    assert hashes(laptop / "models") == (old if state == "old" else new_set(made, old))
    assert sorted(os.listdir(laptop / "models")) == sorted(SEVEN + ["notes.txt"])
    empty_tmpdir(tmp_path)


KILLED = [("download:fetched", "old"), ("download:journal", "old"),
          ("download:moved-aside", "old"), ("download:moved-in", "old"),
          ("download:committed", "new")]


@pytest.mark.parametrize("moment,state", KILLED, ids=[m for m, _ in KILLED])
def test_after_a_killed_download_the_next_one_finds_the_old_set_or_the_new(
        moment, state, laptop, gcs, made, tmp_path):
    old = hashes(laptop / "models")
    env = download_env(tmp_path, gcs)
    r = run_script(laptop, DOWNLOAD, "-f", env=env, at=f"{moment}:KILL")
    assert r.returncode == -9, r.stderr
    r = run_script(laptop, DOWNLOAD, env=env)             # without -f: replaces nothing
    if state == "old":
        assert r.returncode == 1
        one_line(r, DOWNLOAD, r"differs from gs://robocar-test/models/\S+ "
                 rf"\(and {len(SEVEN) - 1} more\): pass -f")
    else:
        assert r.returncode == 0, r.stderr
        assert f"{len(SEVEN)} already identical" in r.stdout
    assert hashes(laptop / "models") == (old if state == "old" else new_set(made, old))
    assert sorted(os.listdir(laptop / "models")) == sorted(SEVEN + ["notes.txt"])
    empty_tmpdir(tmp_path)


# -- local_train.sh: stopped before, during and after training ----------------------------

@pytest.fixture
def training_car(car, stock, tmp_path):
    """The stock archive; last week's pilot-x in models/ (which -f replaces)."""
    shutil.copy(stock.archive, car / "wip.tgz")
    (car / "models").mkdir(exist_ok=True)
    for suffix in OUTPUTS:
        (car / "models" / f"pilot-x{suffix}").write_bytes(b"last week's " + suffix.encode())
    return car


# Each stops the run before anything is published: the models are as they were.
EARLY = [("step:fetch", "INT"), ("step:extract_wait", "TERM"),
         ("step:check_tubs", "HUP"), ("step:train", "TERM")]


@pytest.mark.parametrize("moment,sig", EARLY, ids=[f"{m}-{s}" for m, s in EARLY])
def test_training_stopped_before_it_publishes_changes_nothing(moment, sig, training_car,
                                                              tmp_path):
    before = hashes(training_car)
    r = run_script(training_car, TRAIN, "-f", "-m", "pilot-x", env=env_for(tmp_path),
                   at=f"{moment}:{sig}")
    stopped(r, TRAIN, sig)
    assert hashes(training_car) == before
    empty_tmpdir(tmp_path)              # the extracted archive, configs included: gone


def test_a_closed_terminal_while_extracting_is_one_line_and_leaves_nothing(training_car,
                                                                           stock, tmp_path):
    """SIGHUP to the whole job (the terminal closed, the ssh dropped), polled."""
    shutil.copy(stock.big_archive, training_car / "big.tgz")
    before = hashes(training_car)
    tmp = tmp_path / "tmp"
    r = signal_when(training_car, TRAIN, "-a", "big.tgz", env=env_for(tmp_path),
                    sig=SIGNALS["HUP"],
                    ready=lambda: has_bytes(tmp, "robocar-run-*/robocar-train-*/archive-0/"
                                            "data/images/*.jpg"))
    stopped(r, TRAIN, "HUP")
    assert hashes(training_car) == before
    empty_tmpdir(tmp_path)


@pytest.mark.e2e
def test_stopped_while_publishing_the_model_is_kept_or_published(training_car, tmp_path):
    """Two trainings: SIGTERM as publishing starts keeps the model in a named
    folder and publishes nothing; SIGHUP among the moves into models/ waits
    for the last one: the new set, complete."""
    before = hashes(training_car)
    env = env_for(tmp_path)
    r = run_script(training_car, TRAIN, "-f", "-m", "pilot-x", env=env,
                   at="step:publish:TERM")
    line = stopped(r, TRAIN, "TERM")
    kept = Path(tmp_path) / "tmp" / "robocar-kept-pilot-x"
    assert f"nothing was published; the trained model is kept in {kept}: " in line
    assert sorted(os.listdir(kept)) == sorted(f"pilot-x{s}" for s in OUTPUTS)
    assert hashes(training_car) == before
    shutil.rmtree(kept)

    r = run_script(training_car, TRAIN, "-f", "-m", "pilot-x", env=env,
                   at="publish:moved-in:HUP")
    line = stopped(r, TRAIN, "HUP")
    assert line.endswith("pilot-x was published to ./models first")
    models = training_car / "models"
    for suffix in OUTPUTS:
        assert (models / f"pilot-x{suffix}").read_bytes() != b"last week's " + \
            suffix.encode(), suffix
    assert not [p for p in os.listdir(models) if p.startswith(".publish-")]
    empty_tmpdir(tmp_path)


# -- make_tub_archive.sh ------------------------------------------------------------------

def test_a_killed_archive_leaves_a_temporary_file_the_next_run_removes(car, synth_tub,
                                                                       tmp_path):
    env = env_for(tmp_path)
    assert run_script(car, MAKE, env=env).returncode == 0
    old = (car / "wip.tgz").read_bytes()
    r = run_script(car, MAKE, "-f", env=env, at="archive:written:KILL")
    assert r.returncode == -9
    assert (car / "wip.tgz").read_bytes() == old
    left = [p for p in os.listdir(car) if p.startswith(".wip.tgz.")]
    assert len(left) == 1, left                      # what SIGKILL leaves ...
    r = run_script(car, MAKE, "-f", env=env)
    assert r.returncode == 0, r.stderr
    assert not [p for p in os.listdir(car) if p.startswith(".wip.tgz.")]   # ... goes
    empty_tmpdir(tmp_path)


@pytest.mark.parametrize("sig", ["TERM", "HUP"])
def test_an_archive_stopped_while_writing_leaves_no_partial_file(sig, car, stock,
                                                                  tmp_path):
    shutil.rmtree(car / "data")
    shutil.copytree(stock.big_tub, car / "data")
    before = hashes(car)
    r = signal_when(car, MAKE, env=env_for(tmp_path), sig=SIGNALS[sig],
                    ready=lambda: has_bytes(car, ".wip.tgz.*", 1 << 20))
    stopped(r, MAKE, sig)
    assert hashes(car) == before
    empty_tmpdir(tmp_path)


# -- SIGKILL at each step of a training: the next run finds the old set or the new --------

TRAIN_KILLED = [("step:extract_wait", "old"), ("step:train", "old"),
                ("step:publish", "old"), ("publish:journal", "old"),
                ("publish:moved-aside", "old"), ("publish:committed", "new")]


@pytest.mark.e2e
@pytest.mark.parametrize("moment,state", TRAIN_KILLED, ids=[m for m, _ in TRAIN_KILLED])
def test_after_a_killed_training_the_next_run_finds_the_old_set_or_the_new(
        moment, state, training_car, tmp_path):
    old = hashes(training_car)
    env = env_for(tmp_path)
    r = run_script(training_car, TRAIN, "-f", "-m", "pilot-x", env=env,
                   at=f"{moment}:KILL")
    assert r.returncode == -9, r.stderr[-3000:]
    r = run_script(training_car, TRAIN, "-m", "pilot-x", env=env)     # no -f
    assert r.returncode == 1
    one_line(r, TRAIN, r"pilot-x\.h5 already exists: pass -f to replace the model")
    now = hashes(training_car)
    if state == "old":
        assert now == old
    else:
        assert {k: v for k, v in now.items() if "pilot-x" not in k} == \
            {k: v for k, v in old.items() if "pilot-x" not in k}
        assert all(now[f"models/pilot-x{s}"] != old[f"models/pilot-x{s}"] for s in OUTPUTS)
    assert not [p for p in os.listdir(training_car / "models") if p.startswith(".publish-")]
    empty_tmpdir(tmp_path)              # the killed run's folder, swept by the next


@pytest.mark.e2e
def test_a_training_stopped_while_it_publishes_to_a_bucket_leaves_the_old_set(
        training_car, gcs, tmp_path):
    """-f over last week's set in the bucket, SIGTERM after the first object
    is replaced: that object is put back from its copy, the copies go, and
    the trained model is kept here."""
    for suffix in OUTPUTS:
        gcs.put(f"models/pilot-x{suffix}", b"last week's " + suffix.encode())
    env = env_for(tmp_path, **{k: gcs.env[k] for k in (
        "STORAGE_EMULATOR_HOST", "STEERING_BUCKET_NAME", "TRAINER_GCS_DEADLINE",
        "GOOGLE_CLOUD_PROJECT")})
    r = run_script(training_car, TRAIN, "-f", "-m", "pilot-x", "-o",
                   "gs://robocar-test/models", env=env, at="publish:put:TERM")
    line = stopped(r, TRAIN, "TERM")
    assert "nothing was published; the trained model is kept in " in line
    assert gcs.names("models/") == sorted(f"models/pilot-x{s}" for s in OUTPUTS)
    for suffix in OUTPUTS:
        assert gcs.read(f"models/pilot-x{suffix}") == b"last week's " + suffix.encode()
    shutil.rmtree(tmp_path / "tmp" / "robocar-kept-pilot-x")
    empty_tmpdir(tmp_path)
