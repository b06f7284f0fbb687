"""How a pilot drove a session (drive_report.sh, car/drive_report.py), from
the tub DonkeyCar wrote and the telemetry drive.sh recorded in it
(car/telemetry.py).

    drive = read("data/tub_3_24-05-09")     # the tub's records + TUB/telemetry.jsonl
    numbers = summarize(drive)              # time per mode, takeovers, latency, overruns
    print("\\n".join(console(drive, numbers)))

The console summary needs DonkeyCar alone (it runs on the car); the page
(car/report_page.py: matplotlib, Jinja2) is made where the [train] and
[report] extras are, the laptop, from the tub copied back; W&B (car/
drive_run.py) where wandb is. The takeovers' archive (-a) holds the user's
driving after each takeover, the frames worth training on: the frames
before a takeover carry the pilot's outputs, and user/angle there is the
idle controller, not a label.

Everything in the tub is untrusted (it is copied from car to laptop):
DonkeyCar's Manifest reads the records, each telemetry line is checked
before it is used, and a malformed line is counted, not trusted.
"""
import json
import os
import shutil
import tempfile

from trainer.core import archive, tubs
from trainer.core.errors import UserError, warn
from trainer.core.names import plain_name

PILOT_MODES = ("local", "local_angle")       # DonkeyCar's user/mode values with a pilot
BEFORE = 8                  # frames shown before each takeover
MAX_LINE = 64 * 1024        # a telemetry line is ~250 bytes
MAX_LINES = 2_000_000       # 27 hours at 20 Hz


class Drive:
    """One tub's records and its telemetry: headers (one per drive) and loops."""

    def __init__(self, tub, records, headers, loops, bad_lines):
        self.tub, self.records = tub, records
        self.headers, self.loops, self.bad_lines = headers, loops, bad_lines

    @property
    def name(self):
        return os.path.basename(os.path.normpath(self.tub))

    @property
    def hz(self):
        for h in reversed(self.headers):
            if _number(h.get("drive_loop_hz")) and h["drive_loop_hz"] > 0:
                return float(h["drive_loop_hz"])
        return None

    @property
    def model(self):
        """The model of the last drive recorded, as its header names it."""
        for h in reversed(self.headers):
            if isinstance(h.get("model"), dict):
                return h["model"]
        return None


def read(tub):
    """The tub at TUB (DonkeyCar's Manifest) and its telemetry."""
    if not os.path.isdir(tub):
        raise UserError(f"tub {tub} does not exist: give -t the tub folder the drive "
                        "recorded (data/tub_N_... with AUTO_CREATE_NEW_TUB)")
    tubs.check_tub_paths(tub)
    records, _ = tubs.read_records(tub)
    records = sorted((r for r in records if isinstance(r.get("_index"), int)),
                     key=lambda r: r["_index"])
    headers, loops, bad = _telemetry(os.path.join(tub, tubs.TELEMETRY))
    if not records and not loops:
        raise UserError(f"tub {tub} has no records and no telemetry: switch recording on "
                        "while the pilot drives (RECORD_DURING_AI = True in myconfig.py), "
                        "and drive with ./drive.sh")
    return Drive(tub, records, headers, loops, bad)


LOOP_FIELDS = {"loop": int, "period_ms": float, "work_ms": float, "inference_ms": float,
               "index": int}


def _telemetry(path):
    """(headers, loops, malformed lines) of TUB/telemetry.jsonl; empty without it."""
    headers, loops, bad = [], [], 0
    if not os.path.isfile(path):
        return headers, loops, bad
    with open(path, encoding="utf-8", errors="replace") as f:
        for count, line in enumerate(f):
            if count >= MAX_LINES:
                break
            try:
                entry = json.loads(line) if len(line) <= MAX_LINE else None
            except (ValueError, RecursionError):
                entry = None
            if isinstance(entry, dict) and "telemetry" in entry:
                headers.append(entry)
            elif isinstance(entry, dict) and _loop_ok(entry):
                loops.append(entry)
            else:
                bad += 1
    return headers, loops, bad


def _loop_ok(entry):
    for key, kind in LOOP_FIELDS.items():
        value = entry.get(key)
        if key == "loop" and not isinstance(value, int):
            return False
        if value is not None and not (_number(value) and (kind is float or
                                                          isinstance(value, int))):
            return False
    return isinstance(entry.get("mode"), str) and all(
        entry.get(k) is None or (isinstance(entry[k], list) and len(entry[k]) == 2)
        for k in ("pilot", "user"))


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and value == value and abs(value) < 1e15


def mode_of(r):
    return r.get("user/mode") if isinstance(r.get("user/mode"), str) else "?"


def angle(r, key):
    value = r.get(key)
    return float(value) if _number(value) else None


# -- the numbers ------------------------------------------------------------------

def percentiles(values):
    import numpy as np
    if not values:
        return None
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99),
            "max": float(max(values)), "n": len(values)}


