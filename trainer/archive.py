"""Tub archives: build them from a car folder, extract them safely.

An archive (NAME.tgz) mirrors the car folder: config.py, myconfig.py and
archive.json at its root, each tub at its path relative to the car folder.
Archives of the original robocar-gcp-trainer (one tub's files at the root
beside the configs) are read too.

    build_archive(car_dir=".", tubs=["data"], name="wip")
    root = extract(path, into)          # PEP 706 'data' filter, no links
    config_path, tub_paths = layout(root)
"""
import datetime
import gzip
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib

from isal import igzip_threaded

from trainer import __version__
from trainer.errors import UserError
from trainer.storage import atomic_path
from trainer.tubs import find_tubs, inspect_tub, is_legacy_tub, is_tub

CONFIGS = ("config.py", "myconfig.py")
MANIFEST = "archive.json"
JUNK = (".DS_Store", "Thumbs.db")
SECRET_SUFFIXES = (".pem", ".p12", ".key")
# JPEG frames do not compress: gzip -1 makes an archive within 1% of -6 in a
# third of the time. ISA-L's gzip (python-isal) compresses in a second thread
# while this one reads the tub, as `tar czf` does with its gzip process.
COMPRESSLEVEL = 1


def is_junk(name):
    return name in JUNK or name.startswith("._")


def is_secret(path):
    """Files that must never leave the car: keys and .env files."""
    name = os.path.basename(path)
    if name == ".env" or name.startswith(".env.") or name.endswith(SECRET_SUFFIXES):
        return True
    if name.endswith(".json") and name != "manifest.json":
        with open(path, "rb") as f:
            head = f.read(65536)
        return b'"private_key"' in head
    return False


def _arcname(tub, car_dir):
    rel = os.path.relpath(os.path.abspath(tub), os.path.abspath(car_dir))
    if rel == "." or rel.startswith(".."):
        return "data/" + os.path.basename(os.path.abspath(tub))
    return rel.replace(os.sep, "/")


def archive_filename(name):
    return name if name.endswith((".tgz", ".tar.gz")) else name + ".tgz"


def build_archive(car_dir, tubs, name, force=False, say=print, warn=print):
    """Check the tubs, then write NAME.tgz into car_dir; returns its path."""
    from trainer.config import load_car_config
    from trainer.legacy import convert_v1

    cfg = load_car_config(car_dir)
    target = os.path.join(car_dir, archive_filename(name))
    if os.path.exists(target) and not force:
        raise UserError(f"{os.path.basename(target)} already exists: pass -f to "
                        "replace it, or -a NAME to write another")
    tub_dirs = []
    for t in tubs or ["data"]:
        for tub in find_tubs(os.path.join(car_dir, t)):
            if os.path.abspath(tub) not in map(os.path.abspath, tub_dirs):
                tub_dirs.append(tub)
    reports, arcnames = [], {}
    scratch = tempfile.mkdtemp(prefix="robocar-archive-")
    try:
        for tub in tub_dirs:
            arc = _arcname(tub, car_dir)
            if arc in arcnames.values():
                raise UserError(f"two tubs would be packed as {arc}: rename one of "
                                f"them ({tub})")
            if is_legacy_tub(tub):
                n = convert_v1(tub, os.path.join(scratch, str(len(arcnames))))
                say(f"{arc}: legacy Tub v1, {n} records converted to Tub v2 in the "
                    "archive (the folder itself is untouched)")
                tub = os.path.join(scratch, str(len(arcnames)))
            report = inspect_tub(tub, (cfg.IMAGE_W, cfg.IMAGE_H), display_path=arc)
            for w in report.warnings:
                warn(w)
            say(report.line())
            reports.append(report)
            arcnames[tub] = arc
        return _pack(target, car_dir, arcnames, reports, warn, say)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _pack(target, car_dir, arcnames, reports, warn, say):
    manifest = {
        "tool": "robocar-trainer", "version": __version__,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "tubs": [r.as_dict() for r in reports],
    }
    with atomic_path(target) as tmp:
        _write(tmp, car_dir, arcnames, manifest, warn)
    size = os.path.getsize(target)
    say(f"wrote {os.path.relpath(target)} ({size / 1e6:.1f} MB, "
        f"{sum(r.records for r in reports)} records in {len(reports)} tub(s))")
    return target


def _write(path, car_dir, arcnames, manifest, warn):
    with igzip_threaded.open(path, "wb", compresslevel=COMPRESSLEVEL, threads=1) as gz, \
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        data = json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(data), int(
            datetime.datetime.now().timestamp()), 0o644
        tar.addfile(info, io.BytesIO(data))
        for conf in CONFIGS:
            src = os.path.join(car_dir, conf)
            if os.path.isfile(src):
                _add_file(tar, src, conf)
            else:
                warn(f"no {conf} in the car folder: the archive holds only what "
                     "there is")
        for tub, arc in arcnames.items():
            for dirpath, dirnames, filenames in os.walk(tub):
                dirnames.sort()
                rel = os.path.relpath(dirpath, tub)
                base = arc if rel == "." else f"{arc}/{rel.replace(os.sep, '/')}"
                for fname in sorted(filenames):
                    src = os.path.join(dirpath, fname)
                    if is_junk(fname):
                        continue
                    if os.path.islink(src) or not os.path.isfile(src):
                        warn(f"skipped {base}/{fname}: not a regular file")
                        continue
                    if is_secret(src):
                        warn(f"skipped {base}/{fname}: it looks like a secret "
                             "(key or .env) and is never packed; keep secrets "
                             "out of tub folders")
                        continue
                    _add_file(tar, src, f"{base}/{fname}")


