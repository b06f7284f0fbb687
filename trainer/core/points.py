"""Named moments of a command, where the tests interrupt it exactly.

    point("deflate:moved-aside")      # nothing happens, unless ...
    TRAINER_SIGNAL_AT=deflate:moved-aside:KILL ./deflate_tub_archive.sh -f

With TRAINER_SIGNAL_AT=WHERE:SIGNAL[,WHERE:SIGNAL] (settings.signal_at())
the process sends itself SIGNAL when it reaches WHERE: Ctrl-C (INT), TERM or
HUP at a chosen step, and KILL, which nothing can handle, at each step
boundary, so that a test can check what the next run finds. No sleeps, no
races: the moment is the code's own.
"""
import os

from trainer.core import settings


def point(where):
    wanted = settings.signal_at()
    if wanted and where in wanted:
        os.kill(os.getpid(), wanted[where])
