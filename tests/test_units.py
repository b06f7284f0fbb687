"""The small parts of the training job (URIs: test_storage.py)."""
import pytest

from trainer.core.bucket import default_model_name
from trainer.core.config import parse_overrides
from trainer.core.errors import UserError
from trainer.core.names import plain_name


def test_overrides_are_python_literals_or_strings():
    assert parse_overrides(["MAX_EPOCHS=3", "DEFAULT_MODEL_TYPE=linear",
                            "AUGMENTATIONS=['MULTIPLY']", "USE_EARLY_STOP=False"]) == {
        "MAX_EPOCHS": 3, "DEFAULT_MODEL_TYPE": "linear",
        "AUGMENTATIONS": ["MULTIPLY"], "USE_EARLY_STOP": False}
    for bad in ("MAX_EPOCHS", "max_epochs=3", "=3"):
        with pytest.raises(UserError):
            parse_overrides([bad])


def test_default_model_name():
    assert default_model_name("wip.tgz") == "pilot-wip"
    assert default_model_name("gs://b/training/laps.tar.gz") == "pilot-laps"


def test_a_killed_extraction_process_is_one_line_not_a_hang():
    """The job's extraction process (trainer/background.py) dying, e.g. killed
    for memory, ends the job with one line instead of waiting forever."""
    import os

    from trainer.job.background import Background
    job = Background("extraction", os._exit, 9)
    try:
        with pytest.raises(UserError, match=r"^the extraction process died \(exit 9\), "
                           "perhaps out of memory: free some, or try again$"):
            job.result()
    finally:
        job.stop()


def test_the_extraction_process_sends_back_its_result_or_its_error(tmp_path):
    """What the child returns comes back; an OSError (a full disk, say) comes
    back whole, with its file name, for the job's error handling."""
    import os

    from trainer.job.background import Background
    (tmp_path / "frame.jpg").write_bytes(b"")
    ok = Background("extraction", os.listdir, str(tmp_path))
    assert ok.result() == ["frame.jpg"]
    ok.stop()
    missing = tmp_path / "gone" / "x"
    bad = Background("extraction", os.mkdir, str(missing))
    with pytest.raises(FileNotFoundError) as e:
        bad.result()
    bad.stop()
    assert e.value.filename == str(missing)


@pytest.mark.parametrize("good", ["wip", "pilot-wip", "a.b_c-1", "X" * 100])
def test_plain_names_pass(good):
    assert plain_name(good, "-m") == good


@pytest.mark.parametrize("bad", ["", "my run", "../x", "/abs/x", "a/b", ".hidden", "-x",
                                 "x" * 101, "tab\tname", "é"])
def test_other_names_are_refused_in_one_line(bad):
    from trainer.core.errors import UserError
    with pytest.raises(UserError) as e:
        plain_name(bad, "-m")
    assert "\n" not in str(e.value) and str(e.value).startswith("-m ")


@pytest.mark.parametrize("epochs", [2, 5, 23])
def test_the_loss_plot_counts_whole_epochs_and_its_legend_hides_no_curve(tmp_path, epochs):
    import numpy as np

    from trainer.job.plots import loss_plot
    rng = np.random.default_rng(epochs)
    history = {"loss": list(rng.uniform(0.1, 0.5, epochs)),
               "val_loss": list(rng.uniform(0.1, 0.5, epochs))}
    fig = loss_plot(history, "pilot-x", tmp_path / "pilot-x.png")
    assert (tmp_path / "pilot-x.png").read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    shown = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert shown and all(float(t).is_integer() for t in shown), shown
    fig.canvas.draw()
    legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes.x1 - 1               # beside the axes, over no curve
    assert legend.x1 <= fig.bbox.x1 + 1           # and inside the picture
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == [
        "train loss", "validation loss"]
