"""Errors a user can act on: the CLI prints their message on one line, without a traceback."""

from __future__ import annotations


class UserError(ValueError):
    """A request that cannot be served as given (unknown item id, unknown item type, ...)."""
