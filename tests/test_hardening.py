"""The hardening sweep (issue 6): every script against bad input, faults and
interruptions, as one table. Each row runs a real script from a car folder
made by `donkey createcar` and checks what a user would see and keep:

- the exit code: 0, 1 for any failure, 2 for a usage error, 130 after Ctrl-C
  (the shell's own code for an interrupted command, as download_models.sh
  already answers it);
- the message: a failure ends with exactly one line `SCRIPT: ...` matching
  the row's pattern, preceded by nothing, or by exactly as many
  `SCRIPT: warning: ...` lines as the row allows; a usage error is that one
  line followed by the usage and a pointer to -h (DESIGN.md: "exits 2 with
  the usage on stderr"); never a traceback;
- nothing lost or left behind: everything under the test's folder (the car
  with its tubs, configs, archives and models, any other folder the row
  uses, and the TMPDIR the scripts get) is byte-for-byte the same
  afterwards, except the paths the row names;
- an answer within 3 minutes.

Rows that would train fail before training. Cases not built here, and why:

- A black-holed endpoint (packets dropped, not refused) needs control of the
  network, which a test cannot take here; the rows use a dead port on
  127.0.0.1, which is refused at once. For Cloud Storage the bound is
  TRAINER_GCS_DEADLINE of retries plus the 10 s connect timeout
  (trainer/gcs.py; the upload row retries for the gcs fixture's 30 s, the
  download row for 3 s to keep the table short); the Vertex client has no
  knob of its own: httplib2's 60 s socket timeout, and a job is created
  without retries (trainer/cloud.py, vertex.py).
- The disk-full row needs `mount -t tmpfs` (root, or a container allowed to
  mount); where mounting is refused the row is skipped with that reason.
- Ctrl-C during training itself is not a row: it would cost a training run,
  and the job's outputs are written only after training, atomically.
- JOB_DIR is optional by design (default gs://$STEERING_BUCKET_NAME/job,
  DESIGN.md and submit_cloud_train.sh -h): its row checks that default in a
  dry run's job; a JOB_DIR that is not a gs:// URI is the failing row.
"""
import functools
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest
from conftest import ROOT, SCRIPTS, script_env, tar_bytes, write_synth_tub
from faultproxy import FaultProxy
from fixtures_gcs import DEADLINE as GCS_DEADLINE
from fixtures_gcs import free_port
from test_archive import _corrupt_line, _disagree, _empty, _missing_images
from vertex_standin import CLOSED, cloud_env

LIMIT = 180            # s: every row must answer within 3 minutes
# Variables a user may have exported; each row starts without them.
CLOUD_VARS = ("STEERING_BUCKET_NAME", "REGION", "JOB_DIR", "TRAINER_IMAGE",
              "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
              "STORAGE_EMULATOR_HOST", "TRAINER_GCS_DEADLINE", "CLOUDSDK_CORE_PROJECT",
              "CLOUDSDK_CONFIG", "CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM",
              "CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING")
NOT_WATCHED = {"gcloud"}    # gcloud's own configuration folder (CLOUDSDK_CONFIG)


# -- the stock inputs, made once per session -----------------------------------

class Stock:
    """Tubs, archives and a model the rows copy from."""

    def __init__(self, root, template):
        self.root, self.template = Path(root), Path(template)

    @functools.cached_property
    def tub(self):                       # 200 records, 160x120 as the config says
        return Path(write_synth_tub(self.root / "tub", records=200))

    @functools.cached_property
    def big_tub(self):                   # big enough to be interrupted mid-way
        return Path(write_synth_tub(self.root / "big", records=2000))

    @functools.cached_property
    def small_frames_tub(self):
        return Path(write_synth_tub(self.root / "small-frames", records=60, size="80x60"))

    @functools.cached_property
    def v1_tub(self):
        from test_legacy import write_v1_tub
        return Path(write_v1_tub(self.root / "v1", records=50))

    @functools.cached_property
    def archive(self):
        return self._archive(self.tub, "wip")

    @functools.cached_property
    def big_archive(self):
        return self._archive(self.big_tub, "big")

    @functools.cached_property
    def small_model(self):
        """A real DonkeyCar linear model taking 128x96 frames (untrained)."""
        from test_movie import save_model
        with warnings.catch_warnings():     # Keras calls .h5 legacy; DonkeyCar writes it
            warnings.simplefilter("ignore", UserWarning)
            return Path(save_model(self.root / "small.h5", width=128, height=96))

    def _archive(self, tub, name):
        from trainer.archive import build_archive
        car = self.root / f"car-{name}"
        shutil.copytree(self.template, car, symlinks=True)
        shutil.rmtree(car / "data")
        shutil.copytree(tub, car / "data")
        return Path(build_archive(str(car), ["data"], name, say=lambda *a: None,
                                  warn=lambda *a: None))


