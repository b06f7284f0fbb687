"""download_models.sh against a real storage emulator, run as a user would;
also its warning when the model's DonkeyCar generation is not the one here;
its hardening rows (tests/hardening.py) at the end."""
import hashlib
import json
import os
import pty
import signal
import subprocess
import threading
import time

import pytest
from faultproxy import FaultProxy
from fixtures_gcs import free_port
from hardening import (
    NO_BUCKET_VAR,
    NO_SUCH_BUCKET,
    Row,
    bucket,
    ctrl_c_as_in_a_terminal,
    has_bytes,
    interrupted,
    row_ids,
    wait_until,
)
from helpers import ROOT, one_line_error, script_env

from trainer.core.bucket import OUTPUTS
from trainer.core.generations import GENERATIONS, local

GENERATION = local()

FILES = sorted(f"pilot-wip{suffix}" for suffix in OUTPUTS)


@pytest.fixture
def models(gcs):
    """The bucket's models/: pilot-wip's seven files (the card naming the
    others), and two other models whose names start alike."""
    content = {name: os.urandom(50_000) for name in FILES if not name.endswith(".json")}
    content["pilot-wip.json"] = put_model(gcs, "pilot-wip", content)
    put_model(gcs, "pilot-old", {"pilot-old.h5": b"old"})
    gcs.put("models/pilot-wip-2.h5", b"another model")
    return content


def put_model(gcs, name, files, **card):
    """FILES ({file name: bytes}) in models/, then NAME's card naming them;
    returns the card's bytes."""
    for file, data in files.items():
        gcs.put(f"models/{file}", data)
    card = json.dumps({"name": name, **card, "files": {
        f: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)}
        for f, d in files.items()}}).encode()
    gcs.put(f"models/{name}.json", card)
    return card


def listing(folder):
    """name -> (bytes, mtime_ns, inode) of every entry, hidden ones included."""
    return {f: ((folder / f).read_bytes(), (folder / f).stat().st_mtime_ns,
                (folder / f).stat().st_ino) for f in sorted(os.listdir(folder))}


