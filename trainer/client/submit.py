"""Run a job in the cloud: what submit_cloud_train.sh and
submit_cloud_makemovie.sh do, step by step.

    python -m trainer.cli submit --archive wip.tgz -g NVIDIA_TESLA_T4:1 --wait
    python -m trainer.cli submit-movie --model models/pilot-wip.h5 --end 60 --wait

settings (REGION, the image of the DonkeyCar generation asked for, bucket,
project, credentials) -> the cheap checks of the project (APIs on, the
image's tag built, the bucket reachable: trainer/client/check.py) -> the
job's inputs into the bucket unless they are there -> one Vertex AI
CustomJob running the job's own module with the arguments the local script
would pass, gs:// URIs instead of paths -> without --wait, how to follow
it; with --wait, its states and log lines until it ends, then its outputs
home. --check runs every check of the project instead, and sends nothing.

What differs between jobs is declared in trainer/jobs.py: Train
(`trainer.task`, the model files into ./models) and Movie (`trainer.movie`,
the mp4 into OUT).
"""
import json
import shlex
import sys
from dataclasses import dataclass

from trainer.client import check, vertex
from trainer.client.jobs import Train
from trainer.core import bucket, cloud, gcs, generations, settings
from trainer.core.errors import UserError, prog
from trainer.core.storage import Storage, join


@dataclass(frozen=True)
class Plan:
    """Where and how a job runs; known before anything is read or sent."""
    region: str
    image: str           # TRAINER_IMAGE tagged with the generation
    generation: str
    bucket: str
    machine: str
    accelerator: tuple   # (type, count), or None for CPU only
    display: str         # the job's display name, NAME-YYYYmmdd-HHMMSS
    staging: str         # gs://.../job/DISPLAY/: the job's own uploads and outputs


def submit(args, job=None, say=None, note=None):
    """Create the job (or, with args.dry_run, print it); 130 after Ctrl-C.
    JOB is a Train or Movie made from ARGS (default: Train). SAY prints the
    report (stdout), NOTE hints and warnings (stderr); both flush each line,
    so a log followed through a pipe arrives as it comes."""
    say = say or (lambda line: print(line, flush=True))
    note = note or (lambda line: print(line, file=sys.stderr, flush=True))
    job = job or Train(args)

    settings.require_all("REGION", "TRAINER_IMAGE", "STEERING_BUCKET_NAME")
    region = settings.region()
    image = settings.trainer_image(", the image ./build_image.sh pushes")
    if args.generation:
        generations.check(args.generation)
    bucket_name = settings.bucket()
    bucket.job_dir(bucket_name)          # JOB_DIR, checked before any I/O
    machine = vertex.check_machine(args.machine or vertex.MACHINE)
    accelerator = vertex.pick_accelerator(machine, args.accelerator)
    if args.check:
        return check_project(make_plan(job, args, region, image, machine, accelerator,
                                       named=False), args.spot, say)
    job.prepare(bucket_name)
    storage = Storage(connect=gcs.connect)
    if args.dry_run:
        job.decide(storage, note, dry=True)
        return dry_run(job, make_plan(job, args, region, image, machine, accelerator),
                       storage, say, note)

    creds, project = cloud.credentials_and_project()     # before anything is sent
    jobs = vertex.Jobs(cloud.service("aiplatform", "v1", creds, region=region), project,
                       region)

    def warn(message):
        note(f"{prog()}: warning: {message}")

    # The cheap checks first (APIs, image, bucket), then the defaults that need
    # the bucket's files; a movie's model may name another generation's image.
    first = make_plan(job, args, region, image, machine, accelerator, named=False)
    check.preflight(first, args.spot, creds, project, storage, warn)
    job.decide(storage, note)
    plan = make_plan(job, args, region, image, machine, accelerator)
    if plan.image != first.image:
        check.preflight(plan, args.spot, creds, project, storage, warn)
    display = plan.display
    job.refuse_overwrites(storage)
    inputs, _ = stage(job, plan, storage, say)
    created = create(jobs, job_body(job, plan, inputs, project), plan, args.spot, project)
    jid = vertex.job_id(created)
    follow_cmd, cancel_cmd = vertex.gcloud_hints(created, region, project)
    say(f"created Vertex AI job {jid} ({display}) in {region}: {describe(plan)}")
    say(f"  console: {vertex.console_url(created)}")
    if not args.wait:
        say(f"  follow:  {follow_cmd}")
        say(f"  cancel:  {cancel_cmd}")
        say(f"  then:    {job.hint()}")
        return 0

    logs = cloud.service("logging", "v2", creds)
    tail = vertex.LogTail(logs, project, jid)
    waiting = vertex.waiting_hint(plan.accelerator, args.spot, region,
                                  f"./{prog()} --check", cancel_cmd)
    try:
        ended = vertex.follow(jobs, tail, created["name"], say=say, warn=warn,
                              waiting=waiting)
    except KeyboardInterrupt:
        note(f"{prog()}: stopped following; job {jid} keeps running in the cloud.")
        note(f"  follow it again: {follow_cmd}")
        note(f"  cancel it:       {cancel_cmd}")
        note(f"  when it has succeeded: {job.hint()}")
        return 130
    finish(ended, tail, say)
    job.bring_home(storage, say)
    return 0


