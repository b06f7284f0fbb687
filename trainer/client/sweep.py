"""submit_cloud_sweep.sh: a sweep as parallel Vertex AI custom jobs, followed
together, then compared.

    python -m trainer.client.sweep --type linear,categorical --sweep MAX_EPOCHS=5,10 -n
    python -m trainer.client.sweep --type linear,categorical,memory --parallel 3

The runs and their names come from core/sweeps.py (local_train.sh runs the
same lists one after the other: trainer/job/sweep.py). Each run is the job
submit_cloud_train.sh sends (jobs.Train, submit.job_body), with the sweep id
in its name, labels and environment (TRAINER_SWEEP: its card and W&B group
carry it). Nothing of ours schedules beyond keeping at most --parallel jobs
created and not ended: Vertex AI queues and runs them. They are followed
together: each poll reads every active job's state, and ONE entries.list
reads all their new log lines (the Logging read quota is 60 a minute per
project; polls back off to vertex.POLL_MAX). Each change is one line per
job. A failed job stops nothing; at the end come each run's outcome and
cost, the comparison of those that finished (job/compare.py, a page named
after the sweep, here), the best named with its drive line; exit 1 when
any run failed. -n prints every job body and the cost estimate
(core/prices.py) and sends nothing.
"""
import copy
import datetime
import json
import sys
import time
from dataclasses import dataclass

from trainer.client import check, submit, vertex
from trainer.client.jobs import Train
from trainer.core import bucket, cloud, flags, gcs, generations, prices, settings, sweeps
from trainer.core.errors import ArgumentParser, UserError, prog, run_main
from trainer.core.storage import Storage
from trainer.job import compare

LOG_WINDOW = 30.0     # s: Cloud Logging may deliver an entry this late; insertIds dedupe
LINE = 110            # characters of a job's latest log line shown on its status line


FALLBACK_PARALLEL = 2


def default_parallel(plan=None, spot=False, creds=None, project=None):
    """How many jobs run at once without --parallel: as many as the project's
    GPU quota in the region holds (the --check quota read,
    trainer/client/check.py), else FALLBACK_PARALLEL."""
    allowed = check.gpus_allowed(plan, spot, creds, project) if plan else None
    if allowed is None or allowed == 0:
        return FALLBACK_PARALLEL
    if allowed < 0:
        return sweeps.MAX_RUNS
    return max(1, allowed // plan.accelerator[1])


def parser():
    p = ArgumentParser(prog="submit_cloud_sweep.sh", allow_abbrev=False,
                       parents=[flags.train_parser(add_help=False)],
                       description="several trainings as parallel Vertex AI jobs")
    p.add_argument("-d", "--generation", help="DonkeyCar 5.3 or 5.4: picks the image "
                   "(default: this machine's DonkeyCar)")
    p.add_argument("-M", "--machine", help=f"default: {vertex.MACHINE}")
    p.add_argument("-g", "--accelerator", help="TYPE[:N] or none (default: "
                   f"{vertex.ACCELERATOR})")
    p.add_argument("-S", "--spot", action="store_true", help="Spot VMs (default: on demand)")
    p.add_argument("--parallel", metavar="N", help="jobs at once (default: as many as "
                   f"the GPU quota in REGION holds, else {FALLBACK_PARALLEL})")
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="print every job and the cost estimate, send nothing")
    return p


def main(argv=None):
    return sweep(parser().parse_args(argv))


@dataclass
class Tracked:
    """One run of the sweep and its Vertex AI job as it goes."""
    run: sweeps.Run
    job: Train
    plan: submit.Plan
    of: int                      # runs in the sweep
    created: dict = None         # the job, as Vertex last answered
    state: str = None
    reason: str = None           # why it did not succeed
    last: str = None             # its newest log line
    news: bool = False           # something to say on the next status line
    ended_at: float = None       # monotonic time its end was seen

    @property
    def name(self):
        return self.job.name

    @property
    def jid(self):
        return vertex.job_id(self.created) if self.created else None

    def status(self):
        state = vertex.describe_state(self.state) if self.state else "waiting to be sent"
        tail = f": {self.last[:LINE]}" if self.last and self.state not in vertex.ENDED else ""
        if self.state in vertex.ENDED and self.state != "JOB_STATE_SUCCEEDED":
            tail = f": {self.reason}" if self.reason else ""
        clock = datetime.datetime.now().strftime("%H:%M:%S")
        return (f"-- {clock} [{self.run.index}/{self.of}] {self.name}: {state}"
                f"{tail}")


