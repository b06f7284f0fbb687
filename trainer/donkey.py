"""DonkeyCar, imported once and quietly.

`import donkeycar` prints a large banner on stdout and sets the root logger
to INFO. Our commands print their own report, so the banner goes nowhere and
the log level is the user's LOGLEVEL (WARNING unless set).
"""
import contextlib
import io
import os

os.environ.setdefault("LOGLEVEL", "WARNING")
# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes) hides real errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

with contextlib.redirect_stdout(io.StringIO()):
    import donkeycar  # noqa: E402

VERSION = donkeycar.__version__
GENERATION = ".".join(VERSION.split(".")[:2])
