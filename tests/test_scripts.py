"""Every script's usage, the one place it is checked (a script added to the
toolkit is checked here without a line more): -h prints its header, also
through a symlink from another folder; an unknown flag, an extra argument
or a flag without its value is one line, the Usage line and a pointer to
-h, exit 2 (DESIGN.md: "exits 2 with the usage on stderr"); never a
traceback, and nothing written in the car folder or TMPDIR. Which flags
each script takes, and -h anywhere on the line: test_flags.py."""
import os
import re
import subprocess

import pytest
from hardening import snapshot
from helpers import ROOT, SCRIPTS, script_env


def header(script):
    lines = []
    for line in open(os.path.join(ROOT, script)).read().splitlines()[1:]:
        if not line.startswith("#"):
            break
        lines.append(re.sub(r"^# ?", "", line))
    return "\n".join(lines) + "\n"


def value_flag(script):
    """The first flag of the Usage line that takes a value, e.g. 'a'."""
    usage = header(script).split("\n")[1]
    flags = re.findall(r"-([a-zA-Z])(?:\|--[a-z-]+)? [A-Z]", usage)
    assert flags, f"every script takes a flag with a value; none in {usage!r}"
    return flags[0]


def run_in(tmp_path, exe, *args, cwd):
    """EXE ARGS from CWD, TMPDIR in TMP_PATH; checks nothing was written there."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    before = snapshot(tmp_path)
    r = subprocess.run([str(exe), *args], cwd=cwd, env=script_env(TMPDIR=str(tmp_path / "tmp")),
                       capture_output=True, text=True, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    assert snapshot(tmp_path) == before, "something was written"
    return r


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_is_the_header_through_a_symlink(script, tmp_path, car):
    link = tmp_path / "elsewhere" / script
    link.parent.mkdir()
    os.symlink(os.path.join(ROOT, script), link)
    for exe, cwd in ((link, tmp_path), (car / script, car)):   # and in the car folder
        r = run_in(tmp_path, exe, "-h", cwd=cwd)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert r.stdout == header(script)
        assert r.stdout.startswith("Summary: ") and "\nUsage: " + script in r.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_usage_errors_are_one_line_the_usage_and_exit_2(script, tmp_path, car):
    flag = value_flag(script)
    for args, says in ((["-Z"], "unknown flag -Z"), (["extra"], "unexpected argument.*"),
                       ([f"-{flag}"], f"-{flag} needs a value")):
        r = run_in(tmp_path, car / script, *args, cwd=car)
        assert r.returncode == 2, (script, args, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 3, r.stderr
        assert re.fullmatch(f"{re.escape(script)}: {says}", lines[0]), r.stderr
        assert lines[1].startswith(f"Usage: {script} ") and \
            lines[2] == f"Run '{script} -h' for help.", r.stderr
