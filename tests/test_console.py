"""The job's console filter (core/console.py) in a log: a progress bar is a
line at each tenth, never a carriage return, however its redraws arrive."""
import subprocess
import sys

BAR = r"""
import os, sys
from trainer.core import console
with console.filtered():
    os.write(2, b"t:   0%|          | 0/30\r")
    # the last redraws and the bar's end in one write, as a fast bar sends them
    os.write(2, b"t:  50%|#####     | 15/30\rt:  53%|#####     | 16/30\r"
                b"t: 100%|##########| 30/30\r\n")
    os.write(2, b"saving\rsaved\n")
    os.write(1, b"done\n")
"""


def test_a_bar_in_a_log_is_a_line_per_tenth_and_its_end():
    r = subprocess.run([sys.executable, "-c", BAR], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stdout + r.stderr
    assert r.stderr.splitlines() == ["t:   0%|          | 0/30", "t:  50%|#####     | 15/30",
                                     "t: 100%|##########| 30/30", "saved"], r.stderr
    assert r.stdout == "done\n"
