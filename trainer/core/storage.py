"""Local paths and gs:// URIs behind one small API.

    loc = parse_uri("gs://bucket/training/wip.tgz")   # Location('gs', 'bucket', 'training/wip.tgz')
    store = Storage(connect=trainer.gcs.connect)       # the client is built once, on first use
    local = store.fetch("wip.tgz", workdir)            # a local path to read
    store.put("models/x.h5", "gs://bucket/models/x.h5")

Every write lands atomically: a temporary name beside the target, renamed
only when complete. Every transfer to or from a bucket is checked against
the object's crc32c and md5; a download is renamed into place only when
both agree, so an interrupted or corrupted one leaves nothing behind.

    seen = store.stamp(uri)                    # 0 when absent: its generation / inode
    store.put(path, uri, expect=seen)          # Conflict when another writer came first
    store.upload(path, uri, tracker=".wip.tgz.upload")   # resumes a cut-off upload

A write with EXPECT never replaces what another writer put there meanwhile:
in a bucket it is a generation precondition Cloud Storage enforces, on disk
a hard link (create) or a check just before the rename (replace).
Large uploads go through a resumable session; with a TRACKER file the
session's URL is kept beside the file until the upload is complete, so the
next run carries on where an interrupted one stopped (as gsutil's tracker
files do). The tracker is a credential for that one upload: mode 0600.
"""
import base64
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass

from trainer.core import gcs
from trainer.core.errors import UserError

# Uploads above the 8 MiB multipart limit go resumable in chunks this big:
# a retried chunk re-sends at most this much (a multiple of 256 KiB).
CHUNK_SIZE = 8 << 20
QUANTUM = 256 << 10              # what a resumable session keeps: whole blocks
PROGRESS_MIN_BYTES = 1 << 20     # smaller files need no progress bar
ATTEMPTS = 3                     # whole-file tries when the checksums disagree


@dataclass(frozen=True)
class Location:
    scheme: str      # 'gs' or 'file'
    bucket: str      # '' for local paths
    path: str        # object name, or the local path

    @property
    def name(self):
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self):
        return f"gs://{self.bucket}/{self.path}" if self.scheme == "gs" else self.path


def parse_uri(uri):
    """Parse a gs:// URI or a local path; the one place URIs are split."""
    if not uri:
        raise UserError("an empty path or URI was given")
    if uri.startswith("gs://"):
        bucket, _, path = uri[len("gs://"):].partition("/")
        if not bucket:
            raise UserError(f"{uri} names no bucket: write gs://BUCKET/PATH")
        return Location("gs", bucket, path)
    if "://" in uri:
        raise UserError(f"{uri}: only local paths and gs:// URIs are supported")
    return Location("file", "", uri)


def join(base, name):
    loc = parse_uri(base)
    if loc.scheme == "gs":
        return f"gs://{loc.bucket}/{loc.path.rstrip('/') + '/' if loc.path else ''}{name}"
    return os.path.join(base, name)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksums(path):
    """{'md5': ..., 'crc32c': ...} of a local file, base64 as Cloud Storage shows them."""
    import google_crc32c

    md5, crc = hashlib.md5(), google_crc32c.Checksum()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            crc.update(block)
    return {"md5": _b64(md5.digest()), "crc32c": _b64(crc.digest())}


def _b64(digest):
    return base64.b64encode(digest).decode("ascii")


@contextlib.contextmanager
def atomic_path(target):
    """Yield a temporary path beside TARGET, renamed to TARGET on success.
    An OSError that names no file (a write) names TARGET."""
    with _beside(target) as tmp:
        try:
            yield tmp
            os.replace(tmp, target)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise UserError(f"no space left on the device while writing "
                                f"{os.path.basename(target)}; the partial file was "
                                "removed: free some space and run again") from None
            if e.filename is None:
                e.filename = target
            raise


