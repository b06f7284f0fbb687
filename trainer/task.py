"""The training job's entry point, the same locally and in the cloud:

    python -m trainer.task --archive wip.tgz --output models

(the name robocar-gcp-trainer users know; the job is trainer/job/task.py)."""
import sys

from trainer.core.errors import run_main
from trainer.job.task import main

if __name__ == "__main__":
    sys.exit(run_main(main))
