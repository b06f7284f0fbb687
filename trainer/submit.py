"""Run a job in the cloud: what submit_cloud_train.sh and
submit_cloud_makemovie.sh do, step by step.

    python -m trainer.cli submit --archive wip.tgz -g NVIDIA_TESLA_T4:1 --wait
    python -m trainer.cli submit-movie --model models/pilot-wip.h5 --end 60 --wait

settings (REGION, the image of the DonkeyCar generation asked for, bucket,
project, credentials) -> the job's inputs into the bucket unless they are
there -> one Vertex AI CustomJob running the job's own module with the
arguments the local script would pass, gs:// URIs instead of paths ->
without --wait, how to follow it; with --wait, its states and log lines
until it ends, then its outputs home.

What differs between jobs is a small class: Train (`trainer.task`, the
model files into ./models) and Movie (`trainer.movie`, the mp4 into OUT).
"""
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass

from trainer import cloud, generations, tracking, vertex
from trainer.errors import UserError
from trainer.storage import join, parse_uri
from trainer.training import OUTPUTS, default_model_name

LOCAL_MODELS = "models"          # -w downloads here, relative to the car folder
MOVIES = "movies"                # the bucket's folder for movies


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
    from trainer import gcs

    region = cloud.require("REGION")
    if not re.match(r"^[a-z]+(-[a-z]+)+\d+$", region):
        raise UserError(f"REGION={region} is not a Google Cloud region: export "
                        "REGION=europe-west1 (or another Vertex AI region)")
    image = cloud.require("TRAINER_IMAGE", ", the image ./build_image.sh pushes")
    generation = generations.wanted(args.generation or job.default_generation())
    image = generations.image_for(image, generation)
    bucket = gcs.bucket_from_env()
    job.prepare(bucket)
    machine = vertex.check_machine(args.machine or vertex.MACHINE)
    accelerator = vertex.parse_accelerator(args.accelerator or vertex.ACCELERATOR)
    display = vertex.display_name(job.name)
    plan = Plan(region=region, image=image, generation=generation, bucket=bucket,
                machine=machine, accelerator=accelerator, display=display,
                staging=f"{cloud.job_dir(bucket)}/{display}/")
    if args.dry_run:
        return dry_run(job, plan, say, note)

    from trainer.storage import Storage
    storage = Storage(connect=gcs.connect)
    creds, project = cloud.credentials_and_project()     # before anything is sent
    jobs = vertex.Jobs(cloud.api("aiplatform", "v1", cloud.aiplatform_endpoint(region),
                                 creds), project, region)
    job.refuse_overwrites(storage, plan)
    inputs = job.stage(storage, plan, say)
    created = jobs.create(job_body(job, plan, inputs))
    jid = vertex.job_id(created)
    follow_cmd, cancel_cmd = vertex.gcloud_hints(created, region, project)
    say(f"created Vertex AI job {jid} ({display}) in {region}: {describe(plan)}")
    say(f"  console: {vertex.console_url(created)}")
    if not args.wait:
        say(f"  follow:  {follow_cmd}")
        say(f"  cancel:  {cancel_cmd}")
        say(f"  then:    {job.hint(plan)}")
        return 0

    logs = cloud.api("logging", "v2", cloud.logging_endpoint(), creds)
    tail = vertex.LogTail(logs, project, jid)
    try:
        ended = vertex.follow(jobs, tail, created["name"], say=say,
                              warn=lambda m: note(f"{_prog()}: warning: {m}"))
    except KeyboardInterrupt:
        note(f"{_prog()}: stopped following; job {jid} keeps running in the cloud.")
        note(f"  follow it again: {follow_cmd}")
        note(f"  cancel it:       {cancel_cmd}")
        note(f"  when it has succeeded: {job.hint(plan)}")
        return 130
    finish(ended, tail, say)
    job.bring_home(storage, plan, say)
    return 0


def describe(plan):
    acc = plan.accelerator
    gpu = f" + {acc[1]} x {acc[0]}" if acc else " (no GPU)"
    return f"{plan.machine}{gpu}, DonkeyCar {plan.generation} ({plan.image})"


