"""Which model is best: N models on the same unseen frames, ranked, one page.

    python -m trainer.job.compare pilot-a pilot-b pilot-c          # compare_models.sh
    python -m trainer.job.compare pilot-a pilot-b -E today.tgz
    ranked = compare(["pilot-a", "pilot-b"], storage, "compare.html")

Each NAME is a model in ./models (or a path to one of its files), else in
gs://$STEERING_BUCKET_NAME/models/, its files checked against its card. The
frames (compare_frames.py): every record of the -E archive, or else the
held-out frames the runs share, which their cards name; runs of different
archives share none, and are refused in one line. Each model runs through
the DonkeyCar pilot the car would use (its .tflite, as the verdict does) on
every one of those frames and is judged by the verdict's rule against its
training's constant guess and zero (verdict.judge); the ranking puts the
models clearly better than a constant first, then orders by steering error.
Latency per format is measured here on SAMPLE frames. A model made for
another image size, another DonkeyCar generation, inputs besides the camera,
or one that trained on the -E frames, is listed with why it was not
compared. The report: a table on the console, and one HTML page (the plots
embedded, compare_page.py). The archive's config.py runs here, as it does
in training: compare models of archives you trust.
"""
import copy
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field

import numpy as np

from trainer.core import (bucket, console, donkey, gcs, generations, modeltypes, prices,
                          settings, sweeps)
from trainer.core.errors import ArgumentParser, UserError, run_main
from trainer.core.names import next_free, plain_name
from trainer.core.pilots import load_pilot, run_pilot, runtime_missing
from trainer.core.storage import Storage, human, join, parse_uri, sha256, shown
from trainer.job import compare_frames, compare_page, verdict
from trainer.job.evaluate import images_of
from trainer.job.training import drive_line

SAMPLE = 50          # frames each format is timed on
CHUNK = 256          # frames in memory at a time
REPORT = "compare"   # compare.html, compare-2.html, ...
# What builds a model besides the frame size (DonkeyCar's get_model_by_type):
# taken from each model's card, so its pilot is the one it was trained as.
MODEL_KEYS = ("SEQUENCE_LENGTH", "MEM_DEPTH", "MODEL_CATEGORICAL_MAX_THROTTLE_RANGE")
SIZE = ("IMAGE_W", "IMAGE_H", "IMAGE_DEPTH")


def parser():
    p = ArgumentParser(prog="compare_models.sh", allow_abbrev=False,
                       description="N models on the same unseen frames, ranked")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="a model in ./models (or a path to one of its files), else in "
                   "the bucket's models/")
    p.add_argument("-E", "--eval-archive", metavar="ARCHIVE",
                   help="compare on every frame of this archive (default: the held-out "
                   "frames the runs share)")
    p.add_argument("-o", "--output", metavar="REPORT",
                   help=f"the HTML page (default: {REPORT}.html, moved on to "
                   f"{REPORT}-2.html, ... when taken)")
    p.add_argument("-f", "--force", action="store_true",
                   help="replace an existing REPORT (default: refuse)")
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if not args.names:
        p.error("name the models to compare, e.g. compare_models.sh pilot-wip pilot-wip-2")
    out = report_path(args.output, args.force)       # cheap checks first
    for given in args.names:
        _name_and_folder(given, None)
    donkey.quiet()
    compare(args.names, Storage(connect=gcs.connect), out, args.eval_archive)
    return 0


def report_path(given, force, say=print):
    """-o REPORT (.html), else compare.html here, moved on past those taken."""
    if given:
        if not given.endswith(".html") or os.path.isdir(given):
            raise UserError(f"-o {given}: the report is one .html file, e.g. -o "
                            "compare.html")
        if os.path.exists(given) and not force:
            raise UserError(f"{given} already exists: pass -f to replace it, or -o "
                            "another name")
        return given
    taken = bucket.names_in(None, ".", ".html")
    name = REPORT if force else next_free(REPORT, taken)
    if name != REPORT:
        say(f"{REPORT}.html exists: writing {name}.html (-o to choose, -f to replace it)")
    return name + ".html"


@dataclass
class Model:
    """One model of the comparison: where its files are, its card, and what
    the comparison found (or why it was left out)."""
    name: str
    folder: str                  # its files, here
    where: str                   # where it came from, as shown
    card: dict = None
    why: str = None              # not compared: why
    judged: dict = None          # verdict.judge() on the frames
    predicted: object = None     # (n, 2) steering, throttle
    latency: dict = field(default_factory=dict)    # {format: ms, or None}
    params: int = None

    def path(self, suffix):
        return os.path.join(self.folder, self.name + suffix)

    @property
    def model_type(self):
        return self.card["model_type"]

    def config(self, key):
        return (self.card.get("config") or {}).get(key)