def _add_file(tar, src, arcname):
    st = os.stat(src)
    info = tarfile.TarInfo(arcname)
    info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), 0o644
    with open(src, "rb") as f:
        tar.addfile(info, f)


def _no_links(member, dest):
    """tarfile's 'data' filter, plus: no links of any kind, and absolute
    names refused rather than made relative."""
    if member.issym() or member.islnk():
        raise tarfile.FilterError(f"member {member.name!r} is a link")
    if member.name.startswith(("/", "\\")):
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, dest)


def extract(path, into):
    """Extract the archive at PATH into the folder INTO, refusing anything unsafe.

    One streaming pass. Raises UserError for a damaged or unsafe archive; the
    caller owns INTO and removes it on failure.
    """
    shown = os.path.basename(path)
    if not os.path.isfile(path):
        raise UserError(f"archive {path} not found: make one with "
                        "./make_tub_archive.sh, or pass -a PATH")
    try:
        with tarfile.open(path, mode="r|gz") as tar:
            tar.extractall(into, filter=_no_links)
    except tarfile.FilterError as e:
        raise UserError(f"archive {shown} is unsafe ({e}); nothing was restored: "
                        "make it again with make_tub_archive.sh") from None
    except (tarfile.ReadError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        what = "truncated" if isinstance(e, EOFError) or "end" in str(e) \
            else "damaged or not a gzip tar"
        raise UserError(f"archive {shown} is {what} ({e}): make it again with "
                        "make_tub_archive.sh, or copy it again") from None
    return into


def read_manifest(root):
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def is_legacy_layout(root):
    """robocar-gcp-trainer archives: one tub's files at the root."""
    return is_tub(root)


def layout(root, shown="archive"):
    """(config.py path, [tub paths]) of an extracted archive at ROOT."""
    config = os.path.join(root, "config.py")
    if not os.path.isfile(config):
        raise UserError(f"{shown} has no config.py at its root: make it with "
                        "make_tub_archive.sh from your car folder")
    if is_legacy_layout(root):
        return config, [root]
    manifest = read_manifest(root)
    if manifest:
        tubs = [os.path.join(root, t["path"]) for t in manifest.get("tubs", [])]
    else:
        tubs = sorted(d for d, _, files in os.walk(root) if "manifest.json" in files)
    tubs = [t for t in tubs if is_tub(t)]
    if not tubs:
        raise UserError(f"{shown} holds no tub: make it with make_tub_archive.sh "
                        "from a car folder that has recorded data")
    return config, tubs


def relocate_legacy_tub(root):
    """Move a legacy root-level tub into ROOT/data, as a car folder has it."""
    data = os.path.join(root, "data")
    os.makedirs(data)
    for name in os.listdir(root):
        if name not in CONFIGS + ("data",):
            shutil.move(os.path.join(root, name), os.path.join(data, name))


def restore(path, dest, force=False, say=print):
    """Extract the archive at PATH into the car folder DEST (deflate).

    Extracts into a staging folder inside DEST first, so a damaged or unsafe
    archive leaves DEST as it was; then moves each config and tub into place,
    refusing to replace an existing one unless FORCE.
    """
    created = _missing_top(dest)        # a folder made here goes again on failure
    os.makedirs(dest, exist_ok=True)
    staging = tempfile.mkdtemp(dir=dest, prefix=".deflate-")
    restored = False
    try:
        extract(path, staging)
        _, tubs = layout(staging, os.path.basename(path))
        if is_legacy_layout(staging):
            relocate_legacy_tub(staging)
            tubs = [os.path.join(staging, "data")]
        units = [c for c in CONFIGS if os.path.exists(os.path.join(staging, c))]
        units += [os.path.relpath(t, staging) for t in tubs]
        for unit in units:
            target = os.path.join(dest, unit)
            if _occupied(target) and not force:
                raise UserError(f"{target} already exists: pass -f to replace it, "
                                "or -d an empty folder")
        for unit in units:
            target = os.path.join(dest, unit)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.remove(target)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            os.replace(os.path.join(staging, unit), target)
        say(f"restored {', '.join(units)} into {dest}")
        restored = True
        return units
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not restored:
            shutil.rmtree(created, ignore_errors=True)


def _missing_top(path):
    """The outermost folder of PATH that does not exist yet; None if PATH does."""
    path, top = os.path.abspath(path), None
    while not os.path.lexists(path):
        top, path = path, os.path.dirname(path)
    return top


def _occupied(path):
    """An existing file, or a folder with something in it (createcar's empty
    data/ folder is no conflict)."""
    if os.path.isdir(path) and not os.path.islink(path):
        return bool(os.listdir(path))
    return os.path.lexists(path)