class SweepRun(Train):
    """A run of a sweep: submit_cloud_train.sh's job, carrying the sweep id."""

    def __init__(self, args, sweep):
        super().__init__(args)
        self.sweep = sweep

    def container_env(self, project):
        return {**super().container_env(project), "TRAINER_SWEEP": self.sweep}

    def labels(self, inputs):
        return {**super().labels(inputs), "sweep": self.sweep}


def sweep(args, say=None, note=None, sleep=time.sleep):
    """Send the sweep ARGS asks for (or print it, -n), follow it, compare."""
    say = say or (lambda line: print(line, flush=True))
    note = note or (lambda line: print(line, file=sys.stderr, flush=True))
    runs = sweeps.expand(args.type, args.sweep, args.set)      # before any I/O
    parallel = _parallel(args.parallel)
    for line in sweeps.unread_warnings(runs):
        note(f"{prog()}: warning: {line}")
    settings.require_all("REGION", "TRAINER_IMAGE", "STEERING_BUCKET_NAME")
    region = settings.region()
    image = settings.trainer_image(", the image ./build_image.sh pushes")
    if args.generation:
        generations.check(args.generation)
    bucket_name = settings.bucket()
    bucket.job_dir(bucket_name)
    machine = vertex.check_machine(args.machine or vertex.MACHINE)
    accelerator = vertex.pick_accelerator(machine, args.accelerator)
    storage = Storage(connect=gcs.connect)
    sweep_id = sweeps.new_id()
    archive = args.archive or [bucket.newest_archive(storage, note)]
    base = args.model_name or bucket.default_model_name(archive[0])
    tracked = []
    for run in runs:
        job = SweepRun(_run_args(args, run, archive, run.name(base, sweep_id)), sweep_id)
        job.prepare(bucket_name)
        job.decide(storage, note, dry=True)            # the name is the run's
        plan = submit.make_plan(job, job.args, region, image, machine, accelerator)
        tracked.append(Tracked(run, job, plan, len(runs)))
    cost = prices.estimate(len(runs), machine, accelerator, args.spot)
    if args.dry_run:
        return _dry_run(tracked, storage, cost, say, note)

    creds, project = cloud.credentials_and_project()
    jobs = vertex.Jobs(cloud.service("aiplatform", "v1", creds, region=region), project,
                       region)
    check.preflight(tracked[0].plan, args.spot, creds, project, storage,
                    lambda m: note(f"{prog()}: warning: {m}"))
    parallel = parallel or default_parallel(tracked[0].plan, args.spot, creds, project)
    for t in tracked:
        t.job.refuse_overwrites(storage)
    inputs, _ = submit.stage(tracked[0].job, tracked[0].plan, storage, say)
    say(f"sweep {sweep_id}: {len(runs)} runs of {archive[0]} on "
        f"{submit.describe(tracked[0].plan)}, at most {parallel} at once")
    for t in tracked:
        say(f"  {t.run.index}. {t.name}: {t.run.label()}")
    for line in cost.lines(machine, accelerator):
        say(line)
    log = SweepLog(cloud.service("logging", "v2", creds), project)
    bodies = {t.name: submit.job_body(t.job, t.plan, inputs, project) for t in tracked}
    try:
        follow(jobs, log, tracked, bodies, parallel, say, note, sleep)
    except KeyboardInterrupt:
        return _interrupted(tracked, region, project, note)
    return _conclude(tracked, storage, inputs, sweep_id, say)


def _parallel(given):
    if given is None:
        return None                     # the quota decides, once it can be read
    if not given.isdigit() or not 1 <= int(given) <= sweeps.MAX_RUNS:
        raise UserError(f"--parallel {given}: give how many jobs may run at once, a "
                        f"whole number from 1 to {sweeps.MAX_RUNS}, e.g. --parallel 2")
    return int(given)


