"""Local paths and gs:// URIs behind one small API.

    loc = parse_uri("gs://bucket/training/wip.tgz")   # Location('gs', 'bucket', 'training/wip.tgz')
    store = Storage(connect=trainer.gcs.connect)       # the client is built once, on first use
    local = store.fetch("wip.tgz", workdir)            # a local path to read
    store.put("models/x.h5", "gs://bucket/models/x.h5")

Every write lands atomically: a temporary name beside the target, renamed
only when complete. Every transfer to or from a bucket is checked against
the object's crc32c and md5; a download is renamed into place only when
both agree, so an interrupted or corrupted one leaves nothing behind.
"""
import base64
import contextlib
import errno
import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass

from trainer.errors import UserError

# Uploads above the 8 MiB multipart limit go resumable in chunks this big:
# a retried chunk re-sends at most this much (a multiple of 256 KiB).
CHUNK_SIZE = 8 << 20
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
    """Yield a temporary path beside TARGET, renamed to TARGET on success."""
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(target) + ".")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())    # as open() would have made it
        yield tmp
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise UserError(f"no space left on the device while writing "
                            f"{os.path.basename(target)}; the partial file was "
                            "removed: free some space and run again") from None
        raise


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
            from trainer.gcs import policy
            self._policy = policy()
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
        from trainer.gcs import errors

        loc = parse_uri(uri)
        with errors(f"look up {uri}"):
            blob = self.gcs().bucket(loc.bucket).get_blob(loc.path, **self._calls())
        if blob is None:
            self.require_bucket(loc.bucket)
            return None
        return _remote(loc.bucket, blob)

    def list(self, prefix_uri):
        """Remotes of every object whose name starts with the gs:// PREFIX_URI."""
        from google.api_core.exceptions import NotFound

        from trainer.gcs import errors

        loc = parse_uri(prefix_uri)
        if loc.scheme != "gs":
            raise ValueError(f"list() takes a gs:// prefix, not {prefix_uri}")
        with errors(f"list {prefix_uri}"):
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

        from trainer.gcs import errors

        with errors(f"look up gs://{bucket}"):
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

    def resolve(self, uri, folder, what="file", hint="", suffix=""):
        """A local path as given when it exists or names a folder; a bare NAME
        missing here becomes gs://$STEERING_BUCKET_NAME/FOLDER/NAME. NAME may
        leave out SUFFIX (wip for wip.tgz)."""
        loc = parse_uri(uri)
        names = [uri] + ([uri + suffix] if suffix and not uri.endswith(suffix) else [])
        if loc.scheme == "gs":
            return uri
        for name in names:
            if os.path.exists(name):
                return name
        if "/" in uri or os.sep in uri:
            return uri
        from trainer.gcs import EXAMPLE_BUCKET, bucket_from_env

        try:
            bucket = bucket_from_env()
        except UserError:
            if os.environ.get("STEERING_BUCKET_NAME"):
                raise
            raise UserError(f"{what} {uri} not found here, and STEERING_BUCKET_NAME "
                            f"is not set to look in gs://BUCKET/{folder}/: check the "
                            f"name, or export STEERING_BUCKET_NAME={EXAMPLE_BUCKET}"
                            ) from None
        remotes = [f"gs://{bucket}/{folder}/{name}" for name in names]
        for remote in remotes:
            if self.exists(remote):
                return remote
        raise UserError(f"{what} {uri} is neither here nor at {remotes[-1]}: check the "
                        f"name{hint}")

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

    def put(self, local, uri):
        """Copy the local file LOCAL to URI, atomically (replacing it)."""
        loc = parse_uri(uri)
        if loc.scheme == "file":
            with atomic_path(loc.path) as tmp:
                shutil.copyfile(local, tmp)
            return
        self.upload(local, uri)

    def upload(self, local, uri, if_generation_match=None, sums=None):
        """Upload LOCAL to the gs:// URI and check the bucket's checksums.

        if_generation_match: 0 for 'only if absent', a generation for 'only
        if unchanged' (Cloud Storage enforces it; None replaces anything)."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        from trainer.gcs import errors

        loc = parse_uri(uri)
        sums = sums or checksums(local)
        size = os.path.getsize(local)
        bucket = self.gcs().bucket(loc.bucket)
        with errors(f"upload {local} to {uri}"):
            for attempt in range(1, ATTEMPTS + 1):
                blob = bucket.blob(loc.path, chunk_size=CHUNK_SIZE
                                   if size > CHUNK_SIZE else None)
                blob.md5_hash, blob.crc32c = sums["md5"], sums["crc32c"]  # checked by GCS
                try:
                    with open(local, "rb") as f, _progress(size, loc.name) as bar:
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
                    raise
                except Exception as e:
                    if not _is_corruption(e):
                        raise
                    if attempt == ATTEMPTS:
                        raise UserError(f"{local} arrived corrupted at {uri} {attempt} "
                                        "times (checksums differ), so the bucket "
                                        "refused it and kept what it had: check the "
                                        "network and run again") from None
        remote = self.stat(uri)
        if remote is None or not remote.matches(sums):
            raise UserError(f"the copy of {local} at {uri} does not match it "
                            "(checksums differ): run the command again")
        return remote

    def download(self, remote, target):
        """Download the object REMOTE (a Remote or gs:// URI) to TARGET, which is
        replaced only once its crc32c and md5 match the bucket's."""
        from trainer.gcs import errors

        if not isinstance(remote, Remote):
            uri = remote
            remote = self.stat(uri)
            if remote is None:
                raise UserError(f"{uri} not found in the bucket: check the name")
        loc = parse_uri(remote.uri)
        blob = self.gcs().bucket(loc.bucket).blob(loc.path, generation=remote.generation)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with errors(f"download {remote.uri}"), atomic_path(target) as tmp:
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
    """A tqdm bar on stderr for large files when it is a terminal; else None."""
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm
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
