"""Ctrl-C, a closed terminal and `kill`: one way to stop, whatever the signal.

    with handled():                # run_main: SIGINT, SIGTERM, SIGHUP raise Interrupted
        with deferred():           # a block of renames is never cut half-way:
            move_aside_and_in()    # a signal that comes meanwhile is raised at its end

Interrupted is a KeyboardInterrupt, so every `finally` and `except
Exception` treats a SIGTERM (`kill`, a cloud VM's shutdown) or a SIGHUP (a
closed terminal, a dropped ssh) as it treats Ctrl-C: scratch is removed on
the way out, and run_main ends with one line and exit 128 + the signal's
number (130, 143, 129). Only the first signal raises; later ones while the
command cleans up are counted, not raised, so a second Ctrl-C cannot cut a
clean-up half-way. A signal the caller ignores (`nohup` ignores SIGHUP) stays
ignored.

SIGKILL and a power cut cannot be handled: what must survive them is
written so that the next run finds the old state or the new (a journal,
core/replace.py; temporary files it recognises, core/storage.py). The tests
kill at named moments (core/points.py).
"""
import contextlib
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_state = {"deferring": 0, "pending": None, "raised": None}


class Interrupted(KeyboardInterrupt):
    """A handled signal, raised in the main thread. KEPT: what was kept on
    the way out (a trained model), for the last line. FINISHED: it came
    during a deferred() block, which was done before it was raised."""

    def __init__(self, signum, kept=None, finished=False):
        super().__init__(signum)
        self.signum, self.kept, self.finished = signum, kept, finished


def signum_of(exc):
    """The signal a KeyboardInterrupt stands for (a plain one is Ctrl-C's)."""
    return getattr(exc, "signum", signal.SIGINT)


def name(signum):
    return signal.Signals(signum).name


def _handler(signum, frame):
    if _state["raised"] is not None:      # cleaning up after the first: not again
        return
    if _state["deferring"]:
        _state["pending"] = _state["pending"] or signum
        return
    _state["raised"] = signum
    raise Interrupted(signum)


@contextlib.contextmanager
def handled():
    """SIGINT, SIGTERM and SIGHUP raise Interrupted while the block runs
    (each that is not ignored); the previous handlers are back afterwards."""
    before = {}
    main = threading.current_thread() is threading.main_thread()
    for sig in HANDLED if main else ():
        current = signal.getsignal(sig)
        if current is signal.SIG_IGN:
            continue
        before[sig] = current
        signal.signal(sig, _handler)
    _state.update(deferring=0, pending=None, raised=None)
    try:
        yield
    finally:
        for sig, previous in before.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def deferred():
    """A signal that comes while the block runs is raised when it ends (or
    not at all, if the block fails: its own error comes first)."""
    _state["deferring"] += 1
    try:
        yield
    except BaseException:
        _state["deferring"] -= 1
        if not _state["deferring"]:
            _state["pending"] = None
        raise
    _state["deferring"] -= 1
    pending = _state["pending"]
    if pending and not _state["deferring"] and _state["raised"] is None:
        _state["pending"] = None
        _state["raised"] = pending
        raise Interrupted(pending, finished=True)


def ignore_in_child():
    """A helper process (job/background.py) leaves signals to its parent,
    which stops it."""
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_IGN)