@dataclass
class Result:
    """What a comparison found, for its page (compare_page.py)."""
    ranked: list                 # the compared Models, best first
    left_out: list               # the Models not compared, each with .why
    frames: object               # compare_frames.Frames
    driven: object               # (n, 2) the frames' labels
    order: list                  # [(tub, path, record)] of each frame

    @property
    def rows(self):
        return [row(i, m) for i, m in enumerate(self.ranked, start=1)]

    @property
    def conclusion(self):
        return conclusion(self.ranked)


def compare(given, storage, out, eval_archive=None, where=None, say=print):
    """Compare the models GIVEN (names or paths; WHERE: their folder, default
    ./models, else the bucket) on -E EVAL_ARCHIVE's frames or on the held-out
    frames they share; write the page OUT and say the table. Returns the
    compared models, best first."""
    with tempfile.TemporaryDirectory(prefix="robocar-compare-") as work:
        models = [_locate(storage, g, where, work) for g in given]
        seen = set()
        for m in models:
            if m.name in seen:
                raise UserError(f"{m.name} is named twice: name each model once")
            seen.add(m.name)
            m.why = m.why or _unfit_here(m)
        candidates = [m for m in models if not m.why]
        frames = compare_frames.eval_frames(storage, eval_archive, candidates, work) \
            if eval_archive else compare_frames.held_out_frames(storage, candidates, work)
        for m in candidates:
            m.why = m.why or _unfit_for(m, frames)
        chosen = [m for m in models if not m.why]
        if chosen and not frames.count:
            raise UserError(f"no frames to compare on: {frames.source} has no live "
                            "record that the config's TRAIN_FILTER keeps")
        if not chosen:
            raise UserError("nothing to compare: " + "; ".join(
                f"{m.name} {m.why}" for m in models))
        say(f"comparing {len(chosen)} model{'s' if len(chosen) > 1 else ''} on "
            f"{frames.count} frames: {frames.source}")
        with console.filtered():            # TFLite's and TensorFlow's chatter
            driven, order = _evaluate(chosen, frames)
        ranked = sorted(chosen, key=rank_key)
        left_out = [m for m in models if m.why]
        for line in table(ranked, left_out):
            say(line)
        compare_page.write(out, Result(ranked, left_out, frames, driven, order))
        say(f"report: {out}")
        for line in conclusion(ranked):
            say(line)
        return ranked


def rank_key(m):
    """The verdict's rule first (clearly better than a constant guess), then
    the steering error on these frames."""
    return (not m.judged["better"], m.judged["steering"]["model"], m.name)


def conclusion(ranked):
    best = ranked[0]
    s = best.judged["steering"]
    factor = f", {s['constant'] / s['model']:.1f}x better than a constant guess" \
        if best.judged["better"] and s["model"] > 0 else ""
    out = [f"best: {best.name} ({best.model_type}; steering error {s['model']:.3f}"
           f"{factor})"]
    if best.judged["better"]:
        out.append(drive_line(best.name, best.model_type))
    else:
        out.append("none of them is clearly better than a constant guess on these "
                   "frames: no drive line (more laps or more epochs usually help)")
    return out


# -- the models ---------------------------------------------------------------------

def _name_and_folder(given, where):
    """(name, folder or None) of a NAME as given: a name, or a path to one
    of a model's files (models/pilot.h5 -> models, pilot)."""
    if "/" in given or given.endswith(tuple(bucket.OUTPUTS)):
        return bucket.model_name_of(given), os.path.dirname(given) or where
    return plain_name(given, "NAME", "pilot-wip"), where


def _locate(storage, given, where, work):
    """The model GIVEN: its card and files here (downloaded from the bucket,
    verified, when it is only there)."""
    name, folder = _name_and_folder(given, where)
    folders = [folder] if folder else [bucket.LOCAL_MODELS]
    if folder is None and settings.bucket_is_set():
        folders.append(bucket.folder(settings.bucket(), bucket.MODELS))
    for place in folders:
        if storage.exists(join(place, name + bucket.CARD)):
            return _load(storage, name, place, work)
    shown = " nor in ".join(f"{p.rstrip('/')}/" for p in folders)
    raise UserError(f"no model {name} in {shown} (no {name}{bucket.CARD}): check the "
                    "name; a model's card comes with its files")


