"""Read and check DonkeyCar tubs (Tub v2) without changing them (unless
asked to mark bad records deleted).

    from trainer.core.tubs import inspect_tub
    report = inspect_tub("data", image_size=(160, 120), depth=3)

DonkeyCar's own Manifest reads the catalogs; we only look first for what its
constructors would otherwise create (a missing manifest.json or images/
folder) so that checking a tub never writes into it, and check manifest.json's
values before DonkeyCar sizes anything by them.

Every live record is checked where it is cheap: its labels (the manifest's
float and int inputs, user/angle and user/throttle: finite numbers) and its
frame, decoded in threads (FrameCheck: every block of every frame;
make_tub_archive.sh decodes them while it packs, from the bytes it packs). A bad record is
named with what is wrong; skip_bad marks such records deleted the way
`donkey ui` does (manifest.json's deleted_indexes, written atomically), and
never removes a file.
"""
import contextlib
import io
import json
import logging
import math
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from PIL import Image

from trainer.core import donkey
from trainer.core.errors import UserError
from trainer.core.storage import atomic_path


@dataclass
class TubReport:
    path: str
    records: int = 0
    deleted: int = 0
    missing_images: int = 0
    sessions: list = field(default_factory=list)
    image_size: list = None          # [width, height] of the first frame
    warnings: list = field(default_factory=list)
    skipped: list = field(default_factory=list)    # [(record, why)] marked deleted now
    frames: dict = field(default_factory=dict, repr=False)   # {file name: record number}

    def as_dict(self):
        """For archive.json and the card: what was found, not the working lists."""
        return {"path": self.path, "records": self.records, "deleted": self.deleted,
                "missing_images": self.missing_images, "sessions": list(self.sessions),
                "image_size": list(self.image_size) if self.image_size else None}

    def line(self):
        size = "x".join(map(str, self.image_size)) if self.image_size else "-"
        skipped = (f" (of them {len(self.skipped)} bad, marked deleted now: "
                   f"{_listed(self.skipped)})" if self.skipped else "")
        return (f"{self.path}: {self.records} records, {self.deleted} deleted{skipped}, "
                f"{self.missing_images} missing images, images {size}, "
                f"sessions {', '.join(self.sessions) or '-'}")


# What DonkeyCar's Tub v2 writes into a tub (parts/tub_v2.py, datastore_v2.py):
# manifest.json, catalog_N.catalog with its catalog_N.catalog_manifest, and
# images/N_KEY_.jpg (.png for gray16 arrays). Nothing else is a tub's.
TUB_FILE = re.compile(r"manifest\.json|catalog_[0-9]+\.catalog(_manifest)?"
                      r"|images/[^/]+\.(jpg|jpeg|png)", re.IGNORECASE)
CATALOG = re.compile(r"catalog_[0-9]+\.catalog")
IMAGE_TYPES = ("image_array", "gray16_array", "image")
# drive.sh's record of a drive, beside DonkeyCar's files in the tub it wrote
# (car/telemetry.py); read by drive_report.sh, never packed into an archive.
TELEMETRY = "telemetry.jsonl"
MAX_MANIFEST_LINE = 64 * 2**20       # manifest.json: deleted_indexes of a long tub
FRAME = "cam/image_array"            # the frame DonkeyCar trains on
# Labels every model type trains on; with the manifest's other float and int
# inputs, each must be a finite number in every live record.
LABELS = ("user/angle", "user/throttle")
NUMBER_TYPES = ("float", "int")
# A camera frame is a few hundred pixels a side; a header claiming more than
# this is damage or a bomb, refused before it is decoded.
MAX_FRAME_PIXELS = 4096 * 4096
# Such a header is refused by MAX_FRAME_PIXELS before it is decoded: Pillow's
# warning about it would only stand before the one line that says so.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
SKIP_HINT = ("skip them with make_tub_archive.sh --skip-bad (marked deleted in the "
             "tub's manifest.json, as donkey ui does; no file is removed), or fix them")


def is_tub(path):
    return os.path.isfile(os.path.join(path, "manifest.json"))


