"""DonkeyCar's list of models, models/database.json: `donkey models` prints
it, `donkey train` adds to it. Read and written in DonkeyCar's own format
(PilotDatabase's: a JSON list of entries keyed 'Name'), but never lost:

    register(cfg, {"Name": "pilot-wip", "Type": "tflite_linear", ...})

DonkeyCar's PilotDatabase logs a damaged file and starts from an empty
list, which its write() then saves over the old one. Here a file that does
not parse as a list of entries is kept as it is, copied beside itself, and
the model is not added: one line says how to repair it. The new list is
written to a temporary file and renamed over the old, so a power cut
leaves the old list or the new one.
"""
import json
import os
import shutil

from trainer.core.errors import UserError
from trainer.core.storage import atomic_path

FILE = "database.json"      # DonkeyCar's pipeline/database.py


def path_of(cfg):
    return os.path.join(cfg.MODELS_PATH, FILE)


def read(cfg):
    """The entries of CFG's models/database.json ([] when there is none)."""
    path = path_of(cfg)
    if not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("not a list of entries")
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        keep = path + ".damaged"
        try:
            if not os.path.exists(keep):
                shutil.copy2(path, keep)
            kept = f"a copy kept as {keep}"
        except OSError as copying:
            kept = f"no copy could be kept ({copying.strerror})"
        raise UserError(f"{path} is damaged ({str(e).splitlines()[0][:80]}), so it was "
                        f"left as it is and {kept}: repair it (a JSON list "
                        f"of entries, as `donkey models` reads it), or move it away to "
                        "start a new list") from None
    return entries


def register(cfg, entry):
    """ENTRY in CFG's model list, replacing one of the same Name; numbered
    after the others as DonkeyCar numbers them."""
    entries = [e for e in read(cfg) if e.get("Name") != entry["Name"]]
    numbers = [e.get("Number") for e in entries if isinstance(e.get("Number"), int)]
    entry = {"Number": max(numbers) + 1 if numbers else 0, **entry}
    entries.append(entry)
    path = path_of(cfg)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=4, default=lambda o: "<not serializable>")
    return entry
