"""Errors meant for people: one line, where, and a hint.

A `UserError` is the user's to fix (bad flag, missing file, unknown key). The CLI prints it as
`engitor: LOCATION: message (hint: ...)` and exits 2, with no traceback unless --debug.
Anything else escaping is our bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake in what the user gave us; never a bug of ours."""

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def located(self, where: str) -> UserError:
        """Return the same error with a location, unless it already has one."""
        if self.where is None:
            self.where = where
        return self

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"
