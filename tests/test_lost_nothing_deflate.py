"""deflate_tub_archive.sh -f loses nothing (issue 21): it replaces exactly
what the archive holds, moves the old aside and back on any failure or
signal, says what it replaced; a kill half-way is undone by the next run;
and it extracts safely on a Python without tarfile's 'data' filter.
Every case compares content hashes before and after."""
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
from hardening import Row, good_archive, has_entries, row_ids, steps
from helpers import ROOT, SCRIPTS, tar_bytes, write_synth_tub
from lost_nothing import (
    SIGNALS,
    empty_tmpdir,
    env_for,
    hashes,
    one_line,
    run_script,
    signal_when,
    stopped,
)

DEFLATE = "deflate_tub_archive.sh"


@pytest.fixture(scope="module")
def archives(tmp_path_factory, car_template):
    """new.tgz: a car folder whose tub data/ has 150 records (2 sessions'
    worth of another drive); nested.tgz: tubs data/tub_a and data/tub_b."""
    from trainer.core.archive import build_archive
    root = tmp_path_factory.mktemp("lost-nothing-archives")
    out = {}
    for name, tubs in (("new", {"data": 150}), ("nested", {"data/tub_a": 40,
                                                        "data/tub_b": 30})):
        car = root / name
        shutil.copytree(car_template, car, symlinks=True)
        with open(car / "myconfig.py", "a") as f:
            f.write(f"\n# the {name} archive's own config\n")
        shutil.rmtree(car / "data")
        for tub, records in tubs.items():
            write_synth_tub(car / tub, records=records)
        out[name] = build_archive(str(car), list(tubs), name, say=lambda *a: None,
                                  warn=lambda *a: None)
    return out


@pytest.fixture
def old_car(car, synth_tub):
    """The car folder as the user has it: a 200-record tub in data/ with a
    note beside it, their own configs."""
    make_it_mine(car)
    return car


@pytest.fixture(scope="module")
def new_state(tmp_path_factory, car_template, archives):
    """The car folder after an undisturbed `deflate -f` of new.tgz: the
    archive's configs and tub, the note beside it (the same in every test:
    what the old tub held is all replaced)."""
    ref = tmp_path_factory.mktemp("reference") / "mycar"
    shutil.copytree(car_template, ref, symlinks=True)
    for s in SCRIPTS:
        os.symlink(os.path.join(ROOT, s), ref / s)
    shutil.rmtree(ref / "data")
    write_synth_tub(ref / "data")
    make_it_mine(ref)
    r = run_script(ref, DEFLATE, "-f", "-a", archives["new"], env=env_for(ref.parent))
    assert r.returncode == 0, r.stderr
    return hashes(ref)


def make_it_mine(car):
    (car / "data" / "notes.txt").write_text("lap 3: the left wheel rubbed\n")
    (car / "myconfig.py").write_text((car / "myconfig.py").read_text() + "\n# mine\n")


# -- what -f replaces, and what it says ---------------------------------------------

def test_a_tub_named_data_leaves_the_tubs_inside_data_alone(car, archives, tmp_path):
    """The issue's example: data/tub_a and data/tub_b are not the archive's."""
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data" / "tub_a", records=30)
    write_synth_tub(car / "data" / "tub_b", records=20)
    others = {k: v for k, v in hashes(car / "data").items() if k.startswith("tub_")}
    r = run_script(car, DEFLATE, "-f", "-a", archives["new"], env=env_for(tmp_path))
    assert r.returncode == 0, r.stderr
    assert {k: v for k, v in hashes(car / "data").items() if k.startswith("tub_")} == others
    assert "left data/tub_a, data/tub_b as they are: the archive does not hold them" \
        in r.stdout
    assert "replaced config.py, myconfig.py in the car folder with the archive's" \
        in r.stdout
    assert "restored data into ." in r.stdout
    assert len(os.listdir(car / "data" / "images")) == 150
    empty_tmpdir(tmp_path)


