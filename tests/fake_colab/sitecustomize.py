"""For tests/test_colab.py: a runtime whose Python says it is
FAKE_PYTHON_VERSION (a Colab on a Python no DonkeyCar generation takes,
which cannot run here); without that variable, nothing."""
import os
import platform

if os.environ.get("FAKE_PYTHON_VERSION"):
    platform.python_version = lambda: os.environ["FAKE_PYTHON_VERSION"]