def job_body(job, plan, inputs):
    """The CustomJob: JOB's module with the local script's arguments, in gs://."""
    labels = {"tool": "robocar-trainer", "donkeycar": plan.generation,
              **job.labels(inputs)}
    return vertex.job_body(display_name=plan.display, image=plan.image,
                           module=job.module, args=job.module_args(inputs),
                           machine=plan.machine, accelerator=plan.accelerator,
                           spot=job.args.spot, output_dir=plan.staging, labels=labels,
                           env=job.container_env)


def dry_run(job, plan, say, note):
    """Print the body and the gcloud equivalent; read and send nothing."""
    inputs, uploads = job.planned(plan)
    body = job_body(job, plan, inputs)
    say(json.dumps(body, indent=2))
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "").strip()
    labels = ",".join(f"{k}={v}" for k, v in body["labels"].items())
    command = ["gcloud", "ai", "custom-jobs", "create", "--region", plan.region]
    command += ["--project", project] if project else []
    command += ["--display-name", body["displayName"], "--labels", labels,
                "--config", "job.yaml"]
    for local, uri in uploads:
        note(f"{_prog()}: would upload {local} to {uri} (unless already there)")
    note(f"{_prog()}: dry run: nothing was uploaded or sent. The same job with gcloud, "
         "the \"jobSpec\" above saved as job.yaml:")
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


# -- the jobs ------------------------------------------------------------------

class Train:
    """submit_cloud_train.sh: trainer.task with local_train.sh's arguments."""
    module = "trainer.task"

    def __init__(self, args):
        self.args = args

    def default_generation(self):
        return None                      # this machine's DonkeyCar

    def prepare(self, bucket):
        """Check the flags that need no I/O; fix the output and the name."""
        args = self.args
        self.output = (args.output or f"gs://{bucket}/models").rstrip("/")
        if parse_uri(self.output).scheme != "gs":
            raise UserError(f"-o {self.output}: a cloud job can only write to gs://: "
                            f"give gs://{bucket}/models, or leave -o out")
        self.bucket = bucket
        self.name = args.model_name or default_model_name(args.archive)
        self.container_env = tracking.job_env()     # W&B settings; never the API key

    def planned(self, plan):
        """(inputs, uploads) a dry run shows, found without reading anything."""
        args = self.args
        inputs = {"archive": planned_uri(args.archive, plan.bucket, "training"),
                  "transfer": None}
        if args.transfer:
            inputs["transfer"] = planned_model(args.transfer, plan, "transfer")
        uploads = [(local, inputs[key]) for key, local in
                   (("archive", args.archive), ("transfer", args.transfer))
                   if local and os.path.isfile(local) and local != inputs[key]]
        return inputs, uploads

    def refuse_overwrites(self, storage, plan):
        """The job would refuse, but only after a machine was paid for: ask first."""
        if self.args.force:
            return
        name, output = self.name, self.output
        targets = {join(output, name + ext) for ext in OUTPUTS}
        taken = sorted(r.uri for r in storage.list(join(output, name + "."))
                       if r.uri in targets)
        if taken:
            raise UserError(f"{taken[0]} already exists: pass -f to replace the model, "
                            "or -m NAME to train another")
        if self.args.wait:
            local = [os.path.join(LOCAL_MODELS, name + ext) for ext in OUTPUTS]
            here = [p for p in local if os.path.exists(p)]
            if here:
                raise UserError(f"{here[0]} already exists and -w would replace it: "
                                "pass -f to replace it, or -m NAME to train another")

    def stage(self, storage, plan, say):
        args = self.args
        return {"archive": stage_archive(storage, args.archive, plan.bucket, args.force,
                                         say),
                "transfer": stage_model(storage, args.transfer, "transfer model", plan,
                                        "transfer", say) if args.transfer else None}

    def module_args(self, inputs):
        args = self.args
        task = ["--archive", inputs["archive"], "--output", self.output]
        if args.model_name:
            task += ["--model-name", args.model_name]
        if args.type:
            task += ["--type", args.type]
        if inputs["transfer"]:
            task += ["--transfer", inputs["transfer"]]
        if args.force:
            task += ["--force"]
        return task

    def labels(self, inputs):
        return {"model": self.name,
                "archive": default_model_name(inputs["archive"])[len("pilot-"):]}

    def hint(self, plan):
        out = parse_uri(self.output)
        if out.path.strip("/") == "models" and out.bucket == plan.bucket:
            return f"./download_models.sh -m {self.name}"
        return f"gcloud storage cp '{join(self.output, self.name)}.*' {LOCAL_MODELS}/"

    def bring_home(self, storage, plan, say):
        try:
            download(storage, self.output, plan.bucket, self.name, self.args.force, say)
        except UserError as e:
            raise UserError(f"the job succeeded, but its models did not arrive in "
                            f"./{LOCAL_MODELS}: {e}") from None


