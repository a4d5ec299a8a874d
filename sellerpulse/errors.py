"""Errors the person running sellerpulse can fix: shown as one line, never as a traceback.

The CLI exits with the error's `exit_code`: 2 for a usage error (a bad argument or setting, an
unknown shop, a name already taken), 1 for a failure (the marketplace refused a token, the
database is unreachable, a sync failed).
"""


class UserError(RuntimeError):
    """Bad settings, a database not at the schema head, a missing shop: the message says what to do."""

    exit_code = 2


class Failure(UserError):
    """The command was right but what it tried failed: the message says what and, if known, why."""

    exit_code = 1