@contextlib.contextmanager
def _beside(target):
    """A temporary path beside TARGET, removed afterwards whatever happens,
    and locked while this process writes it: one that a killed run left
    (SIGKILL, a power cut) is unlocked, and the next write of TARGET
    removes it (_sweep)."""
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    _sweep(folder, os.path.basename(target))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target) + ".")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.chmod(tmp, 0o666 & ~_umask())    # as open() would have made it
        yield tmp
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _sweep(folder, name):
    """Remove .NAME.XXXXXXXX files (mkstemp's) in FOLDER that no living
    process holds: what runs killed while writing NAME left."""
    pattern = re.compile(r"\." + re.escape(name) + r"\.[a-z0-9_]{8}")
    try:
        stale = [e.path for e in os.scandir(folder)
                 if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    except OSError:
        return
    for path in stale:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.remove(path)
        except OSError:
            pass
        finally:
            os.close(fd)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass(frozen=True)
class Remote:
    """What the bucket says about one object."""
    uri: str
    size: int
    md5: str          # base64, None for composite objects
    crc32c: str       # base64
    generation: int

    @property
    def name(self):
        return parse_uri(self.uri).name

    def matches(self, sums):
        """True when the local checksums SUMS equal every checksum the bucket has."""
        pairs = [(sums.get(k), getattr(self, k)) for k in ("crc32c", "md5")]
        known = [(a, b) for a, b in pairs if a and b]
        return bool(known) and all(a == b for a, b in known)


class Conflict(UserError):
    """Another writer changed URI since it was looked at: nothing was replaced."""

    def __init__(self, uri):
        super().__init__(f"{shown(uri)} was written by someone else meanwhile, so "
                         "it was not replaced: run again")
        self.uri = uri


def shown(text):
    """TEXT with anything a terminal would act on (escape sequences, newlines)
    written as a Python escape: names from a bucket are not to be trusted."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


def local_stamp(path):
    """What identifies the file at PATH now; 0 when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 0
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class _Corrupt(Exception):
    """A transfer whose bytes disagree with the bucket's checksums."""


class Storage:
    """Reads and writes local paths and gs:// URIs.

    gcs_client: a google.cloud.storage.Client, or connect: a function that
    builds one, called at most once and only when a gs:// URI is touched.
    """

    def __init__(self, gcs_client=None, connect=None, policy=None):
        self._gcs = gcs_client
        self._connect = connect
        self._policy = policy
        self._buckets_seen = set()

    def gcs(self):
        if self._gcs is None:
            if self._connect is None:
                raise UserError("gs:// URIs need Cloud Storage, which this command "
                                "was not given: use local paths")
            self._gcs = self._connect()
        return self._gcs

    def policy(self):
        if self._policy is None:
            self._policy = gcs.policy()
        return self._policy

    def _calls(self):
        p = self.policy()
        return {"retry": p.retry, "timeout": p.timeout}

    # -- questions --------------------------------------------------------

    def exists(self, uri):
        loc = parse_uri(uri)
        if loc.scheme == "file":
            return os.path.exists(loc.path)
        return self.stat(uri) is not None

    def stat(self, uri):
        """The bucket's Remote for URI, or None when there is no such object.
        A bucket that does not exist is an error, not a None."""
        loc = parse_uri(uri)
        with gcs.errors(f"look up {uri}"):
            blob = self.gcs().bucket(loc.bucket).get_blob(loc.path, **self._calls())
        if blob is None:
            self.require_bucket(loc.bucket)
            return None
        return _remote(loc.bucket, blob)

    def list(self, prefix_uri):
        """Remotes of every object whose name starts with the gs:// PREFIX_URI."""
        from google.api_core.exceptions import NotFound

        loc = parse_uri(prefix_uri)
        if loc.scheme != "gs":
            raise ValueError(f"list() takes a gs:// prefix, not {prefix_uri}")
        with gcs.errors(f"list {prefix_uri}"):
            try:
                blobs = list(self.gcs().list_blobs(loc.bucket, prefix=loc.path,
                                                   **self._calls()))
            except NotFound:
                raise self._no_bucket(loc.bucket) from None
        self._buckets_seen.add(loc.bucket)
        return sorted((_remote(loc.bucket, b) for b in blobs), key=lambda r: r.uri)

    def require_bucket(self, bucket):
        """Raise a clear UserError when BUCKET does not exist (checked once)."""
        if bucket in self._buckets_seen:
            return
        from google.api_core.exceptions import Forbidden

        with gcs.errors(f"look up gs://{bucket}"):
            try:
                found = self.gcs().bucket(bucket).exists(**self._calls())
            except Forbidden:       # may use objects, not read the bucket: fine
                found = True
        if not found:
            raise self._no_bucket(bucket)
        self._buckets_seen.add(bucket)

    @staticmethod
    def _no_bucket(bucket):
        return UserError(f"bucket gs://{bucket} does not exist: check the name "
                         f"(STEERING_BUCKET_NAME, or the gs:// URI given), or create "
                         f"it with 'gcloud storage buckets create gs://{bucket}'")

    # -- transfers --------------------------------------------------------

    def fetch(self, uri, workdir, what="file"):
        """A local path holding URI's content (local paths are used in place)."""
        loc = parse_uri(uri)
        if loc.scheme == "file":
            if not os.path.isfile(loc.path):
                raise UserError(f"{what} {loc.path} not found: check the path")
            return loc.path
        remote = self.stat(uri)
        if remote is None:
            raise UserError(f"{what} {uri} not found in the bucket: check the name")
        target = os.path.join(workdir, loc.name)
        self.download(remote, target)
        return target

    def stamp(self, uri):
        """What URI is now, for a later put(expect=...): the object's
        generation, or the local file's device, inode, mtime and size; 0
        when there is nothing."""
        loc = parse_uri(uri)
        if loc.scheme == "file":
            return local_stamp(loc.path)
        remote = self.stat(uri)
        return remote.generation if remote else 0

    def put(self, local, uri, expect=None):
        """Copy the local file LOCAL to URI, atomically; returns its new stamp.
        EXPECT None replaces anything; 0 writes only where nothing is; a
        stamp() replaces only that. Else Conflict, and nothing is replaced."""
        loc = parse_uri(uri)
        if loc.scheme == "gs":
            return self.upload(local, uri, if_generation_match=expect).generation
        if expect == 0:                  # create: a link fails where a file appeared
            with _beside(loc.path) as tmp:
                shutil.copyfile(local, tmp)
                try:
                    os.link(tmp, loc.path)
                except FileExistsError:
                    raise Conflict(uri) from None
            return local_stamp(loc.path)
        with atomic_path(loc.path) as tmp:
            shutil.copyfile(local, tmp)
            if expect is not None and local_stamp(loc.path) != expect:
                raise Conflict(uri)
        return local_stamp(loc.path)

    def keep_copy(self, uri, stamp, copy_uri):
        """Copy the object URI to COPY_URI in its bucket (no byte travels),
        only while URI is still STAMP: else Conflict. Returns COPY_URI."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        loc, copy = parse_uri(uri), parse_uri(copy_uri)
        bucket = self.gcs().bucket(loc.bucket)
        with gcs.errors(f"copy {uri}"):
            try:
                bucket.copy_blob(bucket.blob(loc.path), bucket, copy.path,
                                 if_source_generation_match=stamp, **self._calls())
            except (NotFound, PreconditionFailed):
                raise Conflict(uri) from None
        return copy_uri

    def restore_copy(self, copy_uri, uri, expect):
        """COPY_URI back at URI, only while URI is still EXPECT (what this
        run wrote there); True when restored."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        loc, copy = parse_uri(uri), parse_uri(copy_uri)
        bucket = self.gcs().bucket(loc.bucket)
        with gcs.errors(f"put back {uri}"):
            try:
                bucket.copy_blob(bucket.blob(copy.path), bucket, loc.path,
                                 if_generation_match=expect, **self._calls())
            except (NotFound, PreconditionFailed):
                return False
        return True

    def remove(self, uri, expect):
        """Delete URI when it is still what stamp EXPECT says (None: whatever
        it is); True if deleted."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        loc = parse_uri(uri)
        if loc.scheme == "file":
            if expect is not None and local_stamp(loc.path) != expect:
                return False
            with contextlib.suppress(FileNotFoundError):
                os.remove(loc.path)
                return True
            return False
        with gcs.errors(f"delete {uri}"):
            try:
                self.gcs().bucket(loc.bucket).blob(loc.path).delete(
                    if_generation_match=expect, **self._calls())
            except (NotFound, PreconditionFailed):
                return False
        return True

    def upload(self, local, uri, if_generation_match=None, sums=None, tracker=None,
               say=None):
        """Upload LOCAL to the gs:// URI and check the bucket's checksums.

        if_generation_match: 0 for 'only if absent', a generation for 'only
        if unchanged' (Cloud Storage enforces it; None replaces anything):
        Conflict when it fails. TRACKER: a file that keeps a large upload's
        session so that the next run resumes it (SAY tells when it does)."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        loc = parse_uri(uri)
        sums = sums or checksums(local)
        size = os.path.getsize(local)
        bucket = self.gcs().bucket(loc.bucket)
        with gcs.errors(f"upload {local} to {uri}"):
            for attempt in range(1, ATTEMPTS + 1):
                blob = bucket.blob(loc.path, chunk_size=CHUNK_SIZE
                                   if size > CHUNK_SIZE else None)
                blob.md5_hash, blob.crc32c = sums["md5"], sums["crc32c"]  # checked by GCS
                try:
                    with open(local, "rb") as f, _progress(size, loc.name) as bar:
                        if size > CHUNK_SIZE:
                            Resumable(self, blob, uri, f, size, sums, if_generation_match,
                                      tracker, say, bar).run()
                        else:
                            blob.upload_from_file(_Reader(f, bar), size=size,
                                                  checksum="crc32c",
                                                  if_generation_match=if_generation_match,
                                                  **self._calls())
                    break
                except NotFound:
                    raise self._no_bucket(loc.bucket) from None
                except PreconditionFailed:
                    # A retry after a lost answer finds our own upload there.
                    remote = self.stat(uri)
                    if remote is not None and remote.matches(sums):
                        break
                    raise Conflict(uri) from None
                except Exception as e:
                    if not _is_corruption(e):
                        raise
                    _forget(tracker)             # that session's bytes were bad
                    if attempt == ATTEMPTS:
                        raise UserError(f"{local} arrived corrupted at {uri} {attempt} "
                                        "times (checksums differ), so the bucket "
                                        "refused it and kept what it had: check the "
                                        "network and run again") from None
        remote = self.stat(uri)
        if remote is None or not remote.matches(sums):
            raise UserError(f"the copy of {local} at {uri} does not match it "
                            "(checksums differ): run the command again")
        _forget(tracker)
        return remote

    def download(self, remote, target):
        """Download the object REMOTE (a Remote or gs:// URI) to TARGET, which is
        replaced only once its crc32c and md5 match the bucket's."""
        if not isinstance(remote, Remote):
            uri = remote
            remote = self.stat(uri)
            if remote is None:
                raise UserError(f"{uri} not found in the bucket: check the name")
        loc = parse_uri(remote.uri)
        blob = self.gcs().bucket(loc.bucket).blob(loc.path, generation=remote.generation)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with gcs.errors(f"download {remote.uri}"), atomic_path(target) as tmp:
                    with open(tmp, "wb") as f, _progress(remote.size, loc.name) as bar:
                        try:
                            blob.download_to_file(_Writer(f, bar), checksum="crc32c",
                                                  **self._calls())
                        except Exception as e:
                            if _is_corruption(e):
                                raise _Corrupt() from None
                            raise
                    if not remote.matches(checksums(tmp)):
                        raise _Corrupt()
                return remote
            except _Corrupt:
                if attempt == ATTEMPTS:
                    raise UserError(f"{remote.uri} arrived corrupted {attempt} times "
                                    "(checksums differ); nothing was written: check "
                                    "the network and run again") from None


class _SessionGone(Exception):
    """The resumable session expired (a week) or was cancelled."""


class Resumable:
    """One resumable upload of the open file F: a session (new, or the
    tracker's when it is for these very bytes), then CHUNK_SIZE pieces, each
    retried from where the bucket says it has the bytes up to."""

    def __init__(self, storage, blob, uri, f, size, sums, if_generation_match,
                 tracker, say, bar):
        self.storage, self.blob, self.uri, self.f = storage, blob, uri, f
        self.size, self.sums, self.match = size, sums, if_generation_match
        self.tracker, self.say, self.bar = tracker, say, bar
        self.identity = {"object": uri, "size": size, "crc32c": sums["crc32c"],
                         "mtime_ns": os.fstat(f.fileno()).st_mtime_ns,
                         "if_generation_match": if_generation_match}

    def run(self):
        calls = self.storage._calls()
        session, offset = self._saved(), 0
        if session:
            try:
                offset = calls["retry"](self._query)(session)
            except _SessionGone:
                session = None
            else:
                if self.say:
                    self.say(f"resuming the upload of {self.blob.name} at "
                             f"{human(offset)} of {human(self.size)}")
        if not session:
            session = self.blob.create_resumable_upload_session(
                size=self.size, checksum=None, if_generation_match=self.match,
                **calls)
            self._save(session)
        asked = True
        while offset < self.size:
            def step():
                nonlocal offset, asked
                if not asked:            # after a failure: where are we?
                    offset = self._query(session)
                    asked = True
                    if offset >= self.size:
                        return
                asked = False
                offset = self._send(session, offset)
                asked = True
            try:
                calls["retry"](step)()
            except _SessionGone:
                _forget(self.tracker)
                raise UserError(f"the upload session of {self.uri} has expired: run "
                                "again to start it afresh") from None
            except BaseException:        # the network, the deadline, Ctrl-C
                if self.say and self.tracker and os.path.exists(self.tracker):
                    self.say(f"the upload stopped at {human(offset)} of "
                             f"{human(self.size)}: the same command resumes it "
                             f"({os.path.basename(self.tracker)} keeps its session)")
                raise

    def _http(self, session, data, content_range):
        timeout = self.storage._calls()["timeout"]
        resp = self.storage.gcs()._http.put(session, data=data, timeout=timeout,
                                            headers={"Content-Range": content_range})
        if resp.status_code in (200, 201):
            return self.size
        if resp.status_code == 308:
            got = resp.headers.get("Range", "")
            offset = int(got.rsplit("-", 1)[1]) + 1 if got else 0
            # Cloud Storage keeps whole 256 KiB blocks until the last piece; the
            # emulator answers "bytes=0-0" when it has nothing: start from 0.
            return offset if offset >= self.size else offset - offset % QUANTUM
        if resp.status_code in (404, 410):
            raise _SessionGone()
        from google.api_core.exceptions import from_http_response
        raise from_http_response(resp)

    def _query(self, session):
        offset = self._http(session, b"", f"bytes */{self.size}")
        self._moved(offset)
        return offset

    def _send(self, session, offset):
        self.f.seek(offset)
        data = self.f.read(min(CHUNK_SIZE, self.size - offset))
        end = offset + len(data) - 1
        offset = self._http(session, data, f"bytes {offset}-{end}/{self.size}")
        self._moved(offset)
        return offset

    def _moved(self, offset):
        if self.bar is not None:
            self.bar.update(offset - self.bar.n)

    def _saved(self):
        """The tracker's session when it is for this object, file and precondition."""
        if not self.tracker:
            return None
        try:
            with open(self.tracker) as t:
                saved = json.load(t)
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or any(saved.get(k) != v for k, v
                                               in self.identity.items()):
            return None
        session = saved.get("session")
        return session if isinstance(session, str) and session.startswith(
            ("https://", "http://")) else None

    def _save(self, session):
        if not self.tracker:
            return
        try:
            with atomic_path(self.tracker) as tmp:
                os.chmod(tmp, 0o600)     # the URL lets anyone finish this upload
                with open(tmp, "w") as t:
                    json.dump({"session": session, **self.identity}, t)
        except OSError:                  # a read-only folder: no resuming, that is all
            pass


def _forget(tracker):
    if tracker:
        with contextlib.suppress(OSError):
            os.remove(tracker)


def human(n):
    """N bytes as a person reads them: '512 B', '1.5 KiB', '8.0 MiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _remote(bucket, blob):
    return Remote(f"gs://{bucket}/{blob.name}", int(blob.size or 0), blob.md5_hash,
                  blob.crc32c, int(blob.generation or 0))


def _is_corruption(exc):
    from google.cloud.storage.exceptions import DataCorruption
    if isinstance(exc, DataCorruption):
        return True
    # Cloud Storage refuses an upload whose bytes disagree with the md5/crc32c sent.
    code = getattr(exc, "code", None)
    return code == 400 and ("MD5" in str(exc) or "CRC32C" in str(exc)
                            or "checksum" in str(exc).lower())


@contextlib.contextmanager
def _progress(total, name):
    """A tqdm bar on stderr for large files when it is a terminal; else None
    (also where tqdm is missing: a bar is a nicety, not a reason to fail)."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty() or tqdm is None:
        yield None
        return
    try:
        columns, lines = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        columns = lines = 0
    # A terminal that reports no size (some containers) would get an empty bar.
    bar = tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
               leave=False, file=sys.stderr, ncols=columns or 80, nrows=lines or 24)
    try:
        yield bar
    finally:
        bar.close()


class _Reader:
    """A file for uploads that moves the bar to the position read so far."""

    def __init__(self, f, bar):
        self._f, self._bar = f, bar

    def read(self, *args):
        data = self._f.read(*args)
        if self._bar is not None:
            self._bar.update(self._f.tell() - self._bar.n)
        return data

    def __getattr__(self, name):
        return getattr(self._f, name)


class _Writer:
    """A file for downloads that advances the bar by what was written."""

    def __init__(self, f, bar):
        self._f, self._bar = f, bar

    def write(self, data):
        n = self._f.write(data)
        if self._bar is not None:
            self._bar.update(len(data))
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)
