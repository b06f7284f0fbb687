"""The error contract every command keeps, in one place.

    from trainer.core.errors import UserError, run_main
    raise UserError("wip.tgz not found: make it with make_tub_archive.sh")
    sys.exit(run_main(main))       # UserError -> 'SCRIPT: message', exit 1

An expected failure is one line on stderr, `SCRIPT: what went wrong, and
what to do`, and exit 1; a usage error is that line, the script's Usage
line and a pointer to -h, exit 2 (ArgumentParser). Ctrl-C, SIGTERM and
SIGHUP (core/interrupts.py) end the same way: one line, scratch removed,
exit 128 + the signal's number (130, 143, 129). An OSError, whatever its
errno, is the disk's or the network's, not a bug: one line naming the path
and the fix (os_error()). Anything else is a bug and keeps its traceback.
Every run gets a TMPDIR of its own, removed at the end (core/scratch.py).
SCRIPT is the name of the script that was run (lib/common.sh hands it to
launch()), else 'trainer'.

How the scripts start Python (`python -m trainer`, trainer/__main__.py):

    launch(["--prog", "local_train.sh", "--usage", "Usage: ...", "trainer.task", "-a", "x"])

imports MODULE and runs its main(ARGS) under these rules, its imports
included: a package missing from this Python (a car's light install running
a training script, a clone before `make install`) is one line naming it.
"""
import argparse
import errno
import importlib
import os
import sys

from trainer.core import interrupts, scratch


class UserError(Exception):
    """An expected failure: bad input, missing file, refused overwrite."""


# The script the user ran, as lib/common.sh hands it to launch(): its name
# and its header's Usage line.
_SCRIPT = {"prog": "trainer", "usage": None}


def prog():
    """The name the user typed: the script's, else 'trainer'."""
    return _SCRIPT["prog"]


def warn(message):
    print(f"{prog()}: warning: {message}", file=sys.stderr, flush=True)


def run_main(main, argv=None):
    """Run MAIN(argv) with the project's exit-code rules; returns the code."""
    with interrupts.handled(), scratch.private_tmpdir(prog()):
        try:
            return main(argv) or 0
        except UserError as e:
            _say(f"{prog()}: {e}")
            return 1
        except KeyboardInterrupt as e:      # Ctrl-C, SIGTERM, SIGHUP: interrupts.py
            _say(f"{prog()}: {stopped(e)}")
            return 128 + interrupts.signum_of(e)
        except OSError as e:
            _say(f"{prog()}: {os_error(e)}")
            return 1
        except ModuleNotFoundError as e:
            if not e.name or e.name.split(".")[0] == "trainer":
                raise                               # ours: a bug, with its traceback
            _say(f"{prog()}: {missing_package(e.name)}")
            return 1