def takeovers(records):
    """[{index, at (s into the tub), before: [records on pilot just before]}]:
    each record in user mode right after one the pilot drove."""
    found, start = [], _seconds(records[0]) if records else 0
    for i in range(1, len(records)):
        if _taken_over(records, i):
            before = [r for r in records[max(0, i - BEFORE):i] if mode_of(r) in PILOT_MODES]
            found.append({"index": records[i]["_index"], "position": i,
                          "at": _seconds(records[i]) - start, "before": before,
                          "pilot_frames": _run_length(records, i - 1)})
    return found


def _taken_over(records, i):
    """Record I is the user's, right after one the pilot drove in the same
    session (a tub may hold several drives)."""
    return (mode_of(records[i]) == "user" and mode_of(records[i - 1]) in PILOT_MODES
            and records[i].get("_session_id") == records[i - 1].get("_session_id"))


def _run_length(records, last):
    """How many records in a row up to LAST the pilot drove."""
    n = 0
    while last - n >= 0 and mode_of(records[last - n]) in PILOT_MODES:
        n += 1
    return n


def _seconds(record):
    value = record.get("_timestamp_ms")
    return value / 1000.0 if _number(value) else 0.0


def time_per_mode(drive):
    """{mode: seconds}: from the loops' periods when there is telemetry, else
    from the records' timestamps."""
    spent = {}
    if drive.loops:
        budget = 1000.0 / (drive.hz or 20)
        for loop in drive.loops:
            ms = loop["period_ms"] if _number(loop.get("period_ms")) else budget
            spent[loop["mode"]] = spent.get(loop["mode"], 0.0) + ms / 1000.0
        return spent
    for a, b in zip(drive.records, drive.records[1:]):
        spent[mode_of(a)] = spent.get(mode_of(a), 0.0) + max(0.0, _seconds(b) - _seconds(a))
    return spent


def compared(records):
    """[(index, pilot angle, user angle)] where both are known: records the
    pilot drove (its output is fresh) in which the user's controller was
    moved (a controller left alone reads 0: that is no label)."""
    out = []
    for r in records:
        pilot, user = angle(r, "pilot/angle"), angle(r, "user/angle")
        if mode_of(r) in PILOT_MODES and pilot is not None and user not in (None, 0.0):
            out.append((r["_index"], pilot, user))
    return out


def summarize(drive):
    """The report's numbers, as the page, the console and W&B show them."""
    budget = 1000.0 / drive.hz if drive.hz else None
    inference = [lp["inference_ms"] for lp in drive.loops if _number(lp.get("inference_ms"))]
    periods = [lp["period_ms"] for lp in drive.loops if _number(lp.get("period_ms"))]
    overruns = [lp for lp in drive.loops
                if budget and _number(lp.get("work_ms")) and lp["work_ms"] > budget]
    pairs = compared(drive.records)
    return {
        "tub": drive.tub, "records": len(drive.records), "loops": len(drive.loops),
        "drives": len(drive.headers), "bad_lines": drive.bad_lines,
        "model": drive.model, "hz": drive.hz, "budget_ms": budget,
        "time": time_per_mode(drive),
        "takeovers": takeovers(drive.records),
        "inference": percentiles(inference),
        "period": percentiles(periods),
        "overruns": [{"loop": lp["loop"], "work_ms": lp["work_ms"], "index": lp.get("index")}
                     for lp in overruns],
        "steering": {"frames": len(pairs), "mae": sum(abs(p - u) for _, p, u in pairs)
                     / len(pairs)} if pairs else None,
    }


# -- the console ------------------------------------------------------------------

