"""The hardening sweep (issue 6): every script against bad input, faults and
interruptions. Each script's rows live in that script's own test file
(test_archive.py for make_tub_archive.sh, test_train.py for local_train.sh,
...); this module is what they share: the row, the stock inputs, the setups
more than one script uses, and the one runner. Each row runs a real script
from a car folder made by `donkey createcar` and checks what a user would see
and keep:

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
- an answer within 3 minutes, and within 30 s of Ctrl-C. The moment for
  Ctrl-C is a condition polled every 10 ms (a file appears, or grows, in a
  watched folder), never a fixed sleep; the signal goes to the script's
  process group, as a terminal sends it.

A script's test file holds its table and one test over it:

    from hardening import Row, row_ids

    ROWS = [Row("upload:archive-missing", bucket, ("upload_tub_archive.sh",), 1,
                r"archive wip\\.tgz not found: ...$")]

    @pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
    def test_hardening(row, harden):        # harden: conftest.py, runs run_row
        harden(row)

Every script's usage (-h, an unknown flag, an extra argument, a flag
without its value) is checked in test_scripts.py, for all of them at once.
Rows that would train fail before training. Cases not built here, and why:

- A black-holed endpoint (packets dropped, not refused) needs control of the
  network, which a test cannot take here; the rows use a dead port on
  127.0.0.1, which is refused at once. For Cloud Storage the bound is
  TRAINER_GCS_DEADLINE of retries plus the 10 s connect timeout
  (trainer/gcs.py; the upload and download rows retry for 3 s to keep the
  table short; test_storage.py checks that the default deadline answers
  within 3 minutes); the Vertex client has no
  knob of its own: httplib2's 60 s socket timeout, and a job is created
  without retries (trainer/cloud.py, vertex.py).
- The disk-full row needs `mount -t tmpfs` (root, or a container allowed to
  mount); where mounting is refused the row is skipped with that reason
  (failed in CI, which must run it).
- Ctrl-C during training itself is not a row: it would cost a training run,
  and the job's outputs are written only after training, atomically.
- JOB_DIR is optional by design (default gs://$STEERING_BUCKET_NAME/job,
  DESIGN.md and submit_cloud_train.sh -h): its row checks that default in a
  dry run's job; a JOB_DIR that is not a gs:// URI is the failing row.
"""
import functools
import gzip
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest
from fixtures_gcs import free_port
from helpers import ROOT, save_model, script_env, tar_bytes, write_synth_tub, write_v1_tub
from vertex_standin import CLOSED, cloud_env

LIMIT = 180            # s: every row must answer within 3 minutes
CTRL_C_LIMIT = 30      # s: and stop within this long after Ctrl-C
# Variables a user may have exported; each row starts without them.
CLOUD_VARS = ("STEERING_BUCKET_NAME", "REGION", "JOB_DIR", "TRAINER_IMAGE",
              "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
              "STORAGE_EMULATOR_HOST", "TRAINER_GCS_DEADLINE", "CLOUDSDK_CORE_PROJECT",
              "CLOUDSDK_CONFIG", "CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM",
              "CLOUDSDK_API_ENDPOINT_OVERRIDES_LOGGING")
NOT_WATCHED = {"gcloud"}    # gcloud's own configuration folder (CLOUDSDK_CONFIG)


# -- the stock inputs, made once per session (the `stock` fixture) ---------------

class Stock:
    """Tubs, archives and a model the rows copy from, each made on first use."""

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
        return Path(write_v1_tub(self.root / "v1", records=50))

    @functools.cached_property
    def archive(self):
        return self.archive_of(self.tub, "wip")

    @functools.cached_property
    def big_archive(self):
        return self.archive_of(self.big_tub, "big")

    @functools.cached_property
    def small_model(self):
        """A real DonkeyCar linear model taking 128x96 frames (untrained)."""
        with warnings.catch_warnings():     # Keras calls .h5 legacy; DonkeyCar writes it
            warnings.simplefilter("ignore", UserWarning)
            return Path(save_model(self.root / "small.h5", width=128, height=96))

    def archive_of(self, tub, name):
        """NAME.tgz of a car folder holding TUB as data/."""
        from trainer.core.archive import build_archive
        car = self.root / f"car-{name}"
        shutil.copytree(self.template, car, symlinks=True)
        shutil.rmtree(car / "data")
        shutil.copytree(tub, car / "data")
        return Path(build_archive(str(car), ["data"], name, say=lambda *a: None,
                                  warn=lambda *a: None))


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
    changes: tuple = ()             # paths (from the car) the command creates or changes
    leaves: tuple = ()              # paths a library may leave, or not (not the toolkit's)
    warnings: Optional[int] = 0     # warning lines allowed before; None: free-form notes
    interrupt: Optional[Callable] = None      # ready(ctx): then Ctrl-C the process group
    then: Optional[Callable] = None           # then(ctx, result): any further check


def row_ids(rows):
    return [r.id for r in rows]


# -- what rows of several scripts say ------------------------------------------------

NO_BUCKET_VAR = (r"STEERING_BUCKET_NAME is not set: export the bucket's name, e\.g\. "
                 r"export STEERING_BUCKET_NAME=my-robocar-bucket$")
NO_SUCH_BUCKET = (r"bucket gs://no-such-bucket does not exist: check the name "
                  r"\(STEERING_BUCKET_NAME, or the gs:// URI given\), or create it")


def interrupted(script):
    """What SCRIPT says, last, after Ctrl-C."""
    return rf"^{re.escape(script)}: interrupted; nothing half-written was left behind$"