def is_tub_file(rel):
    """REL (a path inside a tub, '/'-separated) is a file DonkeyCar writes there."""
    return TUB_FILE.fullmatch(rel) is not None


def is_legacy_tub(path):
    """Tub v1 (DonkeyCar 3 and older): meta.json beside record_N.json files."""
    return os.path.isfile(os.path.join(path, "meta.json")) and any(
        n.startswith("record_") and n.endswith(".json") for n in os.listdir(path))


def _no_manifest(path):
    return UserError(f"tub {path} has no manifest.json: it is not a DonkeyCar "
                     "tub, or it was copied incompletely; copy it again from the car")


def find_tubs(path):
    """PATH itself when it is a tub (v2, or legacy v1), else the tubs directly
    inside it."""
    path = os.path.normpath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"tub {path} is a file, not a tub folder: give -t the folder "
                        "that holds manifest.json, e.g. -t data")
    if not os.path.isdir(path):
        raise UserError(f"tub {path} does not exist: record some laps first, "
                        "or name your tub with -t PATH")
    if is_tub(path) or is_legacy_tub(path):
        return [path]
    if os.path.isdir(os.path.join(path, "images")) or any(
            n.endswith(".catalog") for n in os.listdir(path)):
        raise _no_manifest(path)
    tubs = []
    for name in sorted(os.listdir(path)):
        sub = os.path.join(path, name)
        if os.path.isdir(sub) and (is_tub(sub) or is_legacy_tub(sub)):
            tubs.append(sub)
    if not tubs:
        raise UserError(f"{path} holds no tub (no manifest.json in it or in its "
                        "subfolders): point -t at a DonkeyCar tub folder")
    return tubs


def _legacy(path):
    return UserError(f"{path} is a legacy Tub v1 (meta.json, record_N.json) that "
                     "DonkeyCar 5 cannot train on: archive it with make_tub_archive.sh, "
                     "which converts it to a Tub v2")


def read_records(path):
    """The live records of the tub at PATH, in order, with the tub's metadata.

    Returns (records, deleted_count). Raises UserError for a damaged tub.
    """
    if not is_tub(path):
        if os.path.isdir(path) and is_legacy_tub(path):
            raise _legacy(path)
        raise _no_manifest(path)
    check_manifest(path)            # before DonkeyCar sizes anything by it
    recorded = _recorded(path)
    if recorded == 0:               # DonkeyCar cannot open a never-written catalog
        return [], 0
    _check_recorded(path, recorded)
    donkey.quiet()
    from donkeycar.parts.datastore_v2 import Manifest
    try:
        manifest = Manifest(path, read_only=True)
    except (ValueError, KeyError, IndexError, TypeError, OSError) as e:
        raise UserError(f"tub {path}: manifest.json or a catalog is unreadable "
                        f"({type(e).__name__}: {e}); copy the tub again from the car")
    try:
        expected = len(manifest)
        with _quiet_datastore():        # _damage() says what is wrong, once
            records = list(manifest)
        deleted = sum(1 for i in manifest.deleted_indexes
                      if isinstance(i, int) and 0 <= i < manifest.current_index)
    except (ValueError, OSError):       # a line that is not UTF-8, a catalog gone
        records = None
    finally:
        manifest.close()
    if records is None or len(records) != expected \
            or not all(isinstance(r, dict) for r in records):
        raise UserError(_damage(path, manifest.catalog_paths, expected,
                                len(records or [])))
    return records, deleted


def _manifest_says(path, what):
    return UserError(f"tub {path}: manifest.json {what}; the tub is damaged: copy it "
                     "again from the car (or restore manifest.json from a backup)")