class Movie:
    """submit_cloud_makemovie.sh: trainer.movie with local_makemovie.sh's
    arguments; the mp4 goes to gs://BUCKET/movies/, and home with --wait."""
    module = "trainer.movie"
    container_env = {}           # movies are not tracked

    def __init__(self, args):
        self.args = args

    def default_generation(self):
        """The generation in the card beside a local MODEL (MODEL.json): the
        image that loads the model best is the one that trained it."""
        model = self.args.model
        if model.startswith("gs://") or not os.path.isfile(model):
            return None
        found = generations.card_generation(os.path.splitext(model)[0] + ".json")
        return found if found in generations.GENERATIONS else None

    def prepare(self, bucket):
        args = self.args
        self.start = _record("-s", args.start, 0)
        self.end = _record("-e", args.end, -1)
        if self.end != -1 and self.end <= self.start:
            raise UserError(f"-s {self.start} -e {self.end}: END must be after START, "
                            f"e.g. -s {self.start} -e {self.start + 100}")
        out = args.output or os.path.splitext(parse_uri(args.model).name)[0] + ".mp4"
        if out.endswith("/") or os.path.basename(out) in ("", ".", ".."):
            raise UserError(f"-o {out} names no file: give e.g. -o pilot-wip.mp4")
        if parse_uri(out).scheme == "gs":       # -o gs://...: there, and home by name
            self.remote, self.home = out, parse_uri(out).name
        else:
            self.remote, self.home = f"gs://{bucket}/{MOVIES}/{os.path.basename(out)}", out
        self.name = "movie-" + os.path.splitext(parse_uri(self.remote).name)[0]

    def planned(self, plan):
        args = self.args
        inputs = {"archive": planned_uri(args.archive, plan.bucket, "training"),
                  "model": planned_model(args.model, plan, "model")}
        uploads = [(local, inputs[key]) for key, local in
                   (("archive", args.archive), ("model", args.model))
                   if os.path.isfile(local) and local != inputs[key]]
        return inputs, uploads

    def refuse_overwrites(self, storage, plan):
        if self.args.force:
            return
        if storage.exists(self.remote):
            raise UserError(f"{self.remote} already exists: pass -f to replace it, or "
                            "-o another name")
        if self.args.wait and os.path.exists(self.home):
            raise UserError(f"{self.home} already exists and -w would replace it: pass "
                            "-f to replace it, or -o another name")

    def stage(self, storage, plan, say):
        args = self.args
        return {"archive": stage_archive(storage, args.archive, plan.bucket, args.force,
                                         say),
                "model": stage_model(storage, args.model, "model", plan, "model", say)}

    def module_args(self, inputs):
        movie = ["--archive", inputs["archive"], "--model", inputs["model"],
                 "--output", self.remote]
        if self.start:
            movie += ["--start", str(self.start)]
        if self.end != -1:
            movie += ["--end", str(self.end)]
        if self.args.plain:
            movie += ["--plain"]
        if self.args.force:
            movie += ["--force"]
        return movie

    def labels(self, inputs):
        return {"kind": "movie",
                "model": os.path.splitext(parse_uri(inputs["model"]).name)[0],
                "archive": default_model_name(inputs["archive"])[len("pilot-"):]}

    def hint(self, plan):
        return f"gcloud storage cp {self.remote} {shlex.quote(self.home)}"

    def bring_home(self, storage, plan, say):
        from trainer.transfer import human
        try:
            remote = storage.download(self.remote, self.home)
        except UserError as e:
            raise UserError(f"the job succeeded, but its movie did not arrive at "
                            f"{self.home}: {e}") from None
        say(f"downloaded {self.home} from {self.remote} ({human(remote.size)}; verified)")


