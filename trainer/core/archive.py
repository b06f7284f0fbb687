"""Tub archives: build them from a car folder, extract them safely.

An archive (NAME.tgz) mirrors the car folder: config.py, myconfig.py and
archive.json at its root, each tub at its path relative to the car folder.
Archives of the original robocar-gcp-trainer (one tub's files at the root
beside the configs) are read too.

    build_archive(car_dir=".", tubs=["data"], name="wip")
    root = extract(path, into)          # PEP 706 'data' filter, no links
    config_path, tub_paths = layout(root)

Every member is checked before it is written (_check_member: plain files
and folders only, names inside the target). Then tarfile's 'data' filter
(PEP 706) writes it; on a Python without it (3.11 before 3.11.4, e.g.
Raspberry Pi OS bookworm's 3.11.2) _write_member writes the checked member
itself, as the filter would: no links, no special files, no set-id bits.
"""
import contextlib
import datetime
import errno
import gzip
import json
import os
import shutil
import tarfile
import tempfile
import zlib

try:        # ISA-L's gzip, in a second thread: the training install has it; a car may not
    from isal import igzip_threaded
except ImportError:
    igzip_threaded = None

from trainer import __version__
from trainer.core import points, replace
from trainer.core.config import check_values, load_car_config
from trainer.core.errors import UserError
from trainer.core.legacy import convert_v1
from trainer.core.names import plain_name
from trainer.core.storage import atomic_path
from trainer.core.tubs import (
    TELEMETRY,
    FrameCheck,
    bad_message,
    check_tub_paths,
    find_tubs,
    inspect_tub,
    is_legacy_tub,
    is_tub,
    is_tub_file,
    read_records,
)

CONFIGS = ("config.py", "myconfig.py")
MANIFEST = "archive.json"
JUNK = (".DS_Store", "Thumbs.db")
SECRET_SUFFIXES = (".pem", ".p12", ".key")
# JPEG frames do not compress: gzip -1 makes an archive within 1% of -6 in a
# third of the time. ISA-L's gzip (python-isal) compresses in a second thread
# while this one reads the tub, as `tar czf` does with its gzip process.
COMPRESSLEVEL = 1
# Limits checked before anything is written. A 20k-record tub is about 20k
# members, and an hour of driving at 20 Hz about 72k: 500k members is seven
# hours of frames in one archive, and what a header-only pass reads in
# seconds. Extraction needs the members' sizes (each rounded up to a 4 KiB
# block) plus DISK_MARGIN free: the models, TensorFlow's caches and the
# movie are written on the same disk afterwards.
MAX_MEMBERS = 500_000
BLOCK = 4096
DISK_MARGIN = 256 * 2**20
MAX_NAME = 1024                  # characters of a member's path
MAX_PART = 255                   # bytes of one path component (NAME_MAX)
MAX_MANIFEST = 16 * 2**20        # archive.json: a few KB per tub


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


