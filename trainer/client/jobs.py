"""The cloud jobs, each declared once: the module it runs, the job's own
parser (whose flags the submit script takes and passes through), the inputs
that travel to the bucket, and the outputs that come home.

    job = Train(args)      # submit_cloud_train.sh: trainer.task, models/NAME.*
    job = Movie(args)      # submit_cloud_makemovie.sh: trainer.movie, movies/NAME.mp4

trainer/submit.py runs either one: prepare, stage the inputs, create the
job with job.argv(inputs), and with -w bring the outputs home.
"""
import os
import shlex
from dataclasses import dataclass

from trainer.core import bucket, flags, generations
from trainer.core.errors import UserError
from trainer.core.names import plain_name
from trainer.core.storage import human, join, parse_uri
from trainer.job import tracking


@dataclass(frozen=True)
class Input:
    """A flag of the job whose value is a file: it travels as a gs:// URI."""
    dest: str              # the flag's name in the job's parser
    kind: bucket.Kind      # where a bare name is looked up
    what: str              # in messages
    role: str              # a local model travels in the job's staging folder ROLE/


def passthrough(parser, args, replaced):
    """The job parser's flags as ARGS holds them, long form, with the values
    in REPLACED instead (the inputs' gs:// URIs, the output); defaults left out."""
    argv = []
    for action in parser._actions:           # argparse has no public list of them
        if not action.option_strings or action.dest == "help":
            continue
        value = replaced.get(action.dest, getattr(args, action.dest, None))
        if value is None or value is False or value == action.default:
            continue
        flag = action.option_strings[-1]     # the long form, --model-name
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


class Train:
    """submit_cloud_train.sh: trainer.task with local_train.sh's flags."""
    module = "trainer.task"
    parser = staticmethod(flags.train_parser)
    inputs = (Input("archive", bucket.ARCHIVE, "archive", "archive"),
              Input("transfer", bucket.MODEL, "transfer model", "transfer"),
              Input("eval_archive", bucket.ARCHIVE, "evaluation archive", "archive"))

    def __init__(self, args):
        self.args = args

    def default_generation(self):
        return None                      # this machine's DonkeyCar

    def prepare(self, bucket_name):
        """Check the flags that need no I/O; fix the output."""
        args = flags.settle_train(self.args)
        if len(args.archive or []) > 1:
            raise UserError("a cloud job trains on one archive: pack the tubs into one "
                            "with make_tub_archive.sh -t TUB -t TUB")
        self.output = (args.output or bucket.folder(bucket_name, bucket.MODELS)).rstrip("/")
        if parse_uri(self.output).scheme != "gs":
            models = bucket.folder(bucket_name, bucket.MODELS)
            raise UserError(f"-o {self.output}: a cloud job can only write to gs://: "
                            f"give {models}, or leave -o out")
        self.bucket = bucket_name
        tracking.job_env(None)      # refuses W&B without a key secret, before any I/O

    def decide(self, storage, say, dry=False):
        """The defaults that need the files: the newest archive, and the model's
        name, moved on past those in the output (and ./models with -w); a dry
        run (DRY) lists nothing and shows the first name."""
        args = self.args
        args.archive = args.archive or [bucket.newest_archive(storage, say)]
        self.name = flags.model_name(args, (), say)      # a plain name, before any I/O
        if not (args.model_name or dry):
            taken = bucket.model_names_in(storage, self.output)
            if args.wait:
                taken |= bucket.model_names_in(storage, bucket.LOCAL_MODELS)
            self.name = flags.model_name(args, taken, say)  # the job is told it

    def container_env(self, project):
        """The job's environment: W&B settings of PROJECT, never the API key."""
        return tracking.job_env(project)

    def given(self):
        """{input's dest: what the user gave}, for the inputs given."""
        return {"archive": self.args.archive[0], "transfer": self.args.transfer,
                "eval_archive": self.args.eval_archive}

    def argv(self, inputs):
        replaced = {"output": self.output, "archive": [inputs["archive"]],
                    "model_name": self.name}
        for each in ("transfer", "eval_archive"):
            if inputs.get(each):
                replaced[each] = inputs[each]
        return passthrough(flags.train_parser(), self.args, replaced)

    def refuse_overwrites(self, storage):
        """The job would refuse, but only after a machine was paid for: ask first."""
        if self.args.force:
            return
        name, output = self.name, self.output
        targets = set(bucket.model_files(output, name).values())
        taken = sorted(r.uri for r in storage.list(f"{output}/{name}.") if r.uri in targets)
        if taken:
            raise UserError(f"{taken[0]} already exists: pass -f to replace the model, "
                            "or -m NAME to train another")
        if self.args.wait:
            local = bucket.model_files(bucket.LOCAL_MODELS, name).values()
            here = [p for p in local if os.path.exists(p)]
            if here:
                raise UserError(f"{here[0]} already exists and -w would replace it: "
                                "pass -f to replace it, or -m NAME to train another")

    def labels(self, inputs):
        return {"model": self.name, "archive": bucket.archive_stem(inputs["archive"])}

    def hint(self):
        return bucket.download_hint(self.output, self.bucket, self.name)

    def bring_home(self, storage, say):
        try:
            bucket.bring_models_home(storage, self.output, self.name, self.args.force, say)
        except UserError as e:
            raise UserError(f"the job succeeded, but its models did not arrive in "
                            f"./{bucket.LOCAL_MODELS}: {e}") from None


