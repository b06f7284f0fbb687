"""Legacy Tub v1 folders (DonkeyCar 3: meta.json, record_N.json,
N_cam-image_array_.jpg) converted to Tub v2, which DonkeyCar 5 trains on.

    n = convert_v1("old_tub", "/tmp/new_tub")

DonkeyCar still ships the v1 reader (donkeycar.parts.datastore.Tub) and the
v2 writer; its own scripts/convert_to_tub_v2.py fails on DonkeyCar 5 (it
hands the v2 Manifest (key, value) tuples where it expects "key:value"
strings), so the loop between the two lives here.
"""
import json
import os

from PIL import Image

from trainer.core import donkey
from trainer.core.errors import UserError


def convert_v1(src, dest):
    """Write the v1 tub at SRC as a v2 tub at DEST; returns the record count."""
    donkey.quiet()
    import numpy as np          # here, not at the top: the car's modules load without it
    from donkeycar.parts.datastore import Tub as LegacyTub
    from donkeycar.parts.tub_v2 import Tub
    legacy = LegacyTub(src)
    paths = legacy.gather_records()     # sorted by index, exclude.json honoured
    tub = Tub(dest, inputs=list(legacy.inputs), types=list(legacy.types))
    image_keys = [k for k, t in zip(legacy.inputs, legacy.types)
                  if t in ("image_array", "image")]
    written = 0
    try:
        for path in paths:
            with open(path) as f:
                record = json.load(f)
            for key in image_keys:
                if key in record:
                    _check_image_name(src, path, key, record[key])
                    with Image.open(os.path.join(src, record[key])) as im:
                        record[key] = np.asarray(im.convert("RGB"))
            tub.write_record(record)
            written += 1
    except (OSError, ValueError) as e:
        raise UserError(f"legacy tub {src}: record {written} cannot be converted "
                        f"({e}); fix or remove that record_N.json and run again") from None
    finally:
        tub.close()
    if written != len(paths):
        raise UserError(f"legacy tub {src}: converted {written} of {len(paths)} records")
    return written


def _check_image_name(src, record_path, key, value):
    """A v1 record names its frame beside it (N_cam-image_array_.jpg); any
    other path ('../../x.jpg', '/home/me/x.jpg') would pack a host file."""
    if not isinstance(value, str) or value in ("", ".", "..") or "/" in value \
            or "\\" in value or "\0" in value:
        raise UserError(f"legacy tub {src}: {os.path.basename(record_path)} names the "
                        f"image {str(value)[:80]!r} for {key}, which is not a file in the "
                        "tub folder; the tub is unsafe or damaged: fix or remove that "
                        "record_N.json and run again")