def build_archive(car_dir, tubs, name, force=False, say=print, warn=print,
                  with_pilot=False, skip_bad=False):
    """Check the tubs, then write NAME.tgz into car_dir; returns its path.
    Records a pilot drove are left out unless WITH_PILOT (pilot_records).
    Every live frame is decoded while it is packed (tubs.FrameCheck): a bad
    record fails the archive, which is not written, unless SKIP_BAD, which
    marks bad records deleted first (tubs.inspect_tub)."""
    plain_name(os.path.basename(name), "-a", "wip")
    cfg = load_car_config(car_dir)
    try:
        check_values(cfg, car_dir=car_dir)
    except UserError as e:           # the data is fine; training would refuse the config
        warn(f"{e} (training refuses it; the archive is written)")
    target = os.path.join(car_dir, archive_filename(name))
    if os.path.exists(target) and not force:
        raise UserError(f"{os.path.basename(target)} already exists: pass -f to "
                        "replace it, or -a NAME to write another")
    tub_dirs = []
    for t in tubs or ["data"]:
        for tub in find_tubs(os.path.join(car_dir, t)):
            if os.path.abspath(tub) not in map(os.path.abspath, tub_dirs):
                tub_dirs.append(tub)
    reports, arcnames, left_out = [], {}, {}
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
            report = inspect_tub(tub, (cfg.IMAGE_W, cfg.IMAGE_H), display_path=arc,
                                 depth=cfg.IMAGE_DEPTH, frames=skip_bad, skip_bad=skip_bad)
            for w in report.warnings:
                warn(w)
            left_out[tub] = {} if with_pilot else pilot_records(tub)
            _leave_out(report, left_out[tub], say)
            say(report.line())
            if left_out[tub] and not report.records:
                say(f"{arc}: every record was driven by the pilot, so the tub is left "
                    "out (--with-pilot packs it)")
                continue
            reports.append(report)
            arcnames[tub] = arc
        if not reports:
            raise UserError("every record of these tubs was driven by a pilot: nothing "
                            "to train on (pass --with-pilot to pack them anyway)")
        return _pack(target, car_dir, arcnames, reports, warn, say, cfg.IMAGE_DEPTH, left_out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def pilot_records(tub):
    """{index: image} of the records of TUB a pilot drove (user/mode other
    than 'user', RECORD_DURING_AI): their user/angle and user/throttle are the
    idle controller's, not labels, so training must not see them."""
    records, _ = read_records(tub)
    return {r["_index"]: r.get("cam/image_array") for r in records
            if isinstance(r.get("_index"), int) and r.get("user/mode") not in (None, "user")}


def _leave_out(report, left, say):
    if left:
        report.records -= len(left)
        report.deleted += len(left)
        say(f"{report.path}: {len(left)} records driven by the pilot left out (their "
            "user/angle is no label; --with-pilot keeps them)")


def _manifest_without(path, left):
    """TUB/manifest.json with the LEFT records added to its deleted_indexes
    (DonkeyCar's training skips deleted records)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    meta = json.loads(lines[4])
    deleted = meta.get("deleted_indexes") or []
    meta["deleted_indexes"] = sorted({i for i in deleted if isinstance(i, int)} | set(left))
    lines[4] = json.dumps(meta)
    return ("\n".join(lines) + "\n").encode()


def _pack(target, car_dir, arcnames, reports, warn, say, depth, left_out):
    manifest = {
        "tool": "robocar-trainer", "version": __version__,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "tubs": [r.as_dict() for r in reports],
    }
    frames = {tub: (report.frames, FrameCheck(depth))
              for tub, report in zip(arcnames, reports)}
    try:
        with atomic_path(target) as tmp:
            _write(tmp, car_dir, arcnames, manifest, warn, frames, left_out)
            for tub, (_, check) in frames.items():     # the frames, decoded meanwhile
                bad = check.bad()
                if bad:
                    raise UserError(bad_message(arcnames[tub], bad))
            points.point("archive:written")
    finally:
        for _, check in frames.values():
            check.close()
    size = os.path.getsize(target)
    say(f"wrote {os.path.relpath(target)} ({size / 1e6:.1f} MB, "
        f"{sum(r.records for r in reports)} records in {len(reports)} tub(s))")
    return target


def _gzip_open(path, mode):
    """gzip through ISA-L in a second thread where it is installed, else
    Python's own gzip (the same format, slower)."""
    if igzip_threaded is not None:
        kwargs = {"compresslevel": COMPRESSLEVEL, "threads": 1} if "w" in mode else {}
        return igzip_threaded.open(path, mode, **kwargs)
    return gzip.open(path, mode, **({"compresslevel": COMPRESSLEVEL} if "w" in mode else {}))


def _write(path, car_dir, arcnames, manifest, warn, frames, left_out):
    with _gzip_open(path, "wb") as gz:
        tar = _TarWriter(gz)
        tar.add(MANIFEST, json.dumps(manifest, indent=2).encode(),
                int(datetime.datetime.now().timestamp()))
        for conf in CONFIGS:
            src = os.path.join(car_dir, conf)
            if os.path.isfile(src):
                _add_file(tar, src, conf)
            else:
                warn(f"no {conf} in the car folder: the archive holds only what "
                     "there is")
        for tub, arc in arcnames.items():
            _add_tub(tar, tub, arc, warn, frames[tub], left_out.get(tub) or {})
        tar.close()


class _TarWriter:
    """A tar stream of plain files, byte for byte as tarfile writes it in
    GNU format (mode 0644, owner 0), with each header made from one
    template: tarfile's own header code takes most of the packing time of a
    tub of small frames."""

    _TEMPLATE = bytearray(tarfile.TarInfo("x").tobuf(tarfile.GNU_FORMAT))
    _TEMPLATE[0:100] = bytes(100)                       # name
    _TEMPLATE[100:108] = b"%07o\0" % 0o644              # mode
    _TEMPLATE[124:148] = bytes(24)                      # size, mtime
    _TEMPLATE[148:156] = b" " * 8                       # the checksum counts as spaces
    _SUM = sum(_TEMPLATE)
    _TEMPLATE = bytes(_TEMPLATE)
    _NUMBER = 8 ** 11               # what 11 octal digits hold

    def __init__(self, out):
        self.out, self.offset = out, 0

    def add(self, name, data, mtime):
        pad = -len(data) % tarfile.BLOCKSIZE
        self._write(b"".join((self.header(name, len(data), mtime), data, bytes(pad))))

    @classmethod
    def header(cls, name, size, mtime):
        raw = name.encode("utf-8", "surrogateescape")
        if len(raw) >= tarfile.LENGTH_NAME or not 0 <= mtime < cls._NUMBER \
                or size >= cls._NUMBER:       # long names, huge files: tarfile's way
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = size, mtime, 0o644
            return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
        sizes, times = b"%011o\0" % size, b"%011o\0" % mtime
        check = cls._SUM + sum(raw) + sum(sizes) + sum(times) - 8 * ord(" ")
        block = bytearray(cls._TEMPLATE)
        block[0:len(raw)] = raw
        block[124:136], block[136:148] = sizes, times
        block[148:156] = b"%06o\0 " % (check + 8 * ord(" "))
        return bytes(block)

    def _write(self, data):
        self.out.write(data)
        self.offset += len(data)

    def close(self):
        """The end-of-archive blocks, padded to a whole record."""
        self._write(bytes(2 * tarfile.BLOCKSIZE))
        rest = self.offset % tarfile.RECORDSIZE
        if rest:
            self._write(bytes(tarfile.RECORDSIZE - rest))


def _add_tub(tar, tub, arc, warn, frames, left):
    """The tub's own files (tubs.is_tub_file) under ARC; anything else is
    skipped with a warning naming it, so keys and dotfiles never travel.
    The LEFT records ({index: image}) go as deleted, without their images.
    One directory listing per folder (os.scandir): its entries know their
    kind without a stat each."""
    live, check = frames
    images_left = {str(v) for v in left.values()}
    for rel in (".", "images"):
        folder = tub if rel == "." else os.path.join(tub, rel)
        if rel == "images" and (os.path.islink(folder) or not os.path.isdir(folder)):
            continue
        base = arc if rel == "." else f"{arc}/{rel}"
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            name = entry.name
            if is_junk(name) or (rel == "." and name == TELEMETRY) or (
                    rel == "images" and name in images_left):
                continue
            if entry.is_dir(follow_symlinks=False) and not (rel == "." and name == "images"):
                warn(f"skipped {base}/{name}/: not a tub folder (a tub holds "
                     "manifest.json, catalogs and images/), so it is never packed")
                continue
            if entry.is_dir(follow_symlinks=False):
                continue
            if not entry.is_file(follow_symlinks=False):
                warn(f"skipped {base}/{name}: not a regular file")
                continue
            if is_secret(entry.path):
                warn(f"skipped {base}/{name}: it looks like a secret "
                     "(key or .env) and is never packed; keep secrets "
                     "out of tub folders")
                continue
            if not is_tub_file(name if rel == "." else f"{rel}/{name}"):
                warn(f"skipped {base}/{name}: not a tub file (a tub holds "
                     "manifest.json, catalogs and images/), so it is never "
                     "packed; keep other files out of tub folders")
                continue
            if rel == "." and name == "manifest.json" and left:
                tar.add(f"{base}/{name}", _manifest_without(entry.path, left),
                        int(entry.stat().st_mtime))
                continue
            data = _add_file(tar, entry.path, f"{base}/{name}")
            if rel == "images" and name in live:        # read once: packed and decoded
                check.add(live[name], data, name)


def _add_file(tar, src, arcname):
    """SRC into TAR as ARCNAME; returns its bytes (one read: packed and, for
    a frame, decoded)."""
    with open(src, "rb") as f:
        mtime = int(os.fstat(f.fileno()).st_mtime)
        data = f.read()
    tar.add(arcname, data, mtime)
    return data


# tarfile's extraction filters (PEP 706): in Python 3.11.4 and later.
HAS_FILTERS = hasattr(tarfile, "data_filter")


class Unsafe(tarfile.TarError):
    """A member this toolkit refuses to write (any Python)."""


UNSAFE = (Unsafe, tarfile.FilterError) if HAS_FILTERS else (Unsafe,)
KINDS = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
         tarfile.FIFOTYPE: "a FIFO"}