class Movie:
    """submit_cloud_makemovie.sh: trainer.movie with local_makemovie.sh's
    flags; the mp4 goes to gs://BUCKET/movies/, and home with -w."""
    module = "trainer.movie"
    parser = staticmethod(flags.movie_parser)
    inputs = (Input("archive", bucket.ARCHIVE, "archive", "archive"),
              Input("model", bucket.MODEL, "model", "model"))

    def container_env(self, project):
        return {}                # movies are not tracked

    def __init__(self, args):
        self.args = args

    def default_generation(self):
        """The generation in the card beside a local MODEL (MODEL.json): the
        image that loads the model best is the one that trained it."""
        model = self.args.model
        if not model or model.startswith("gs://") or not os.path.isfile(model):
            return None
        found = generations.card_generation(os.path.splitext(model)[0] + bucket.CARD)
        return found if found in generations.GENERATIONS else None

    def prepare(self, bucket_name):
        args = self.args
        self.start, self.end = flags.record_range(args.start, args.end)
        self.bucket = bucket_name
        if args.output:
            self._where(args.output)             # -o checked before any I/O

    def _where(self, out):
        """Where the movie OUT goes: in the bucket (remote) and home."""
        if out.endswith("/") or os.path.basename(out) in ("", ".", ".."):
            raise UserError(f"-o {out} names no file: give e.g. -o pilot-wip.mp4")
        if parse_uri(out).scheme == "gs":       # -o gs://...: there, and home by name
            self.remote, self.home = out, parse_uri(out).name
        else:
            self.remote = f"{bucket.folder(self.bucket, bucket.MOVIES)}/{os.path.basename(out)}"
            self.home = out
        plain_name(parse_uri(self.remote).name, "-o", "pilot-wip.mp4")   # movies/NAME
        self.name = "movie-" + os.path.splitext(parse_uri(self.remote).name)[0]

    def decide(self, storage, say, dry=False):
        """The defaults that need the files: the newest model and archive, the
        movie's name (moved on past the movies in the bucket, and here with -w;
        a dry run (DRY) lists nothing there)."""
        args = self.args
        if args.model is None:
            name, where = bucket.newest_model(storage, say, suffix=bucket.H5,
                                              bucket_too=not dry)
            if name is None:
                raise bucket.no_model(bucket.LOCAL_MODELS)
            args.model = join(where, name + bucket.H5)
        args.archive = args.archive or bucket.newest_archive(storage, say)
        taken = set()
        if not args.output and not dry:
            taken = bucket.names_in(storage, bucket.folder(self.bucket, bucket.MOVIES),
                                    flags.MOVIE)
            if args.wait:
                taken |= bucket.names_in(storage, ".", flags.MOVIE)
        self._where(args.output or flags.default_output(args.model, args.force, taken, say))

    def given(self):
        return {"archive": self.args.archive, "model": self.args.model}

    def argv(self, inputs):
        replaced = {"output": self.remote, "archive": inputs["archive"],
                    "model": inputs["model"]}
        return passthrough(flags.movie_parser(), self.args, replaced)

    def refuse_overwrites(self, storage):
        if self.args.force:
            return
        if storage.exists(self.remote):
            raise UserError(f"{self.remote} already exists: pass -f to replace it, or "
                            "-o another name")
        if self.args.wait and os.path.exists(self.home):
            raise UserError(f"{self.home} already exists and -w would replace it: pass "
                            "-f to replace it, or -o another name")

    def labels(self, inputs):
        return {"kind": "movie",
                "model": os.path.splitext(parse_uri(inputs["model"]).name)[0],
                "archive": bucket.archive_stem(inputs["archive"])}

    def hint(self):
        return f"gcloud storage cp {self.remote} {shlex.quote(self.home)}"

    def bring_home(self, storage, say):
        try:
            remote = storage.download(self.remote, self.home)
        except UserError as e:
            raise UserError(f"the job succeeded, but its movie did not arrive at "
                            f"{self.home}: {e}") from None
        say(f"downloaded {self.home} from {self.remote} ({human(remote.size)}; "
            "verified)")