def _load(storage, name, place, work):
    """Model NAME of the folder PLACE (local or gs://), its card read and its
    files checked against it; one that fails is kept with why."""
    here = parse_uri(place).scheme != "gs"
    folder = place if here else os.path.join(work, "sets", name)
    m = Model(name, folder, where=place.rstrip("/") + "/")
    card_uri = join(place, name + bucket.CARD)
    size = os.path.getsize(card_uri) if here else storage.stat(card_uri).size
    if size > bucket.CARD_LIMIT:
        m.why = f"has a card of {human(size)}, too big for a model card"
        return m
    os.makedirs(folder, exist_ok=True)
    try:
        with open(storage.fetch(card_uri, folder, "model card"), encoding="utf-8") as f:
            m.card = json.load(f)
        files = bucket.card_files(m.card, name, card_uri)
    except (ValueError, UnicodeDecodeError):
        m.why = "has a card that is not JSON"
        return m
    except UserError as e:
        m.why = f"has a card that cannot be used ({e})"
        return m
    if not isinstance(m.card.get("model_type"), str) or \
            not isinstance(m.card.get("config"), dict):
        m.why = "has a card without its model type or config: train it again"
        return m
    for fmt, suffix in bucket.FORMATS.items():
        entry = files.get(name + suffix)
        if entry is None:
            continue
        local = storage.fetch(join(place, name + suffix), folder, f"{fmt} model") \
            if storage.exists(join(place, name + suffix)) else None
        if local is None or sha256(local) != entry["sha256"]:
            m.why = (f"has a {suffix} that differs from its card (changed since "
                     "training, or cut short)" if local else f"lacks its {suffix}")
            return m
    if name + bucket.TFLITE not in files:
        m.why = f"has no {bucket.TFLITE}, which the comparison runs"
    return m


def _unfit_here(m):
    """Why M cannot be compared on this machine, whatever the frames; or None."""
    try:
        modeltypes.check(m.model_type, "its model type")
    except UserError as e:
        return f"cannot be run here ({e})"
    if not modeltypes.judged_by_camera_alone(m.model_type):
        return (f"is a {modeltypes.base(m.model_type)} model: it needs recorded inputs "
                "besides the camera, which the comparison does not feed")
    model, here = _generation(m.card), generations.local()
    if model and here and model != here:
        return (f"was trained with DonkeyCar {model}; this machine runs {here}, which may "
                f"not load it: compare it where DonkeyCar {model} is installed")
    return None


def _generation(card):
    versions = card.get("versions") if isinstance(card.get("versions"), dict) else {}
    named = versions.get("donkeycar_generation") or versions.get("donkeycar")
    return ".".join(named.split(".")[:2]) if isinstance(named, str) else None


def _unfit_for(m, frames):
    """Why M cannot be judged on FRAMES; or None."""
    size = tuple(getattr(frames.cfg, k, None) for k in SIZE)
    made = tuple(m.config(k) for k in SIZE)
    if made != size:
        return (f"was made for {'x'.join(map(str, made))} frames, and these are "
                f"{'x'.join(map(str, size))} ({frames.archive}): compare models of one "
                "frame size")
    trained = {a.get("sha256") for a in m.card.get("archives") or [] if isinstance(a, dict)}
    if frames.given and frames.sha in trained:
        return f"trained on {frames.archive}: its frames are not unseen for it"
    return None


# -- running them -------------------------------------------------------------------

