"""Read and check DonkeyCar tubs (Tub v2) without changing them.

    from trainer.tubs import inspect_tub
    report = inspect_tub("data", image_size=(160, 120))

DonkeyCar's own Manifest reads the catalogs; we only look first for what its
constructors would otherwise create (a missing manifest.json or images/
folder) so that checking a tub never writes into it.
"""
import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field

from PIL import Image

from trainer.donkey import donkeycar  # noqa: F401  (quiet import first)
from donkeycar.parts.datastore_v2 import Manifest  # noqa: E402

from trainer.errors import UserError


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


def is_tub(path):
    return os.path.isfile(os.path.join(path, "manifest.json"))


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
    if _recorded(path) == 0:        # DonkeyCar cannot open a never-written catalog
        return [], 0
    try:
        manifest = Manifest(path, read_only=True)
    except (ValueError, KeyError, IndexError, TypeError, OSError) as e:
        raise UserError(f"tub {path}: manifest.json or a catalog is unreadable "
                        f"({type(e).__name__}: {e}); copy the tub again from the car")
    try:
        expected = len(manifest)
        with _quiet_datastore():        # _damage() says what is wrong, once
            records = list(manifest)
        deleted = len(manifest.deleted_indexes & set(range(manifest.current_index)))
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
    records, deleted = read_records(path)
    report = TubReport(path=shown, records=len(records), deleted=deleted)
    if not records:
        raise UserError(f"tub {shown} has no live records: drive a few laps to "
                        "record some, or leave it out")
    images = os.path.join(path, "images")
    missing = [r.get("cam/image_array") for r in records
               if not os.path.isfile(os.path.join(images, str(r.get("cam/image_array"))))]
    report.missing_images = len(missing)
    report.sessions = sorted({r.get("_session_id") for r in records
                              if r.get("_session_id")})
    if missing:
        raise UserError(f"tub {shown}: {len(missing)} live records have no image "
                        f"(first: images/{missing[0]}); mark them deleted with "
                        "'donkey tubclean', or restore the images")
    with Image.open(os.path.join(images, records[0]["cam/image_array"])) as im:
        report.image_size = list(im.size)
    if image_size and tuple(report.image_size) != tuple(image_size):
        w, h = image_size
        report.warnings.append(
            f"tub {shown}: frames are {report.image_size[0]}x{report.image_size[1]} "
            f"but the config says IMAGE_W={w}, IMAGE_H={h}; DonkeyCar will resize "
            "every frame (set IMAGE_W/IMAGE_H in myconfig.py to match the camera)")
    return report
