"""Drive telemetry: what DonkeyCar's tub does not record about a drive, in a
small file inside the tub it writes (TUB/telemetry.jsonl), keyed by
DonkeyCar's record index. drive.sh (car/launcher.py) records it:

    with telemetry.recorded("models/pilot-wip.tflite", "tflite", details):
        ...   # the car's manage.py drive: each Vehicle started gets the parts

DonkeyCar's tub already holds, per record, user/mode, the user's angle and
throttle and, with RECORD_DURING_AI = True, the pilot's outputs. What it
lacks, and what this adds, per loop of the drive loop (recorded or not):
the pilot's inference time for the frame (DonkeyCar's own part profiler,
the numbers of its part-timing table), the loop's actual period and the
time its parts took (an overrun is a loop whose parts took longer than
1/DRIVE_LOOP_HZ, DonkeyCar's "jitter violation"), the pilot's outputs when
it ran that loop, and which record of the tub the loop wrote. The first
line of each drive names the model: its file, format, runtime, sha256 and
card. Nothing in manage.py is edited: when the vehicle starts, a part that
stamps the loop's start goes first and the telemetry part last (after
DonkeyCar's TubWriter, whose record index it reads).

    {"telemetry": 1, "model": {...}, "drive_loop_hz": 20, "session": "..", ...}
    {"loop": 1, "t": 1715.2, "period_ms": null, "work_ms": 9.1, "inference_ms": 3.2,
     "mode": "local", "recording": true, "index": 0, "pilot": [0.1, 0.3], "user": [0, 0]}

DonkeyCar alone, no TensorFlow: it runs on the car.
"""
import contextlib
import datetime
import json
import os
import time

from trainer.core import bucket
from trainer.core.storage import sha256
from trainer.core.tubs import TELEMETRY

VERSION = 1
FLUSH_S = 1.0           # at most this much telemetry is lost to a power cut
# The card's fields the header carries: enough to say which model drove.
CARD_FIELDS = ("name", "created_at", "model_type", "best_val_loss", "job_id")


def model_details(path, fmt, runtime=None):
    """What the header says of the model at PATH: name, file, format,
    runtime, sha256, and its card's main fields when the card is beside it."""
    name = bucket.model_name_of(path)
    card_path = os.path.join(os.path.dirname(path), name + bucket.CARD)
    card = _card(card_path)
    summary = {k: card[k] for k in CARD_FIELDS if k in card}
    verdict = card.get("verdict") if isinstance(card.get("verdict"), dict) else {}
    if "better" in verdict:
        summary["better_than_constant"] = verdict["better"]
    if card:
        summary["sha256"] = sha256(card_path)
    return {"name": name, "path": path, "format": fmt, "runtime": runtime,
            "sha256": sha256(path), "card": summary or None}


def _card(path):
    try:
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


class LoopStart:
    """The first part of the loop: when it started (perf_counter)."""

    def __init__(self):
        self.at = None

    def run(self):
        self.at = time.perf_counter()