@pytest.fixture(scope="session")
def stock(tmp_path_factory, car_template):
    return Stock(tmp_path_factory.mktemp("stock"), car_template)


# -- what a row's setup gets ----------------------------------------------------

@dataclass
class Ctx:
    car: Path
    tmp: Path                # the test's folder: the car and every other path a row uses
    stock: Stock
    request: object
    env: dict
    cwd: Optional[Path] = None
    gcs: object = None

    def use_gcs(self):
        """The storage emulator with an empty bucket robocar-test."""
        if self.gcs is None:
            self.gcs = self.request.getfixturevalue("gcs")
            for key in ("STORAGE_EMULATOR_HOST", "STEERING_BUCKET_NAME",
                        "GOOGLE_CLOUD_PROJECT", "TRAINER_GCS_DEADLINE"):
                self.env[key] = self.gcs.env[key]
        return self.gcs

    def use_cloud(self, aiplatform=CLOSED):
        """What a user exports for Vertex AI; the API at AIPLATFORM (by default
        a closed port: these rows must fail before sending anything)."""
        self.env.setdefault("STEERING_BUCKET_NAME", "robocar-test")
        self.env.setdefault("STORAGE_EMULATOR_HOST", CLOSED)
        self.env.setdefault("TRAINER_GCS_DEADLINE", "3")
        self.env = cloud_env(self.env, aiplatform, self.tmp / "gcloud")

    def finally_(self, fn):
        self.request.addfinalizer(fn)


@dataclass
class Row:
    id: str
    setup: Optional[Callable]       # setup(ctx): damage or prepare the car / environment
    cmd: tuple                      # (script, *args); args may use {tmp} and {car}
    code: int                       # expected exit status
    err: Optional[str]              # pattern of the last stderr line; None: stderr empty
    out: Optional[str] = None       # pattern searched in stdout
    env: dict = field(default_factory=dict)   # overrides ({dead}: a closed port); None unsets
    changes: tuple = ()             # paths (from the car) the command may create or change
    warnings: Optional[int] = 0     # warning lines allowed before; None: free-form notes
    interrupt: Optional[Callable] = None      # ready(ctx): then Ctrl-C the process group
    then: Optional[Callable] = None           # then(ctx, result): any further check


# -- setups ---------------------------------------------------------------------

def tub(ctx, which="tub"):
    """car/data as a copy of the stock tub WHICH."""
    shutil.rmtree(ctx.car / "data")
    shutil.copytree(getattr(ctx.stock, which), ctx.car / "data")
    return ctx.car / "data"


def with_tub(which="tub", damage=None):
    def setup(ctx):
        path = tub(ctx, which)
        if damage:
            damage(path)
    return setup


def elsewhere(ctx):
    """Run from a folder that is not a car folder."""
    ctx.cwd = ctx.tmp / "elsewhere"
    ctx.cwd.mkdir()


