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
