"""Which frames a comparison (compare.py) judges the models on: every
record of the -E archive, or the held-out frames the runs share.

    frames = eval_frames(storage, "today.tgz", models, work)
    frames = held_out_frames(storage, models, work)   # None: no model left to judge
    frames.unseen      # [(tub, path, records)], the user's TRAIN_FILTER applied

A run's card names the archive it trained on (its URI and sha256) and the
records of each tub it held out (verdict.hold_out). Runs of one archive
share those records; runs of several share none, and are refused. The
archive is used only when its sha256 is the card's: a gs:// URI only in the
user's own bucket (the archive's config.py runs here), a local path as the
run had it, else the same name here, then in the bucket's training/. A
model whose card names no held-out frames is given its why (compare.Model).
"""
import os
from dataclasses import dataclass

from trainer.core import bucket, settings
from trainer.core.archive import extract, layout, tub_path
from trainer.core.config import load_car_config
from trainer.core.errors import UserError
from trainer.core.names import is_plain
from trainer.core.storage import join, parse_uri, sha256
from trainer.core.tubs import read_records
from trainer.job import verdict


@dataclass
class Frames:
    """The frames every model is judged on."""
    source: str                  # in words
    archive: str                 # its name
    sha: str
    cfg: object                  # its config (the frame size, the user's TRAIN_FILTER)
    unseen: list                 # [(shown tub, path, records)]
    given: bool = False          # -E: an archive of its own, every record

    @property
    def count(self):
        return sum(len(r) for _, _, r in self.unseen)




def eval_frames(storage, given, models, work):
    """Every record of the -E archive GIVEN (the user's TRAIN_FILTER applied)."""
    uri = bucket.resolve(storage, given, bucket.ARCHIVE, what="evaluation archive")
    local = storage.fetch(uri, os.path.join(work, "download"), "evaluation archive")
    name = parse_uri(uri).name
    root, cfg, paths = _open(local, work, name)
    unseen = [(os.path.relpath(p, root), p, kept(read_records(p)[0], p, cfg))
              for p in paths]
    return Frames(f"every record of {name} (-E)", name, sha256(local), cfg,
                  [u for u in unseen if u[2]], given=True)


def held_out_frames(storage, models, work):
    """The held-out frames MODELS share: one archive, and each tub's stretch
    that none of them trained on."""
    if not models:
        return None
    held, archives = {}, {}
    for m in models:
        found = _held_out_of(m)
        if isinstance(found, str):
            m.why = found
            continue
        archives.setdefault(found[0]["sha256"], (found[0], []))[1].append(m.name)
        held[m.name] = found[1]
    if len(archives) > 1:
        shown = "; ".join(f"{', '.join(names)} on {parse_uri(a['uri']).name} "
                          f"({a['sha256'][:8]})" for a, names in archives.values())
        raise UserError(f"these models were trained on different archives ({shown}), so "
                        "they share no held-out frames: pass -E ARCHIVE to compare them "
                        "on the same new laps")
    if not archives:
        return None
    archive, _ = next(iter(archives.values()))
    shared = _shared(held)
    if not shared:
        raise UserError(f"{', '.join(held)} share no held-out frames of "
                        f"{parse_uri(archive['uri']).name}: pass -E ARCHIVE to compare "
                        "them on the same new laps")
    name = parse_uri(archive["uri"]).name
    local = _training_archive(storage, archive, work)
    root, cfg, _ = _open(local, work, name)
    unseen = []
    for tub, (lo, hi) in sorted(shared.items()):
        path = root if tub == "." else tub_path(root, tub, name)
        records = [r for r in read_records(path)[0] if lo <= r["_index"] <= hi]
        unseen.append((tub, path, kept(records, path, cfg)))
    stretches = ", ".join(f"records {lo}-{hi} of {t}" for t, (lo, hi) in sorted(shared.items()))
    return Frames(f"the held-out frames of {name} that training never saw ({stretches})",
                  name, archive["sha256"], cfg, [u for u in unseen if u[2]])


def _held_out_of(m):
    """(archive entry, {tub: (first, last)}) the card of M names, or why not."""
    archives = m.card.get("archives")
    held = (m.card.get("verdict") or {}).get("held_out") \
        if isinstance(m.card.get("verdict"), dict) else None
    if not isinstance(archives, list) or len(archives) != 1 or not isinstance(
            archives[0], dict) or not isinstance(archives[0].get("uri"), str) or \
            not isinstance(archives[0].get("sha256"), str):
        return "was trained on several archives, or its card names none: compare it with -E"
    if not held:
        return ("held out no frames of its archive (it was judged on -E, or its tubs were "
                "too short): compare it with -E ARCHIVE")
    stretches = {}
    for h in held:
        ok = isinstance(h, dict) and isinstance(h.get("tub"), str) and \
            isinstance(h.get("records"), list) and len(h["records"]) == 2 and \
            all(isinstance(i, int) for i in h["records"])
        if not ok:
            return "has a card whose held-out frames cannot be read: compare it with -E"
        stretches[h["tub"]] = tuple(h["records"])
    return archives[0], stretches


def _shared(held):
    """{tub: (first, last)} of the stretches every model in HELD held out."""
    tubs = set.intersection(*(set(h) for h in held.values()))
    shared = {}
    for tub in tubs:
        lo = max(h[tub][0] for h in held.values())
        hi = min(h[tub][1] for h in held.values())
        if lo <= hi:
            shared[tub] = (lo, hi)
    return shared


def _training_archive(storage, archive, work):
    """A local copy of the training ARCHIVE a card names ({"uri", "sha256"}):
    its gs:// URI, or the path it had (relative to where it trained), or the
    same name here or in the bucket; refused unless its sha256 matches."""
    uri, sha = archive["uri"], archive["sha256"]
    where = parse_uri(uri)
    name = where.name
    # The card is untrusted and the archive's config.py runs here: a gs:// URI
    # is followed only into the user's own bucket.
    own = settings.bucket() if settings.bucket_is_set() else None
    tries = [] if where.scheme == "gs" and where.bucket != own else [uri]
    tries += [name] if where.scheme != "gs" else []
    if is_plain(bucket.archive_stem(name)) and own:
        tries.append(join(bucket.folder(own, bucket.TRAINING), name))
    for each in dict.fromkeys(tries):
        if not storage.exists(each):
            continue
        local = storage.fetch(each, os.path.join(work, "download"), "archive")
        if sha256(local) == sha:
            return local
        raise UserError(f"{each} differs from the {name} the models trained on (another "
                        "archive of the same name?): pass -E ARCHIVE to compare them on it, "
                        "or bring back the archive they trained on")
    raise UserError(f"the archive the models trained on ({uri}) is neither here nor in the "
                    f"bucket: run this in the folder they trained in, or pass -E ARCHIVE")


def _open(local, work, name):
    """(root, config, tub paths) of the archive LOCAL, extracted into WORK."""
    root = extract(local, os.path.join(work, "frames"))
    config_path, paths = layout(root, name)
    root = os.path.dirname(config_path)
    return root, load_car_config(root), paths


def kept(records, path, cfg):
    return verdict.user_kept(records, path, cfg, getattr(cfg, "TRAIN_FILTER", None))
