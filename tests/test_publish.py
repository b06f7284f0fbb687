"""A model set is published all or nothing (issue 15): each file with a
generation precondition, the card last, naming every other file's sha256;
a writer that comes first, in the bucket or in a local -o folder, makes the
run fail in one line and takes nothing of its. The emulator ignores
preconditions, so tests/faultproxy.py enforces them in front of it."""
import hashlib
import json
import os

import pytest
from faultproxy import FaultProxy
from hardening import Row, good_archive, row_ids, steps
from trained import NAME

from trainer.core import bucket as layout
from trainer.core import gcs as gcsmod
from trainer.core.errors import UserError
from trainer.core.storage import Storage

SEVEN = [NAME + s for s in layout.OUTPUTS]          # in publishing order


@pytest.fixture
def local(trained):
    """The session's model (tests/trained.py): {suffix: path}."""
    return layout.model_files(str(trained.models), NAME)


@pytest.fixture
def store(gcs, monkeypatch):
    def use(url):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        monkeypatch.setenv("TRAINER_GCS_DEADLINE", "30")
        return Storage(connect=gcsmod.connect)
    return use


def test_the_card_goes_last_and_names_the_six_others(gcs, store, local):
    seen = []
    with FaultProxy(gcs.url, every=0, cut_every=0, preconditions=True,
                    before_upload=seen.append) as proxy:
        s = store(proxy.url)
        outputs = layout.model_files(f"gs://{gcs.name}/models", NAME)
        layout.publish(s, local, layout.claim(s, outputs, force=False))
    assert seen == [f"models/{n}" for n in SEVEN]                   # the card last
    card = json.loads(gcs.read(f"models/{NAME}.json"))
    assert sorted(card["files"]) == sorted(SEVEN[:-1])
    for name, entry in card["files"].items():
        data = gcs.read(f"models/{name}")
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_a_writer_that_came_first_wins_and_nothing_of_ours_stays(gcs, store, local):
    """Another run publishes pilot-wip.onnx while this one trains: this run
    fails naming it, and takes back the .h5 and .tflite it had put there."""
    def other_run(name):
        if name == f"models/{NAME}.onnx":
            gcs.put(name, b"another run's onnx")
    with FaultProxy(gcs.url, every=0, cut_every=0, preconditions=True,
                    before_upload=other_run) as proxy:
        s = store(proxy.url)
        outputs = layout.claim(s, layout.model_files(f"gs://{gcs.name}/models", NAME),
                               force=False)
        with pytest.raises(UserError, match=rf"^gs://{gcs.name}/models/{NAME}\.onnx was "
                           "written by another run while this one trained, so this "
                           "model was not published: pass -f to replace that model, "
                           "or -m NAME to train another$"):
            layout.publish(s, local, outputs)
    assert gcs.names("models/") == [f"models/{NAME}.onnx"]
    assert gcs.read(f"models/{NAME}.onnx") == b"another run's onnx"


def test_with_f_only_what_was_there_at_the_start_is_replaced(gcs, store, local):
    for name in SEVEN:
        gcs.put(f"models/{name}", b"last week's " + name.encode())
    with FaultProxy(gcs.url, every=0, cut_every=0, preconditions=True) as proxy:
        s = store(proxy.url)
        outputs = layout.model_files(f"gs://{gcs.name}/models", NAME)
        with pytest.raises(UserError, match="already exists: pass -f"):
            layout.claim(s, outputs, force=False)
        claimed = layout.claim(s, outputs, force=True)
        gcs.put(f"models/{NAME}.tflite", b"written while we trained")
        with pytest.raises(UserError, match=rf"{NAME}\.tflite was written by another run"):
            layout.publish(s, local, claimed)
        assert gcs.read(f"models/{NAME}.tflite") == b"written while we trained"
        assert gcs.read(f"models/{NAME}.json") == f"last week's {NAME}.json".encode()
        layout.publish(s, local, layout.claim(s, outputs, force=True))
    for name in SEVEN:
        assert gcs.read(f"models/{name}") == open(local[name[len(NAME):]], "rb").read()


def test_a_local_folder_is_never_written_over_either(tmp_path, local):
    s = Storage()
    out = tmp_path / "out"
    outputs = layout.claim(s, layout.model_files(str(out), NAME), force=False)
    out.mkdir()
    (out / f"{NAME}.png").write_bytes(b"appeared meanwhile")
    with pytest.raises(UserError, match=rf"{NAME}\.png was written by another run"):
        layout.publish(s, local, outputs)
    assert os.listdir(out) == [f"{NAME}.png"]            # ours taken back, theirs kept
    assert (out / f"{NAME}.png").read_bytes() == b"appeared meanwhile"
    outputs = layout.claim(s, layout.model_files(str(out), NAME), force=True)
    layout.publish(s, local, outputs)
    assert sorted(os.listdir(out)) == sorted(SEVEN)


# -- hardening rows (tests/hardening.py): local_train.sh racing another writer ----------

def another_run_publishes(ctx):
    """The stock archive here; the bucket behind a precondition-enforcing
    proxy; another run's pilot-wip.onnx lands just before ours."""
    gcs = ctx.use_gcs()

    def other_run(name):
        if name == f"models/{NAME}.onnx":
            gcs.put(name, b"another run's onnx")
    proxy = FaultProxy(gcs.url, every=0, cut_every=0, preconditions=True,
                       before_upload=other_run).start()
    ctx.finally_(proxy.stop)
    ctx.env["STORAGE_EMULATOR_HOST"] = proxy.url


def only_the_other_runs_file(ctx, r):
    assert ctx.gcs.names("models/") == [f"models/{NAME}.onnx"]
    assert ctx.gcs.read(f"models/{NAME}.onnx") == b"another run's onnx"


ROWS = [
    Row("train:another-run-publishes-first", steps(good_archive, another_run_publishes),
        ("local_train.sh", "-o", "gs://robocar-test/models"), 1,
        r"^local_train\.sh: gs://robocar-test/models/pilot-wip\.onnx was written by "
        r"another run while this one trained, so this model was not published: pass -f "
        r"to replace that model, or -m NAME to train another; the trained model is kept "
        r"in \S+/tmp/robocar-kept-pilot-wip: ",
        changes=("../tmp/robocar-kept-pilot-wip",), then=only_the_other_runs_file),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)
