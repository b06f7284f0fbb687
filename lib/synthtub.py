"""Write a small synthetic Tub v2 a model can visibly learn from.

    python lib/synthtub.py --path data --records 500

Each frame is a dark road with one bright lane line; the line's horizontal
position sets the steering label (left of centre -> steer left), throttle
eases off in curves. Written with DonkeyCar's own Tub, so it is a real tub.
Used by `make demo` and by the tests (--deleted, --size for their cases).
"""
import argparse
import os

import numpy as np

from trainer.core import donkey

INPUTS = ["cam/image_array", "user/angle", "user/throttle", "user/mode"]
TYPES = ["image_array", "float", "float", "str"]


def frame(angle, width, height, rng):
    img = rng.integers(0, 40, size=(height, width, 3), dtype=np.uint8)
    x = int(round((angle + 1) / 2 * (width - 1)))
    half = max(1, width // 40)
    img[height // 3:, max(0, x - half):x + half + 1] = (250, 250, 200)
    return img


def write_tub(path, records=300, deleted=0, width=160, height=120, seed=0):
    """Write RECORDS records to a new tub at PATH; mark the last DELETED of
    them deleted and remove their images, as the tub manager of `donkey ui` does."""
    donkey.quiet()
    from donkeycar.parts.tub_v2 import Tub
    rng = np.random.default_rng(seed)
    tub = Tub(path, inputs=INPUTS, types=TYPES)
    for i in range(records):
        angle = float(np.clip(np.sin(i / 15.0) + rng.normal(0, 0.05), -1, 1))
        tub.write_record({"cam/image_array": frame(angle, width, height, rng),
                          "user/angle": angle,
                          "user/throttle": 0.6 - 0.3 * abs(angle),
                          "user/mode": "user"})
    gone = list(range(records - deleted, records))
    if gone:
        tub.delete_records(gone)
    tub.close()
    for i in gone:
        os.remove(os.path.join(path, "images", Tub._image_file_name(i, INPUTS[0])))
    return path


def main(argv=None):
    p = argparse.ArgumentParser(prog="synthtub.py", description=__doc__.split("\n")[0])
    p.add_argument("--path", required=True, help="tub folder to create")
    p.add_argument("--records", type=int, default=300, help="default: 300")
    p.add_argument("--deleted", type=int, default=0,
                   help="mark the last N records deleted (default: 0)")
    p.add_argument("--size", default="160x120", help="WxH of the frames (default: 160x120)")
    args = p.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    write_tub(args.path, args.records, args.deleted, width, height)
    print(f"wrote {args.records} records ({args.deleted} deleted) to {args.path}")


if __name__ == "__main__":
    main()