# -- setups of several scripts' rows ------------------------------------------------

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


def steps(*setups):
    def setup(ctx):
        for one in setups:
            one(ctx)
    return setup


def cloud(*more):
    return steps(*more, Ctx.use_cloud)


def bucket(ctx):
    ctx.use_gcs()


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


def gzip_archive(ctx):
    (ctx.car / "wip.tgz").write_bytes(gzip.compress(b"an archive, as far as gzip goes"))


# -- moments to press Ctrl-C: conditions, polled --------------------------------------

def has_bytes(folder, pattern, at_least=1):
    """A file matching PATTERN in FOLDER holds AT_LEAST bytes."""
    try:
        return any(p.is_file() and p.stat().st_size >= at_least
                   for p in Path(folder).glob(pattern))
    except FileNotFoundError:          # it went away between glob and stat
        return False


def has_entries(root, pattern):
    """A folder matching PATTERN under ROOT has something in it."""
    for folder in Path(root).glob(pattern):
        try:
            with os.scandir(folder) as it:
                if any(True for _ in it):
                    return True
        except FileNotFoundError:
            pass
    return False


def wait_until(ready, what, proc=None, timeout=60, every=0.05, detail=str):
    """Poll READY() every EVERY seconds until it holds; fail naming WHAT (and
    DETAIL(), e.g. the child's stderr) once TIMEOUT seconds pass, or as soon
    as PROC (a Popen) has ended."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None and not ready():
            pytest.fail(f"it ended ({proc.returncode}) before {what}: {detail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout}s: {detail()}")
        time.sleep(every)


class Lines:
    """The lines of a child's pipe, read as they come (a thread), so that a
    test can wait for one with a deadline: Lines(proc.stdout).wait(r": pending")."""

    def __init__(self, stream):
        self.lines, self._stream = [], stream
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self._stream:
            self.lines.append(line)

    def wait(self, pattern, proc=None, timeout=60):
        """The first line matching PATTERN, once it has come."""
        def seen():
            return any(re.search(pattern, ln) for ln in list(self.lines))
        wait_until(seen, f"a line matching {pattern!r} was printed", proc, timeout,
                   detail=lambda: "".join(self.lines)[-2000:])
        return next(ln for ln in list(self.lines) if re.search(pattern, ln))

    def rest(self, timeout=60):
        """Everything read, once the pipe is closed."""
        self._reader.join(timeout)
        assert not self._reader.is_alive(), "the pipe stayed open"
        return "".join(self.lines)


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


def ctrl_c_as_in_a_terminal():
    """The child's own process group, with the default SIGINT disposition
    (a test runner started in the background may have it ignored)."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def launch(row, ctx, argv, env):
    cwd = ctx.cwd or ctx.car
    if row.interrupt is None:
        try:
            return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=LIMIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{row.cmd[0]} gave no answer within {LIMIT}s")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err,
                                text=True, preexec_fn=ctrl_c_as_in_a_terminal)
        def stderr():
            err.seek(0)
            return err.read()[-2000:]

        try:
            wait_until(lambda: row.interrupt(ctx), "the moment to press Ctrl-C "
                       f"({row.interrupt.__name__}) came", proc, every=0.01, detail=stderr)
            os.killpg(proc.pid, signal.SIGINT)          # what Ctrl-C in a terminal does
            try:
                proc.wait(CTRL_C_LIMIT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{row.cmd[0]} still ran {CTRL_C_LIMIT}s after Ctrl-C")
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
    warned = lines if row.code == 0 else lines[:-1]
    assert len(warned) == row.warnings, stderr
    assert all(ln.startswith(me + "warning: ") for ln in warned), stderr
    if row.code != 0:
        last = lines[-1]
        assert last.startswith(me) and not last.startswith(me + "warning: "), stderr


def run_row(row, car, tmp, stock, request):
    """Run ROW from the car folder CAR in the test's folder TMP, and check it."""
    env = script_env()
    for name in CLOUD_VARS:
        env.pop(name, None)
    env["TMPDIR"] = str(tmp / "tmp")           # what the scripts leave there shows
    (tmp / "tmp").mkdir()
    ctx = Ctx(car=car, tmp=tmp, stock=stock, request=request, env=env)
    if row.setup:
        row.setup(ctx)
    dead = f"http://127.0.0.1:{free_port()}"   # nothing listens there
    for key, value in row.env.items():
        if value is None:
            ctx.env.pop(key, None)
        else:
            ctx.env[key] = value.format(dead=dead, tmp=tmp)
    script, *args = row.cmd
    cwd = ctx.cwd or car
    exe = cwd / script if (cwd / script).exists() else Path(ROOT) / script
    argv = [str(exe), *(a.format(tmp=tmp, car=car) for a in args)]

    before = snapshot(tmp)
    r = launch(row, ctx, argv, ctx.env)

    assert r.returncode == row.code, (r.stdout[-2000:], r.stderr[-3000:])
    check_stderr(row, script, r)
    if row.out:
        assert re.search(row.out, r.stdout, re.M), r.stdout[-3000:]
    after = snapshot(tmp)
    allowed = [os.path.normpath(os.path.join(car.name, p)) for p in row.changes + row.leaves]
    changed = sorted(k for k in before.keys() | after.keys()
                     if before.get(k) != after.get(k)
                     and not any(k == a or k.startswith(a + os.sep) for a in allowed))
    assert changed == [], f"changed or left behind: {changed[:10]}"
    for path in row.changes:
        assert (car / path).exists(), f"{path} was expected"
    if row.then:
        row.then(ctx, r)
