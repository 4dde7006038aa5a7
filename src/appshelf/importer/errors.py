"""The one error `appshelf import` and `sync` raise: every problem found, each located."""

from __future__ import annotations

from collections.abc import Iterable

from appshelf.errors import AppshelfError


class FlowsImportError(AppshelfError):
    """The Flows registry (or the upstream of a federated app) cannot be imported as is;
    nothing was written. The message lists every problem, each naming where it is."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(dict.fromkeys(problems))
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            lines = [f"{len(self.problems)} problems; nothing was written:"]
            super().__init__("\n".join([*lines, *(f"  {p}" for p in self.problems)]))


def problems_of(exc: AppshelfError) -> list[str]:
    """The problems an error stands for: a FlowsImportError's list, else its message."""
    return exc.problems if isinstance(exc, FlowsImportError) else [str(exc)]
