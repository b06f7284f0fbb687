"""One training run, decided once and passed along: what training.py's steps
read and fill in, and what card.py writes.

    plan = Plan.from_args(args, say=print)    # names, inputs, outputs: from the flags
    plan.model_type                            # set once, when the config is loaded
    plan.steps("train")                        # a timed step (seconds in the card)

The model name comes from flags.model_name(), the type from
modeltypes.trainable(); nothing else decides either.
"""
import contextlib
import time
from dataclasses import dataclass, field

from trainer.core import bucket, points


class Steps:
    """Wall seconds per step, for the card (and make bench):
    with plan.steps("train"): ...
    Each step's start is a named moment (core/points.py): step:train."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, name):
        points.point(f"step:{name}")
        t = time.time()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0) + time.time() - t, 2)


@dataclass
class Results:
    """What the run's steps found, in the order they find it."""
    archives: list = field(default_factory=list)  # [{"uri", "sha256", "bytes"}]
    gpus: list = field(default_factory=list)      # the GPUs TensorFlow saw
    tubs: list = field(default_factory=list)      # TubReport of each training tub
    history: dict = field(default_factory=dict)   # DonkeyCar's, per epoch
    split: dict = field(default_factory=dict)     # {"train": N, "validation": M}
    held_out: list = field(default_factory=list)  # [{"tub", "records", "count"}]
    baseline: dict = field(default_factory=dict)  # training labels: {"means", "spreads"}
    frames: dict = field(default_factory=dict)    # which frames evaluation used
    parity: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)   # {format: array}, for the plots
    variants: dict = field(default_factory=dict)  # fp16/int8: built? calibration, why not
    verdict: dict = field(default_factory=dict)   # verdict.judge() on the unseen frames


@dataclass
class Plan:
    """A training run: decided from the flags (from_args), then the config."""
    name: str                     # the model's name: flags.model_name()
    archives: list                # training archives, resolved (paths or gs:// URIs)
    output: str                   # folder or gs:// prefix for the model set
    outputs: dict                 # {suffix: path or URI} of the set (bucket.OUTPUTS)
    eval_archive: str = None      # -E: evaluation frames from this archive
    transfer: str = None          # -T: the .h5 to start from
    overrides: list = field(default_factory=list)   # -c KEY=VALUE, as given
    type_given: str = None        # --type, checked against DonkeyCar's list
    force: bool = False
    trusted: bool = False         # --trust-model-code
    say: object = print
    start: float = field(default_factory=time.time)
    steps: Steps = field(default_factory=Steps)
    results: Results = field(default_factory=Results)
    # Set as the run goes: its scratch folder, the archive's car folder and
    # tubs, the config loaded there, and the type it trains.
    work: str = None
    car: str = None
    tub_paths: list = field(default_factory=list)
    train_frames: list = field(default_factory=list)  # [(tub path, [records trained on])]
    cfg: object = None
    model_type: str = None

    @classmethod
    def from_args(cls, args, say=print):
        """The plan of trainer.task's parsed ARGS (flags.train_args)."""
        return cls(name=args.model_name, archives=list(args.archive), output=args.output,
                   outputs=bucket.model_files(args.output, args.model_name),
                   eval_archive=args.eval_archive, transfer=args.transfer,
                   overrides=list(args.set or []), type_given=args.type,
                   force=args.force, trusted=args.trust_model_code, say=say)

    def local_files(self):
        """{suffix: path} of the set in the scratch folder, before publishing."""
        return bucket.model_files(f"{self.work}/out", self.name)
