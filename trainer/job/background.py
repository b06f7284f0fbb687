"""Work done beside the training job's main line, so the user never waits on it.

Background runs one function in a child process while this one goes on. The
job extracts its archives this way while TensorFlow starts: both are mostly
Python, so threads would take turns on the GIL, and a process overlaps them
(the extraction is hidden behind the import on two cores).

    job = Background("extraction", extract_all, [(archive, folder)])
    import_tensorflow()
    value = job.result()      # extract_all's return; or the child's exception, raised
    job.stop()                # in a finally: a child still running is ended

The child is forked before TensorFlow loads (spawned where fork is missing),
ignores Ctrl-C, SIGTERM and SIGHUP (the parent handles them, then stops the
child), and sends back FN's return value or its exception.

removing() deletes folders in a thread while a block runs: deleting thousands
of frames mostly waits on the disk (seconds, once they were written back), and
a thread waiting there leaves the GIL to the block.

    with removing([extracted_tubs]):
        export_and_check()
"""
import contextlib
import multiprocessing
import shutil
import threading

from trainer.core import interrupts
from trainer.core.errors import UserError


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _child(send, fn, args):
    interrupts.ignore_in_child()
    try:
        outcome = ("ok", fn(*args))
    except Exception as e:        # sent back and raised in the parent
        outcome = ("error", e)
    try:
        send.send(outcome)
    except Exception as e:        # an exception that does not pickle
        send.send(("error", RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]}; {e}")))
    send.close()


class Background:
    def __init__(self, what, fn, *args):
        self.what = what
        ctx = _context()
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
        self._proc.start()
        send.close()

    def result(self):
        """FN's return value; its exception raised here if it failed."""
        try:
            kind, value = self._recv.recv()
        except EOFError:
            self._proc.join()
            raise UserError(f"the {self.what} process died (exit {self._proc.exitcode}), "
                            "perhaps out of memory: free some, or try again") from None
        self._proc.join()
        if kind == "error":
            raise value
        return value

    def stop(self):
        """End the child if it still runs (after Ctrl-C or a failure here):
        SIGKILL, since it ignores the others; what it wrote is in the
        parent's scratch folder, which the parent removes."""
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join()
        self._recv.close()


@contextlib.contextmanager
def removing(paths):
    """Remove the folders PATHS in a thread while the block runs; the block's
    end waits for it, so nothing outlives the job."""
    def remove():
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
    thread = threading.Thread(target=remove, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
