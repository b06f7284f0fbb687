"""Every script: header help on -h, exit 2 on bad flags, works through a
symlink from another folder."""
import os
import re
import subprocess

import pytest
from helpers import ROOT, SCRIPTS, script_env


def header(script):
    lines = []
    for line in open(os.path.join(ROOT, script)).read().splitlines()[1:]:
        if not line.startswith("#"):
            break
        lines.append(re.sub(r"^# ?", "", line))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_is_the_header_through_a_symlink(script, tmp_path):
    link = tmp_path / "elsewhere" / script
    link.parent.mkdir()
    os.symlink(os.path.join(ROOT, script), link)
    r = subprocess.run([str(link), "-h"], cwd=tmp_path, env=script_env(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == header(script)
    assert r.stdout.startswith("Summary: ") and "\nUsage: " + script in r.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_unknown_flag_and_missing_value_exit_2_with_usage(script, tmp_path):
    usage = header(script).split("\n")[1]
    for args, message in ((["-Z"], "unknown flag -Z"), (["extra"], "unexpected argument")):
        if args == ["extra"] and re.match(rf"Usage: {script} [A-Z]", usage):
            continue                # its operands (compare_models.sh NAME...) take words
        r = subprocess.run([os.path.join(ROOT, script), *args], cwd=tmp_path,
                           env=script_env(), capture_output=True, text=True)
        assert r.returncode == 2, (script, args, r.stderr)
        assert r.stderr.startswith(f"{script}: {message}"), r.stderr
        assert f"Usage: {script}" in r.stderr
    flags = re.findall(r"-([a-zA-Z])(?:\|--[a-z-]+)? [A-Z]", usage)
    assert flags, f"every script takes a flag with a value; none in {usage!r}"
    r = subprocess.run([os.path.join(ROOT, script), f"-{flags[0]}"], cwd=tmp_path,
                       env=script_env(), capture_output=True, text=True)
    assert r.returncode == 2 and f"-{flags[0]} needs a value" in r.stderr
