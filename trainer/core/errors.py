"""The error contract every command keeps, in one place.

    from trainer.core.errors import UserError, run_main
    raise UserError("wip.tgz not found: make it with make_tub_archive.sh")
    sys.exit(run_main(main))       # UserError -> 'SCRIPT: message', exit 1

An expected failure is one line on stderr, `SCRIPT: what went wrong, and
what to do`, and exit 1; a usage error is that line, the script's Usage
line and a pointer to -h, exit 2 (ArgumentParser); Ctrl-C is exit 130.
Anything else is a bug and keeps its traceback. SCRIPT is the name of the
script that was run (lib/common.sh hands it to launch()), else 'trainer'.

How the scripts start Python (`python -m trainer`, trainer/__main__.py):

    launch(["--prog", "local_train.sh", "--usage", "Usage: ...", "trainer.task", "-a", "x"])

imports MODULE and runs its main(ARGS) under these rules, its imports
included: a package missing from this Python (a car's light install running
a training script, a clone before `make install`) is one line naming it.
"""
import argparse
import importlib
import os
import sys


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
    try:
        return main(argv) or 0
    except UserError as e:
        print(f"{prog()}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog()}: interrupted; nothing half-written was left behind",
              file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        if not e.name or e.name.split(".")[0] == "trainer":
            raise                               # ours: a bug, with its traceback
        print(f"{prog()}: {missing_package(e.name)}", file=sys.stderr)
        return 1


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