def _record(flag, value, default):
    """A record number given with FLAG, as an int (DEFAULT when not given)."""
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < 0:
        raise UserError(f"{flag} {value}: give a record number (0 or more), e.g. "
                        f"{flag} 100")
    return number


# -- inputs --------------------------------------------------------------------

def planned_uri(given, bucket, folder):
    """Where a dry run expects GIVEN: as is for gs://, else in the bucket's FOLDER
    (a local file is uploaded there; a bare name is looked up there)."""
    if given.startswith("gs://"):
        return given
    if not os.path.isfile(given) and ("/" in given or os.path.isdir(given)):
        raise UserError(f"{given} not found: check the path")
    return f"gs://{bucket}/{folder}/{os.path.basename(given)}"


def planned_model(given, plan, folder):
    """Where a dry run expects the model GIVEN: a local file travels with the
    job (under its staging FOLDER); a name or gs:// URI is used from the bucket."""
    if os.path.isfile(given):
        return f"{plan.staging}{folder}/{os.path.basename(given)}"
    return planned_uri(given, plan.bucket, "models")


def stage_archive(storage, given, bucket, force, say):
    """The archive's gs:// URI, uploading a local one unless the bucket has it
    (a different archive of that name there is replaced only with FORCE)."""
    from trainer.transfer import upload_archive

    where = storage.resolve(given, "training", "archive", suffix=".tgz",
                            hint=", or make it with make_tub_archive.sh")
    if where.startswith("gs://"):
        if not storage.exists(where):
            raise UserError(f"archive {where} not found: check the name, or upload "
                            "it with upload_tub_archive.sh")
        return where
    return upload_archive(storage, where, bucket, force=force, say=say).uri


def stage_model(storage, given, what, plan, folder, say):
    """The .h5 model's gs:// URI. A local one is used from the bucket's models/
    when identical there; else it travels with the job, under its staging
    FOLDER (the bucket's models/ is never changed)."""
    from trainer.storage import checksums

    where = storage.resolve(given, "models", what, suffix=".h5")
    if where.startswith("gs://"):
        if not storage.exists(where):
            raise UserError(f"{what} {where} not found: check the name")
        return where
    if not os.path.isfile(where):
        raise UserError(f"{what} {where} not found: check the path")
    name = os.path.basename(where)
    shared = f"gs://{plan.bucket}/models/{name}"
    remote = storage.stat(shared)
    if remote is not None and remote.matches(checksums(where)):
        say(f"{shared} is identical to {where}: not uploaded again")
        return shared
    uri = f"{plan.staging}{folder}/{name}"
    storage.upload(where, uri)
    say(f"uploaded {where} to {uri}")
    return uri


# -- bringing models home ------------------------------------------------------

def download(storage, output, bucket, name, force, say):
    out = parse_uri(output)
    if out.path.strip("/") == "models":           # the bucket layout: reuse download_models
        from trainer.transfer import download_models
        return download_models(storage, out.bucket, name, LOCAL_MODELS, force=force,
                               say=say)
    paths = []
    for ext in OUTPUTS:
        target = os.path.join(LOCAL_MODELS, name + ext)
        storage.download(join(output, name + ext), target)
        say(f"downloaded {target}")
        paths.append(target)
    return paths


def _prog():
    from trainer.cli import prog
    return prog()