def check_manifest(path):
    """manifest.json's values, as DonkeyCar will use them: five JSON lines,
    the inputs and their types as lists of names, current_index a count,
    deleted_indexes record numbers below it (at most all of them)."""
    try:
        with open(os.path.join(path, "manifest.json"), "rb") as f:
            raw = [f.readline(MAX_MANIFEST_LINE) for _ in range(5)]
        lines = [json.loads(r.decode("utf-8")) for r in raw]
    except UnicodeDecodeError:
        raise _manifest_says(path, "is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise _manifest_says(path, "is not five lines of JSON, as DonkeyCar writes "
                             "it") from None
    inputs, types, meta = lines[0], lines[1], lines[4]
    if not (isinstance(inputs, list) and isinstance(types, list)
            and all(isinstance(x, str) for x in inputs + types) and len(inputs) == len(types)):
        raise _manifest_says(path, "does not list the inputs and their types (its "
                             "first two lines)")
    if not isinstance(meta, dict):
        raise _manifest_says(path, "has no catalog metadata (its fifth line)")
    index = meta.get("current_index")
    if not _count(index):
        raise _manifest_says(path, f"says current_index is {_shown(index)}, not a "
                             "count of records")
    deleted = meta.get("deleted_indexes", [])
    if not isinstance(deleted, list) or not all(_count(i) for i in deleted):
        raise _manifest_says(path, f"has deleted_indexes {_shown(deleted)}, not a list "
                             "of record numbers")
    out = sorted(i for i in set(deleted) if i >= index)
    if out:
        raise _manifest_says(path, f"marks record {out[0]} deleted, but the tub has "
                             f"only {index} records (0 to {index - 1})")


def _count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shown(value):
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


@contextlib.contextmanager
def _quiet_datastore():
    """DonkeyCar logs 'Failed loading record N' at ERROR for each bad catalog
    line, before the one line that says which line and what to do."""
    log = logging.getLogger("donkeycar.parts.datastore_v2")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _recorded(path):
    """How many records manifest.json says were ever written (None: unreadable)."""
    try:
        with open(os.path.join(path, "manifest.json")) as f:
            return int(json.loads(f.read().splitlines()[4])["current_index"])
    except (ValueError, IndexError, KeyError, TypeError, OSError):
        return None


def _metadata(path):
    """(inputs, types, catalog metadata) from the tub's manifest.json, read
    the way DonkeyCar reads it (one JSON value per line); None if unreadable."""
    try:
        with open(os.path.join(path, "manifest.json"), encoding="utf-8") as f:
            lines = [f.readline(MAX_MANIFEST_LINE) for _ in range(5)]
        inputs, types, meta = json.loads(lines[0]), json.loads(lines[1]), json.loads(lines[4])
    except (ValueError, OSError, RecursionError):
        return None
    if not (isinstance(inputs, list) and isinstance(types, list) and isinstance(meta, dict)):
        return None
    return inputs, types, meta


def _catalogs(path, meta, shown):
    """The catalog file names manifest.json lists, each a catalog_N.catalog
    in the tub itself; UserError for any other path."""
    names = meta.get("paths") or []
    if not isinstance(names, list):
        names = [names]
    for name in names:
        if not isinstance(name, str) or CATALOG.fullmatch(name) is None:
            raise UserError(f"tub {shown}: manifest.json names the catalog "
                            f"{str(name)[:80]!r}, which is not a catalog_N.catalog in "
                            "the tub; the tub is unsafe or damaged: copy it again from "
                            "the car")
    return names


