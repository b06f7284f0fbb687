"""Replacing files and folders of a folder all at once: the old state or
the new, never a mix, whatever stops the command.

    recover(dest, "deflate", say)               # what a killed run left: undone
    with Staging(dest, "deflate") as stage:     # DEST/.deflate-XXXX: same disk, locked
        extract(archive, stage.new)             # what comes in, laid out as in DEST
        replaced = stage.commit(["config.py", "data/images", ...])

commit(ENTRIES) moves each DEST/ENTRY that exists aside (into the staging
folder), then the staged one in (an entry with nothing staged is only moved
aside: an old tub's catalog the new tub lacks). Renames on one disk: no byte
is copied, and signals wait until the last one is done (interrupts.deferred).
On any failure the old ones go back. Before the first move a journal in the
staging folder names the entries; after the last it says so. A run killed
in between (SIGKILL, a power cut) leaves its journal, and the next run's
recover() puts the old entries back; a journal that says done only has its
old entries removed. The staging folder is locked while its run lives, so
recover() never touches a running command's folder.
"""
import contextlib
import json
import os
import shutil

from trainer.core import interrupts, points, scratch
from trainer.core.errors import UserError

JOURNAL = "journal.json"


class Staging:
    """DEST/.KIND-XXXX: new/ (what comes in), old/ (what went aside), the
    journal. Removed when the block ends, unless a failed undo left old
    entries in it (then the next run's recover() puts them back)."""

    def __init__(self, dest, kind):
        self.dest, self.kind = dest, kind
        try:
            self.folder, self._lock = scratch.locked_folder(dest, f".{kind}-")
        except OSError as e:
            raise OSError(e.errno, e.strerror, dest) from None
        self.new = os.path.join(self.folder, "new")
        self.old = os.path.join(self.folder, "old")
        self.keep = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if not self.keep:
                with interrupts.deferred():    # the old entries: never half of them
                    shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            os.close(self._lock)

    def commit(self, entries, check=None):
        """Move ENTRIES (paths relative to DEST) into place; returns those
        that replaced something. CHECK(entry), called just before an entry
        moves, may raise to stop (publish: another writer came first): the
        old entries go back and it propagates."""
        plan = [{"path": e, "new": os.path.lexists(os.path.join(self.new, e))}
                for e in entries]
        made = _missing_parents(self.dest, [p["path"] for p in plan if p["new"]])
        replaced = []
        with interrupts.deferred():
            _write_journal(self.folder, {"entries": plan, "made": made, "done": False})
            points.point(f"{self.kind}:journal")
            try:
                for folder in made:
                    os.mkdir(os.path.join(self.dest, folder))
                for p in plan:
                    if check:
                        check(p["path"])
                    if self._move(p):
                        replaced.append(p["path"])
                _sync(self.dest, [p["path"] for p in plan])
                _write_journal(self.folder, {"entries": plan, "made": made, "done": True})
            except BaseException:
                self._undo(plan, made)
                raise
        points.point(f"{self.kind}:committed")
        return replaced

    def _move(self, p):
        target = os.path.join(self.dest, p["path"])
        staged, aside = os.path.join(self.new, p["path"]), os.path.join(self.old, p["path"])
        existed = os.path.lexists(target)
        if existed:
            os.makedirs(os.path.dirname(aside), exist_ok=True)
            os.rename(target, aside)
            points.point(f"{self.kind}:moved-aside")
        if p["new"]:
            if not existed and os.path.isfile(staged) and not os.path.islink(staged):
                os.link(staged, target)     # never over a file that appeared meanwhile
                os.unlink(staged)
            else:
                os.rename(staged, target)
            points.point(f"{self.kind}:moved-in")
        return existed

    def _undo(self, plan, made):
        try:
            undo(self.folder, self.dest, plan, made)
        except OSError as e:
            self.keep = True
            raise UserError(f"{self.dest}: the old files could not be put back "
                            f"({e.strerror}); they are kept in {self.folder}: the next "
                            "run of this command there puts them back") from None


def undo(folder, dest, plan, made):
    """Put each entry of PLAN back as it was before the move: the new one
    back into FOLDER/new, the old one from FOLDER/old into DEST."""
    new, old = os.path.join(folder, "new"), os.path.join(folder, "old")
    for p in reversed(plan):
        target = os.path.join(dest, p["path"])
        staged, aside = os.path.join(new, p["path"]), os.path.join(old, p["path"])
        if p["new"] and os.path.lexists(target) and _moved_in(staged, target, aside):
            if os.path.lexists(staged):      # linked, not yet unlinked
                os.unlink(target)
            else:
                os.makedirs(os.path.dirname(staged), exist_ok=True)
                os.rename(target, staged)
        if os.path.lexists(aside):
            os.rename(aside, target)
    for folder_made in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(dest, folder_made))


def _moved_in(staged, target, aside):
    """TARGET is the staged entry (not the old one, nor a stranger's)."""
    if not os.path.lexists(staged):
        return True
    try:
        return os.path.samefile(staged, target)
    except OSError:
        return False


def recover(dest, kind, say=print):
    """What runs of KIND killed while replacing in DEST left: the old
    entries put back (or, when the run had finished, removed), the staging
    folder removed. A folder a living run holds is refused in one line."""
    try:
        names = sorted(n for n in os.listdir(dest) if n.startswith(f".{kind}-"))
    except OSError:
        return
    for name in names:
        folder = os.path.join(dest, name)
        if not os.path.isdir(folder) or os.path.islink(folder):
            continue
        if not scratch.unlocked(folder):
            raise UserError(f"another run is replacing files in {dest} ({name}): wait "
                            "for it to end, then run again")
        journal = _read_journal(folder)
        if journal and not journal["done"]:
            undo(folder, dest, journal["entries"], journal["made"])
            shown = ", ".join(p["path"] for p in journal["entries"])
            say(f"an earlier run was stopped while it replaced files in {dest}: put "
                f"back {_short(shown)} as they were")
        shutil.rmtree(folder, ignore_errors=True)


def _short(text, limit=200):
    return text if len(text) <= limit else text[:limit] + "..."


def _missing_parents(dest, paths):
    """Folders between DEST and each of PATHS that do not exist yet, outermost first."""
    made = []
    for path in paths:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            rel = "/".join(parts[:i])
            if rel not in made and not os.path.lexists(os.path.join(dest, rel)):
                made.append(rel)
    return made


def _write_journal(folder, data):
    """FOLDER/journal.json, atomically and on the disk before anything moves."""
    tmp = os.path.join(folder, JOURNAL + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(folder, JOURNAL))
    _fsync_dir(folder)


def _read_journal(folder):
    """The journal, checked: None when there is none or it is not ours."""
    try:
        with open(os.path.join(folder, JOURNAL), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    ok = (isinstance(data, dict) and isinstance(data.get("done"), bool)
          and isinstance(data.get("entries"), list) and isinstance(data.get("made"), list)
          and all(isinstance(p, dict) and _safe(p.get("path")) and isinstance(p.get("new"),
                                                                              bool)
                  for p in data["entries"])
          and all(_safe(m) for m in data["made"]))
    return data if ok else None


def _safe(rel):
    """A relative path that stays inside its folder."""
    return (isinstance(rel, str) and rel and not rel.startswith("/")
            and ".." not in rel.split("/") and "\0" not in rel)


def _sync(dest, paths):
    """The folders whose entries changed, on the disk (a power cut after the
    journal says done must not find the old names)."""
    for folder in {os.path.dirname(os.path.join(dest, p)) for p in paths}:
        _fsync_dir(folder)


def _fsync_dir(folder):
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
