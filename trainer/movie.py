"""The makemovie job's entry point, the same locally and in the cloud:

    python -m trainer.movie --archive wip.tgz --model models/pilot-wip.h5

(the job is trainer/job/movie.py)."""
import sys

from trainer.core.errors import run_main
from trainer.job.movie import main

if __name__ == "__main__":
    sys.exit(run_main(main))