def test_download_verifies_keeps_refuses_and_restores(tmp_path, run, gcs, models):
    here = tmp_path / "laptop"
    here.mkdir()
    r = run("download_models.sh", "-m", "pilot-wip", cwd=here, env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""                        # no progress bar off a terminal
    assert sorted(os.listdir(here / "models")) == FILES      # pilot-wip-2 not taken
    for name in FILES:
        assert (here / "models" / name).read_bytes() == gcs.read(f"models/{name}")
    before = listing(here / "models")

    r = run("download_models.sh", "-m", "pilot-wip", cwd=here, env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert listing(here / "models") == before    # not even rewritten
    assert f"{len(FILES)} already identical" in r.stdout

    tampered = b"edited by hand"
    (here / "models" / "pilot-wip.h5").write_bytes(tampered)
    r = run("download_models.sh", "-m", "pilot-wip", cwd=here, env=gcs.env)
    assert r.returncode == 1
    line = one_line_error(r)
    assert line.startswith("download_models.sh: ") and "pilot-wip.h5" in line
    assert "-f" in line
    assert (here / "models" / "pilot-wip.h5").read_bytes() == tampered   # kept
    assert sorted(os.listdir(here / "models")) == FILES                  # nothing else

    r = run("download_models.sh", "-m", "pilot-wip", "-f", cwd=here, env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert (here / "models" / "pilot-wip.h5").read_bytes() == models["pilot-wip.h5"]
    after = listing(here / "models")
    assert {k: v for k, v in after.items() if k != "pilot-wip.h5"} == \
        {k: v for k, v in before.items() if k != "pilot-wip.h5"}


@pytest.fixture
def empty(tmp_path):
    """An empty folder to run in."""
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_an_unknown_model_lists_what_is_there_and_leaves_no_file(empty, run, gcs,
                                                                 models):
    r = run("download_models.sh", "-m", "pilot-typo", cwd=empty, env=gcs.env)
    assert r.returncode == 1
    line = one_line_error(r)
    assert "pilot-typo" in line
    assert "pilot-old, pilot-wip, pilot-wip-2" in line
    assert os.listdir(empty) == []


def test_an_empty_models_folder_says_so(empty, run, gcs):
    r = run("download_models.sh", cwd=empty, env=gcs.env)
    assert r.returncode == 1
    assert "holds no models yet" in one_line_error(r)
    assert os.listdir(empty) == []


def test_another_folder_with_d(tmp_path, run, gcs, models):
    r = run("download_models.sh", "-m", "pilot-old", "-d", "car/models", cwd=tmp_path,
            env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "car" / "models")) == ["pilot-old.h5",
                                                                "pilot-old.json"]


def put_big_model(gcs):
    """models/big.h5 (4 MiB) in the bucket, with a card naming it."""
    put_model(gcs, "big", {"big.h5": os.urandom(4 << 20)})


def well_into_the_body(models):
    """The temporary file of big.h5 under MODELS holds a quarter of it."""
    return has_bytes(models, "**/.big.h5*", at_least=1 << 20)


def test_ctrl_c_during_a_download_leaves_no_partial_file(tmp_path, gcs):
    put_big_model(gcs)
    with FaultProxy(gcs.url, every=0, cut_every=0, throttle=0.05) as slow:
        env = {**gcs.env, "STORAGE_EMULATOR_HOST": slow.url}
        proc = subprocess.Popen([os.path.join(ROOT, "download_models.sh"), "-m", "big"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=ctrl_c_as_in_a_terminal)
        folder = tmp_path / "models"
        try:
            wait_until(lambda: well_into_the_body(folder),
                       "the download's temporary file held 1 MiB", proc, timeout=30)
            os.killpg(proc.pid, signal.SIGINT)          # what Ctrl-C in a terminal does
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == []    # no partial file


def test_a_progress_bar_only_on_a_terminal(tmp_path, gcs):
    put_model(gcs, "big", {"big.h5": os.urandom(3 << 20)})
    master, slave = pty.openpty()
    shown = []

    def read_terminal():          # as the terminal would, while the command runs
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:       # EIO: nothing writes to the terminal any more
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        proc = subprocess.run([os.path.join(ROOT, "download_models.sh"), "-m", "big"],
                              cwd=tmp_path, env=gcs.env, stdout=subprocess.PIPE,
                              stderr=slave, text=True, timeout=60)
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    shown = b"".join(shown)
    assert proc.returncode == 0
    assert b"big.h5:" in shown and b"%|" in shown and b"3.00M" in shown   # a tqdm bar
    assert "downloaded" in proc.stdout


def test_missing_variable_missing_bucket_dead_endpoint(empty, run, gcs):
    env = dict(gcs.env)
    del env["STEERING_BUCKET_NAME"]
    r = run("download_models.sh", cwd=empty, env=env)
    assert r.returncode == 1
    assert "export STEERING_BUCKET_NAME=my-robocar-bucket" in one_line_error(r)

    r = run("download_models.sh", cwd=empty,
            env={**gcs.env, "STEERING_BUCKET_NAME": "no-such"})
    assert r.returncode == 1
    assert "bucket gs://no-such does not exist" in one_line_error(r)

    start = time.monotonic()
    r = run("download_models.sh", cwd=empty,
            env={**gcs.env, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}",
                 "TRAINER_GCS_DEADLINE": "3"})
    assert r.returncode == 1
    assert "cannot reach" in one_line_error(r)
    assert time.monotonic() - start < 3 + 10

    env = {k: v for k, v in gcs.env.items() if k != "STORAGE_EMULATOR_HOST"}
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(empty / "no-key.json")
    r = run("download_models.sh", cwd=empty, env=env)      # the real service, no key
    assert r.returncode == 1
    assert "GOOGLE_APPLICATION_CREDENTIALS=" in one_line_error(r)
    assert os.listdir(empty) == []


def card(generation):
    """A model card as trainer.task writes it, as far as versions and files go."""
    return json.dumps({"name": "pilot-wip", "versions": {
        "donkeycar": generation + ".0", "donkeycar_generation": generation,
        "tensorflow": "2.15.1" if generation == "5.3" else "2.19.0"},
        "files": {"pilot-wip.h5": {"sha256": hashlib.sha256(b"a model").hexdigest(),
                                   "bytes": 7}}}).encode()


def test_a_model_of_another_generation_comes_with_a_warning(empty, run, gcs, tmp_path):
    """Done-when 4 of issue 8: a model of the other generation is downloaded,
    with one warning saying which and what to do; the same generation, or no
    DonkeyCar here, downloads quietly."""
    other = next(g for g in GENERATIONS if g != GENERATION)
    gcs.put("models/pilot-wip.h5", b"a model")
    gcs.put("models/pilot-wip.json", card(other))
    r = run("download_models.sh", cwd=empty, env=gcs.env)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(empty / "models")) == ["pilot-wip.h5", "pilot-wip.json"]
    assert r.stderr.splitlines() == [
        f"download_models.sh: warning: pilot-wip was trained with DonkeyCar {other}, but "
        f"this machine has DonkeyCar {GENERATION}, which may fail to load it: train it "
        f"for {GENERATION} with submit_cloud_train.sh -d {GENERATION} (or local_train.sh "
        f"here), or install DonkeyCar {other} (pip install 'donkeycar[pi]=={other}.*' "
        "on the car)"]
    r = run("download_models.sh", cwd=empty, env=gcs.env)      # already here: still said
    assert r.returncode == 0 and "warning: pilot-wip was trained with" in r.stderr

    stub = tmp_path / "no-donkeycar" / "donkeycar"       # a machine without DonkeyCar
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError(\"No module named 'donkeycar'\")\n")
    r = run("download_models.sh", cwd=empty, env={**gcs.env, "PYTHONPATH": str(stub.parent)})
    assert r.returncode == 0 and r.stderr == ""

    gcs.put("models/pilot-wip.json", card(GENERATION))
    r = run("download_models.sh", "-f", cwd=empty, env=gcs.env)
    assert r.returncode == 0 and r.stderr == ""
    assert (empty / "models" / "pilot-wip.json").read_bytes() == card(GENERATION)


def test_usage(run):
    """Its own flags (every script's usage errors: test_scripts.py)."""
    r = run("download_models.sh", "-h", env=script_env())
    assert r.returncode == 0
    assert "Usage: download_models.sh [-m BASENAME] [-d DIR] [-F FORMAT] [-f]" in r.stdout


# -- hardening rows (tests/hardening.py) ---------------------------------------------

def bucket_with_model(ctx):
    put_model(ctx.use_gcs(), "pilot-wip", {"pilot-wip.h5": b"the bucket's model"})


def local_model_differs(ctx):
    bucket_with_model(ctx)
    (ctx.car / "models" / "pilot-wip.h5").write_bytes(b"my own model")


def slow_big_model(ctx):
    """models/big.h5 (4 MiB) in the bucket, served in 64 KiB pieces 50 ms apart."""
    gcs = ctx.use_gcs()
    put_big_model(gcs)
    proxy = FaultProxy(gcs.url, every=0, cut_every=0, throttle=0.05).start()
    ctx.finally_(proxy.stop)
    ctx.env["STORAGE_EMULATOR_HOST"] = proxy.url


def downloading(ctx):
    """The download's temporary file (.big.h5.XXXX) is well into the body."""
    return well_into_the_body(ctx.car / "models")


ROWS = [
    Row("download:no-bucket-variable", None, ("download_models.sh",), 1, NO_BUCKET_VAR),
    Row("download:bucket-does-not-exist", bucket, ("download_models.sh",), 1,
        NO_SUCH_BUCKET, env={"STEERING_BUCKET_NAME": "no-such-bucket"}),
    Row("download:storage-unreachable", bucket, ("download_models.sh",), 1,
        r"could not .*: cannot reach http://127\.0\.0\.1:\d+ \(connection refused\) "
        r"after 3s of retries: check the network and STORAGE_EMULATOR_HOST$",
        env={"STORAGE_EMULATOR_HOST": "{dead}", "TRAINER_GCS_DEADLINE": "3"}),
    Row("download:unknown-model", bucket_with_model,
        ("download_models.sh", "-m", "pilot-typo"), 1,
        r"no model pilot-typo in gs://robocar-test/models/: it holds pilot-wip; pass one "
        r"of them with -m$"),
    Row("download:local-model-differs-without-f", local_model_differs,
        ("download_models.sh",), 1,
        r"(\./)?models/pilot-wip\.h5 differs from gs://robocar-test/models/pilot-wip\.h5: "
        r"pass -f to replace the local files with the bucket's$"),
    Row("download:ctrl-c-while-downloading", slow_big_model,
        ("download_models.sh", "-m", "big"), 130,
        interrupted("download_models.sh"), interrupt=downloading),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)
