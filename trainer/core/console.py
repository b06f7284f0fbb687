"""What the training job shows: progress, not TensorFlow's chatter.

    with console.filtered(debug_log):     # stdout and stderr, file descriptors included
        train(...)

TensorFlow and its converters write from C++ straight to file descriptors 1
and 2, so Python's logging and warnings filters cannot reach them: both
descriptors go through a pipe here, line by line. Lines that are noise (the
TFLite converter's "Non-Converted Ops" summary and its trailing lines, the
XNNPACK and HDF5-legacy notices, the converter's ignored-flag warnings) are
dropped; the job's temporary paths are cut from what remains; everything,
as it came, also goes to DEBUG_LOG when one is given. A progress bar
(redrawn with carriage returns) passes through as it is drawn on a
terminal; in a log it becomes a line at each tenth of the way.
"""
import contextlib
import os
import re
import sys
import threading

NOISE = re.compile(
    r"Summary on the non-converted ops|^-+$|\* Accepted dialects|Non-Converted Ops"
    r"|^\s*\* \d+ \w+ ops|^- \w[\w.]*:\s+\d+ occurrences|^\s*\((?:[a-z]\d+: \d+,? ?)+\)$"
    r"|Created TensorFlow Lite XNNPACK delegate|XNNPACK delegate"
    r"|HDF5 file via `model.save\(\)`|This file format is considered legacy"
    r"|saving_api.save_model\(|Ignored output_format|Ignored drop_control_dependency"
    r"|tf_tfl_flatbuffer_helpers|Estimated count of arithmetic ops"
    r"|INFO: Initialized TensorFlow Lite runtime"
    r"|^fully_quantize: \d"                     # the int8 converter's settings line
    # DonkeyCar's makemovie: its banner, moviepy's chatter, and the error its
    # own tub logs when it is closed after the movie.
    r"|Visualizing activations on layer|^#+$|^Moviepy - |^making movie |Unexpected closing manifest"
    r"|No training configuration found in the save file"
    r"|compiled metrics have yet to be built")
PERCENT = re.compile(r"(\d{1,3})%\|")        # tqdm's bar: ' 40%|████      | 12/29'
TEMP_PATH = re.compile(r"(?:/private)?/(?:tmp|var/folders/[^\s/]+/[^\s/]+/T)/robocar-"
                       r"(?:train|movie)-[^\s/]+/(?:[^\s/]+/)*")


def clean(line):
    """LINE as the user sees it, or None when it is noise."""
    if NOISE.search(line) or not line.strip():
        return None
    return TEMP_PATH.sub("", line)


@contextlib.contextmanager
def filtered(debug_log=None):
    """Filter what is written to file descriptors 1 and 2 while inside."""
    log = open(debug_log, "ab") if debug_log else None
    pumps = []
    try:
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            stream.flush()
            pumps.append(_Pump(fd, log))
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(ValueError, OSError):
                stream.flush()
        for pump in pumps:
            pump.stop()
        if log:
            log.close()


class _Pump:
    """File descriptor FD into a pipe; a thread writes it back, line by line,
    less the noise."""

    def __init__(self, fd, log):
        self.fd, self.log = fd, log
        self.saved = os.dup(fd)
        self.tty = os.isatty(self.saved)
        self.step = None            # the last progress step written to a log
        read, write = os.pipe()
        os.dup2(write, fd)
        os.close(write)
        self.read = read
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        pending = b""
        while True:
            chunk = os.read(self.read, 65536)
            if not chunk:
                break
            if self.log:
                self.log.write(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                kept = clean(line.decode("utf-8", "replace") + "\n")
                if kept is not None:
                    self._write(kept.encode("utf-8"))
            if self.tty and (b"\r" in pending or b"\x08" in pending):
                self._write(pending)                     # a progress bar: draw it now
                pending = b""
            elif b"\r" in pending:                       # in a log: a line per step
                *bars, pending = pending.split(b"\r")
                for bar in bars:
                    self._progress_line(bar.decode("utf-8", "replace"))
        if pending:
            kept = clean(pending.decode("utf-8", "replace"))
            if kept:
                self._write(kept.encode("utf-8"))
        os.close(self.read)

    def _progress_line(self, bar):
        """A progress bar's redraw, as a line of its own at each tenth."""
        found = PERCENT.search(bar)
        if not found or clean(bar) is None:
            return
        step = int(found.group(1)) // 10
        if step != self.step:
            self.step = step
            self._write((TEMP_PATH.sub("", bar).strip() + "\n").encode("utf-8"))

    def _write(self, data):
        while data:
            data = data[os.write(self.saved, data):]

    def stop(self):
        os.dup2(self.saved, self.fd)       # the pipe's last writer is gone: EOF
        self.thread.join(timeout=10)
        os.close(self.saved)
