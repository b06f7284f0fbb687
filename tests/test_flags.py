"""Each script's flags are declared twice, no more: its header (the help a
user reads with -h) and one Python parser. These tests hold the two to each
other, and to what the Usage line promises, for every script."""
import re
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, SCRIPTS, script_env

from trainer.car import drive_report
from trainer.client import cli, sweep
from trainer.core import flags
from trainer.job import compare

# What each script hands its flags to (its last line says the same; checked below).
PARSERS = {
    "make_tub_archive.sh": ("rt_python_cli archive", lambda: cli.verbs()["archive"]),
    "deflate_tub_archive.sh": ("rt_python_cli deflate", lambda: cli.verbs()["deflate"]),
    "upload_tub_archive.sh": ("rt_python_cli upload", lambda: cli.verbs()["upload"]),
    "download_models.sh": ("rt_python_cli download", lambda: cli.verbs()["download"]),
    "check_model.sh": ("rt_python_cli check", lambda: cli.verbs()["check"]),
    "drive.sh": ("rt_python_cli drive", lambda: cli.verbs()["drive"]),
    "local_train.sh": ("rt_python_module trainer.task", flags.train_parser),
    "submit_cloud_train.sh": ("rt_python_cli submit", lambda: cli.verbs()["submit"]),
    "local_makemovie.sh": ("rt_python_module trainer.movie", flags.movie_parser),
    "submit_cloud_makemovie.sh": ("rt_python_cli submit-movie",
                                  lambda: cli.verbs()["submit-movie"]),
    "build_image.sh": ("rt_python_cli image", lambda: cli.verbs()["image"]),
    "compare_models.sh": ("rt_python_module trainer.job.compare", compare.parser),
    "submit_cloud_sweep.sh": ("rt_python_module trainer.client.sweep", sweep.parser),
    "drive_report.sh": ("rt_python_module trainer.car.drive_report", drive_report.parser),
}
HOME = Path(ROOT)
OPTION_LINE = re.compile(r"^#   (-\w, )?(--[\w-]+)?(?: (\S+))?\s{2,}")
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def header(script):
    return (HOME / script).read_text().split("\nset -euo pipefail")[0]


def header_flags(script):
    """{flag: its metavar or None} from the header's option lines."""
    flags = {}
    for line in header(script).splitlines():
        m = OPTION_LINE.match(line)
        if m and (m.group(1) or m.group(2)):
            for flag in filter(None, (m.group(1) and m.group(1)[:-2], m.group(2))):
                flags[flag] = m.group(3)
    return flags


def usage_flags(script):
    """[(flag, takes a value)] of the Usage line, e.g. ('-a', True)."""
    usage = next(ln for ln in header(script).splitlines() if ln.startswith("# Usage:"))
    return [(m.group(1), bool(m.group(2)))
            for m in re.finditer(r"\[(--?[\w-]+)( [^\]]+)?\]", usage)]


def parser_flags(parser):
    """Every option string the parser's help shows."""
    return set(FLAG.findall(parser.format_help().split("options:", 1)[1]))


def test_every_script_is_covered():
    assert set(PARSERS) == set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(PARSERS))
def test_the_script_hands_its_flags_to_that_parser(script):
    call, _ = PARSERS[script]
    last = (HOME / script).read_text().strip().splitlines()[-1]
    assert last.startswith(call) and last.endswith('"$@"'), last


@pytest.mark.parametrize("script", sorted(PARSERS))
def test_help_and_parser_declare_the_same_flags(script):
    """-h text and parser agree: no flag documented but refused, none
    accepted but undocumented (long and short forms alike)."""
    documented = set(header_flags(script))
    assert {"-h", "--help"} <= documented
    assert documented == parser_flags(PARSERS[script][1]())


@pytest.mark.parametrize("script", sorted(PARSERS))
def test_every_flag_of_the_usage_line_is_accepted(script):
    parser = PARSERS[script][1]()
    flags = usage_flags(script)
    assert flags
    for flag, takes_value in flags:
        argv = [flag, "A=1"] if takes_value else [flag]
        args = parser.parse_args(argv)             # a usage error would exit 2
        assert args is not None
    documented = header_flags(script)
    assert {f for f, _ in flags} <= set(documented), "Usage names an undocumented flag"


@pytest.mark.parametrize("script", sorted(PARSERS))
def test_long_and_short_forms_mean_the_same(script):
    """`-f` and `--force` (and each pair of the header) set the same value."""
    parser = PARSERS[script][1]()
    lines = [ln for ln in header(script).splitlines() if OPTION_LINE.match(ln)]
    pairs = [(m.group(1)[:-2], m.group(2), m.group(3)) for m in map(OPTION_LINE.match, lines)
             if m.group(1) and m.group(2) and m.group(2) != "--help"]
    assert pairs
    for short, long, meta in pairs:
        value = ["A=1"] if meta else []
        assert parser.parse_args([short, *value]) == parser.parse_args([long, *value])


def test_one_letter_one_meaning_across_scripts():
    """-t is a tub wherever it exists, -S is Spot, -s is START: a short
    flag never stands for two long ones."""
    meaning = {}
    for script in PARSERS:
        for line in header(script).splitlines():
            m = OPTION_LINE.match(line)
            if m and m.group(1) and m.group(2):
                meaning.setdefault(m.group(1)[:-2], set()).add(m.group(2))
    clashes = {short: longs for short, longs in meaning.items() if len(longs) > 1}
    # -d: the destination of the copying scripts, the generation of the cloud
    # ones; no script has both (DESIGN.md keeps both letters). -m is the
    # model everywhere: the one to train (its name) or the one to use.
    assert clashes == {"-d": {"--dest", "--generation"},
                       "-m": {"--model", "--model-name"}}


@pytest.mark.parametrize("script", ["local_train.sh", "download_models.sh"])
def test_help_goes_first_anywhere_on_the_line(tmp_path, script):
    """-h after other flags still prints the header and runs nothing."""
    r = subprocess.run([str(HOME / script), "-f", "--help"], cwd=tmp_path,
                       env=script_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("Summary:") and "Usage:" in r.stdout
    assert list(tmp_path.iterdir()) == []


def test_scripts_find_their_home_through_links_without_readlink_f(tmp_path):
    """macOS's readlink has no -f: a script reached through a chain of
    symlinks (relative, then absolute) still finds lib/ and its Python."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    readlink = stubs / "readlink"           # BSD readlink: no options at all
    readlink.write_text('#!/bin/sh\ncase $1 in -*) echo "readlink: illegal option '
                        '$1" >&2; exit 1 ;; esac\nexec /bin/readlink "$1"\n')
    readlink.chmod(0o755)
    car = tmp_path / "mycar"
    car.mkdir()
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "train").symlink_to(HOME / "local_train.sh")
    (car / "local_train.sh").symlink_to("../links/train")
    env = script_env(PATH=f"{stubs}:/usr/bin:/bin")
    r = subprocess.run(["./local_train.sh", "-h"], cwd=car, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Summary: train an autopilot")
    r = subprocess.run(["./local_train.sh", "--bogus"], cwd=car, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == "local_train.sh: unknown flag --bogus"


def test_the_help_and_the_docs_name_every_file_a_run_leaves():
    """local_train.sh -h and docs/training.md list each file of bucket.OUTPUTS
    (NAME.frames.npz was missing once)."""
    from trainer.core.bucket import OUTPUTS
    training = (HOME / "docs" / "training.md").read_text()
    assert [s for s in OUTPUTS if f"NAME{s}" not in header("local_train.sh")] == []
    assert [s for s in OUTPUTS if f"`NAME{s}`" not in training] == []