class Telemetry:
    """The last part of the loop: one line per loop into TUB/telemetry.jsonl."""

    def __init__(self, vehicle, tub_path, hz, header):
        self.path = os.path.join(tub_path, TELEMETRY)
        self.start = LoopStart()
        self.profile = vehicle.profiler.records
        self.pilot = _pilot_part(vehicle)
        self.budget_ms = 1000.0 / hz
        self.loop, self.last_start, self.runs = 0, None, 0
        self.flushed = 0.0
        self.file = open(self.path, "a", encoding="utf-8")
        self._write(header)

    def run(self, mode, recording, num_records, pilot_angle, pilot_throttle,
            user_angle, user_throttle):
        now = time.perf_counter()
        self.loop += 1
        started = self.start.at if self.start.at is not None else now
        inference = self._inference()
        self._write({
            "loop": self.loop, "t": round(time.time(), 4),
            "period_ms": _ms(started - self.last_start) if self.last_start else None,
            "work_ms": _ms(now - started),
            "inference_ms": inference,
            "mode": mode, "recording": bool(recording),
            # DonkeyCar's TubWriter ran before this part when recording, and
            # answered its manifest's current_index: the record just written + 1.
            "index": int(num_records) - 1 if recording and num_records else None,
            "pilot": [_num(pilot_angle), _num(pilot_throttle)] if inference is not None
            else None,
            "user": [_num(user_angle), _num(user_throttle)],
        })
        self.last_start = started

    def _inference(self):
        """The pilot's time this loop (ms) from DonkeyCar's part profiler, or
        None when the pilot did not run (user mode)."""
        if self.pilot is None:
            return None
        times = self.profile.get(self.pilot, {}).get("times", [])
        if len(times) == self.runs:
            return None
        self.runs = len(times)
        return _ms(times[-1])

    def _write(self, entry):
        self.file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        # A drive ends with the power switch as often as not: out to the file
        # each second, not each loop (a flush can take milliseconds on an SD card).
        now = time.monotonic()
        if now - self.flushed >= FLUSH_S:
            self.file.flush()
            self.flushed = now

    def shutdown(self):
        if not self.file.closed:
            self.file.close()


INPUTS = ["user/mode", "recording", "tub/num_records", "pilot/angle", "pilot/throttle",
          "user/angle", "user/throttle"]


def _ms(seconds):
    return round(seconds * 1000.0, 3)


def _num(value):
    try:
        return round(float(value), 6)
    except (TypeError, ValueError):
        return None


def _pilot_part(vehicle):
    """The pilot in the vehicle: the part with a model (load) that answers
    pilot/angle."""
    for entry in vehicle.parts:
        if "pilot/angle" in entry["outputs"] and hasattr(entry["part"], "load"):
            return entry["part"]
    return None


def _tub_path(vehicle):
    from donkeycar.parts.tub_v2 import TubWriter
    for entry in vehicle.parts:
        if isinstance(entry["part"], TubWriter):
            return entry["part"].tub.base_path, entry["part"].tub.manifest
    return None, None


def attach(vehicle, rate_hz, model, say=print):
    """Add the loop-start part first and the telemetry part last to
    VEHICLE; returns the Telemetry, or None when it has no tub to write beside."""
    tub, manifest = _tub_path(vehicle)
    if tub is None:
        say("drive telemetry: the car's vehicle has no tub writer, so nothing was "
            "recorded beside it")
        return None
    import donkeycar
    session = getattr(manifest, "session_id", None)
    header = {"telemetry": VERSION, "model": model, "drive_loop_hz": rate_hz,
              "session": session[1] if isinstance(session, (tuple, list)) else session,
              "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "donkeycar": donkeycar.__version__}
    part = Telemetry(vehicle, tub, rate_hz, header)
    vehicle.add(part.start)
    vehicle.parts.insert(0, vehicle.parts.pop())          # first in the loop
    vehicle.add(part, inputs=list(INPUTS))
    return part


@contextlib.contextmanager
def recorded(path, fmt, details=dict, say=print):
    """While inside, every DonkeyCar Vehicle that starts records telemetry
    for the model at PATH (format FMT); DETAILS() adds what is known only
    once the model loaded (its runtime). Yields the list of Telemetry parts."""
    from donkeycar.vehicle import Vehicle

    original, parts = Vehicle.start, []

    def start(vehicle, rate_hz=10, max_loop_count=None, verbose=False):
        model = {**model_details(path, fmt), **details()}
        part = attach(vehicle, rate_hz, model, say)
        if part is not None:
            parts.append(part)
        return original(vehicle, rate_hz=rate_hz, max_loop_count=max_loop_count,
                        verbose=verbose)

    Vehicle.start = start
    try:
        yield parts
    finally:
        Vehicle.start = original
        for part in parts:
            part.shutdown()