def _model_cfg(cfg, m):
    """The frames' config with what built M (its card's MODEL_KEYS)."""
    own = copy.copy(cfg)
    for key in MODEL_KEYS:
        value = m.config(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(own, key, value)
    return own


def _baseline(m, driven):
    """(means, spreads) of M's training labels, from its card's verdict; the
    frames' own when the card has none."""
    v = m.card.get("verdict") if isinstance(m.card.get("verdict"), dict) else {}
    try:
        means = [float(v[a]["constant_value"]) for a in verdict.AXES]
        spreads = [float(v[a]["training_spread"]) for a in verdict.AXES]
        return means, spreads
    except (KeyError, TypeError, ValueError):
        return driven.mean(axis=0).tolist(), driven.std(axis=0).tolist()


def _evaluate(models, frames):
    """Every model's .tflite on every frame, judged; latency per format on
    the first SAMPLE frames. Returns (driven, [(tub, path, record)] in order)."""
    cfgs = {m.name: _model_cfg(frames.cfg, m) for m in models}
    pilots = {m.name: load_pilot("tflite", m.model_type, cfgs[m.name], m.path(bucket.TFLITE))
              for m in models}
    predicted = {m.name: [] for m in models}
    labels, order = [], []
    for tub, path, records in frames.unseen:
        for start in range(0, len(records), CHUNK):
            chunk = records[start:start + CHUNK]
            images = images_of(path, chunk, frames.cfg)
            labels.append(verdict.labels(chunk))
            order += [(tub, path, r) for r in chunk]
            for m in models:
                predicted[m.name].append(run_pilot(pilots[m.name], images)[0])
    driven = np.concatenate(labels)
    _, path, records = frames.unseen[0]
    sample = images_of(path, records[:SAMPLE], frames.cfg)
    for m in models:
        m.predicted = np.concatenate(predicted[m.name])
        m.judged = verdict.judge(m.predicted, driven, *_baseline(m, driven))
        _time(m, cfgs[m.name], sample)
    return driven, order


def _time(m, cfg, sample):
    """M's median latency a frame in each format here (None: not here, or
    its runtime is missing), and its parameters (from the .h5)."""
    for fmt, suffix in bucket.FORMATS.items():
        if not os.path.isfile(m.path(suffix)) or runtime_missing(fmt):
            m.latency[fmt] = None
            continue
        pilot = load_pilot(fmt, m.model_type, cfg, m.path(suffix))
        m.latency[fmt] = run_pilot(pilot, sample)[1] * 1000
        if fmt == "h5":
            m.params = int(pilot.interpreter.model.count_params())


# -- what it says -------------------------------------------------------------------

def row(rank, m):
    """The facts of M the table and the page show, as text."""
    card, s, t = m.card, m.judged["steering"], m.judged["throttle"]
    seconds = card.get("seconds") if isinstance(card.get("seconds"), dict) else {}
    cost = prices.card_cost(card)
    files = card.get("files") if isinstance(card.get("files"), dict) else {}
    size = (files.get(m.name + bucket.TFLITE) or {}).get("bytes")
    overrides = [o for o in card.get("overrides") or [] if isinstance(o, str)]
    return {
        "rank": str(rank), "name": m.name, "type": m.model_type,
        "settings": shown(" ".join(overrides)) or "-",
        "steering": f"{s['model']:.3f}",
        "ratio": f"{s['ratio']:.2f}" if s["ratio"] is not None else "-",
        "interval": "{:.2f}-{:.2f}".format(*s["interval"]) if s["interval"] else "-",
        "throttle": f"{t['model']:.3f}",
        "verdict": "clearly better" if m.judged["better"] else "not clearly better",
        "better": m.judged["better"],
        **{f"{fmt}_ms": f"{m.latency[fmt]:.1f}" if m.latency.get(fmt) is not None
           else "-" for fmt in bucket.FORMATS},
        "size": human(size) if isinstance(size, int) else "-",
        "params": f"{m.params:,}" if m.params else "-",
        "epoch": f"{card['best_epoch']}/{card['epochs']}" if all(
            isinstance(card.get(k), int) for k in ("best_epoch", "epochs")) else "-",
        "trained": f"{seconds['train']:.0f} s" if isinstance(seconds.get("train"),
                                                            (int, float)) else "-",
        "cost": prices.shown(cost[0]) if cost else "-",
        "sweep": card["sweep"] if sweeps.ID.match(str(card.get("sweep"))) else None,
        "where": m.where,
    }


COLUMNS = (("rank", "#"), ("name", "model"), ("type", "type"), ("steering", "steering"),
           ("ratio", "/const"), ("throttle", "throttle"), ("verdict", "verdict"),
           ("tflite_ms", "tflite ms"), ("size", "size"), ("params", "params"),
           ("epoch", "epoch"), ("trained", "trained"), ("cost", "cost"))


def table(ranked, left_out):
    """The console's table: one line per model, best first, then the rest."""
    rows = [dict((k, h) for k, h in COLUMNS)] + [row(i, m) for i, m in
                                                enumerate(ranked, start=1)]
    widths = {k: max(len(str(r[k])) for r in rows) for k, _ in COLUMNS}
    lines = ["  ".join(str(r[k]).ljust(widths[k]) for k, _ in COLUMNS).rstrip()
             for r in rows]
    lines.append("steering, throttle: mean error on these frames; /const: steering error "
                 "divided by a constant guess's (below 0.9 at the top of its 95% "
                 "interval: clearly better)")
    for m in left_out:
        lines.append(f"not compared: {m.name} {m.why}")
    return lines


if __name__ == "__main__":
    sys.exit(run_main(main))
