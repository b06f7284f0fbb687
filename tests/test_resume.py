"""Uploads that resume and writes that never overwrite another writer
(issue 15), against the real emulator behind tests/faultproxy.py: the
emulator ignores ifGenerationMatch, so the proxy enforces it as Cloud
Storage does, and cuts resumable uploads off mid-way."""
import json
import os
import stat

import pytest
from faultproxy import FaultProxy

from trainer.core import gcs as gcsmod
from trainer.core.errors import UserError
from trainer.core.storage import CHUNK_SIZE, Conflict, Storage, checksums, local_stamp

SIZE = 3 * CHUNK_SIZE + 12345          # four pieces, the last a short one


@pytest.fixture
def store(gcs, monkeypatch):
    def use(url, deadline="30"):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        monkeypatch.setenv("TRAINER_GCS_DEADLINE", deadline)
        return Storage(connect=gcsmod.connect)
    return use


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "big.tgz"
    path.write_bytes(os.urandom(SIZE))
    return path


def test_an_upload_cut_off_resumes_where_it_stopped(gcs, store, big, tmp_path):
    uri = f"gs://{gcs.name}/training/big.tgz"
    tracker = tmp_path / ".big.tgz.upload"
    # The session's URL names the host it was opened on: one proxy for both runs.
    with FaultProxy(gcs.url, every=0, cut_every=0, upload_chunks=2) as proxy:
        with pytest.raises(UserError, match="could not upload"):
            store(proxy.url, deadline="2").upload(str(big), uri, if_generation_match=0,
                                                 tracker=str(tracker))
        assert gcs.names("training/") == []              # nothing half-written shows
        saved = json.loads(tracker.read_text())
        assert saved["object"] == uri and saved["size"] == SIZE
        assert saved["session"].startswith("http") and saved["if_generation_match"] == 0
        assert stat.S_IMODE(tracker.stat().st_mode) == 0o600   # a credential

        said = []
        proxy.upload_chunks, proxy.upload_ranges = None, []
        remote = store(proxy.url).upload(str(big), uri, if_generation_match=0,
                                         tracker=str(tracker), say=said.append)
    # The two pieces that arrived before the cut were not sent again.
    first = int(proxy.upload_ranges[0].split()[1].split("-")[0])
    assert first == 2 * CHUNK_SIZE, proxy.upload_ranges
    assert said == [f"resuming the upload of training/big.tgz at 16.0 MiB of "
                    f"{SIZE / (1 << 20):.1f} MiB"]
    assert gcs.read("training/big.tgz") == big.read_bytes() and remote.size == SIZE
    assert not tracker.exists()                          # gone once complete


def test_a_changed_file_or_a_stale_session_starts_afresh(gcs, store, big, tmp_path):
    uri = f"gs://{gcs.name}/training/big.tgz"
    tracker = tmp_path / ".big.tgz.upload"
    with FaultProxy(gcs.url, every=0, cut_every=0, upload_chunks=1) as proxy:
        with pytest.raises(UserError):
            store(proxy.url, deadline="2").upload(str(big), uri, tracker=str(tracker))
        big.write_bytes(os.urandom(SIZE))                # re-made meanwhile
        proxy.upload_chunks, proxy.upload_ranges = None, []
        store(proxy.url).upload(str(big), uri, tracker=str(tracker))
    assert proxy.upload_ranges[0].startswith("bytes 0-")
    assert gcs.read("training/big.tgz") == big.read_bytes() and not tracker.exists()

    # A session the bucket no longer knows (expired): a new one, quietly.
    session = gcs.url + "/upload/storage/v1/b/robocar-test/o?upload_id=gone"
    tracker.write_text(json.dumps({
        "session": session, "object": uri, "size": SIZE, "if_generation_match": None,
        "crc32c": checksums(big)["crc32c"], "mtime_ns": big.stat().st_mtime_ns}))
    store(gcs.url).upload(str(big), uri, tracker=str(tracker))
    assert not tracker.exists()


def test_a_precondition_keeps_another_writers_object(gcs, store, tmp_path):
    """ifGenerationMatch=0 while another writer got there first: Conflict,
    the other object kept; the generation read before: only that one is
    replaced. Small (multipart) and large (resumable) uploads alike."""
    for size in (1000, CHUNK_SIZE + 1):
        src = tmp_path / f"m{size}.h5"
        src.write_bytes(os.urandom(size))
        uri = f"gs://{gcs.name}/models/m{size}.h5"
        with FaultProxy(gcs.url, every=0, cut_every=0, preconditions=True,
                        before_upload=lambda name: gcs.put(name, b"theirs")) as proxy:
            s = store(proxy.url)
            with pytest.raises(Conflict, match=rf"{uri} was written by someone else "
                               "meanwhile, so it was not replaced"):
                s.put(str(src), uri, expect=0)
            assert gcs.read(f"models/m{size}.h5") == b"theirs"
            theirs = s.stamp(uri)
            proxy.before_upload = None
            s.put(str(src), uri, expect=theirs)            # -f: replaces what it saw
            assert gcs.read(f"models/m{size}.h5") == src.read_bytes()
            src.write_bytes(os.urandom(size))
            with pytest.raises(Conflict):
                s.put(str(src), uri, expect=theirs)        # not twice
            assert proxy.refused == [f"models/m{size}.h5"] * 2
            assert not s.remove(uri, theirs) and s.remove(uri, s.stamp(uri))
            assert gcs.names("models/") == []


def test_local_writes_never_replace_a_file_that_appeared(tmp_path):
    s = Storage()
    src = tmp_path / "m.h5"
    src.write_bytes(b"ours")
    out = tmp_path / "out" / "m.h5"
    out.parent.mkdir()
    out.write_bytes(b"theirs")
    with pytest.raises(Conflict):
        s.put(str(src), str(out), expect=0)
    assert out.read_bytes() == b"theirs" and os.listdir(out.parent) == ["m.h5"]
    seen = local_stamp(out)
    out.unlink()
    out.write_bytes(b"theirs again")                     # changed after it was seen
    os.utime(out, ns=(1, 1))
    with pytest.raises(Conflict):
        s.put(str(src), str(out), expect=seen)
    assert out.read_bytes() == b"theirs again" and os.listdir(out.parent) == ["m.h5"]
    s.put(str(src), str(out), expect=local_stamp(out))
    assert out.read_bytes() == b"ours"
