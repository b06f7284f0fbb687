"""What the suite trains once per session, for the tests that only read what
came out (conftest.py's session fixtures `trained` and `cloud_trained`):

- train: a 300-record synthetic tub archived, the archive restored by
  deflate_tub_archive.sh into a new car folder, archived there again and
  trained there by `local_train.sh -c MAX_EPOCHS=4` with W&B tracking
  offline (four epochs on 300 records: its verdict is "better" with a wide
  margin, 2.3x-3.1x measured, so the car's check takes it). One real model
  (its seven files) for publishing, downloading and the car's check; its
  W&B run for the tracking tests; its log, piped as in the cloud, for the
  log test and the verdict's; and the proof that a restored car trains.
- cloud_train: `submit_cloud_train.sh -g none -w` through the Vertex
  stand-in against the GCS emulator, the worker started once more after it
  published (as Vertex AI does after a maintenance event or a preemption).
  What the tests of its parts read: the script's result, the car folder,
  the stand-in's requests and jobs, and the bucket as the run left it.

    def test_x(trained, cloud_trained):
        trained.models / "pilot-wip.h5"     # the seven files (bucket.OUTPUTS)
        trained.result.stdout               # local_train.sh's log
        copy_model(trained, car)            # its files in CAR/models
        cloud_trained.bucket.names("models/")
"""
import fcntl
import os
import pickle
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from helpers import ROOT, car_from_template, script_env, wandb_env, write_synth_tub

from trainer.core.bucket import OUTPUTS

NAME = "pilot-wip"
EPOCHS = 4                  # a verdict of "better" (the car's check takes it); the log and
                            # the W&B run show more than one epoch


@dataclass
class Trained:
    origin: Path            # the car folder the tub was recorded in (wip.tgz)
    restored: object        # deflate_tub_archive.sh's CompletedProcess
    car: Path               # the car folder deflate_tub_archive.sh restored; trained there
    result: object          # local_train.sh's CompletedProcess
    base: Path              # the folder of both cars and W&B's folders
    run_dir: Path           # the W&B offline run

    @property
    def models(self):
        return self.car / "models"


def copy_model(trained, car):
    """The trained model's files (those published) copied into CAR's models/,
    as rsync or a USB stick would bring them; that folder."""
    models = car / "models"
    models.mkdir(exist_ok=True)
    for suffix in OUTPUTS:
        if (trained.models / f"{NAME}{suffix}").exists():     # a variant may be withheld
            shutil.copy(trained.models / f"{NAME}{suffix}", models)
    return models


def once(tmp_path_factory, name, make):
    """make(folder): once per test run, also when pytest-xdist splits it
    between processes: the first to ask makes it in a new folder, the others
    wait for it and read what it made (pickled beside it)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):       # the workers' common folder
        root = root.parent
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = root / f"{name}.pickle"
        if made.exists():
            return pickle.loads(made.read_bytes())
        folder = root / name
        folder.mkdir()
        value = make(folder)
        made.write_bytes(pickle.dumps(value))
        return value


def _run(cmd, cwd, env, timeout=1200):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{cmd}: {r.stdout[-3000:]}{r.stderr[-3000:]}"
    return r


def train(base, car_template):
    """The local training, in BASE (an empty folder)."""
    origin = car_from_template(car_template, base / "mycar")
    shutil.rmtree(origin / "data")
    write_synth_tub(origin / "data", records=300)
    env = wandb_env(base)
    _run(["./make_tub_archive.sh"], origin, env)
    # "mycar" in both paths: the tracking tests look for W&B's files outside them
    car = base / "restored" / "mycar"
    restored = _run(["./deflate_tub_archive.sh", "-a", "wip.tgz", "-d", str(car)], origin, env)
    # the scripts from the toolkit's folder: the archive brings no links
    _run([os.path.join(ROOT, "make_tub_archive.sh")], car, env)
    result = _run([os.path.join(ROOT, "local_train.sh"), "-c", f"MAX_EPOCHS={EPOCHS}"], car,
                  env)
    runs = base / "wandb_dir" / "wandb"
    [run_dir] = [runs / d for d in os.listdir(runs) if d.startswith("offline-run-")]
    return Trained(origin, restored, car, result, base, run_dir)


# -- the cloud happy path ----------------------------------------------------------------

class Bucket:
    """The bucket's objects as a run left them ({name: bytes}, and the md5 the
    emulator stored for each): what the `gcs` fixture answers, after the
    fixture has wiped the bucket for the next test."""

    def __init__(self, gcs):
        self.objects = {name: gcs.read(name) for name in gcs.names()}
        self._md5 = {name: gcs.md5(name) for name in self.objects}

    def names(self, prefix=""):
        return sorted(n for n in self.objects if n.startswith(prefix))

    def read(self, name):
        return self.objects[name]

    def md5(self, name):
        return self._md5.get(name)


@dataclass
class CloudTrained:
    car: Path               # the car folder it ran from: wip.tgz, models/ brought home
    result: object          # submit_cloud_train.sh's CompletedProcess
    vertex: object          # what the stand-in saw: .requests, .jobs, .restarts
    bucket: Bucket          # the bucket after the run


def cloud_train(base, car_template, gcs):
    """The cloud run from a car folder in BASE (empty), against GCS (a
    fixtures_gcs.Gcs with an empty bucket)."""
    from vertex_standin import VertexStandin, cloud_env
    car = car_from_template(car_template, base / "mycar")
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=200)
    _run(["./make_tub_archive.sh"], car, script_env())
    with VertexStandin(gcs.url) as vertex:
        vertex.restarts = 1             # the worker starts again after it published
        vertex.late = {r"^TensorFlow sees ": 2.0}   # Cloud Logging delivers it late
        env = cloud_env(gcs.env, vertex.url, base / "gcloud")
        r = subprocess.run(["./submit_cloud_train.sh", "-g", "none", "-w"], cwd=car, env=env,
                           capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    seen = SimpleNamespace(requests=vertex.requests, jobs=vertex.jobs, restarts=vertex.restarts)
    return CloudTrained(car, r, seen, Bucket(gcs))
