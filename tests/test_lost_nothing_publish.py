"""A -f publish that cannot complete puts the old set back (issue 21): in a
bucket (the replaced objects were copied aside first, hidden, and come back
with a precondition) and in a local folder (the old files were moved aside
and come back); either way nothing of the failed run stays, and neither do
the copies. The emulator ignores preconditions: tests/faultproxy.py
enforces them, as in test_publish.py."""
import os

import pytest
from faultproxy import FaultProxy
from trained import NAME

from trainer.core import bucket as layout
from trainer.core import gcs as gcsmod
from trainer.core.errors import UserError
from trainer.core.storage import Storage

SEVEN = [NAME + s for s in layout.OUTPUTS]          # in publishing order


@pytest.fixture
def local(trained):
    out = trained.models
    return layout.model_files(str(out), NAME)


def last_weeks(name):
    return b"last week's " + name.encode()


def test_a_conflicted_f_publish_to_a_bucket_puts_the_old_set_back(gcs, local, monkeypatch):
    for name in SEVEN:
        gcs.put(f"models/{name}", last_weeks(name))
    with FaultProxy(gcs.url, every=0, cut_every=0, preconditions=True) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        monkeypatch.setenv("TRAINER_GCS_DEADLINE", "30")
        s = Storage(connect=gcsmod.connect)
        outputs = layout.claim(s, layout.model_files(f"gs://{gcs.name}/models", NAME),
                               force=True)
        gcs.put(f"models/{NAME}.onnx", b"written while we trained")    # another run
        with pytest.raises(UserError, match=rf"{NAME}\.onnx was written by another run"):
            layout.publish(s, local, outputs)
    assert gcs.read(f"models/{NAME}.onnx") == b"written while we trained"   # theirs
    for name in SEVEN:                  # the .h5 and .tflite we had replaced: back
        if name != f"{NAME}.onnx":
            assert gcs.read(f"models/{name}") == last_weeks(name), name
    assert gcs.names("models/") == sorted(f"models/{n}" for n in SEVEN)     # no copies


def test_a_conflicted_f_publish_to_a_folder_puts_the_old_set_back(tmp_path, local):
    out = tmp_path / "models"
    out.mkdir()
    for name in SEVEN:
        (out / name).write_bytes(last_weeks(name))
    (out / "notes.txt").write_text("mine\n")
    s = Storage()
    outputs = layout.claim(s, layout.model_files(str(out), NAME), force=True)
    (out / f"{NAME}.png").write_bytes(b"another run's plot")       # after the claim
    with pytest.raises(UserError, match=rf"{NAME}\.png was written by another run"):
        layout.publish(s, local, outputs)
    for name in SEVEN:
        want = b"another run's plot" if name == f"{NAME}.png" else last_weeks(name)
        assert (out / name).read_bytes() == want, name
    assert sorted(os.listdir(out)) == sorted(SEVEN + ["notes.txt"])   # no staging left
    # With the folder as it is now claimed, -f replaces the whole set.
    layout.publish(s, local, layout.claim(s, layout.model_files(str(out), NAME), force=True))
    for suffix, path in local.items():
        assert (out / f"{NAME}{suffix}").read_bytes() == open(path, "rb").read()
