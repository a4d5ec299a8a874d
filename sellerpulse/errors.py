"""Errors the person running sellerpulse can fix: shown as one line, never as a traceback."""


class UserError(RuntimeError):
    """Bad settings, a database not at the schema head, a missing shop: the message says what to do."""
