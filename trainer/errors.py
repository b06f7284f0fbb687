"""The one exception type for problems the user can fix.

Its message is one line: what went wrong, and what to do. The command-line
edges (trainer.cli, trainer.task) print it after the script's name and exit 1;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """An expected failure: bad input, missing file, refused overwrite."""