def _run_args(args, run, archive, name):
    """The flags of one run: the sweep's, with its type, values and name."""
    one = copy.copy(args)
    one.archive = list(archive)
    one.type = run.model_type or args.type
    one.set = list(args.set or []) + run.overrides()
    one.sweep = None
    one.model_name = name
    one.wait = False
    return one


def _dry_run(tracked, storage, cost, say, note):
    """Every job's body, then the cost estimate; nothing uploaded or sent."""
    project = settings.project() or cloud.gcloud_project()
    inputs, uploads = submit.stage(tracked[0].job, tracked[0].plan, storage, dry=True)
    for t in tracked:
        say(f"# run {t.run.index}/{t.of}: {t.name} ({t.run.label()})")
        say(json.dumps(submit.job_body(t.job, t.plan, inputs, project), indent=2))
    for line in cost.lines(tracked[0].plan.machine, tracked[0].plan.accelerator):
        say(line)
    for local, uri in uploads:
        note(f"{prog()}: would upload {local} to {uri} (unless already there)")
    note(f"{prog()}: dry run: nothing was uploaded or sent; each body above is a Vertex "
         "AI CustomJob (gcloud ai custom-jobs create --config takes its \"jobSpec\")")
    return 0


class SweepLog:
    """The new log lines of several jobs, oldest first, each once: one
    entries.list (Cloud Logging v2) for all of them per fetch."""

    def __init__(self, service, project):
        self.entries = service.entries()
        self.project = project
        self.since = None           # the newest timestamp seen, less LOG_WINDOW
        self.seen = set()

    def fetch(self, jids):
        """[(job id, line)] of JIDS' entries not returned before."""
        if not jids or self.entries is None:
            return []
        ids = " OR ".join(f'resource.labels.job_id="{j}"' for j in jids)
        query = f'resource.type="ml_job" AND ({ids})' + \
            (f' AND timestamp>="{self.since}"' if self.since else "")
        body = {"resourceNames": [f"projects/{self.project}"], "filter": query,
                "orderBy": "timestamp asc", "pageSize": 1000}
        lines, newest = [], None
        while True:
            page = cloud.call(self.entries.list(body=body), "reading the jobs' log")
            for entry in page.get("entries", []):
                key = entry.get("insertId") or (entry.get("timestamp"), str(entry))
                newest = entry.get("timestamp") or newest
                if key in self.seen:
                    continue
                self.seen.add(key)
                job = ((entry.get("resource") or {}).get("labels") or {}).get("job_id")
                lines.append((job, vertex.entry_text(entry)))
            if not page.get("nextPageToken"):
                break
            body = dict(body, pageToken=page["nextPageToken"])
        when = vertex.parse_time(newest)
        if when:
            back = when - datetime.timedelta(seconds=LOG_WINDOW)
            self.since = back.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return lines


def follow(jobs, log, tracked, bodies, parallel, say, note, sleep):
    """Create the jobs, at most PARALLEL not ended at a time, and follow them
    all to their end: one status line per job that changed."""
    waiting, active, lingering = list(tracked), [], []
    delay = vertex.POLL_MIN
    while waiting or active or lingering:
        while waiting and len(active) < parallel:
            t = waiting.pop(0)
            if _create(jobs, t, bodies[t.name], say):
                active.append(t)
        for t in active:
            job = jobs.get(t.created["name"])
            if job.get("state") != t.state:
                t.created, t.state, t.news = job, job.get("state"), True
        for jid, text in _lines(log, [t.jid for t in active + lingering], note):
            t = next((t for t in active + lingering if t.jid == jid), None)
            if t is not None and any(c.isalnum() for c in text):  # not a ____ rule
                t.last, t.news = text.strip(), True
                if vertex._REASON.match(t.last):
                    t.reason = t.last
        for t in [t for t in active if t.state in vertex.ENDED]:
            active.remove(t)
            t.ended_at = time.monotonic()
            lingering.append(t)
        for t in list(lingering):         # a failed job's error line may come late
            done = t.state == "JOB_STATE_SUCCEEDED" or t.reason or log.entries is None \
                or time.monotonic() - t.ended_at > vertex.LATE_MAX
            if done:
                lingering.remove(t)
                if t.state != "JOB_STATE_SUCCEEDED" and not t.reason:
                    t.reason = ((t.created.get("error") or {}).get("message", "")
                                .split(". ")[0] or "no error was reported")
                t.news = True
        busy = any(t.news for t in tracked)
        for t in tracked:
            if t.news and (t.state not in vertex.ENDED or t not in lingering):
                say(t.status())
                t.news = False
        if waiting or active or lingering:
            delay = vertex.POLL_MIN if busy else min(delay * vertex.POLL_FACTOR,
                                                     vertex.POLL_MAX)
            sleep(delay)


