"""How fast each file of a model runs here: the numbers of docs/car.md's
"Which file for which car", made again on any machine (a Pi, a Jetson, a
laptop), from a car folder.

    python bench/formats.py -m pilot-wip [--rounds 5] [--frames 200]

Every format of the model in models/ that this machine can run goes
through DonkeyCar's own pilot (core/pilots.py, as the car's check and the
drive loop run it), batch 1, on the frames the training job shipped
(NAME.frames.npz), cycled to FRAMES runs a round. The formats take turns,
round after round, and each one's figure is its best median over the
rounds: on a machine shared with other work the slow rounds are the
others', not the model's. Prints a table: size, best median, and the
spread of the medians.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainer.car import runtimes  # noqa: E402
from trainer.core import bucket, console, pilots  # noqa: E402
from trainer.core.config import load_car_config  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model", default="pilot-wip")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--frames", type=int, default=200)
    args = p.parse_args(argv)
    import numpy as np
    cfg = load_car_config(".")
    models = bucket.LOCAL_MODELS
    with np.load(os.path.join(models, args.model + bucket.FRAMES)) as data:
        images = data["images"]
    images = [images[i % len(images)] for i in range(args.frames)]
    loaded = {}
    with console.filtered():
        for fmt, suffix in bucket.CAR_FORMATS.items():
            path = os.path.join(models, args.model + suffix)
            missing = runtimes.tensorrt_missing() if fmt == "engine" else \
                pilots.runtime_missing(fmt)
            if not os.path.isfile(path) or missing:
                continue
            interpreter = (runtimes.engine_interpreter() if fmt == "engine" else
                           pilots.onnx_interpreter(runtimes.onnx_providers(models))
                           if fmt == "onnx" else None)
            loaded[fmt] = (path, pilots.load_pilot(fmt, "linear", cfg, path, interpreter))
        medians = {fmt: [] for fmt in loaded}
        for _ in range(args.rounds):
            for fmt, (_, pilot) in loaded.items():
                pilots.run_pilot(pilot, images[:5])                  # warm-up
                medians[fmt].append(pilots.run_pilot(pilot, images)[1] * 1000)
    print(f"{'file':<40} {'MB':>6} {'best median ms':>15}  medians ms")
    for fmt, (path, pilot) in loaded.items():
        found = medians[fmt]
        shown = f"{os.path.basename(path)} ({pilots.runtime_name(fmt, pilot)})"
        print(f"{shown:<40} {os.path.getsize(path) / 1e6:>6.2f} {min(found):>15.2f}  "
              f"{min(found):.2f}-{max(found):.2f} (median {statistics.median(found):.2f})")


if __name__ == "__main__":
    main()
