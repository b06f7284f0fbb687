"""A sweep on this machine: local_train.sh with lists runs the trainings one
after the other, each the very job local_train.sh runs for one model (its
own process, its own card), then compares them.

    local_train.sh --type linear,categorical --sweep MAX_EPOCHS=5,10
    runs = run_here(args)          # args: flags.train_args(argv)

The runs and their names come from core/sweeps.py, as for
submit_cloud_sweep.sh (trainer/client/sweep.py), which sends them to Vertex
AI at once instead. A run that fails does not stop the others; the sweep
ends with the comparison of those that finished (compare.py, a page named
after the sweep, here) and exit 1 when any failed. Each run gets the sweep
id in TRAINER_SWEEP: its card and its W&B group carry it.
"""
import subprocess
import sys

from trainer.core import bucket, gcs, settings, sweeps
from trainer.core.errors import UserError, prog, warn
from trainer.core.storage import Storage
from trainer.job import compare


def run_here(args, say=print):
    """Every run of the sweep ARGS asks for, one after the other; 0 when all
    finished, else UserError naming those that did not (after the report)."""
    runs = sweeps.expand(args.type, args.sweep, args.set)
    for line in sweeps.unread_warnings(runs):
        warn(line)
    storage = Storage(connect=gcs.connect)
    archives = [bucket.resolve(storage, a, bucket.ARCHIVE,
                               hint=", or upload it with upload_tub_archive.sh")
                for a in args.archive or [bucket.newest_archive(storage)]]
    sweep = sweeps.new_id()
    base = args.model_name or bucket.default_model_name(archives[0])
    names = [run.name(base, sweep) for run in runs]
    taken = sorted(set(names) & bucket.model_names_in(storage, args.output))
    if taken and not args.force:
        raise UserError(f"a model {taken[0]} is already in {args.output}: pass -f to "
                        "replace it, or -m NAME for other names")
    say(f"sweep {sweep}: {len(runs)} runs of {', '.join(archives)}, one after the other:")
    for run, name in zip(runs, names):
        say(f"  {run.index}. {name}: {run.label()}")
    failed = {}
    for run, name in zip(runs, names):
        say(f"-- run {run.index}/{len(runs)}: {name} ({run.label()})")
        reason = _train(args, archives, run, name, sweep)
        if reason:
            failed[name] = reason
    return _conclude(args, names, failed, sweep, storage, say)


def _argv(args, archives, run, name):
    """local_train.sh's flags for one RUN: the sweep's, its type and values."""
    argv = [x for a in archives for x in ("--archive", a)]
    argv += ["--model-name", name, "--output", args.output]
    if run.model_type or args.type:
        argv += ["--type", run.model_type or args.type]
    for pair in list(args.set or []) + run.overrides():
        argv += ["--set", pair]
    for flag, value in (("--transfer", args.transfer), ("--eval-archive", args.eval_archive)):
        if value:
            argv += [flag, value]
    argv += ["--force"] if args.force else []
    argv += ["--trust-model-code"] if args.trust_model_code else []
    return argv


def _train(args, archives, run, name, sweep):
    """Run one training as its own process, its output shown as it comes;
    None when it finished, else its last error line."""
    command = [sys.executable, "-m", "trainer", "--prog", prog(), "trainer.task",
               *_argv(args, archives, run, name)]
    last = None
    sys.stdout.flush()                 # what was said comes before the run's own lines
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace",
                          env=settings.environment(TRAINER_SWEEP=sweep)) as child:
        for line in child.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            last = line.strip() or last
    if child.returncode == 130:
        raise KeyboardInterrupt
    if child.returncode == 0:
        return None
    return (last or f"exit status {child.returncode}").removeprefix(f"{prog()}: ")


def _conclude(args, names, failed, sweep, storage, say):
    """Say which runs failed, compare those that finished."""
    done = [n for n in names if n not in failed]
    for name, reason in failed.items():
        say(f"run {names.index(name) + 1} ({name}) failed: {reason}")
    if not done:
        raise UserError(f"all {len(names)} runs of sweep {sweep} failed: see above")
    say(f"-- sweep {sweep}: {len(done)} of {len(names)} runs finished; comparing them")
    compare.compare(done, storage, f"{sweep}.html", eval_archive=args.eval_archive,
                    where=args.output, say=say)
    if failed:
        first = next(iter(failed))
        raise UserError(f"{len(failed)} of {len(names)} runs failed (run "
                        f"{names.index(first) + 1}, {first}: {failed[first]}); "
                        f"{sweeps.others(done)} compared in {sweep}.html")
    return 0