def _say(line):
    """The last line, on stderr: after a SIGHUP the terminal may be gone."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def stopped(e):
    """What an interrupted command says: which signal, and what it kept."""
    signum = interrupts.signum_of(e)
    what = {2: "interrupted", 1: "stopped: the terminal closed (SIGHUP)"}.get(
        signum, f"stopped by {interrupts.name(signum)}")
    kept = getattr(e, "kept", None)
    if kept:
        return f"{what}; {kept}"
    return f"{what}; nothing half-written was left behind"


# What to do about each kind of file-system error; the rest: FIX_ANY.
FIXES = {
    errno.ENOSPC: "free some space there, or write to another disk, and run again",
    errno.EDQUOT: "your disk quota is used up: free some space, or write elsewhere",
    errno.EROFS: "that file system is read-only (an SD card goes read-only after "
                 "errors: check it, e.g. fsck, and remount it read-write), or write "
                 "elsewhere",
    errno.EFBIG: "the file is larger than that file system or `ulimit -f` allows "
                 "(FAT32 takes 4 GiB at most): write it to another file system, or "
                 "raise the limit",
    errno.ENOTDIR: "a part of that path is a file, not a folder: move the file away, "
                   "or give another path",
    errno.EISDIR: "a folder is where a file goes: move the folder away, or give "
                  "another name",
    errno.EACCES: "permission denied: give a path you can write to, or fix its "
                  "permissions",
    errno.EPERM: "not permitted there: give another path, or fix its permissions",
    errno.EIO: "the disk reported an input/output error (a failing SD card or "
               "disk?): copy your data off it, check it, and run again",
    errno.ENOENT: "it is gone (removed while this ran?): check the path and run again",
    errno.EEXIST: "something is already there: move it away and run again",
    errno.ENAMETOOLONG: "the name is too long for that file system: use a shorter path",
    errno.EMFILE: "too many files are open: raise `ulimit -n` and run again",
    errno.ENOMEM: "out of memory: close other programs, or use a larger machine",
    errno.EXDEV: "it is on another file system: give a path on the same disk",
    errno.ELOOP: "the path has a loop of links: give the real path",
}
FIX_ANY = "check that path and the disk it is on, and run again"


def os_error(e, doing=None):
    """One line for an OSError: what failed (DOING, else the call), on which
    path, and what to do. A network error is said as one too."""
    if isinstance(e, ConnectionError) or e.errno in (errno.ECONNREFUSED,
                                                      errno.ECONNRESET,
                                                      errno.ETIMEDOUT,
                                                      errno.EHOSTUNREACH,
                                                      errno.ENETUNREACH):
        return (f"the network failed ({e.strerror or e}): check the connection and "
                "run again")
    # A copy's error names both files: the one written is what the fix is about.
    path = e.filename2 if e.filename2 is not None else e.filename
    reason = (e.strerror or str(e) or type(e).__name__).lower()
    where = f"{path}: " if path is not None else ""
    return (f"{doing + ': ' if doing else ''}{where}{reason}: "
            f"{FIXES.get(e.errno, FIX_ANY)}")


def launch(argv):
    """[--prog NAME] [--usage LINE] MODULE ARGS...: MODULE's main(ARGS), its
    import included, under run_main."""
    while argv[:1] in (["--prog"], ["--usage"]):
        _SCRIPT[argv[0][2:]] = argv[1]
        argv = argv[2:]
    module, args = argv[0], argv[1:]
    sys.argv = [module, *args]
    return run_main(lambda a: importlib.import_module(module).main(a), args)


# What the light install (the car's: bucket, cloud and download scripts) has;
# anything else belongs to training, exports and movies.
LIGHT = ("google", "googleapiclient", "google_crc32c", "httplib2", "tqdm", "requests")


def missing_package(module):
    """One line: which Python lacks which package, and how to get it."""
    top = module.split(".")[0]
    home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    where = f"the Python at {sys.executable} has no '{top}'"
    if top in LIGHT:
        return f"{where}: {sys.executable} -m pip install {home}"
    return (f"{where}, which training, exports and movies need: run 'make install' in "
            f"{home}, or {sys.executable} -m pip install '{home}[train]'")

class ArgumentParser(argparse.ArgumentParser):
    """argparse with the scripts' usage errors: one line naming the flag,
    the script's own Usage line (from its header, see launch()), a pointer
    to -h, exit 2. -h itself is the script's header (lib/common.sh prints it
    before Python starts); run as a module, argparse's help is kept."""

    hints = {}     # {flag: what the user probably meant}, e.g. an old habit

    def error(self, message):
        line = _plain(message)
        flag = line[len("unknown flag "):] if line.startswith("unknown flag ") else None
        if flag in self.hints:
            line += f": {self.hints[flag]}"
        print(f"{prog()}: {line}", file=sys.stderr)
        usage = _SCRIPT["usage"]
        if usage:
            print(usage, file=sys.stderr)
            print(f"Run '{prog()} -h' for help.", file=sys.stderr)
        else:
            self.print_usage(sys.stderr)
        sys.exit(2)


def _plain(message):
    """argparse's wording, as the scripts have always said it."""
    if message.startswith("unrecognized arguments: "):
        first = message.split(": ", 1)[1].split()[0]
        if first.startswith("-"):
            return f"unknown flag {first}"
        return f"unexpected argument '{first}' (flags only)"
    if message.startswith("argument ") and message.endswith("expected one argument"):
        flags = message[len("argument "):].split(":", 1)[0]
        return f"{flags.split('/')[0]} needs a value"
    return message
