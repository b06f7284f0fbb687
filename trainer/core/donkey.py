"""DonkeyCar and TensorFlow, started quietly.

    donkey.quiet()             # the jobs call it first: no banner, WARNING logs
    donkey.generation()        # '5.3' or '5.4'
    tf = donkey.import_tensorflow()

`import donkeycar` prints a large banner on stdout and sets the root logger
to INFO. Our commands print their own report, so quiet() imports it with
the banner going nowhere and the log level the user's LOGLEVEL (WARNING
unless set); TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes)
is cut to errors unless TF_CPP_MIN_LOG_LEVEL is set. Modules that use
DonkeyCar import it inside their functions (it is heavy, and the light
install on a car has no TensorFlow), after quiet() has run.
"""
import contextlib
import io
import logging
import os
import re
import sys
import tempfile

from trainer.core.errors import UserError

# TensorFlow's start-up "errors" that are none: its CUDA plugins registered
# twice (TF 2.15 and 2.19, with or without a GPU) and absl's note about its
# own logging; and, on a machine with no NVIDIA device at all, CUDA's failing
# to start (TF 2.19). They would stand in front of the one line a failing
# command ends with; anything else TensorFlow says is kept.
_SPURIOUS = re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory"
                       r"|All log messages before absl::InitializeLog\(\) is called"
                       r"|computation placer already registered")
_NO_GPU = re.compile(r"failed call to cuInit")
_SPLIT = re.compile(r"Records # (Training|Validation) (\d+)")


def quiet():
    """Import DonkeyCar without its banner; returns the module. The log
    levels must be in the environment before DonkeyCar and TensorFlow read
    them, so they are set here, each only when the user has not."""
    if "donkeycar" in sys.modules:
        return sys.modules["donkeycar"]
    os.environ.setdefault("LOGLEVEL", "WARNING")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with contextlib.redirect_stdout(io.StringIO()):
        import donkeycar
    return donkeycar


def as_manage_py():
    """Import DonkeyCar as the car's manage.py does, banner and INFO logs
    included (the drive loop's part-timing table is one), unless the user's
    LOGLEVEL says otherwise: drive.sh shows what `manage.py drive` shows."""
    if "donkeycar" not in sys.modules:
        os.environ.setdefault("LOGLEVEL", "INFO")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import donkeycar
    return donkeycar


def version():
    """The DonkeyCar installed here, e.g. '5.3.0'."""
    return quiet().__version__


def generation():
    """Its generation, e.g. '5.3'."""
    return ".".join(version().split(".")[:2])


def import_tensorflow():
    """import tensorflow, less its spurious start-up lines on stderr (they
    come from C++, so fd 2 itself is caught while it loads)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    quiet()
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


def require_gpu(accelerator):
    """One line when a job sent with ACCELERATOR ('NVIDIA_TESLA_T4:1') would
    run on the CPU while the GPU is billed; nothing when ACCELERATOR is None."""
    if accelerator and not gpus():
        raise UserError(f"this job asked for {accelerator} but TensorFlow sees no GPU "
                        "(the image lacks TensorFlow's CUDA libraries, or the machine has "
                        "no NVIDIA driver): rebuild the image with build_image.sh, or "
                        "submit with -g none to run on the CPU")


def gpus():
    """The names of the GPUs TensorFlow sees ('Tesla T4'), [] on the CPU."""
    tf = import_tensorflow()
    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return names


@contextlib.contextmanager
def split_counts():
    """{'train': N, 'validation': M}, filled from the record counts DonkeyCar's
    train() logs for its own random split ("Records # Training N"): the real
    numbers, read without touching DonkeyCar. Its other log lines pass on."""
    counts = {}
    logger = logging.getLogger("donkeycar.pipeline.training")

    class Counts(logging.Handler):
        def emit(self, record):
            found = _SPLIT.match(record.getMessage())
            if found:
                key = "train" if found.group(1) == "Training" else "validation"
                counts[key] = int(found.group(2))

    handler, level = Counts(), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
        quiet_info = _DropInfo()
        for h in logging.getLogger().handlers:
            h.addFilter(quiet_info)
    else:
        quiet_info = None
    try:
        yield counts
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        if quiet_info:
            for h in logging.getLogger().handlers:
                h.removeFilter(quiet_info)


class _DropInfo(logging.Filter):
    """Keeps the INFO lines opened up for the counts off the user's console."""

    def filter(self, record):
        return record.levelno > logging.INFO or record.name != "donkeycar.pipeline.training"
