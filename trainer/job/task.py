"""The training job, the same locally and in the cloud.

    python -m trainer.task --archive wip.tgz --output models
    python -m trainer.task --archive gs://B/training/wip.tgz --output gs://B/models \
        --model-name pilot-wip --type linear --set MAX_EPOCHS=20

local_train.sh hands its flags to it as they are; the cloud job gets the
same flags (trainer/core/flags.py declares them). This file resolves the
inputs and makes the run's plan (plan.py); the steps are in training.py.
"""
import sys

from trainer.core import bucket, donkey, gcs, settings, sweeps
from trainer.core.errors import run_main
from trainer.core import flags
from trainer.core.flags import train_args
from trainer.core.storage import Storage
from trainer.job import restarts, sweep
from trainer.job.export import trust_model_code
from trainer.job.plan import Plan
from trainer.job.training import run


def main(argv=None):
    args = train_args(argv)
    if sweeps.is_sweep(args):                 # --type A,B or --sweep: one run each
        return sweep.run_here(args, say=lambda line: print(line, flush=True))
    if settings.sweep_id():                   # one run of a sweep: its id is a name
        sweeps.check_id(settings.sweep_id())
    donkey.quiet()
    if args.trust_model_code:
        trust_model_code()
    # The client is built only if a gs:// URI, or a bare name found only in
    # the bucket, needs it: local runs never touch Google's libraries.
    storage = Storage(connect=gcs.connect)
    with restarts.remembered(storage):        # in a cloud job: a mistake is final
        args.archive = [bucket.resolve(storage, a, bucket.ARCHIVE,
                                       hint=", or upload it with upload_tub_archive.sh")
                        for a in args.archive or [bucket.newest_archive(storage)]]
        if args.transfer:
            args.transfer = bucket.resolve(storage, args.transfer, bucket.MODEL,
                                           what="transfer model")
        if args.eval_archive:
            args.eval_archive = bucket.resolve(storage, args.eval_archive, bucket.ARCHIVE,
                                               what="evaluation archive")
        taken = () if args.model_name else bucket.model_names_in(storage, args.output)
        args.model_name = flags.model_name(args, taken)
        run(Plan.from_args(args), storage)


if __name__ == "__main__":
    sys.exit(run_main(main))
