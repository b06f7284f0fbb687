"""Names a user gives that become file or object names: plain names only.

    from trainer.core.names import plain_name
    name = plain_name(args.model_name, "-m")     # 'pilot-wip' -> 'pilot-wip'

A plain name is a letter or digit, then letters, digits, '.', '_' or '-',
at most MAX_LENGTH characters: no '/', no '..' climbing out of a folder, no
spaces a shell or a bucket listing would split, no leading '-' or '.'.
"""
import re

from trainer.core.errors import UserError

MAX_LENGTH = 100
PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def is_plain(value):
    return (isinstance(value, str) and len(value) <= MAX_LENGTH
            and PLAIN.fullmatch(value) is not None)


def plain_name(value, flag, example="pilot-wip"):
    """VALUE when it is a plain name; else UserError naming FLAG and EXAMPLE."""
    if is_plain(value):
        return value
    shown = value if len(str(value)) <= 60 else str(value)[:57] + "..."
    why = (f"longer than {MAX_LENGTH} characters" if len(str(value)) > MAX_LENGTH
           else "not a plain name")
    raise UserError(f"{flag} {shown!r} is {why}: use letters, digits, '.', '_' "
                    f"and '-' (starting with a letter or digit), e.g. {flag} {example}")


# The names the scripts use when the user gives none. Each day's run of the
# same loop moves on to the next free one (wip.tgz, wip-2.tgz, ...; pilot-wip,
# pilot-wip-2, ...), the way DonkeyCar numbers its pilots, and the next step
# of the loop takes the newest of them.
ARCHIVE_STEM = "wip"
MODEL_STEM = "pilot-wip"


def number_in(stem, name):
    """1 for NAME == STEM, N for STEM-N (N >= 2), else None."""
    if name == stem:
        return 1
    head, sep, tail = name.rpartition("-")
    if sep and head == stem and tail.isdigit() and int(tail) >= 2 and tail[0] != "0":
        return int(tail)
    return None


def newest(stem, names):
    """The one of NAMES in STEM's family with the highest number, or None."""
    numbered = [(number_in(stem, n), n) for n in names]
    numbered = [(k, n) for k, n in numbered if k]
    return max(numbered)[1] if numbered else None


def next_free(stem, names):
    """STEM when NAMES lack it, else STEM-N after the highest N taken."""
    taken = [k for k in (number_in(stem, n) for n in names) if k]
    return stem if not taken else f"{stem}-{max(taken) + 1}"
