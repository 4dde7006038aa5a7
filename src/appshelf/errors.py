"""Exceptions shared by every part of appshelf.

Every exception the user can act on derives from `AppshelfError`. The CLI prints
its message as one `Error: ...` block and exits with status 1; anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class AppshelfError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input, located by file (relative path) and field."""

    path: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else self.path
        return f"{where}: {self.message}"


class SourceTreeError(AppshelfError):
    """The registry source tree has one or more problems; all are listed at once."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems))
        count = len(self.problems)
        header = f"the source tree has {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))


class SigningKeyError(AppshelfError):
    """The signing key is missing, malformed, or not allowed for this build."""


class OutputError(AppshelfError):
    """The output folder cannot be written or read back."""
