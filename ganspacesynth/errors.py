"""Errors that are the user's to fix: the CLI prints their message on one line and exits 1."""


class UserError(Exception):
    """A problem with the user's input (files, options, values), reported without a traceback."""