def _create(jobs, t, body, say):
    """Send T's job; False (T failed, with why) when Vertex AI refuses it."""
    try:
        t.created = jobs.create(body)
    except UserError as e:
        t.state, t.reason = "JOB_STATE_FAILED", f"not created: {e}"
        say(t.status())
        return False
    t.state = t.created.get("state")
    say(f"created Vertex AI job {t.jid} for run {t.run.index} ({t.name}): "
        f"{vertex.console_url(t.created)}")
    return True


def _lines(log, jids, note):
    jids = [j for j in jids if j]
    try:
        return log.fetch(jids)
    except UserError as e:
        note(f"{prog()}: warning: cannot read the jobs' log ({e}); following their "
             "states only")
        log.entries = None
        return []


def _interrupted(tracked, region, project, note):
    """Ctrl-C: the jobs sent keep running; those not sent are not."""
    note(f"{prog()}: stopped following; the jobs sent keep running in the cloud:")
    for t in tracked:
        if t.created and t.state not in vertex.ENDED:
            note(f"  {t.name}: cancel it with {vertex.gcloud_hints(t.created, region, project)[1]}")
    unsent = [t.name for t in tracked if not t.created and not t.state]
    if unsent:
        note(f"  not sent: {', '.join(unsent)}")
    sent = [t.name for t in tracked if t.created]
    if sent:
        note(f"  when they have succeeded: ./compare_models.sh {' '.join(sent)}")
    return 130


def _conclude(tracked, storage, inputs, sweep_id, say):
    """Each run's outcome and cost, then the comparison of those that finished."""
    total = 0.0
    for t in tracked:
        _, ran = vertex.durations(t.created) if t.created else (None, None)
        hourly = prices.hourly(t.plan.machine, t.plan.accelerator)
        # Vertex AI bills a failed job nothing, unless it was cancelled.
        billed = hourly * ran / 3600 if hourly and ran and t.state in (
            "JOB_STATE_SUCCEEDED", "JOB_STATE_CANCELLED") else None
        total += billed or 0.0
        how = f"{vertex.minutes(ran)} on the machine, about {prices.shown(billed)}" \
            if billed is not None else f"{vertex.minutes(ran)} on the machine"
        outcome = "succeeded" if t.state == "JOB_STATE_SUCCEEDED" else \
            f"{vertex.describe_state(t.state).split(' ')[0]}: {t.reason}"
        say(f"run {t.run.index} {t.name}: {outcome} ({how})")
    say(f"sweep {sweep_id}: about {prices.shown(total)} in all, at on-demand prices "
        f"({prices.SOURCE.split(' ')[0]})")
    done = [t for t in tracked if t.state == "JOB_STATE_SUCCEEDED"]
    failed = [t for t in tracked if t.state != "JOB_STATE_SUCCEEDED"]
    if not done:
        raise UserError(f"all {len(tracked)} runs of sweep {sweep_id} failed: see each "
                        "one's reason above")
    page = f"{sweep_id}.html"
    compare.compare([t.name for t in done], storage, page,
                    eval_archive=inputs.get("eval_archive"), where=done[0].job.output,
                    say=say)
    if failed:
        raise UserError(f"{len(failed)} of {len(tracked)} runs failed (run "
                        f"{failed[0].run.index}, {failed[0].name}: {failed[0].reason}); "
                        f"{sweeps.others(done)} compared in {page}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
