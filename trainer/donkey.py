"""DonkeyCar, imported once and quietly.

`import donkeycar` prints a large banner on stdout and sets the root logger
to INFO. Our commands print their own report, so the banner goes nowhere and
the log level is the user's LOGLEVEL (WARNING unless set). TensorFlow is
imported through import_tensorflow(), which keeps its known false alarms off
stderr.
"""
import contextlib
import io
import os
import re
import sys
import tempfile

os.environ.setdefault("LOGLEVEL", "WARNING")
# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes) hides real errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

with contextlib.redirect_stdout(io.StringIO()):
    import donkeycar  # noqa: E402

VERSION = donkeycar.__version__
GENERATION = ".".join(VERSION.split(".")[:2])

# TensorFlow's start-up "errors" that are none: its CUDA plugins registered
# twice (TF 2.15 and 2.19, with or without a GPU) and absl's note about its
# own logging; and, on a machine with no NVIDIA device at all, CUDA's failing
# to start (TF 2.19). They would stand in front of the one line a failing
# command ends with; anything else TensorFlow says is kept.
_SPURIOUS = re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory"
                       r"|All log messages before absl::InitializeLog\(\) is called"
                       r"|computation placer already registered")
_NO_GPU = re.compile(r"failed call to cuInit")


def import_tensorflow():
    """import tensorflow, less its spurious start-up lines on stderr (they
    come from C++, so fd 2 itself is caught while it loads)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow
            tensorflow.config.list_physical_devices("GPU")   # CUDA starts now
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode("utf-8", "replace").splitlines(keepends=True)
            gpu = os.path.exists("/dev/nvidia0")      # else CUDA cannot but fail
            sys.stderr.write("".join(ln for ln in lines if not _SPURIOUS.search(ln)
                                     and (gpu or not _NO_GPU.search(ln))))
            sys.stderr.flush()
    return tensorflow
