"""File-system errors are one line whatever their errno (issue 21), naming
the path and the fix, with nothing lost: real faults, not patched calls. A
tmpfs remounted read-only (EROFS, as the kernel remounts a failing SD card),
a full one (ENOSPC), `ulimit -f` (EFBIG), a file where a folder goes
(ENOTDIR), a folder where a file goes (EISDIR). A finished training or movie
whose output cannot be written keeps what it made, in a folder it names.

Not built here: EACCES and EPERM (the tests run as root, whom permissions do
not stop), EIO and EDQUOT (no failing disk or quota to hand); their lines
come from the same table (trainer/core/errors.py FIXES) as the ones tested.
"""
import os
import shutil

import pytest
from lost_nothing import empty_tmpdir, env_for, hashes, mount, one_line, remount_read_only
from lost_nothing import run_script
from trained import NAME

from trainer.core.bucket import OUTPUTS

SEVEN = sorted(NAME + s for s in OUTPUTS)
EROFS = (r"read-only file system: that file system is read-only \(an SD card goes "
         r"read-only after errors: check it, e\.g\. fsck, and remount it read-write\), "
         r"or write elsewhere")
ENOSPC = r"no space left on device: free some space there, or write to another disk"
ENOTDIR = (r"not a directory: a part of that path is a file, not a folder: move the file "
           r"away, or give another path")


@pytest.fixture
def made(trained):
    """The session's trained model set (tests/trained.py)."""
    return trained.models


def bucket_env(tmp_path, gcs):
    return env_for(tmp_path, **{k: gcs.env[k] for k in (
        "STORAGE_EMULATOR_HOST", "STEERING_BUCKET_NAME", "TRAINER_GCS_DEADLINE",
        "GOOGLE_CLOUD_PROJECT")})


# -- EROFS: an SD card the kernel remounted read-only ---------------------------------------

def test_download_onto_a_read_only_card_is_one_line_and_keeps_the_old_files(
        car, gcs, made, tmp_path, request):
    for name in SEVEN:
        gcs.bucket.blob(f"models/{name}").upload_from_filename(str(made / name))
    card = mount(request, tmp_path / "sdcard", "size=64m")
    (card / "models").mkdir()
    (card / "models" / "database.json").write_text("[]")
    (card / "models" / f"{NAME}.h5").write_bytes(b"last week's")
    remount_read_only(card)
    before = hashes(card)
    r = run_script(car, "download_models.sh", "-f", "-d", card / "models",
                   env=bucket_env(tmp_path, gcs))
    assert r.returncode == 1
    one_line(r, "download_models.sh", rf"{card}/models: " + EROFS + "$")
    assert hashes(card) == before
    empty_tmpdir(tmp_path)


def test_deflate_and_make_onto_a_read_only_card(car, synth_tub, tmp_path, request):
    env = env_for(tmp_path)
    assert run_script(car, "make_tub_archive.sh", env=env).returncode == 0
    card = mount(request, tmp_path / "sdcard", "size=64m")
    (card / "mycar").mkdir()
    (card / "mycar" / "config.py").write_text("# the car's own\n")
    remount_read_only(card)
    before = hashes(card)
    r = run_script(car, "deflate_tub_archive.sh", "-f", "-d", card / "mycar", env=env)
    assert r.returncode == 1
    one_line(r, "deflate_tub_archive.sh", rf"{card}/mycar: " + EROFS + "$")
    r = run_script(car, "make_tub_archive.sh", "-a", card / "mycar" / "wip", env=env)
    assert r.returncode == 1
    one_line(r, "make_tub_archive.sh", rf"{card}/mycar\S*: " + EROFS + "$")
    assert hashes(card) == before
    empty_tmpdir(tmp_path)


def test_training_onto_a_read_only_folder_is_refused_before_it_trains(car, stock, tmp_path,
                                                                      request):
    shutil.copy(stock.archive, car / "wip.tgz")
    card = mount(request, tmp_path / "sdcard", "size=16m")
    remount_read_only(card)
    r = run_script(car, "local_train.sh", "-o", card / "models", env=env_for(tmp_path))
    assert r.returncode == 1
    one_line(r, "local_train.sh", rf"{card}: " + EROFS + "$")
    assert "Epoch" not in r.stdout + r.stderr              # refused before training
    empty_tmpdir(tmp_path)


# -- ENOSPC after the work is done: what was made is kept, and named -------------------------

def test_a_trained_model_that_does_not_fit_is_kept_in_a_named_folder(car, stock, tmp_path,
                                                                     request):
    shutil.copy(stock.archive, car / "wip.tgz")
    small = mount(request, tmp_path / "small", "size=1m")         # the model is ~4 MB
    (small / "other.txt").write_text("already there\n")
    before = hashes(small)
    r = run_script(car, "local_train.sh", "-o", small, env=env_for(tmp_path))
    assert r.returncode == 1, r.stderr[-2000:]
    kept = tmp_path / "tmp" / "robocar-kept-pilot-wip"
    one_line(r, "local_train.sh", rf"{small}\S*: {ENOSPC}, and run again; the trained "
             rf"model is kept in {kept}: copy its files from there \(cp {kept}/\* "
             rf"{small}/ once that works\)$")
    assert sorted(os.listdir(kept)) == SEVEN                       # all of it, card too
    assert hashes(small) == before                                  # nothing half-written
    shutil.rmtree(kept)
    empty_tmpdir(tmp_path)


