"""How `appshelf import` and `sync` collect problems into their one error,
`appshelf.errors.FlowsImportError` (every problem found, each located)."""

from __future__ import annotations

from appshelf.errors import AppshelfError, FlowsImportError


def problems_of(exc: AppshelfError) -> list[str]:
    """The problems an error stands for: a FlowsImportError's list, else its message."""
    return exc.problems if isinstance(exc, FlowsImportError) else [str(exc)]