def secrets(ctx):
    data = tub(ctx)
    (data / ".env").write_text("API_KEY=x\n")
    (data / "car.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (data / "sa.json").write_text(json.dumps(
        {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----"}))


def broken_myconfig(ctx):
    tub(ctx)
    with open(ctx.car / "myconfig.py", "a") as f:
        f.write("\nMAX_EPOCHS = (\n")


def precious_archive(ctx):
    tub(ctx)
    (ctx.car / "wip.tgz").write_bytes(b"precious")


CONFIG = ({"name": "config.py"}, b"IMAGE_W = 160\n")
UNSAFE = {      # each after a harmless config.py; ctx -> (attributes, data)
    # absolute into the test's folder: had it been written, the tree check sees it
    "absolute": lambda ctx: ({"name": f"{ctx.tmp}/escaped-absolute.txt"}, b"x"),
    "dotdot": lambda ctx: ({"name": "data/../../../escaped.txt"}, b"x"),
    "symlink": lambda ctx: ({"name": "data/link", "type": tarfile.SYMTYPE,
                             "linkname": "/etc/passwd"}, None),
    "hardlink": lambda ctx: ({"name": "data/hard", "type": tarfile.LNKTYPE,
                              "linkname": "config.py"}, None),
    "device": lambda ctx: ({"name": "data/dev", "type": tarfile.CHRTYPE,
                            "devmajor": 1, "devminor": 3}, None),
}
BAD_ARCHIVES = {    # ctx -> bytes of wip.tgz
    "truncated": lambda ctx: ctx.stock.archive.read_bytes()[
        : ctx.stock.archive.stat().st_size // 2],
    "not-gzip": lambda ctx: b"just some text\n" * 100,
    "no-config": lambda ctx: tar_bytes([({"name": "data/manifest.json"}, b"[]\n")]),
    **{f"{kind}-member": (lambda make: lambda ctx: tar_bytes([CONFIG, make(ctx)]))(make)
       for kind, make in UNSAFE.items()},
}
ARCHIVE_SAYS = {
    "truncated": r"archive wip\.tgz is truncated \(.+\): make it again with "
                 r"make_tub_archive\.sh, or copy it again$",
    "not-gzip": r"archive wip\.tgz is damaged or not a gzip tar \(.+\): make it again",
    "no-config": r"wip\.tgz has no config\.py at its root: make it with "
                 r"make_tub_archive\.sh from your car folder$",
    **{f"{kind}-member": r"archive wip\.tgz is unsafe \(.+\); nothing was restored: "
                         r"make it again with make_tub_archive\.sh$" for kind in UNSAFE},
}


def bad_archive(kind):
    def setup(ctx):
        (ctx.car / "wip.tgz").write_bytes(BAD_ARCHIVES[kind](ctx))
    return setup


def good_archive(ctx):
    shutil.copy(ctx.stock.archive, ctx.car / "wip.tgz")


def big_archive(ctx):
    shutil.copy(ctx.stock.big_archive, ctx.car / "big.tgz")


def a_tub_in_the_way(ctx):
    good_archive(ctx)
    shutil.copytree(ctx.stock.tub, ctx.tmp / "other" / "data")


def trained_model_exists(ctx):
    good_archive(ctx)
    (ctx.car / "models" / "pilot-wip.h5").write_bytes(b"my best model so far")


def small_transfer_model(ctx):
    good_archive(ctx)
    shutil.copy(ctx.stock.small_model, ctx.car / "models" / "small.h5")


def tiny_disk(ctx):
    """A 2 MiB filesystem at {tmp}/tiny: the archive (about 6 MB) cannot fit."""
    tub(ctx, "big_tub")
    tiny = ctx.tmp / "tiny"
    tiny.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(tiny)],
                       capture_output=True, text=True)
    if r.returncode:
        reason = (f"cannot mount a small tmpfs here ({r.stderr.strip()}): the "
                  "disk-full row needs root or a container allowed to mount")
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must run it")
        pytest.skip(reason)
    ctx.finally_(lambda: subprocess.run(["umount", str(tiny)], check=True))


def gzip_archive(ctx):
    (ctx.car / "wip.tgz").write_bytes(gzip.compress(b"an archive, as far as gzip goes"))


def bucket_archive_differs(ctx):
    ctx.use_gcs().put("training/wip.tgz", gzip.compress(b"last week's laps"))
    (ctx.car / "wip.tgz").write_bytes(gzip.compress(b"this week's laps"))


def bucket(ctx):
    ctx.use_gcs()


def bucket_with_model(ctx):
    gcs = ctx.use_gcs()
    gcs.put("models/pilot-wip.h5", b"the bucket's model")
    gcs.put("models/pilot-wip.json", b"{}")


def local_model_differs(ctx):
    bucket_with_model(ctx)
    (ctx.car / "models" / "pilot-wip.h5").write_bytes(b"my own model")


def slow_big_model(ctx):
    """models/big.h5 (4 MiB) in the bucket, served in 64 KiB pieces 50 ms apart."""
    gcs = ctx.use_gcs()
    gcs.put("models/big.h5", os.urandom(4 << 20))
    proxy = FaultProxy(gcs.url, every=0, cut_every=0, throttle=0.05).start()
    ctx.finally_(proxy.stop)
    ctx.env["STORAGE_EMULATOR_HOST"] = proxy.url


def steps(*setups):
    def setup(ctx):
        for one in setups:
            one(ctx)
    return setup


def cloud(*more):
    return steps(*more, Ctx.use_cloud)


def cloud_with_dead_vertex(ctx):
    gzip_archive(ctx)
    ctx.use_gcs()
    ctx.use_cloud(aiplatform=f"http://127.0.0.1:{free_port()}/")


# -- Ctrl-C moments ---------------------------------------------------------------

def _has_bytes(folder, pattern):
    """A file matching PATTERN in FOLDER has been written to."""
    try:
        return any(p.is_file() and p.stat().st_size > 0 for p in folder.glob(pattern))
    except FileNotFoundError:          # it went away between glob and stat
        return False


def writing_archive(ctx):
    """The archive's temporary file (.wip.tgz.XXXX) has bytes in it."""
    return _has_bytes(ctx.car, ".wip.tgz.*")


def extracting(ctx):
    """Frames are arriving in the staging folder of the restore."""
    for images in (ctx.tmp / "restored").glob(".deflate-*/data/images"):
        with os.scandir(images) as it:
            if any(True for _ in it):
                return True
    return False


def train_extracting(ctx):
    """Frames are arriving in the training job's folder (in $TMPDIR), where its
    extraction process writes them while TensorFlow starts."""
    for images in (ctx.tmp / "tmp").glob("robocar-train-*/archive-0/data/images"):
        with os.scandir(images) as it:
            if any(True for _ in it):
                return True
    return False


def downloading(ctx):
    """The download's temporary file (.big.h5.XXXX) is being written."""
    if _has_bytes(ctx.car / "models", ".big.h5.*"):
        time.sleep(0.3)                        # well into the body
        return True
    return False


# -- checks after the run -----------------------------------------------------------

def members(path):
    with tarfile.open(path) as tar:
        return tar.getnames()


def secrets_skipped(ctx, r):
    names = members(ctx.car / "wip.tgz")
    for secret in (".env", "car.pem", "sa.json"):
        assert f"data/{secret}" not in names
        assert f"skipped data/{secret}: it looks like a secret" in r.stderr
    assert "data/manifest.json" in names


def archive_made(ctx, r):
    assert "data/manifest.json" in members(ctx.car / "wip.tgz")


# -- the table ---------------------------------------------------------------------

# The first flag of each script that takes a value.
VALUE_FLAG = {"build_image.sh": "t", "deflate_tub_archive.sh": "a",
              "download_models.sh": "m", "local_makemovie.sh": "m",
              "local_train.sh": "a", "make_tub_archive.sh": "t",
              "submit_cloud_makemovie.sh": "m", "submit_cloud_train.sh": "a",
              "upload_tub_archive.sh": "a"}
INTERRUPTED = r"^{}: interrupted; nothing half-written was left behind$"
NO_BUCKET_VAR = (r"STEERING_BUCKET_NAME is not set: export the bucket's name, e\.g\. "
                 r"export STEERING_BUCKET_NAME=my-robocar-bucket$")
NO_SUCH_BUCKET = (r"bucket gs://no-such-bucket does not exist: check the name "
                  r"\(STEERING_BUCKET_NAME, or the gs:// URI given\), or create it")
R = Row
ROWS = [
    # every script: help, an unknown flag, a flag without its value
    *[R(f"{s}:-h", None, (s, "-h"), 0, None, out=rf"^Usage: {re.escape(s)} ")
      for s in SCRIPTS],
    *[R(f"{s}:unknown-flag", None, (s, "-Z"), 2, r"unknown flag -Z$") for s in SCRIPTS],
    *[R(f"{s}:-{f}-without-value", None, (s, f"-{f}"), 2, rf"-{f} needs a value$")
      for s, f in VALUE_FLAG.items()],

    # make_tub_archive.sh: the car folder and its tubs
    R("make:outside-a-car-folder", elsewhere, ("make_tub_archive.sh",), 1,
      r"no config\.py in \S+/elsewhere: run this from your car folder \(made by "
      r"'donkey createcar'\), e\.g\. cd ~/mycar$"),
    R("make:tub-path-missing", with_tub(), ("make_tub_archive.sh", "-t", "nowhere"), 1,
      r"tub nowhere does not exist: record some laps first, or name your tub with "
      r"-t PATH$"),
    R("make:tub-without-manifest",
      with_tub(damage=lambda t: os.remove(t / "manifest.json")), ("make_tub_archive.sh",),
      1, r"tub data has no manifest\.json: it is not a DonkeyCar tub, or it was copied "
         r"incompletely; copy it again from the car$"),
    R("make:corrupt-catalog-line", with_tub(damage=_corrupt_line),
      ("make_tub_archive.sh",), 1,
      r"tub data: catalog_0\.catalog line 6 is not a valid record \(a corrupt catalog "
      r"line\); delete that line, or copy the tub again from the car$"),
    R("make:catalog-and-manifest-disagree", with_tub(damage=_disagree),
      ("make_tub_archive.sh",), 1,
      r"tub data: manifest\.json counts 240 live records but the catalogs hold 200; "
      r"the tub is damaged: copy it again from the car$"),
    R("make:empty-tub", with_tub(damage=_empty), ("make_tub_archive.sh",), 1,
      r"tub data has no live records: drive a few laps to record some, or leave it out$"),
    R("make:live-records-without-images", with_tub(damage=_missing_images),
      ("make_tub_archive.sh",), 1,
      r"tub data: 3 live records have no image \(first: images/\S+\); mark them "
      r"deleted with 'donkey tubclean', or restore the images$"),
    R("make:frames-of-another-size-warn", with_tub("small_frames_tub"),
      ("make_tub_archive.sh",), 0,
      r"^make_tub_archive\.sh: warning: tub data: frames are 80x60 but the config says "
      r"IMAGE_W=160, IMAGE_H=120; DonkeyCar will resize every frame",
      out=r"^wrote wip\.tgz ", warnings=1, changes=("wip.tgz",), then=archive_made),
    R("make:legacy-tub-v1-converted", with_tub("v1_tub"), ("make_tub_archive.sh",), 0,
      None, out=r"^data: legacy Tub v1, 50 records converted to Tub v2 in the archive "
                r"\(the folder itself is untouched\)$",
      changes=("wip.tgz",), then=archive_made),
    R("make:secrets-never-packed", secrets, ("make_tub_archive.sh",), 0,
      r"^make_tub_archive\.sh: warning: skipped data/sa\.json: it looks like a secret "
      r"\(key or \.env\) and is never packed; keep secrets out of tub folders$",
      warnings=3, changes=("wip.tgz",), then=secrets_skipped),
    R("make:archive-exists-without-f", precious_archive, ("make_tub_archive.sh",), 1,
      r"wip\.tgz already exists: pass -f to replace it, or -a NAME to write another$"),
    R("make:myconfig-does-not-load", broken_myconfig, ("make_tub_archive.sh",), 1,
      r"config\.py or myconfig\.py fails to load \(SyntaxError: .+\); fix it and run "
      r"again$"),
    R("make:ctrl-c-while-writing", with_tub("big_tub"), ("make_tub_archive.sh",), 130,
      INTERRUPTED.format(re.escape("make_tub_archive.sh")), interrupt=writing_archive),
    R("make:disk-fills-up", tiny_disk, ("make_tub_archive.sh", "-a", "{tmp}/tiny/wip"),
      1, r"no space left on the device while writing wip\.tgz; the partial file was "
         r"removed: free some space and run again$"),

    # deflate_tub_archive.sh: archives missing, damaged or unsafe; nothing clobbered
    R("deflate:archive-missing", None, ("deflate_tub_archive.sh",), 1,
      r"archive wip\.tgz not found: make one with \./make_tub_archive\.sh, or pass "
      r"-a PATH$"),
    # into a new folder: it is not left behind either
    R("deflate:truncated", bad_archive("truncated"),
      ("deflate_tub_archive.sh", "-d", "{tmp}/restored/car"), 1,
      ARCHIVE_SAYS["truncated"]),
    *[R(f"deflate:{kind}", bad_archive(kind), ("deflate_tub_archive.sh",), 1,
        ARCHIVE_SAYS[kind]) for kind in BAD_ARCHIVES if kind != "truncated"],
    R("deflate:configs-exist-without-f", good_archive, ("deflate_tub_archive.sh",), 1,
      r"\./config\.py already exists: pass -f to replace it, or -d an empty folder$"),
    R("deflate:tub-exists-without-f", a_tub_in_the_way,
      ("deflate_tub_archive.sh", "-d", "../other"), 1,
      r"\.\./other/data already exists: pass -f to replace it, or -d an empty folder$"),
    R("deflate:ctrl-c-while-extracting", big_archive,
      ("deflate_tub_archive.sh", "-a", "big.tgz", "-d", "{tmp}/restored"), 130,
      INTERRUPTED.format(re.escape("deflate_tub_archive.sh")), interrupt=extracting),

    # local_train.sh: refused before any training
    R("train:archive-missing-outside-a-car-folder", elsewhere, ("local_train.sh",), 1,
      r"archive wip\.tgz not found here, and STEERING_BUCKET_NAME is not set to look in "
      r"gs://BUCKET/training/: check the name, or export "
      r"STEERING_BUCKET_NAME=my-robocar-bucket$"),
    *[R(f"train:{kind}", bad_archive(kind), ("local_train.sh",), 1, ARCHIVE_SAYS[kind])
      for kind in BAD_ARCHIVES],
    # the extraction process is stopped too: nothing is left in $TMPDIR
    R("train:ctrl-c-while-extracting", big_archive, ("local_train.sh", "-a", "big.tgz"),
      130, INTERRUPTED.format(re.escape("local_train.sh")), interrupt=train_extracting),
    R("train:model-exists-without-f", trained_model_exists, ("local_train.sh",), 1,
      r"\./models/pilot-wip\.h5 already exists: pass -f to replace the model, or -m "
      r"NAME to train another$"),
    R("train:unknown-model-type", good_archive, ("local_train.sh", "-t", "nosuch"), 1,
      r"unknown model type nosuch: use one of .*\blinear\b"),
    R("train:transfer-model-missing", good_archive,
      ("local_train.sh", "-T", "models/nothere.h5"), 1,
      r"transfer model models/nothere\.h5 not found: check the path$"),
    R("train:transfer-model-of-another-input-shape", small_transfer_model,
      ("local_train.sh", "-T", "models/small.h5"), 1,
      r"transfer model models/small\.h5 takes 128x96x3 images but the config gives "
      r"160x120x3 \(IMAGE_W x IMAGE_H x IMAGE_DEPTH\): transfer from a model trained on "
      r"this image size, or leave -T out$"),

    # upload_tub_archive.sh: settings, the bucket, the network
    R("upload:no-bucket-variable", gzip_archive, ("upload_tub_archive.sh",), 1,
      NO_BUCKET_VAR),
    R("upload:bucket-does-not-exist", steps(bucket, gzip_archive),
      ("upload_tub_archive.sh",), 1, NO_SUCH_BUCKET,
      env={"STEERING_BUCKET_NAME": "no-such-bucket"}),
    # the gcs fixture's TRAINER_GCS_DEADLINE (30 s) of retries, then one line
    R("upload:storage-unreachable", steps(bucket, gzip_archive),
      ("upload_tub_archive.sh",), 1,
      r"could not .*: cannot reach http://127\.0\.0\.1:\d+ \(connection refused\) after "
      rf"{GCS_DEADLINE}s of retries: check the network and STORAGE_EMULATOR_HOST$",
      env={"STORAGE_EMULATOR_HOST": "{dead}"}),
    R("upload:archive-missing", bucket, ("upload_tub_archive.sh",), 1,
      r"archive wip\.tgz not found: make it with make_tub_archive\.sh, or pass "
      r"-a ARCHIVE$"),
    R("upload:not-gzip", steps(bucket, bad_archive("not-gzip")),
      ("upload_tub_archive.sh",), 1,
      r"wip\.tgz is not a tub archive \(not gzip\): make one with make_tub_archive\.sh$"),
    R("upload:bucket-copy-differs-without-f", bucket_archive_differs,
      ("upload_tub_archive.sh",), 1,
      r"gs://robocar-test/training/wip\.tgz already exists and differs from wip\.tgz: "
      r"pass -f to replace it, or upload under another name$"),

    # download_models.sh
    R("download:no-bucket-variable", None, ("download_models.sh",), 1, NO_BUCKET_VAR),
    R("download:bucket-does-not-exist", bucket, ("download_models.sh",), 1,
      NO_SUCH_BUCKET, env={"STEERING_BUCKET_NAME": "no-such-bucket"}),
    R("download:storage-unreachable", bucket, ("download_models.sh",), 1,
      r"could not .*: cannot reach http://127\.0\.0\.1:\d+ \(connection refused\) after "
      r"3s of retries: check the network and STORAGE_EMULATOR_HOST$",
      env={"STORAGE_EMULATOR_HOST": "{dead}", "TRAINER_GCS_DEADLINE": "3"}),
    R("download:unknown-model", bucket_with_model, ("download_models.sh", "-m",
                                                    "pilot-typo"), 1,
      r"no model pilot-typo in gs://robocar-test/models/: it holds pilot-wip; pass one "
      r"of them with -m$"),
    R("download:local-model-differs-without-f", local_model_differs,
      ("download_models.sh",), 1,
      r"\./models/pilot-wip\.h5 differs from gs://robocar-test/models/pilot-wip\.h5: "
      r"pass -f to replace the local files with the bucket's$"),
    R("download:ctrl-c-while-downloading", slow_big_model,
      ("download_models.sh", "-m", "big"), 130,
      INTERRUPTED.format(re.escape("download_models.sh")), interrupt=downloading),

    # submit_cloud_train.sh (and friends): settings first, nothing sent
    R("submit:no-REGION", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
      r"REGION is not set: export REGION=europe-west1$", env={"REGION": None}),
    R("submit:no-TRAINER_IMAGE", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
      r"TRAINER_IMAGE is not set: export TRAINER_IMAGE=europe-west1-docker\.pkg\.dev/"
      r"my-project/robocar/trainer, the image \./build_image\.sh pushes$",
      env={"TRAINER_IMAGE": None}),
    R("submit:no-bucket-variable", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
      NO_BUCKET_VAR, env={"STEERING_BUCKET_NAME": None}),
    R("submit:no-project", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
      r"no Google Cloud project: export GOOGLE_CLOUD_PROJECT=my-project, or run "
      r"`gcloud config set project my-project`$", env={"GOOGLE_CLOUD_PROJECT": None}),
    # JOB_DIR is optional: unset, the job stages under gs://BUCKET/job/
    R("submit:no-JOB_DIR-means-gs://BUCKET/job", cloud(gzip_archive),
      ("submit_cloud_train.sh", "-n"), 0,
      r"^  gcloud ai custom-jobs create --region europe-west1 ",
      out=r'"outputUriPrefix": "gs://robocar-test/job/pilot-wip-\d{8}-\d{6}/"',
      warnings=None),
    R("submit:JOB_DIR-not-gs", cloud(gzip_archive), ("submit_cloud_train.sh",), 1,
      r"JOB_DIR=/tmp/job is not a gs:// URI: export JOB_DIR=gs://robocar-test/job, or "
      r"unset it$", env={"JOB_DIR": "/tmp/job"}),
    R("submit:unknown-accelerator", cloud(gzip_archive),
      ("submit_cloud_train.sh", "-g", "bogus"), 1,
      r"-g bogus: unknown accelerator BOGUS: use one of .*NVIDIA_TESLA_T4.*, or -g none "
      r"for CPU only$"),
    R("submit:vertex-unreachable", cloud_with_dead_vertex, ("submit_cloud_train.sh",), 1,
      r"creating the Vertex AI job failed: cannot reach 127\.0\.0\.1:\d+ \(.+\): check "
      r"the network, or the CLOUDSDK_API_ENDPOINT_OVERRIDES_\* variables$"),
    R("submit-movie:no-REGION", cloud(), ("submit_cloud_makemovie.sh",), 1,
      r"REGION is not set: export REGION=europe-west1$", env={"REGION": None}),
    R("image:no-TRAINER_IMAGE", None, ("build_image.sh",), 1,
      r"TRAINER_IMAGE is not set: export TRAINER_IMAGE=europe-west1-docker\.pkg\.dev/"
      r"my-project/robocar/trainer, or pass -t IMAGE_URI$"),
]


# -- running a row ------------------------------------------------------------------

def snapshot(root):
    """Every entry under ROOT: files by content, links by target, folders."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in NOT_WATCHED]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            key = os.path.normpath(os.path.join(rel, name))
            if os.path.islink(path):
                out[key] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[key] = ("dir",)
            else:
                with open(path, "rb") as f:
                    out[key] = ("file", hashlib.sha256(f.read()).hexdigest())
    return out


def _ctrl_c_as_in_a_terminal():
    """The child's own process group, with the default SIGINT disposition
    (a test runner started in the background may have it ignored)."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def launch(row, ctx, argv, env):
    cwd = ctx.cwd or ctx.car
    if row.interrupt is None:
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=LIMIT)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err,
                                text=True, preexec_fn=_ctrl_c_as_in_a_terminal)
        try:
            deadline = time.monotonic() + 60
            while not row.interrupt(ctx):
                if proc.poll() is not None:
                    err.seek(0)
                    pytest.fail(f"it ended ({proc.returncode}) before the moment to "
                                f"press Ctrl-C came: {err.read()[-2000:]}")
                assert time.monotonic() < deadline, "the moment for Ctrl-C never came"
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGINT)          # what Ctrl-C in a terminal does
            proc.wait(LIMIT)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read(), err.read())