@pytest.fixture
def movie_car(car, tmp_path, made):
    from helpers import write_synth_tub
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=60)
    assert run_script(car, "make_tub_archive.sh", env=env_for(tmp_path)).returncode == 0
    (car / "models").mkdir(exist_ok=True)
    shutil.copy(made / f"{NAME}.h5", car / "models" / f"{NAME}.h5")
    return car


def test_a_folder_as_a_movie_output_is_refused_before_the_movie_is_made(movie_car,
                                                                        tmp_path):
    (movie_car / "movies").mkdir()
    before = hashes(movie_car)
    r = run_script(movie_car, "local_makemovie.sh", "-f", "-o", "movies", "-e", "20",
                   env=env_for(tmp_path))
    assert r.returncode == 1                                   # was: EISDIR after the work
    one_line(r, "local_makemovie.sh", r"movies is a folder: give -o the movie's file name, "
             r"e\.g\. -o movies/pilot-wip\.mp4$")
    assert hashes(movie_car) == before
    empty_tmpdir(tmp_path)


@pytest.mark.e2e
def test_a_movie_that_does_not_fit_is_kept(movie_car, tmp_path, request):
    car, env = movie_car, env_for(tmp_path)
    tiny = mount(request, tmp_path / "tiny", "size=8k")
    r = run_script(car, "local_makemovie.sh", "-o", tiny / "m.mp4", "-e", "20", env=env)
    assert r.returncode == 1, r.stderr[-2000:]
    kept = tmp_path / "tmp" / "robocar-kept-m" / "m.mp4"
    one_line(r, "local_makemovie.sh", r"no space left on the device while writing "
             r"m\.mp4; the partial file was removed: free some space and run again; the "
             rf"movie is kept as {kept}: copy it from there$", progress=True)
    assert kept.stat().st_size > 8192
    assert os.listdir(tiny) == []
    shutil.rmtree(kept.parent)
    empty_tmpdir(tmp_path)


# -- EFBIG: a file larger than the limit (ulimit -f, FAT32's 4 GiB) ---------------------------

def test_an_archive_larger_than_the_file_size_limit_is_one_line(car, stock, tmp_path):
    shutil.rmtree(car / "data")
    shutil.copytree(stock.tub, car / "data")
    env = env_for(tmp_path)
    assert run_script(car, "make_tub_archive.sh", env=env).returncode == 0
    before = hashes(car)
    r = run_script(car, "make_tub_archive.sh", "-f", env=env, fsize=64 * 1024)
    assert r.returncode == 1
    one_line(r, "make_tub_archive.sh", r"^make_tub_archive\.sh: \./wip\.tgz: file too large: "
             r"the file is larger than that file system or `ulimit -f` allows \(FAT32 "
             r"takes 4 GiB at most\): write it to another file system, or raise the limit$")
    assert hashes(car) == before                    # the old wip.tgz, no partial file
    empty_tmpdir(tmp_path)


def test_a_download_larger_than_the_file_size_limit_keeps_the_old_set(tmp_path, gcs, made):
    for name in SEVEN:
        gcs.bucket.blob(f"models/{name}").upload_from_filename(str(made / name))
    laptop = tmp_path / "laptop"
    (laptop / "models").mkdir(parents=True)
    (laptop / "models" / f"{NAME}.h5").write_bytes(b"last week's")
    before = hashes(laptop)
    r = run_script(laptop, "download_models.sh", "-f", env=bucket_env(tmp_path, gcs),
                   fsize=256 * 1024)
    assert r.returncode == 1
    one_line(r, "download_models.sh", r"file too large: .*raise the limit$")
    assert hashes(laptop) == before
    empty_tmpdir(tmp_path)


# -- ENOTDIR: a file where a folder goes ---------------------------------------------------------

def test_a_file_in_the_path_is_one_line(car, stock, tmp_path, gcs):
    shutil.copy(stock.archive, car / "wip.tgz")
    (car / "notes").write_text("a file, not a folder\n")
    env = env_for(tmp_path)
    before = hashes(car)
    r = run_script(car, "local_train.sh", "-o", "notes/models", env=env)
    assert r.returncode == 1
    one_line(r, "local_train.sh", rf"{car}/notes: {ENOTDIR}$")
    r = run_script(car, "deflate_tub_archive.sh", "-d", "notes/car", env=env)
    assert r.returncode == 1
    one_line(r, "deflate_tub_archive.sh", rf"notes/car: {ENOTDIR}$")
    r = run_script(car, "download_models.sh", "-d", "notes/models",
                   env=bucket_env(tmp_path, gcs))
    assert r.returncode == 1
    one_line(r, "download_models.sh", rf"notes/models: {ENOTDIR}$|no model pilot-wip")
    assert hashes(car) == before
    empty_tmpdir(tmp_path)
