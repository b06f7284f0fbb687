"""local_makemovie.sh: DonkeyCar's MakeMovie, salient map on by default; its
trust rows (tests/hardening.py) at the end (its usage: test_scripts.py)."""
import numpy as np
import pytest
from hardening import Row, row_ids
from helpers import frames, one_line_error, save_model, write_synth_tub
from untrusted import (
    UNSAFE_PATH,
    archive_with_tub,
    image_line,
    manifest_says,
    movie_model_with_code,
)


@pytest.fixture
def movie_car(car, synth_tub, run):
    assert run("make_tub_archive.sh").returncode == 0
    (car / "models").mkdir(exist_ok=True)
    save_model(car / "models" / "pilot-wip.h5")
    return car


def test_salient_and_plain_movies_of_a_tub_of_another_frame_size(car, run):
    """Frames of 128x120 under a config of 160x120 (the camera changed): they
    train, since DonkeyCar resizes them; the movie resizes them the same way.
    The salient movie (the default) runs to the tub's last record (the
    default END), the plain one (-p) from START to END."""
    write_synth_tub(car / "data", records=60, size="128x120")
    assert run("make_tub_archive.sh").returncode == 0
    (car / "models").mkdir(exist_ok=True)
    save_model(car / "models" / "pilot-wip.h5")
    r = run("local_makemovie.sh")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "frames are 128x120, the config's 160x120: resized as training resizes them" \
        in r.stdout
    assert "wrote pilot-wip.mp4: 59 frames (records 1 to 59) at 20 fps" in r.stdout
    assert "Traceback" not in r.stderr and "Unexpected closing manifest" not in r.stderr
    fps, salient = frames(car / "pilot-wip.mp4")
    assert fps == 20 and len(salient) == 59           # the config's DRIVE_LOOP_HZ
    assert salient[0].shape == (240, 320, 3)          # 160x120, scaled 2x
    r = run("local_makemovie.sh", "-s", "20", "-e", "50", "-p", "-o", "plain.mp4")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "wrote plain.mp4: 30 frames (records 20 to 49) at 20 fps" in r.stdout
    _, plain = frames(car / "plain.mp4")
    assert len(plain) == 30 and plain[0].shape == (240, 320, 3)
    # The salient map recolours the frame; the plain one keeps the camera
    # image (record 30 in both).
    diff = np.abs(salient[29].astype(int) - plain[10].astype(int)).mean()
    assert diff > 2, diff
    # Which bar is whose: a green swatch ("you") above a blue one ("model").
    for frame in (salient[0], plain[20]):
        green, blue = frame[6:12, 6:14].mean(axis=(0, 1)), frame[20:26, 6:14].mean(axis=(0, 1))
        assert green[1] > 180 and green[0] < 90 and green[2] < 90, green
        assert blue[2] > 180 and blue[0] < 90 and blue[1] < 90, blue
    # In a log (not a terminal) the progress is a line at each tenth, no redraws.
    progress = [ln for ln in (r.stdout + r.stderr).splitlines() if "%|" in ln]
    assert "\r" not in r.stdout + r.stderr and 5 <= len(progress) <= 12, progress
    before = (car / "plain.mp4").read_bytes()
    r = run("local_makemovie.sh", "-e", "10", "-p", "-o", "plain.mp4")
    assert r.returncode == 1 and "already exists: pass -f" in one_line_error(r)
    assert (car / "plain.mp4").read_bytes() == before


def test_missing_model_other_size_and_bad_range(movie_car, run):
    r = run("local_makemovie.sh", "-m", "models/nothere.h5", "-e", "10")
    assert r.returncode == 1 and "model models/nothere.h5 not found" in one_line_error(r)
    save_model(movie_car / "models" / "small.h5", width=128, height=96)
    r = run("local_makemovie.sh", "-m", "models/small.h5", "-e", "10")
    assert r.returncode == 1
    assert "the model models/small.h5 takes 128x96x3 images but the config gives 160x120x3" \
        in one_line_error(r)
    r = run("local_makemovie.sh", "-s", "50", "-e", "500")
    assert r.returncode == 1 and "outside the tub's 200 records" in one_line_error(r)
    assert not list(movie_car.glob("*.mp4"))


def test_moviepy_2_is_refused_with_the_fix(movie_car, run, tmp_path):
    """moviepy 2 dropped moviepy.editor, so DonkeyCar's makemovie would log and
    return quietly; we fail with the fix. (moviepy 2 itself is not installed
    here: a package of that shape on PYTHONPATH stands in for it.)"""
    from helpers import script_env
    fake = tmp_path / "site" / "moviepy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('__version__ = "2.1.2"\n')
    r = run("local_makemovie.sh", "-e", "10",
            env=script_env(PYTHONPATH=str(tmp_path / "site")))
    assert r.returncode == 1
    assert "moviepy 2.1.2 is installed but DonkeyCar's makemovie needs moviepy 1: " \
           "pip install 'moviepy<2'" in one_line_error(r)


# -- trust boundaries: what an archive, a tub, a config or a model someone
# else made can make the script do (the setups: tests/untrusted.py) --

TRUST = [
    Row("movie:model-runs-code", movie_model_with_code, ("local_makemovie.sh",), 1,
        r"the model models/pilot-wip\.h5 has a layer that runs Python code when it loads "
        r"\(Lambda scale\): pass --trust-model-code only if you trust who made it"),
    Row("movie:catalog-image-climbs-out", archive_with_tub(image_line("../../../x.jpg")),
        ("local_makemovie.sh",), 1,
        r"tub wip\.tgz/data: catalog_0\.catalog line 3 names the image "
        r"'\.\./\.\./\.\./x\.jpg'"),
    Row("movie:archive-json-climbing-tub", manifest_says('[{"path": "../../hosttub"}]'),
        ("local_makemovie.sh",), 1, UNSAFE_PATH.format(r"\.\./\.\./hosttub")),
]


@pytest.mark.parametrize("row", TRUST, ids=row_ids(TRUST))
def test_trust_boundaries(row, harden):
    harden(row)
