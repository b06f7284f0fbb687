"""What the "nothing lost" tests share (issue 21; tests/test_lost_nothing_*.py):
content hashes of a folder, a script run with a signal at a named moment or
from outside, and real file-system faults (a full tmpfs, a read-only mount,
a file-size limit), each undone when the test ends.

    before = hashes(car / "data")
    r = run_script(car, "deflate_tub_archive.sh", "-f", at="deflate:moved-aside:KILL")
    assert r.returncode == -9 and hashes(car / "data") == before

The named moments are the toolkit's own (trainer/core/points.py): the script
sends itself the signal when it gets there, so a test needs no sleeps and
hits the same step every time. SIGKILL cannot be handled: what a killed run
leaves, the next run must undo (that is what these tests check).
"""
import hashlib
import os
import re
import resource
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from hardening import LIMIT, ctrl_c_as_in_a_terminal, wait_until
from helpers import ROOT, script_env

SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "HUP": signal.SIGHUP}
# What a script says last after each handled signal (trainer/core/errors.py).
STOPPED = {"INT": "interrupted", "TERM": "stopped by SIGTERM",
           "HUP": r"stopped: the terminal closed \(SIGHUP\)"}
TRACEBACK = re.compile(r"Traceback|^\s+File \"", re.M)


def hashes(root, skip=()):
    """{relative path: sha256} of every file under ROOT (links by target),
    leaving out names starting with any of SKIP."""
    out = {}
    root = Path(root)
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if any(rel.startswith(s) for s in skip):
            continue
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            out[rel + "/"] = "dir"
    return out


def env_for(tmp, **extra):
    """A script's environment with its own TMPDIR (tmp/tmp), which must be
    empty again after every run."""
    env = script_env(**extra)
    for key in ("STEERING_BUCKET_NAME", "STORAGE_EMULATOR_HOST", "TRAINER_GCS_DEADLINE",
                "GOOGLE_CLOUD_PROJECT", "TRAINER_SIGNAL_AT"):
        env.pop(key, None)
    (Path(tmp) / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(Path(tmp) / "tmp")
    env.update(extra)
    return env


def run_script(cwd, script, *args, env, at=None, fsize=None, timeout=LIMIT):
    """Run SCRIPT (from ROOT) in CWD; AT='WHERE:SIGNAL' sends SIGNAL at the named
    moment WHERE; FSIZE limits the size of a file it writes (ulimit -f, bytes)."""
    env = dict(env)
    if at:
        env["TRAINER_SIGNAL_AT"] = at

    def limits():
        ctrl_c_as_in_a_terminal()
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return subprocess.run([os.path.join(ROOT, script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limits)


def signal_when(cwd, script, *args, env, sig, ready, timeout=LIMIT):
    """Run SCRIPT and send SIG to its process group (as a terminal or `kill`
    does to a job) once READY() holds (polled, never a fixed sleep)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([os.path.join(ROOT, script), *map(str, args)], cwd=cwd,
                                env=env, stdout=out, stderr=err, text=True,
                                preexec_fn=ctrl_c_as_in_a_terminal)
        try:
            wait_until(ready, "the moment to send the signal came", proc, every=0.01)
            os.killpg(proc.pid, sig)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(script, proc.returncode, out.read(), err.read())


def one_line(r, script, pattern, progress=False):
    """R failed with exactly one line on stderr, `SCRIPT: ...` matching PATTERN
    (warnings before it allowed; with PROGRESS, a movie's progress lines too),
    and no traceback."""
    assert not TRACEBACK.search(r.stderr), r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines, r.stdout[-2000:]
    last = lines[-1]
    assert last.startswith(f"{script}: ") and re.search(pattern, last), r.stderr[-3000:]
    if not progress:
        assert all(ln.startswith(f"{script}: warning: ") for ln in lines[:-1]), r.stderr
    return last


def stopped(r, script, name):
    """R was stopped by the handled signal NAME: 128+N, its one line."""
    assert r.returncode == 128 + SIGNALS[name], (r.returncode, r.stderr[-3000:])
    return one_line(r, script, "^" + re.escape(script) + ": " + STOPPED[name] + "; ")


def empty_tmpdir(tmp):
    """Nothing of any run stays in the scripts' TMPDIR."""
    left = sorted(os.listdir(Path(tmp) / "tmp"))
    assert left == [], left


def mount(request, folder, options, fstype="tmpfs"):
    """A tmpfs mounted at FOLDER with OPTIONS ('size=1m', 'ro'), unmounted
    when the test ends. Needs root (these tests run as root in CI)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", fstype, "-o", options, fstype, str(folder)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"cannot mount a tmpfs at {folder} ({r.stderr.strip()}): these tests "
                    "need root, as CI has")
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(folder)]))
    return folder


def remount_read_only(folder):
    """FOLDER's tmpfs, read-only from now on, as an SD card the kernel
    remounted after errors: a real EROFS for every write."""
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