def _lines(file):
    """Lines in FILE, a last one without its newline counted too."""
    count, last = 0, b"\n"
    with open(file, "rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _check_recorded(path, recorded):
    """manifest.json's current_index is bounded by the catalogs' lines: a tub
    never records more than it wrote (DonkeyCar sizes sets by it)."""
    found = _metadata(path)
    if found is None:
        return                      # DonkeyCar's Manifest says what is wrong
    _, _, meta = found
    names = [n for n in _catalogs(path, meta, path)
             if os.path.isfile(os.path.join(path, n))]
    lines = sum(_lines(os.path.join(path, n)) for n in names)
    if recorded > lines:
        deleted = meta.get("deleted_indexes") or []
        gone = len({i for i in deleted if isinstance(i, int) and 0 <= i < lines}) \
            if isinstance(deleted, list) else 0
        raise UserError(_damage(path, names, recorded - gone, lines - gone))


def check_tub_paths(path, shown=None):
    """Refuse a tub whose manifest.json names a catalog outside it, or whose
    catalogs name an image outside its images/ folder (a record of
    '../../x.jpg' or '/home/me/x.jpg' would be read from the host).
    Unreadable lines are left to read_records, which says what is wrong."""
    shown = shown or path
    found = _metadata(path)
    if found is None:
        return
    inputs, types, meta = found
    keys = {k for k, t in zip(inputs, types) if t in IMAGE_TYPES} | {"cam/image_array"}
    for name in _catalogs(path, meta, shown):
        catalog = os.path.join(path, name)
        if not os.path.isfile(catalog):
            continue
        with open(catalog, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if not isinstance(record, dict):
                    continue
                for key in keys & record.keys():
                    value = record[key]
                    if value is not None and not _inside_images(value):
                        raise UserError(
                            f"tub {shown}: {name} line {number} names the image "
                            f"{str(value)[:80]!r} for {key}, which is not a file in "
                            "the tub's images/ folder; the tub is unsafe or damaged: "
                            "record it again, or copy it again from the car")


def _inside_images(value):
    """A bare file name, as DonkeyCar writes them (N_cam_image_array_.jpg)."""
    return (isinstance(value, str) and value not in ("", ".", "..")
            and "/" not in value and "\\" not in value and "\0" not in value)


def _images(images, shown):
    """({regular files}, {links}) in the tub's images/ folder, by name; one
    listing instead of a stat per record. A linked images/ is refused."""
    if os.path.islink(images):
        raise UserError(f"tub {shown}: images/ is a link, which is never packed or "
                        "read: copy the frames themselves into the tub")
    files, links = set(), set()
    if os.path.isdir(images):
        with os.scandir(images) as entries:
            for entry in entries:
                if entry.is_symlink():
                    links.add(entry.name)
                elif entry.is_file():
                    files.add(entry.name)
    return files, links


def _damage(path, catalogs, expected, found):
    """Say where a catalog disagrees with its manifest: the first line that
    is not a record (not UTF-8, not JSON, or JSON but not an object)."""
    for name in catalogs:
        catalog = os.path.join(path, name)
        if not os.path.isfile(catalog):
            return (f"tub {path}: {name} is missing; the tub was copied incompletely: "
                    "copy it again from the car")
        with open(catalog, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    record = json.loads(raw.decode("utf-8"))
                except (ValueError, RecursionError):
                    record = ValueError
                if not isinstance(record, dict):
                    what = "not a valid record (a corrupt catalog line)" \
                        if record is ValueError else f"{_shown(record)}, not a record"
                    return (f"tub {path}: {name} line {number} is {what}; delete "
                            "that line, or copy the tub again from the car")
    return (f"tub {path}: manifest.json counts {expected} live records but the "
            f"catalogs hold {found}; the tub is damaged: copy it again from the "
            "car")


def inspect_tub(path, image_size=None, display_path=None, depth=None, frames=True,
                skip_bad=False, hint=SKIP_HINT):
    """Check the tub at PATH and return a TubReport.

    image_size: the config's (IMAGE_W, IMAGE_H); frames of another size get
    a warning (DonkeyCar resizes them, at a cost in time and sharpness).
    depth: the config's IMAGE_DEPTH (3: every frame must decode to RGB).
    frames: decode every live frame here (make_tub_archive decodes them
    while it packs instead: FrameCheck). Raises UserError for an empty or
    damaged tub, live records without images, and bad records (HINT says
    what to do); with SKIP_BAD, bad records are marked deleted instead.
    """
    shown = display_path or path
    check_tub_paths(path, shown)
    records, deleted = read_records(path)
    if not records:
        raise UserError(f"tub {shown} has no live records: drive a few laps to "
                        "record some, or leave it out")
    images = os.path.join(path, "images")
    files, links = _images(images, shown)
    linked = next((r.get(FRAME) for r in records if r.get(FRAME) in links), None)
    if linked:
        raise UserError(f"tub {shown}: images/{linked} is a link, which is never packed "
                        "or read: copy the frame itself into the tub")
    numbers = live_numbers(path, records)
    bad = bad_labels(path, records, numbers)
    missing = [(n, r.get(FRAME)) for n, r in zip(numbers, records) if r.get(FRAME) not in files]
    if missing and not skip_bad:
        raise UserError(f"tub {shown}: {len(missing)} live records have no image "
                        f"(first: images/{missing[0][1]}); mark them deleted in the tub "
                        "manager of 'donkey ui', or restore the images")
    bad.update({n: f"images/{name} is missing" for n, name in missing})
    if frames or bad:                   # bad labels: the frames too, to name them all
        check = FrameCheck(depth)
        for n, r in zip(numbers, records):
            if n not in bad:
                check.add_file(n, os.path.join(images, r[FRAME]), r[FRAME])
        bad.update(check.bad())
    skipped = []
    if bad and not skip_bad:
        raise UserError(bad_message(shown, bad, hint))
    if bad:
        mark_deleted(path, sorted(bad))
        skipped = sorted(bad.items())
        records, deleted = read_records(path)
        if not records:
            raise UserError(f"tub {shown} has no good records: every live record was "
                            f"bad ({_listed(skipped)}); record it again")
    report = TubReport(path=shown, records=len(records), deleted=deleted, skipped=skipped)
    report.frames = {r[FRAME]: n for n, r in zip(live_numbers(path, records), records)}
    report.sessions = sorted({r.get("_session_id") for r in records
                              if isinstance(r.get("_session_id"), str)})
    report.image_size = _first_size(os.path.join(images, records[0][FRAME]))
    if image_size and report.image_size and tuple(report.image_size) != tuple(image_size):
        w, h = image_size
        report.warnings.append(
            f"tub {shown}: frames are {report.image_size[0]}x{report.image_size[1]} "
            f"but the config says IMAGE_W={w}, IMAGE_H={h}; DonkeyCar will resize "
            "every frame (set IMAGE_W/IMAGE_H in myconfig.py to match the camera)")
    return report


def _first_size(path):
    """[width, height] from a frame's header, or None when it has none."""
    try:
        with Image.open(path) as im:
            return list(im.size)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def live_numbers(path, records):
    """The record number (DonkeyCar's index: its place in the catalogs, the
    number donkey ui deletes by) of each live record read_records() gave."""
    found = _metadata(path)
    deleted = set(found[2].get("deleted_indexes") or []) if found else set()
    numbers, i = [], 0
    while len(numbers) < len(records):
        if i not in deleted:
            numbers.append(i)
        i += 1
    return numbers


def bad_labels(path, records, numbers):
    """{record number: what is wrong} for records whose labels are not
    finite numbers (NaN, Infinity, text, null, missing) or whose frame is
    not named: DonkeyCar's training would crash on them, far away."""
    found = _metadata(path)
    inputs, types = (found[0], found[1]) if found else ([], [])
    keys = list(dict.fromkeys([*LABELS, *(k for k, t in zip(inputs, types)
                                          if t in NUMBER_TYPES)]))
    bad = {}
    for n, r in zip(numbers, records):
        why = next(filter(None, (_not_a_number(r, k) for k in keys)), None)
        if why is None and not isinstance(r.get(FRAME), str):
            why = f"has no {FRAME}" if r.get(FRAME) is None else \
                f"{FRAME} is {_shown(r.get(FRAME))}, not a file name"
        if why:
            bad[n] = why
    return bad


def _not_a_number(record, key):
    if key not in record:
        return f"has no {key}"
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{key} is {_shown(value)}, not a number"
    if not math.isfinite(value):
        return f"{key} is {value!r}".replace("nan", "NaN").replace("inf", "Infinity")
    return None


def bad_message(shown, bad, hint=SKIP_HINT):
    items = sorted(bad.items())
    return (f"tub {shown}: {len(items)} bad record{'s' if len(items) > 1 else ''}: "
            f"{_listed(items)}; {hint}")


def _listed(items, limit=5):
    text = ", ".join(f"{n} ({why})" for n, why in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def mark_deleted(path, numbers):
    """Add NUMBERS to manifest.json's deleted_indexes, as donkey ui's tub
    manager does (DonkeyCar's format, the other lines as they are); written
    to a temporary file, on the disk, then renamed over the old one, so a
    power cut leaves the old manifest or the new."""
    manifest = os.path.join(path, "manifest.json")
    with open(manifest, "rb") as f:
        lines = f.read().split(b"\n")
    meta = json.loads(lines[4])
    meta["deleted_indexes"] = sorted(set(meta.get("deleted_indexes") or []) | set(numbers))
    lines[4] = json.dumps(meta).encode()
    with atomic_path(manifest) as tmp, open(tmp, "wb") as f:
        f.write(b"\n".join(lines))
        f.flush()
        os.fsync(f.fileno())


class FrameCheck:
    """Frames decoded in threads while the caller goes on:

        check = FrameCheck(depth=3)
        check.add(7, data, "7_cam_image_array_.jpg")    # bytes already read (packing)
        check.add_file(8, path, "8_cam_image_array_.jpg")
        check.bad()            # {record number: what is wrong}, once all are decoded

    A JPEG frame is decoded by libjpeg at 1/8 scale (Image.draft): every
    byte of its entropy-coded data is read and every block decoded, as a
    full decode reads them, so an empty, truncated or cut frame fails here
    as it would fail in training; only the last step, the inverse DCT, is
    done small (a fifth less CPU on a 160x120 tub). Other formats are
    decoded whole. Pillow releases the GIL while it decodes: the threads
    run beside the caller. At most BACKLOG batches wait,
    so memory stays bounded however far the caller is ahead."""

    BATCH, BACKLOG = 64, 16

    def __init__(self, depth=None, workers=None):
        self.depth = depth
        self._pool = ThreadPoolExecutor(workers or min(4, os.cpu_count() or 1))
        self._batch, self._futures, self._bad = [], [], {}

    def add(self, number, data, name):
        self._queue((number, data, name))

    def add_file(self, number, path, name):
        self._queue((number, path, name))

    def _queue(self, item):
        self._batch.append(item)
        if len(self._batch) >= self.BATCH:
            self._flush()

    def _flush(self):
        if self._batch:
            self._futures.append(self._pool.submit(self._decode_all, self._batch))
            self._batch = []
        while len(self._futures) > self.BACKLOG:
            self._bad.update(self._futures.pop(0).result())

    def bad(self):
        try:
            self._flush()
            for future in self._futures:
                self._bad.update(future.result())
            self._futures = []
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return self._bad

    def close(self):
        """Stop (the caller failed): nothing more is decoded."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _decode_all(self, batch):
        out = {}
        for number, source, name in batch:
            why = frame_problem(source, name, self.depth)
            if why:
                out[number] = why
        return out


def frame_problem(source, name, depth=None):
    """What is wrong with the frame in SOURCE (bytes, or a path) named NAME,
    or None when it decodes as training will read it."""
    shown = f"images/{name}"
    try:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                return f"{shown} is empty"
            stream = io.BytesIO(source)
        else:
            if os.path.getsize(source) == 0:
                return f"{shown} is empty"
            stream = source
        with Image.open(stream) as im:
            w, h = im.size
            if w * h > MAX_FRAME_PIXELS:
                return f"{shown} is {w}x{h} pixels, larger than any camera frame"
            im.draft(im.mode, (max(1, w // 8), max(1, h // 8)))   # see FrameCheck
            im.load()
            mode = im.mode
    except Image.DecompressionBombError as e:    # Pillow's own limit, above ours
        found = re.search(r"\((\d+) pixels\)", str(e))
        return (f"{shown} is {found.group(1) if found else 'so many'} pixels, larger than "
                "any camera frame")
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        what = "truncated" if "truncated" in str(e).lower() else "not an image"
        return f"{shown} is {what}"
    if depth == 3 and mode != "RGB":
        return f"{shown} is {mode}, not the RGB of IMAGE_DEPTH=3"
    if depth == 1 and mode not in ("L", "RGB"):
        return f"{shown} is {mode}, not gray or RGB"
    return None