def make_plan(job, args, region, image, machine, accelerator, named=True):
    """Where and how JOB runs; NAMED (its display name and staging folder)
    once its defaults are decided (job.decide)."""
    generation = generations.wanted(args.generation or job.default_generation())
    display = vertex.display_name(job.name) if named else ""
    bucket_name = settings.bucket()
    return Plan(region=region, image=generations.image_for(image, generation),
                generation=generation, bucket=bucket_name, machine=machine,
                accelerator=accelerator, display=display,
                staging=f"{bucket.job_dir(bucket_name)}/{display}/" if named else "")


def check_project(plan, spot, say):
    """--check: every check of the project for PLAN, one line each, then 0
    when all are OK, else one line saying how many need a fix (exit 1).
    Nothing is staged or sent."""
    lines = check.run(plan, spot)
    for line in lines:
        say(str(line))
    if any(line.status == "FIX" for line in lines):
        raise UserError(check.summary(lines))
    say(check.summary(lines))
    return 0


def create(jobs, body, plan, spot, project):
    """jobs.create(BODY); a refusal for quota names the quota and its page."""
    try:
        return jobs.create(body)
    except cloud.ApiError as e:
        if e.status != "RESOURCE_EXHAUSTED" or not plan.accelerator:
            raise
        gpu, count = plan.accelerator
        metric = vertex.quota_metric(gpu, spot)
        raise UserError(
            f"creating the Vertex AI job failed: HTTP {e.code} {e.status}: the project has "
            f"no quota left for {count} x {gpu}{' on Spot' if spot else ''} in "
            f"{plan.region} ({metric.rsplit('/', 1)[-1]}): ask for more at "
            f"{vertex.quota_page(project, metric)}, or pass -g none or another -g; "
            f"./{prog()} --check shows the quota") from None


def stage(job, plan, storage=None, say=print, dry=False):
    """({input: gs:// URI}, [(local file, URI)]): where the job reads each
    input it was given; uploaded unless DRY (then planned, nothing sent)."""
    inputs, uploads = {}, []
    given = job.given()
    for each in job.inputs:
        if given.get(each.dest) is None:
            continue
        uri, local = bucket.stage(storage, given[each.dest], each.kind, plan.bucket,
                                  join(plan.staging, each.role), what=each.what,
                                  force=job.args.force, say=say, dry=dry)
        inputs[each.dest] = uri
        if local:
            uploads.append((local, uri))
    return inputs, uploads


def describe(plan):
    acc = plan.accelerator
    gpu = f" + {acc[1]} x {acc[0]}" if acc else " (no GPU)"
    return f"{plan.machine}{gpu}, DonkeyCar {plan.generation} ({plan.image})"


def job_body(job, plan, inputs, project):
    """The CustomJob: JOB's module with the local script's arguments, in gs://;
    its environment names the GPU it was sent with (the job checks it is
    there) and PROJECT's W&B settings, never a key."""
    labels = {"tool": "robocar-trainer", "donkeycar": plan.generation,
              **job.labels(inputs)}
    env = job.container_env(project)
    if plan.accelerator:
        env["TRAINER_ACCELERATOR"] = "{}:{}".format(*plan.accelerator)
    return vertex.job_body(display_name=plan.display, image=plan.image,
                           module=job.module, args=job.argv(inputs),
                           machine=plan.machine, accelerator=plan.accelerator,
                           spot=job.args.spot, output_dir=plan.staging, labels=labels,
                           env=env)


def dry_run(job, plan, storage, say, note):
    """Print the body and the gcloud equivalent; upload and send nothing. The
    inputs are checked where they are (here, or in the bucket)."""
    project = settings.project() or cloud.gcloud_project()
    inputs, uploads = stage(job, plan, storage, dry=True)
    body = job_body(job, plan, inputs, project)
    say(json.dumps(body, indent=2))
    labels = ",".join(f"{k}={v}" for k, v in body["labels"].items())
    command = ["gcloud", "ai", "custom-jobs", "create", "--region", plan.region]
    command += ["--project", project] if project else []
    command += ["--display-name", body["displayName"], "--labels", labels,
                "--config", "job.yaml"]
    for local, uri in uploads:
        note(f"{prog()}: would upload {local} to {uri} (unless already there)")
    note(f"{prog()}: dry run: nothing was uploaded or sent. To send the same job "
         "with gcloud, save the \"jobSpec\" object printed above as job.yaml, then run:")
    note("  " + shlex.join(command))
    return 0


def finish(job, tail, say):
    """Report how the job ended: one line of why when it did not succeed."""
    jid, state = vertex.job_id(job), job.get("state")
    waited, ran = vertex.durations(job)
    if state != "JOB_STATE_SUCCEEDED":
        vertex_error = (job.get("error") or {}).get("message", "").split(". ")[0]
        reason = tail.last_error or vertex_error or "no error was reported"
        raise UserError(f"job {jid} {vertex.describe_state(state)}: {reason}: see its "
                        f"log above, or {vertex.console_url(job)}")
    say(f"job {jid} succeeded: {vertex.minutes(ran)} on the machine after "
        f"{vertex.minutes(waited)} waiting for it")