def test_an_old_tub_is_replaced_as_a_whole_and_its_neighbours_stay(old_car, archives,
                                                                   tmp_path):
    note = (old_car / "data" / "notes.txt").read_bytes()
    r = run_script(old_car, DEFLATE, "-f", "-a", archives["new"], env=env_for(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (old_car / "data" / "notes.txt").read_bytes() == note
    assert len(os.listdir(old_car / "data" / "images")) == 150     # not 200: no mix
    assert sorted(p.name for p in (old_car / "data").iterdir()) == [
        "catalog_0.catalog", "catalog_0.catalog_manifest", "images", "manifest.json",
        "notes.txt"]
    assert ("replaced config.py, myconfig.py, data (the old tub's images, manifest.json, "
            "1 catalog) in the car folder with the archive's; the old ones are removed"
            in r.stdout), r.stdout
    assert "left data/notes.txt as it is: the archive does not hold it" in r.stdout
    assert not [p for p in old_car.iterdir() if p.name.startswith(".deflate-")]


def test_nested_tubs_replace_only_their_own(car, archives, tmp_path):
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data" / "tub_a", records=10)      # replaced
    write_synth_tub(car / "data" / "tub_c", records=10)      # not in the archive
    tub_c = hashes(car / "data" / "tub_c")
    r = run_script(car, DEFLATE, "-f", "-a", archives["nested"], env=env_for(tmp_path))
    assert r.returncode == 0, r.stderr
    assert hashes(car / "data" / "tub_c") == tub_c
    assert len(os.listdir(car / "data" / "tub_a" / "images")) == 40
    assert len(os.listdir(car / "data" / "tub_b" / "images")) == 30
    assert "restored data/tub_b into ." in r.stdout
    assert "data/tub_a (the old tub's images, manifest.json, 1 catalog)" in r.stdout


# -- signals at each moment: the old state or the new, and one line ------------------

# Where each moment leaves the car folder: before the moves, the old state;
# from the journal on, the moves finish first (the signal waits), the new one.
MOMENTS = {"deflate:extracted": "old", "deflate:journal": "new",
           "deflate:moved-aside": "new", "deflate:moved-in": "new",
           "deflate:committed": "new"}
# Each signal at the last moment before the moves, and at moments among them.
SENT = [("deflate:extracted", "INT"), ("deflate:extracted", "TERM"),
        ("deflate:extracted", "HUP"), ("deflate:journal", "TERM"),
        ("deflate:moved-aside", "INT"), ("deflate:moved-in", "HUP"),
        ("deflate:committed", "TERM")]


@pytest.mark.parametrize("moment,sig", SENT, ids=[f"{m}-{s}" for m, s in SENT])
def test_a_signal_at_any_moment_leaves_the_old_state_or_the_new(moment, sig, old_car,
                                                                archives, new_state,
                                                                tmp_path):
    old = hashes(old_car)
    r = run_script(old_car, DEFLATE, "-f", "-a", archives["new"], env=env_for(tmp_path),
                   at=f"{moment}:{sig}")
    stopped(r, DEFLATE, sig)
    assert hashes(old_car) == (old if MOMENTS[moment] == "old" else new_state)
    empty_tmpdir(tmp_path)


@pytest.mark.parametrize("sig", ["TERM", "HUP"])
def test_a_signal_from_outside_while_extracting_leaves_the_old_state(sig, old_car,
                                                                      tmp_path):
    """`kill` or a closed terminal, to the whole job, mid-way through a
    2,000-frame archive: polled, as a user's timing would be."""
    big = tmp_path / "big"
    shutil.copytree(old_car, big, symlinks=True)
    shutil.rmtree(big / "data")
    write_synth_tub(big / "data", records=2000)
    assert run_script(big, "make_tub_archive.sh", "-a", "big",
                      env=env_for(tmp_path)).returncode == 0
    old = hashes(old_car)
    r = signal_when(old_car, DEFLATE, "-f", "-a", big / "big.tgz", env=env_for(tmp_path),
                    sig=SIGNALS[sig],
                    ready=lambda: has_entries(old_car, ".deflate-*/new/data/images"))
    stopped(r, DEFLATE, sig)
    assert hashes(old_car) == old
    empty_tmpdir(tmp_path)


# -- SIGKILL (and a power cut) cannot be handled: the next run undoes it ----------------

KILLED = {**MOMENTS, "deflate:extracted": "old", "deflate:journal": "old",
          "deflate:moved-aside": "old", "deflate:moved-in": "old"}


@pytest.mark.parametrize("moment", sorted(KILLED))
def test_after_a_kill_the_next_run_finds_the_old_state_or_the_new(moment, old_car,
                                                                  archives, new_state,
                                                                  tmp_path):
    old = hashes(old_car)
    new = new_state
    env = env_for(tmp_path)
    r = run_script(old_car, DEFLATE, "-f", "-a", archives["new"], env=env,
                   at=f"{moment}:KILL")
    assert r.returncode == -9, r.stderr
    # The next run (without -f: it must not replace anything itself) puts the
    # old entries back, or finishes the removal of the old ones.
    r = run_script(old_car, DEFLATE, "-a", archives["new"], env=env)
    assert r.returncode == 1, r.stderr
    one_line(r, DEFLATE, r"already exists: pass -f to replace it")
    if KILLED[moment] == "old" and moment != "deflate:extracted":
        assert "an earlier run was stopped while it replaced files in .: put back" \
            in r.stdout
    assert hashes(old_car) == (old if KILLED[moment] == "old" else new)
    assert not [p for p in old_car.iterdir() if p.name.startswith(".deflate-")]
    empty_tmpdir(tmp_path)          # the killed run's TMPDIR too


# -- a Python without tarfile's data filter (3.11 before 3.11.4) ------------------------

NO_FILTER = """
import tarfile
for name in ("data_filter", "tar_filter", "fully_trusted_filter", "FilterError"):
    if hasattr(tarfile, name):
        delattr(tarfile, name)
"""


def pythons_without_the_filter(tmp_path):
    """[(label, TRAINER_PYTHON, extra environment)]: this Python with the
    filter taken away (sitecustomize), and Debian's /usr/bin/python3 where it
    is a 3.11 without it (Raspberry Pi OS bookworm has 3.11.2), with this
    venv's packages (the same ABI)."""
    site = tmp_path / "no-filter"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(NO_FILTER)
    out = [("filter removed", sys.executable, {"PYTHONPATH": str(site)})]
    debian = "/usr/bin/python3"
    probe = subprocess.run([debian, "-c", "import sys, tarfile; print(sys.version_info[:2] "
                            "== (3, 11) and not hasattr(tarfile, 'data_filter'))"],
                           capture_output=True, text=True) if os.path.exists(debian) else None
    if probe is not None and probe.stdout.strip() == "True":
        packages = next(p for p in sys.path if p.endswith("site-packages"))
        out.append(("Debian 3.11", debian, {"PYTHONPATH": packages}))
    return out


UNSAFE = {
    "symlink": ({"name": "data/link", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"},
                None, r"member 'data/link' is a link"),
    "hardlink": ({"name": "data/hard", "type": tarfile.LNKTYPE, "linkname": "config.py"},
                 None, r"member 'data/hard' is a link"),
    "device": ({"name": "data/dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3},
               None, r"member 'data/dev' is a character device"),
    "fifo": ({"name": "data/fifo", "type": tarfile.FIFOTYPE}, None, r"is a FIFO"),
    "dotdot": ({"name": "data/../../escaped.txt"}, b"x", r"outside the destination"),
    "absolute": ({"name": "/tmp/robocar-lost-nothing-absolute.txt"}, b"x",
                 r"has an absolute path"),
}


def test_without_the_data_filter_archives_restore_and_unsafe_ones_are_refused(
        car, archives, tmp_path):
    from trainer.core import archive
    assert "filter removed" in [p[0] for p in pythons_without_the_filter(tmp_path)]
    print("interpreters:", [p[0] for p in pythons_without_the_filter(tmp_path)])
    for label, python, extra in pythons_without_the_filter(tmp_path):
        env = env_for(tmp_path, TRAINER_PYTHON=python, **extra)
        probe = subprocess.run([python, "-c", "from trainer.core import archive; "
                                "print(archive.HAS_FILTERS)"], env=env, cwd=ROOT,
                               capture_output=True, text=True)
        assert probe.stdout.strip() == "False", (label, probe.stderr)
        dest = tmp_path / label.replace(" ", "-")
        r = run_script(car, DEFLATE, "-a", archives["new"], "-d", dest, env=env)
        assert r.returncode == 0, (label, r.stderr)
        with tarfile.open(archives["new"]) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name != "archive.json":       # not restored
                    got = (dest / m.name).read_bytes()
                    assert got == tar.extractfile(m).read(), (label, m.name)
                    assert (dest / m.name).stat().st_mode & 0o7777 == 0o644, m.name
        for kind, (attrs, data, says) in UNSAFE.items():
            bad = tmp_path / f"{kind}.tgz"
            bad.write_bytes(tar_bytes([({"name": "config.py"}, b"IMAGE_W = 160\n"),
                                       (attrs, data)]))
            into = tmp_path / f"{label}-{kind}".replace(" ", "-")
            r = run_script(car, DEFLATE, "-a", bad, "-d", into, env=env)
            assert r.returncode == 1, (label, kind, r.stdout, r.stderr)
            one_line(r, DEFLATE, rf"archive {kind}\.tgz is unsafe \((.*{says}.*)\); "
                     r"nothing was restored")
            assert not into.exists(), (label, kind)
        assert not (tmp_path / "escaped.txt").exists()
        assert not os.path.exists("/tmp/robocar-lost-nothing-absolute.txt")
    assert archive.HAS_FILTERS == hasattr(tarfile, "data_filter")
    empty_tmpdir(tmp_path)


# -- hardening rows (tests/hardening.py): one line, nothing changed ---------------------

def a_file(ctx):
    (ctx.car / "afile").write_text("not a folder\n")


def deflate_killed_before(ctx):
    """A `.deflate-*` folder another living deflate holds: refused, untouched."""
    import fcntl
    folder = ctx.car / ".deflate-busy0000"
    folder.mkdir()
    fd = os.open(folder, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ctx.finally_(lambda: os.close(fd))
    shutil.copy(ctx.stock.archive, ctx.car / "wip.tgz")


ROWS = [
    Row("deflate:another-deflate-is-running-here", deflate_killed_before,
        (DEFLATE, "-f"), 1,
        r"another run is replacing files in \. \(\.deflate-busy0000\): wait for it to "
        r"end, then run again$"),
    # ENOTDIR: a part of -d is a file
    Row("deflate:dest-under-a-file", steps(good_archive, a_file),
        (DEFLATE, "-d", "afile/sub"), 1,
        r"^deflate_tub_archive\.sh: \S*afile\S*: not a directory: a part of that path is "
        r"a file, not a folder: move the file away, or give another path$"),
    # EISDIR: a folder where the archive (a file) should be
    Row("deflate:archive-is-a-folder", lambda ctx: (ctx.car / "wip.tgz").mkdir(),
        (DEFLATE, "-d", "{tmp}/restored"), 1,
        r"archive wip\.tgz is a folder, not an archive: pass -a the \.tgz that "
        r"make_tub_archive\.sh wrote$"),
    Row("deflate:bad-signal-setting", good_archive, (DEFLATE, "-d", "{tmp}/restored"), 1,
        r"TRAINER_SIGNAL_AT='deflate:x:NOSUCH' is not WHERE:SIGNAL",
        env={"TRAINER_SIGNAL_AT": "deflate:x:NOSUCH"}),
]


@pytest.mark.parametrize("row", ROWS, ids=row_ids(ROWS))
def test_hardening(row, harden):
    harden(row)
