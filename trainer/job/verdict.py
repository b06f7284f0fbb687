"""Is the model fit to drive? Judged on frames training never saw, against
what a pilot that learned nothing would do.

    held = hold_out(tubs)               # before training: the last tenth of each tub
    cfg.TRAIN_FILTER = HeldOut(held, cfg)   # DonkeyCar's train() never sees them
    judged = judge(predicted, driven, means)   # after: errors, baselines, the ratio
    line(judged)   # 'steering error 0.090 on 412 unseen frames; a constant guess: 0.290 ...'

Unseen frames: with -E, every record of that archive (all of it trains
nothing); otherwise the last tenth of each training tub's live records (at
least HELD_MIN), kept out of training through DonkeyCar's own TRAIN_FILTER,
combined with the user's when the config has one. A contiguous stretch,
not a random pick: neighbouring frames are near copies, so a random split
would judge the model on what it has all but seen.

Baselines on the same frames: a constant (the training records' mean) and
zero. "Clearly better" (ISSUE-NOTES): the model's steering error divided by
the constant's, with a bootstrap 95% interval over the frames; the model is
better when the interval's upper end is below CLEARLY_BETTER. Throttle is
judged the same way unless the training throttle hardly varies (a
constant-throttle driver): then its error is reported without a factor.
"""
import math
import os

import numpy as np

HELD_FRACTION = 0.10
HELD_MIN = 10            # a tub shorter than this many held-out records keeps all for training
CLEARLY_BETTER = 0.9     # upper end of the 95% interval of model / constant
CONSTANT_SPREAD = 0.02   # training throttle std below this: a constant-throttle driver
RESAMPLES = 1000
AXES = ("steering", "throttle")
LABELS = ("user/angle", "user/throttle")


def hold_out(tubs):
    """{tub path: [held-out records]} of TUBS ([(path, live records)]): the
    last tenth of each tub, none of a tub too short to spare HELD_MIN."""
    held = {}
    for path, records in tubs:
        n = math.ceil(len(records) * HELD_FRACTION)
        held[path] = records[len(records) - n:] if n >= HELD_MIN else []
    return held


class HeldOut:
    """DonkeyCar's TRAIN_FILTER for training: the user's own filter (the
    config's TRAIN_FILTER, kept in .user) and the held-out records kept out."""

    def __init__(self, held, user=None):
        self.user = user
        self.held = {(os.path.realpath(p), r["_index"]) for p, rs in held.items() for r in rs}
        self._real = {}

    def _key(self, record):
        base = self._real.setdefault(record.base_path, os.path.realpath(record.base_path))
        return base, record.underlying.get("_index")

    def __call__(self, record):
        return self._key(record) not in self.held and self.kept_by_user(record)

    def kept_by_user(self, record):
        return self.user is None or bool(self.user(record))

    def __repr__(self):                 # the card shows the user's own, not this
        return repr(self.user)


def user_kept(records, path, cfg, user):
    """RECORDS of the tub at PATH that the user's TRAIN_FILTER keeps."""
    if user is None:
        return list(records)
    from donkeycar.pipeline.types import TubRecord
    return [r for r in records if user(TubRecord(cfg, path, r))]


def labels(records):
    """(n, 2) array of the records' driven (steering, throttle)."""
    return np.array([[_number(r.get(k)) for k in LABELS] for r in records], dtype=float)


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _axis(predicted, driven, mean, spread):
    model = np.abs(predicted - driven)
    constant = np.abs(driven - mean)
    out = {"model": float(model.mean()), "constant": float(constant.mean()),
           "zero": float(np.abs(driven).mean()), "constant_value": float(mean),
           "training_spread": float(spread)}
    if spread < CONSTANT_SPREAD or constant.mean() == 0:
        out["ratio"], out["interval"] = None, None       # no factor to give
        return out
    out["ratio"] = float(model.mean() / constant.mean())
    out["interval"] = _interval(model, constant)
    return out


def _interval(model, constant):
    """Bootstrap 95% interval of mean(model) / mean(constant) over frames."""
    rng = np.random.default_rng(0)
    n, ratios = len(model), []
    for _ in range(0, RESAMPLES, 100):
        idx = rng.integers(0, n, size=(100, n))
        denominator = constant[idx].mean(axis=1)
        ratios.append(model[idx].mean(axis=1) / np.where(denominator > 0, denominator,
                                                         np.nan))
    ratios = np.concatenate(ratios)
    lo, hi = np.nanpercentile(ratios, [2.5, 97.5])
    return [float(lo), float(hi)]


def judge(predicted, driven, means, spreads):
    """The verdict of PREDICTED against DRIVEN ((n, 2) arrays), the training
    records' MEANS and SPREADS (std) per axis: a dict for the card."""
    out = {"frames": int(len(driven)), "rule": f"steering error / a constant guess's, "
           f"95% interval below {CLEARLY_BETTER}"}
    for i, axis in enumerate(AXES):
        out[axis] = _axis(predicted[:, i], driven[:, i], means[i], spreads[i])
    steering = out["steering"]
    out["better"] = bool(steering["interval"] is not None
                         and steering["interval"][1] < CLEARLY_BETTER)
    return out


def _factor(axis):
    """'3.2x better, 95% interval 2.8x-3.7x' (or worse, or about the same)."""
    if axis["ratio"] is None:
        return None
    ratio, (lo, hi) = axis["ratio"], axis["interval"]
    if hi < CLEARLY_BETTER and lo > 0:
        return f"{1 / ratio:.1f}x better, 95% interval {1 / hi:.1f}x-{1 / lo:.1f}x"
    if lo > 1 / CLEARLY_BETTER:
        return f"{ratio:.1f}x worse, 95% interval {lo:.1f}x-{hi:.1f}x"
    return f"about as good: {ratio:.2f} of its error, 95% interval {lo:.2f}-{hi:.2f}"


def lines(judged, source):
    """What the console says of the verdict: a line per axis."""
    s, t = judged["steering"], judged["throttle"]
    out = [f"steering error {s['model']:.3f} on {judged['frames']} unseen frames "
           f"({source}); a constant guess: {s['constant']:.3f}"
           + (f" ({_factor(s)})" if _factor(s) else " (the unseen steering does not vary: "
              "no factor)")]
    if t["ratio"] is None:
        out.append(f"throttle error {t['model']:.3f}; the training throttle is about "
                   f"constant ({t['constant_value']:.2f}), so no factor")
    else:
        out.append(f"throttle error {t['model']:.3f}; a constant guess: {t['constant']:.3f} "
                   f"({_factor(t)})")
    return out


def poor(judged, name, history_epochs, records):
    """The words for a model not clearly better than a constant on steering."""
    s = judged["steering"]
    ratio = (f"its error is {s['ratio']:.2f} of a constant guess's (95% interval "
             f"{s['interval'][0]:.2f}-{s['interval'][1]:.2f}; clearly better is below "
             f"{CLEARLY_BETTER})" if s["ratio"] is not None else
             "its steering cannot be compared with a constant guess on these frames")
    return (f"{name} is not clearly better than always steering "
            f"{s['constant_value']:.2f}: {ratio}. More laps ({records} records now), more "
            f"epochs ({history_epochs} ran) or checking the labels usually helps. No drive "
            "line; the car's check refuses it unless --accept-poor-model")
