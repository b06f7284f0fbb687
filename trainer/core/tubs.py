"""Read and check DonkeyCar tubs (Tub v2) without changing them.

    from trainer.core.tubs import inspect_tub
    report = inspect_tub("data", image_size=(160, 120))

DonkeyCar's own Manifest reads the catalogs; we only look first for what its
constructors would otherwise create (a missing manifest.json or images/
folder) so that checking a tub never writes into it.
"""
import contextlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field

from PIL import Image

from trainer.core import donkey
from trainer.core.errors import UserError


@dataclass
class TubReport:
    path: str
    records: int = 0
    deleted: int = 0
    missing_images: int = 0
    sessions: list = field(default_factory=list)
    image_size: list = None          # [width, height] of the first frame
    warnings: list = field(default_factory=list)

    def as_dict(self):
        return {k: v for k, v in asdict(self).items() if k != "warnings"}

    def line(self):
        size = "x".join(map(str, self.image_size)) if self.image_size else "-"
        return (f"{self.path}: {self.records} records, {self.deleted} deleted, "
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
    recorded = _recorded(path)
    if recorded == 0:               # DonkeyCar cannot open a never-written catalog
        return [], 0
    _check_recorded(path, recorded)  # before DonkeyCar sizes anything by it
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
    finally:
        manifest.close()
    if len(records) != expected:
        raise UserError(_damage(path, manifest.catalog_paths, expected, len(records)))
    return records, deleted


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
    """Say where a catalog disagrees with its manifest."""
    for name in catalogs:
        with open(os.path.join(path, name), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                try:
                    json.loads(line)
                except ValueError:
                    return (f"tub {path}: {name} line {number} is not a valid "
                            "record (a corrupt catalog line); delete that line, "
                            "or copy the tub again from the car")
    return (f"tub {path}: manifest.json counts {expected} live records but the "
            f"catalogs hold {found}; the tub is damaged: copy it again from the "
            "car")


def inspect_tub(path, image_size=None, display_path=None):
    """Check the tub at PATH and return a TubReport.

    image_size: the config's (IMAGE_W, IMAGE_H); frames of another size get
    a warning (DonkeyCar resizes them, at a cost in time and sharpness).
    Raises UserError for an empty or damaged tub or live records without
    images.
    """
    shown = display_path or path
    check_tub_paths(path, shown)
    records, deleted = read_records(path)
    report = TubReport(path=shown, records=len(records), deleted=deleted)
    if not records:
        raise UserError(f"tub {shown} has no live records: drive a few laps to "
                        "record some, or leave it out")
    images = os.path.join(path, "images")
    files, links = _images(images, shown)
    linked = next((r.get("cam/image_array") for r in records
                   if r.get("cam/image_array") in links), None)
    if linked:
        raise UserError(f"tub {shown}: images/{linked} is a link, which is never packed "
                        "or read: copy the frame itself into the tub")
    missing = [r.get("cam/image_array") for r in records
               if r.get("cam/image_array") not in files]
    report.missing_images = len(missing)
    report.sessions = sorted({r.get("_session_id") for r in records
                              if r.get("_session_id")})
    if missing:
        raise UserError(f"tub {shown}: {len(missing)} live records have no image "
                        f"(first: images/{missing[0]}); mark them deleted in the tub "
                        "manager of 'donkey ui', or restore the images")
    with Image.open(os.path.join(images, records[0]["cam/image_array"])) as im:
        report.image_size = list(im.size)
    if image_size and tuple(report.image_size) != tuple(image_size):
        w, h = image_size
        report.warnings.append(
            f"tub {shown}: frames are {report.image_size[0]}x{report.image_size[1]} "
            f"but the config says IMAGE_W={w}, IMAGE_H={h}; DonkeyCar will resize "
            "every frame (set IMAGE_W/IMAGE_H in myconfig.py to match the camera)")
    return report