def check_stderr(row, script, r):
    stderr = r.stderr
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    me = f"{script}: "
    if row.code == 2:                  # the one line, then the usage and a pointer to -h
        assert len(lines) == 3, stderr
        assert lines[0].startswith(me) and re.search(row.err, lines[0]), stderr
        assert lines[1].startswith(f"Usage: {script} ") and \
            lines[2] == f"Run '{script} -h' for help.", stderr
        return
    if row.err is None:
        assert stderr == "", stderr
        return
    assert lines, "expected a message on stderr"
    assert re.search(row.err, lines[-1]), f"last line: {lines[-1]!r}\n{stderr}"
    if row.warnings is None:           # free-form notes (a dry run's gcloud command)
        return
    warnings = lines if row.code == 0 else lines[:-1]
    assert len(warnings) == row.warnings, stderr
    assert all(ln.startswith(me + "warning: ") for ln in warnings), stderr
    if row.code != 0:
        last = lines[-1]
        assert last.startswith(me) and not last.startswith(me + "warning: "), stderr


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_row(row, car, tmp_path, stock, request):
    env = script_env()
    for name in CLOUD_VARS:
        env.pop(name, None)
    env["TMPDIR"] = str(tmp_path / "tmp")      # what the scripts leave there shows
    (tmp_path / "tmp").mkdir()
    ctx = Ctx(car=car, tmp=tmp_path, stock=stock, request=request, env=env)
    if row.setup:
        row.setup(ctx)
    dead = f"http://127.0.0.1:{free_port()}"   # nothing listens there
    for key, value in row.env.items():
        if value is None:
            ctx.env.pop(key, None)
        else:
            ctx.env[key] = value.format(dead=dead, tmp=tmp_path)
    script, *args = row.cmd
    cwd = ctx.cwd or car
    exe = cwd / script if (cwd / script).exists() else Path(ROOT) / script
    argv = [str(exe), *(a.format(tmp=tmp_path, car=car) for a in args)]

    before = snapshot(tmp_path)
    start = time.monotonic()
    r = launch(row, ctx, argv, ctx.env)
    elapsed = time.monotonic() - start

    assert elapsed < LIMIT
    assert r.returncode == row.code, (r.stdout[-2000:], r.stderr[-3000:])
    check_stderr(row, script, r)
    if row.out:
        assert re.search(row.out, r.stdout, re.M), r.stdout[-3000:]
    after = snapshot(tmp_path)
    allowed = [os.path.normpath(os.path.join(car.name, p)) for p in row.changes]
    changed = sorted(k for k in before.keys() | after.keys()
                     if before.get(k) != after.get(k)
                     and not any(k == a or k.startswith(a + os.sep) for a in allowed))
    assert changed == [], f"changed or left behind: {changed[:10]}"
    for path in row.changes:
        assert (car / path).exists(), f"{path} was expected"
    if row.then:
        row.then(ctx, r)
