"""One real model for the tests of what follows training (publishing,
downloading by its card, the car's check): trained once per test session
with local_train.sh (four epochs on a 300-record synthetic tub: enough that
its verdict is "better" with a wide margin, about 2.3x-3.1x measured, so
the car's check takes it) and shared between test modules through the
session's temporary folder.

    base = trained_once(tmp_path_factory, car_template)
    base / "out"          # pilot-wip's seven files (bucket.OUTPUTS)
    base / "mycar"        # the createcar car folder it was trained from
    base / "train.log"    # what local_train.sh printed
"""
import os
import shutil
import subprocess

from helpers import ROOT, SCRIPTS, script_env, write_synth_tub

NAME = "pilot-wip"


def trained_once(tmp_path_factory, car_template):
    base = tmp_path_factory.getbasetemp() / "trained-pilot"
    if (base / "out" / f"{NAME}.json").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    car = base / "mycar"
    shutil.copytree(car_template, car, symlinks=True)
    for s in SCRIPTS:
        os.symlink(os.path.join(ROOT, s), car / s)
    shutil.rmtree(car / "data")
    write_synth_tub(car / "data", records=300)
    env = script_env()
    for cmd in (["./make_tub_archive.sh"],
                ["./local_train.sh", "-o", str(base / "out"), "-c", "MAX_EPOCHS=4"]):
        r = subprocess.run(cmd, cwd=car, env=env, capture_output=True, text=True,
                           timeout=1200)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (base / "train.log").write_text(r.stdout)       # what local_train.sh said
    return base
