"""make gpu-check: the TensorRT engine for real, on a machine with an NVIDIA
GPU (a Jetson, a laptop or a cloud VM): what the test suite can only run up
to TensorRT's calls (tests/test_engine.py, against a fake).

    pip install tensorrt                   # into the toolkit's .venv (or TRAINER_PYTHON's)
    make gpu-check                         # or: python bench/gpu_check.py [--keep DIR]

In a car folder made by `donkey createcar`, on a 300-record synthetic tub
(lib/synthtub.py): local_train.sh (4 epochs), then check_model.sh, which
must build NAME.engine from NAME.onnx with TensorRT (FP16 where the GPU has
it), run it on the frames the job shipped within 0.02 of the .h5 and time
it; then drive.sh --format engine, DonkeyCar's own drive loop (its
IMAGE_LIST camera over the tub's frames, MOCK drive train, 100 loops in
pilot mode), which must run the engine every loop. With onnxruntime-gpu
installed, drive.sh --format onnx shows which provider it took. Prints what
it measured; exit 1 at the first step that failed, its output shown.

Not part of `make test` or `make e2e`: the suites run where there is no GPU.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "pilot-wip"
LOOPS = 100


def step(what, cmd, car, env, pattern=None):
    """Run CMD in CAR; its output, or exit 1 naming WHAT (and PATTERN not found)."""
    print(f"== {what}: {' '.join(cmd)}", flush=True)
    r = subprocess.run(cmd, cwd=car, env=env, capture_output=True, text=True, timeout=3600)
    found = re.search(pattern, r.stdout, re.M) if pattern else True
    if r.returncode != 0 or not found:
        print(r.stdout[-4000:], r.stderr[-4000:], sep="\n")
        sys.exit(f"gpu-check: {what} failed" + ("" if found else
                                                 f" (no line matching {pattern!r})"))
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", help="make the car folder here and keep it (default: a "
                   "temporary one, removed)")
    args = p.parse_args(argv)
    base = args.keep or tempfile.mkdtemp(prefix="robocar-gpu-check-")
    car = os.path.join(base, "mycar")
    python = os.environ.get("TRAINER_PYTHON") or sys.executable
    env = {**os.environ, "TRAINER_PYTHON": python, "LOGLEVEL": "INFO",
           "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.path.join(ROOT, "lib"),
                                                       os.environ.get("PYTHONPATH")]))}
    try:
        subprocess.run([python, "-m", "donkeycar.management.base", "createcar", "--path",
                        car], check=True, capture_output=True)
        for script in (f for f in os.listdir(ROOT) if f.endswith(".sh")):
            os.symlink(os.path.join(ROOT, script), os.path.join(car, script))
        shutil.rmtree(os.path.join(car, "data"))
        subprocess.run([python, os.path.join(ROOT, "lib", "synthtub.py"), "--path",
                        os.path.join(car, "data"), "--records", "300"], check=True, env=env)
        step("archive", ["./make_tub_archive.sh"], car, env)
        step("training", ["./local_train.sh", "-c", "MAX_EPOCHS=4"], car, env)
        r = step("the car's check", ["./check_model.sh"], car, env,
                 r"^car check: the \.engine \(tensorrt\) agrees with the training job")
        print("\n".join(ln for ln in r.stdout.splitlines()
                        if "engine" in ln or "fastest" in ln))
        with open(os.path.join(car, "myconfig.py"), "a") as f:
            f.write(f'\nCAMERA_TYPE = "IMAGE_LIST"\nPATH_MASK = "{car}/data/images/*.jpg"\n'
                    f'DRIVE_TRAIN_TYPE = "MOCK"\nMAX_LOOPS = {LOOPS}\n'
                    'WEB_INIT_MODE = "local"\n')
        for fmt, runtime in (("engine", "tensorrt"), ("onnx", r"onnxruntime\S*")):
            r = step(f"drive.sh --format {fmt}", ["./drive.sh", "--format", fmt], car, env,
                     rf"^the pilot \(.*, {runtime}\) ran {LOOPS} times")
            print(r.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print("gpu-check: the engine was built, agreed, timed and drove")


if __name__ == "__main__":
    main()