def _no_links(member, dest):
    """tarfile's 'data' filter, plus: no links of any kind, and absolute
    names refused rather than made relative."""
    if member.issym() or member.islnk():
        raise Unsafe(f"member {member.name!r} is a link")
    if member.name.startswith(("/", "\\")):
        raise Unsafe(f"member {member.name!r} has an absolute path")
    return tarfile.data_filter(member, dest) if HAS_FILTERS else member


def _extract_member(tar, member, into):
    if HAS_FILTERS:
        tar.extract(member, into, filter=_no_links)
    else:
        _write_member(tar, member, into)


def _write_member(tar, member, into):
    """MEMBER (a file or folder _check_member passed) written under INTO as
    the 'data' filter writes it: owner-writable, no set-id bits, never
    through a link, never over something that is there."""
    name = member.name.rstrip("/")
    while name.startswith("./"):
        name = name[2:]
    target = os.path.join(into, *name.split("/"))
    top = os.path.realpath(into)
    parent = os.path.realpath(os.path.dirname(target))
    if parent != top and not parent.startswith(top + os.sep):
        raise Unsafe(f"member {name[:60]!r} would be written outside the target")
    if member.isdir():
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    mode = 0o644 | (member.mode & 0o111)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(tar.extractfile(member), out, 1 << 20)
    os.utime(target, (member.mtime, member.mtime))