def console(drive, n):
    """The one-screen summary, as lines."""
    lines = [f"drive report of {drive.tub}: {n['records']} records"
             + (f", {n['loops']} loops of telemetry" if n["loops"] else "")]
    model = n["model"]
    if model:
        card = model.get("card") or {}
        trained = f", {card['model_type']} trained {str(card.get('created_at', '?'))[:10]}" \
            if card.get("model_type") else ""
        verdict = {True: ", judged better than a constant guess",
                   False: ", judged NO better than a constant guess"}.get(
            card.get("better_than_constant"), "")
        lines.append(f"model: {model.get('name')} ({model.get('path')}, {model.get('format')}"
                     f", {model.get('runtime') or '?'}) sha256 {str(model.get('sha256'))[:16]}"
                     f"{trained}{verdict}" + ("" if card else ", no card beside it"))
    else:
        lines.append("model: unknown (no telemetry in the tub: drive with ./drive.sh to "
                     "record which model drove, its latency and the loop's timing)")
    total = sum(n["time"].values()) or 1.0
    pilot = sum(v for k, v in n["time"].items() if k in PILOT_MODES)
    user = n["time"].get("user", 0.0)
    lines.append(f"time: pilot {pilot:.1f} s ({pilot / total:.0%}), user {user:.1f} s "
                 f"({user / total:.0%}); {len(n['takeovers'])} takeover(s)")
    for i, t in enumerate(n["takeovers"][:5], 1):
        steer = " ".join(f"{angle(r, 'pilot/angle'):+.2f}" for r in t["before"]
                         if angle(r, "pilot/angle") is not None)
        lines.append(f"  takeover {i} at record {t['index']} ({t['at']:.1f} s in), after "
                     f"{t['pilot_frames']} frames on pilot; its steering just before: "
                     f"{steer or '-'}")
    if len(n["takeovers"]) > 5:
        lines.append(f"  ... and {len(n['takeovers']) - 5} more (the page lists them all)")
    budget = n["budget_ms"]
    if n["inference"]:
        p = n["inference"]
        lines.append(f"inference: p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, p99 "
                     f"{p['p99']:.1f} ms (max {p['max']:.1f}, {p['n']} frames) of the "
                     f"{budget:.0f} ms a loop at DRIVE_LOOP_HZ={n['hz']:g}")
    if n["period"]:
        worst = max(n["overruns"], key=lambda o: o["work_ms"]) if n["overruns"] else None
        lines.append(f"loop: period p50 {n['period']['p50']:.1f} ms, p95 "
                     f"{n['period']['p95']:.1f} ms; {len(n['overruns'])} overrun(s) of "
                     f"{n['loops']} loops took longer than {budget:.0f} ms"
                     + (f" (worst {worst['work_ms']:.0f} ms, loop {worst['loop']})"
                        if worst else ""))
    if n["steering"]:
        lines.append(f"steering, pilot vs user: mean difference {n['steering']['mae']:.3f} on "
                     f"{n['steering']['frames']} frames the pilot drove with the user's "
                     "controller moved")
    else:
        lines.append("steering, pilot vs user: no frame with both (the user's steering "
                     "is known on pilot frames only when the controller was moved)")
    if n["bad_lines"]:
        lines.append(f"note: {n['bad_lines']} malformed telemetry line(s) were left out")
    return lines


# -- the takeovers' archive -------------------------------------------------------

def recoveries(records):
    """The indexes of the user's driving after each takeover, until the pilot
    is back on (or the tub ends): what the next training should see."""
    keep, inside = [], False
    for i, r in enumerate(records):
        if i and _taken_over(records, i):
            inside = True
        elif mode_of(r) != "user" or (i and r.get("_session_id") != records[i - 1].get(
                "_session_id")):
            inside = False
        if inside:
            keep.append(r["_index"])
    return keep


def takeovers_target(name, force=False, car_dir="."):
    """The path NAME.tgz will have, checked before any work: a plain name,
    not there yet unless FORCE."""
    plain_name(os.path.basename(archive.archive_filename(name)), "-a", "takeovers")
    target = os.path.abspath(os.path.join(car_dir, archive.archive_filename(name)))
    if os.path.exists(target) and not force:
        raise UserError(f"{os.path.basename(target)} already exists: pass -f to replace "
                        "it, or -a another name")
    return target


def write_takeovers(drive, name, force=False, car_dir=".", say=print):
    """NAME.tgz (make_tub_archive.sh's kind) holding the user's recoveries
    after each takeover, from a copy of the tub; the tub is untouched."""
    target = takeovers_target(name, force, car_dir)
    keep = recoveries(drive.records)
    if not keep:
        raise UserError(f"{drive.tub} has no takeover with the user driving after it, so "
                        "there is nothing to archive: leave out -a")
    scratch = tempfile.mkdtemp(prefix="robocar-takeovers-")
    try:
        car = os.path.join(scratch, "car")
        tub = os.path.join(car, "data", drive.name)
        os.makedirs(os.path.join(tub, "images"))
        for conf in archive.CONFIGS:
            if os.path.isfile(os.path.join(car_dir, conf)):
                shutil.copy(os.path.join(car_dir, conf), car)
        for entry in os.listdir(drive.tub):
            if tubs.is_tub_file(entry) and os.path.isfile(os.path.join(drive.tub, entry)):
                shutil.copy(os.path.join(drive.tub, entry), tub)
        kept = {r["_index"]: r for r in drive.records if r["_index"] in set(keep)}
        for r in kept.values():
            image = r.get("cam/image_array")
            if isinstance(image, str) and tubs.is_tub_file(f"images/{image}"):
                shutil.copy(os.path.join(drive.tub, "images", image),
                            os.path.join(tub, "images"))
        _keep_only(tub, set(kept))
        say(f"takeovers: {len(kept)} records of the user's driving after "
            f"{len(takeovers(drive.records))} takeover(s)")
        return archive.build_archive(car, [os.path.join("data", drive.name)], target,
                                     force=True, say=say, warn=warn)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _keep_only(tub, keep):
    """Every record of the copied TUB but KEEP marked deleted, DonkeyCar's way."""
    from donkeycar.parts.tub_v2 import Tub
    t = Tub(tub, read_only=False)
    try:
        gone = [r["_index"] for r in t if r["_index"] not in keep]
        t.delete_records(gone)
    finally:
        t.close()
