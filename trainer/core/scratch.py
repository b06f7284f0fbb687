"""A run's own TMPDIR, gone when the run ends, however it ends.

    with private_tmpdir("local_train.sh"):    # run_main does this for every command
        ...                                    # tempfile and every library write in it

Scratch space is taken from one folder, $TMPDIR/robocar-run-SCRIPT-XXXX,
which is the process's TMPDIR (the environment's too, for the libraries that
read it from C: onnxruntime, h5py, tf2onnx and wandb leave a `.ses` file
there) and tempfile's. It is removed when the block ends, after a failure or
a signal too. A run killed outright (SIGKILL, a power cut) cannot remove it:
the folder holds a lock while its run lives, so the next run of any script
removes such leftovers (its own user's, unlocked) before it starts.
"""
import contextlib
import fcntl
import os
import shutil
import tempfile

PREFIX = "robocar-run-"
KEPT = "robocar-kept-"
_outer = []          # the TMPDIR the run was started with (kept() puts things there)


@contextlib.contextmanager
def private_tmpdir(prog):
    """Make a fresh folder the TMPDIR of the block; remove it afterwards.
    Where no folder can be made there (a full or read-only /tmp), the
    block runs with the TMPDIR it has, and what fails there says so."""
    parent = tempfile.gettempdir()
    sweep(parent)
    try:
        folder, lock = locked_folder(parent, f"{PREFIX}{_plain(prog)}-")
    except OSError:
        yield None
        return
    before = tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = folder     # written, never read here
    _outer.append(parent)
    try:
        yield folder
    finally:
        _outer.pop()
        os.environ["TMPDIR"] = parent          # the same folder as before the run
        tempfile.tempdir = before
        shutil.rmtree(folder, ignore_errors=True)
        os.close(lock)


def keep(path, what, name=None):
    """Move PATH (in this run's TMPDIR) out of it, into TMPDIR/robocar-kept-WHAT
    (or -WHAT-2, ... when that is taken), which outlives the run: a folder
    becomes that folder, a file goes into it (as NAME). Returns the kept
    path. A rename: nothing is copied."""
    parent = _outer[-1] if _outer else tempfile.gettempdir()
    base = os.path.join(parent, KEPT + _plain(what))
    kept, n = base, 1
    while True:
        try:
            os.mkdir(kept)
            break
        except FileExistsError:
            n += 1
            kept = f"{base}-{n}"
    if os.path.isdir(path):
        os.rmdir(kept)
        os.rename(path, kept)
        return kept
    target = os.path.join(kept, name or os.path.basename(path))
    os.rename(path, target)
    return target


def _plain(prog):
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in prog)[:40]


def locked_folder(parent, prefix):
    """(a new folder PARENT/PREFIXxxxx, the descriptor of its lock): an
    exclusive lock held by this process (and the children it forks) until
    it ends or closes it, the sign that the folder is in use. The folder is
    made and locked under a name no sweep takes, then renamed: a sweep never
    sees it unlocked while its run lives."""
    made = tempfile.mkdtemp(prefix=".new-" + prefix, dir=parent)
    try:
        fd = os.open(made, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        folder = os.path.join(parent, prefix + os.path.basename(made)[len(".new-" + prefix):])
        os.rename(made, folder)
    except BaseException:
        shutil.rmtree(made, ignore_errors=True)
        raise
    return folder, fd


def unlocked(folder):
    """True when no living process holds FOLDER's lock (core/replace.py's
    staging folders use the same lock)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def sweep(parent):
    """Remove the run folders in PARENT that killed runs of this user left."""
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            mine = entry.is_dir(follow_symlinks=False) and \
                entry.stat(follow_symlinks=False).st_uid == os.getuid()
        except OSError:
            continue
        if mine and unlocked(entry.path):
            shutil.rmtree(entry.path, ignore_errors=True)