def extract(path, into, where=None):
    """Extract the archive at PATH into the folder INTO, refusing anything unsafe.
    WHERE: the folder messages name (default: INTO's parent).

    First a quick pass over the tar headers alone (check_limits): the member count
    and the bytes they need against INTO's free space, before anything is
    written. Then one streaming pass that checks each member before writing
    it (_check_member, then tarfile's 'data' filter). Raises UserError for a
    damaged, unsafe or too large archive; the caller owns INTO (a folder this
    call made is removed again on failure).
    """
    shown = os.path.basename(path)
    if os.path.isdir(path):
        raise UserError(f"archive {path} is a folder, not an archive: pass -a the .tgz "
                        "that make_tub_archive.sh wrote")
    if not os.path.isfile(path):
        raise UserError(f"archive {path} not found: make one with "
                        "./make_tub_archive.sh, or pass -a PATH")
    made = _missing_top(into)
    seen = _Seen(into)
    where = _existing(where or os.path.dirname(os.path.abspath(into)))
    try:
        check_limits(path, shown, where, seen.free)
        with _reading(path, shown) as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()      # stream mode would keep every header
                _check_member(member, into, shown, seen, where)
                _extract_member(tar, member, into)
    except OSError as e:
        if made:
            shutil.rmtree(made, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise UserError(f"no space left in {where} while extracting {shown}, which "
                            f"needs {_mib(seen.needed)} MiB or more; nothing was kept: "
                            "free some space and run again") from None
        raise UserError(f"archive {shown} cannot be extracted into {into} "
                        f"({e.strerror or e}): make it again with "
                        "make_tub_archive.sh") from None
    except BaseException:
        if made:
            shutil.rmtree(made, ignore_errors=True)
        raise
    return into


@contextlib.contextmanager
def _reading(path, shown):
    """The archive as a streaming tarfile; its errors as one line."""
    try:
        with tarfile.open(path, mode="r|gz") as tar:
            yield tar
    except UNSAFE as e:
        raise UserError(f"archive {shown} is unsafe ({e}); nothing was restored: "
                        "make it again with make_tub_archive.sh") from None
    except (tarfile.ReadError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        what = "truncated" if isinstance(e, EOFError) or "end" in str(e) \
            else "damaged or not a gzip tar"
        raise UserError(f"archive {shown} is {what} ({e}): make it again with "
                        "make_tub_archive.sh, or copy it again") from None


def _too_many(shown):
    return UserError(f"archive {shown} has more than {MAX_MEMBERS:,} members, more "
                     "than any car folder holds; nothing was extracted: make it again "
                     "with make_tub_archive.sh")


def _too_big(shown, needed, where, free):
    return UserError(f"archive {shown} needs at least {_mib(needed + DISK_MARGIN)} MiB "
                     f"free to extract ({_mib(needed)} MiB of files, {_mib(DISK_MARGIN)} "
                     f"MiB to spare) but {where} has {_mib(free)} MiB free: free some "
                     "space, or extract it on a larger disk; nothing was extracted")


def check_limits(path, shown, where, free):
    """Walk the raw 512-byte tar headers (no tarfile objects: a million of
    them take seconds, not minutes) and refuse an archive with more than
    MAX_MEMBERS members, or whose members need more than FREE - DISK_MARGIN.
    Stops quietly at anything it does not understand: the extraction pass
    checks the same limits member by member, and reports damage."""
    count = needed = 0
    pax_size = None
    try:
        with _gzip_open(path, "rb") as f:
            while True:
                header = f.read(512)
                if len(header) < 512 or header == bytes(512):
                    return
                kind, size = header[156:157], _octal(header[124:136])
                if size is None or kind == b"S":
                    return                      # sparse or odd: the next pass says
                if kind in (b"x", b"g", b"L", b"K"):    # pax / GNU long-name headers
                    data = f.read(-(-size // 512) * 512)[:size]
                    if kind == b"x":
                        pax_size = _pax_size(data)
                    continue
                size = pax_size if pax_size is not None else size
                pax_size = None
                count += 1
                needed += -(-size // BLOCK) * BLOCK + BLOCK
                if count > MAX_MEMBERS:
                    raise _too_many(shown)
                if needed + DISK_MARGIN > free:
                    raise _too_big(shown, needed, where, free)
                skip = -(-size // 512) * 512
                while skip:
                    chunk = f.read(min(skip, 1 << 20))
                    if not chunk:
                        return
                    skip -= len(chunk)
    except UserError:
        raise
    except Exception:       # noqa: BLE001  damaged gzip: the tarfile pass says how
        return


def _octal(field):
    """A tar number field: octal digits, or GNU base-256 (first byte 0x80)."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    try:
        return int(field.strip(b" \0") or b"0", 8)
    except ValueError:
        return None


def _pax_size(data):
    for record in data.split(b"\n"):
        _, _, keyvalue = record.partition(b" ")
        if keyvalue.startswith(b"size="):
            try:
                return int(keyvalue[5:])
            except ValueError:
                return None
    return None


class _Seen:
    """What the extraction pass has written so far (bounded by MAX_MEMBERS)."""

    def __init__(self, into):
        self.count = self.needed = 0
        self.files, self.folders = set(), set()
        self.free = shutil.disk_usage(_existing(into)).free


def _check_member(member, into, shown, seen, where):
    """Refuse MEMBER before it is written: anything but a file or folder, an
    absolute or climbing name, an over-long name, a second copy, a file where
    a folder is (or the other way round), one member too many, or more bytes
    than INTO's disk has free."""
    seen.count += 1
    if seen.count > MAX_MEMBERS:
        raise _too_many(shown)
    name = member.name
    if not (member.isfile() or member.isdir()) or member.issparse():
        _no_links(member, into)                # says which kind
        kind = KINDS.get(member.type, "not a plain file or folder")
        raise Unsafe(f"member {name[:60]!r} is {kind}")
    if name.startswith(("/", "\\")) or "\0" in name:
        raise Unsafe(f"member {name[:60]!r} has an absolute path")
    name = name.rstrip("/")
    while name.startswith("./"):
        name = name[2:]
    parts = name.split("/")
    if ".." in parts:
        raise Unsafe(f"member {name[:60]!r} would be extracted to "
                     f"{os.path.join(into, name)[:120]!r}, which is outside the "
                     "destination")
    if len(name) > MAX_NAME or any(len(p.encode()) > MAX_PART for p in parts):
        raise Unsafe(f"member {name[:40]!r}... has a name longer than a "
                                  "file system takes")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if parent in seen.files:
            raise Unsafe(f"member {name[:60]!r} is inside {parent!r}, "
                                      "which is a file")
        seen.folders.add(parent)
    if member.isdir():
        if name in seen.files:
            raise Unsafe(f"member {name[:60]!r} is both a file and a folder")
        seen.folders.add(name)
        return
    if name in seen.folders:
        raise Unsafe(f"member {name[:60]!r} is both a file and a folder")
    if name in seen.files:
        raise Unsafe(f"member {name[:60]!r} appears twice")
    seen.files.add(name)
    seen.needed += -(-member.size // BLOCK) * BLOCK + BLOCK
    if seen.needed + DISK_MARGIN > seen.free:
        raise _too_big(shown, seen.needed, where, seen.free)


def _existing(path):
    """PATH, or its nearest folder that exists."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def _mib(n):
    return f"{n / 2**20:,.0f}"


def _malformed(shown, what):
    return UserError(f"archive {shown} has a malformed {MANIFEST} ({what}): make it "
                     "again with make_tub_archive.sh")


def read_manifest(root, shown="archive"):
    """archive.json at ROOT, checked: a JSON object whose "tubs" is a list of
    objects, each with a string "path". None when there is none."""
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        return None
    if os.path.getsize(path) > MAX_MANIFEST:
        raise _malformed(shown, f"over {MAX_MANIFEST // 2**20} MiB")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (ValueError, RecursionError) as e:     # UnicodeDecodeError is a ValueError
        raise _malformed(shown, f"not valid JSON: {str(e)[:100]}") from None
    if not isinstance(manifest, dict):
        raise _malformed(shown, f"a JSON {type(manifest).__name__}, not an object")
    tubs = manifest.get("tubs", [])
    if not isinstance(tubs, list):
        raise _malformed(shown, '"tubs" is not a list')
    for i, tub in enumerate(tubs):
        if not isinstance(tub, dict) or not isinstance(tub.get("path"), str):
            raise _malformed(shown, f'tub {i + 1} has no "path" string')
    return manifest


def tub_path(root, rel, shown="archive"):
    """ROOT/REL for a tub path REL from archive.json: relative, normalised
    ('a/b', no '.', '..' or empty parts, no backslash) and, links resolved,
    inside ROOT; UserError otherwise."""
    parts = rel.split("/")
    unsafe = (not rel or rel.startswith("/") or "\\" in rel or "\0" in rel
              or any(p in ("", ".", "..") for p in parts))
    full = os.path.join(root, *parts) if not unsafe else None
    if full is not None:
        real, top = os.path.realpath(full), os.path.realpath(root)
        unsafe = real == top or os.path.commonpath([real, top]) != top
    if unsafe:
        raise UserError(f"archive {shown} is unsafe ({MANIFEST} names the tub path "
                        f"{rel[:80]!r}, which is not a folder inside the archive); "
                        "nothing was used: make it again with make_tub_archive.sh")
    return full


def is_legacy_layout(root):
    """robocar-gcp-trainer archives: one tub's files at the root."""
    return is_tub(root)


def layout(root, shown="archive"):
    """(config.py path, [tub paths]) of an extracted archive at ROOT. The
    archive is untrusted: archive.json's paths and the catalogs' image paths
    must stay inside it."""
    config = os.path.join(root, "config.py")
    if not os.path.isfile(config):
        raise UserError(f"{shown} has no config.py at its root: make it with "
                        "make_tub_archive.sh from your car folder")
    if is_legacy_layout(root):
        check_tub_paths(root, shown)
        return config, [root]
    manifest = read_manifest(root, shown)
    if manifest:
        tubs = [tub_path(root, t["path"], shown) for t in manifest.get("tubs", [])]
        for a in tubs:
            if any(a != b and (a + os.sep).startswith(b + os.sep) for b in tubs):
                raise _malformed(shown, f"tub {os.path.relpath(a, root)} is inside "
                                 "another tub")
        tubs = list(dict.fromkeys(tubs))
    else:
        tubs = sorted(d for d, _, files in os.walk(root) if "manifest.json" in files)
    tubs = [t for t in tubs if is_tub(t)]
    if not tubs:
        raise UserError(f"{shown} holds no tub: make it with make_tub_archive.sh "
                        "from a car folder that has recorded data")
    for t in tubs:
        check_tub_paths(t, os.path.join(shown, os.path.relpath(t, root)))
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

    Extracts into a staging folder inside DEST first (replace.Staging), so a
    damaged or unsafe archive leaves DEST as it was; then replaces exactly
    what the archive holds: each config, and each tub's own files (manifest,
    catalogs, images/; anything else in that folder stays), refusing to
    replace anything without FORCE. The old entries are moved aside and
    back on any failure or signal; what a killed run left is undone first.
    """
    created = _missing_top(dest)        # a folder made here goes again on failure
    os.makedirs(dest, exist_ok=True)
    replace.recover(dest, "deflate", say)
    restored = False
    try:
        with replace.Staging(dest, "deflate") as stage:
            extract(path, stage.new, where=dest)
            points.point("deflate:extracted")
            units = _units(stage.new, os.path.basename(path))
            entries, busy = _entries(stage.new, dest, units)
            if busy and not force:
                raise UserError(f"{os.path.join(dest, busy[0])} already exists: pass -f "
                                "to replace it, or -d an empty folder")
            replaced = stage.commit(entries)
            _report(dest, units, entries, replaced, busy, say)
            restored = True
            return units
    finally:
        if created and not restored:
            shutil.rmtree(created, ignore_errors=True)


def _units(root, shown):
    """The configs and tubs (paths relative to ROOT) an extracted archive holds."""
    _, tubs = layout(root, shown)
    if is_legacy_layout(root):
        relocate_legacy_tub(root)
        tubs = [os.path.join(root, "data")]
    units = [c for c in CONFIGS if os.path.exists(os.path.join(root, c))]
    return units + [os.path.relpath(t, root).replace(os.sep, "/") for t in tubs]


def _entries(root, dest, units):
    """(the entries to move in or aside, the units that replace something).
    A config, a tub folder that is not there yet, or a file where the tub
    goes, is one entry; into an existing folder, a tub is its own entries
    (manifest.json, catalogs, images/) and those of the old tub, so the
    folder's other contents (another tub, notes) stay where they are."""
    entries, busy = [], []
    for unit in units:
        target = os.path.join(dest, unit)
        if unit in CONFIGS or not os.path.isdir(target) or os.path.islink(target):
            entries.append(unit)
            if os.path.lexists(target):
                busy.append(unit)
            continue
        new = set(os.listdir(os.path.join(root, unit)))
        old = {n for n in os.listdir(target) if is_tub_entry(n)}
        entries += [f"{unit}/{n}" for n in sorted(new | old)]
        if old or new & set(os.listdir(target)):
            busy.append(unit)
    return entries, busy


def is_tub_entry(name):
    """A name DonkeyCar writes at the top of a tub folder."""
    return name == "images" or is_tub_file(name)


def _report(dest, units, entries, replaced, busy, say):
    """Exactly what was replaced, restored and left alone."""
    shown = dest if dest != "." else "the car folder"
    fresh = [u for u in units if u not in busy]
    if fresh:
        say(f"restored {', '.join(fresh)} into {dest}")
    if busy:
        said = []
        for unit in busy:
            inner = sorted(e[len(unit) + 1:] for e in replaced if e.startswith(unit + "/"))
            said.append(unit + (f" (the old tub's {_summary(inner)})" if inner else ""))
        say(f"replaced {', '.join(said)} in {shown} with the archive's; the old "
            f"{'ones are' if len(busy) > 1 else 'one is'} removed")
    kept = sorted({f"{u}/{n}" for u in units if u not in CONFIGS
                   and os.path.isdir(os.path.join(dest, u))
                   for n in os.listdir(os.path.join(dest, u))
                   if f"{u}/{n}" not in entries and not any(
                       v.startswith(f"{u}/{n}/") or v == f"{u}/{n}" for v in units)})
    if kept:
        say(f"left {', '.join(kept[:10])}{' ...' if len(kept) > 10 else ''} as "
            f"{'it is' if len(kept) == 1 else 'they are'}: the archive does not hold "
            f"{'it' if len(kept) == 1 else 'them'}")


def _summary(names):
    catalogs = sum(1 for n in names if n.endswith(".catalog"))
    parts = [n for n in names if n in ("manifest.json", "images")]
    if catalogs:
        parts.append(f"{catalogs} catalog{'s' if catalogs > 1 else ''}")
    return ", ".join(parts) or ", ".join(names)


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
