"""Local paths and gs:// URIs behind one small API.

    loc = parse_uri("gs://bucket/training/wip.tgz")   # Location('gs', 'bucket', 'training/wip.tgz')
    store = Storage()                                  # clients built lazily, once
    local = store.fetch("wip.tgz", workdir)            # a local path to read
    store.put("models/x.h5", "gs://bucket/models/x.h5")

Every write lands atomically: a temporary name beside the target, renamed
only when complete.
"""
import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass

from trainer.errors import UserError


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


class Storage:
    """Reads and writes local paths and gs:// URIs."""

    def __init__(self, gcs_client=None):
        self._gcs = gcs_client

    def gcs(self):
        if self._gcs is None:
            raise UserError("gs:// URIs are not supported in this build yet: "
                            "use local paths")
        return self._gcs

    def exists(self, uri):
        loc = parse_uri(uri)
        if loc.scheme == "file":
            return os.path.exists(loc.path)
        return self.gcs().bucket(loc.bucket).blob(loc.path).exists()

    def fetch(self, uri, workdir, what="file"):
        """A local path holding URI's content (local paths are used in place)."""
        loc = parse_uri(uri)
        if loc.scheme == "file":
            if not os.path.isfile(loc.path):
                raise UserError(f"{what} {loc.path} not found: check the path")
            return loc.path
        raise UserError(f"cannot read {uri}: gs:// is not supported yet")

    def put(self, local, uri):
        """Copy the local file LOCAL to URI, atomically."""
        loc = parse_uri(uri)
        if loc.scheme == "file":
            with atomic_path(loc.path) as tmp:
                shutil.copyfile(local, tmp)
            return
        raise UserError(f"cannot write {uri}: gs:// is not supported yet")
