"""One app at a time: each app is planned, its pages rendered, its content-addressed
copies made and its files staged (builder/writer.py `Spool`) before the next app is
read from the plan, and only its summary and digests are kept (issue 12, decision 4).

A build streams when every generator can take one app at a time (`stream` gives an
`AppStream`) and no mirror needs every app's plan at once (appr and Calimero build
from `plan.apps`); otherwise it plans every app first, as before. Both give the same
bytes (tests/test_streaming.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from appshelf.builder.consistent import app_copies
from appshelf.builder.outputs import OutputFiles
from appshelf.builder.plan import PlannedApp, PlanStart, RegistryPlan
from appshelf.builder.writer import Spool
from appshelf.errors import OutputError
from appshelf.source.models import RegistryConfig


class AppStream(Protocol):
    """A generator's output for one build, one app at a time, then the rest."""

    def app(self, planned: PlannedApp, files: OutputFiles) -> OutputFiles:
        """The app's own pages; `files` are the app's registry files (read only)."""
        ...

    def finish(self, plan: RegistryPlan) -> OutputFiles:
        """Everything else, once every app went by (`plan.apps` is empty then)."""
        ...


@runtime_checkable
class StreamingGenerator(Protocol):
    """A `BuildOptions.generators` entry that can also take one app at a time."""

    def __call__(self, plan: RegistryPlan) -> OutputFiles: ...

    def stream(self, start: PlanStart) -> AppStream | None:
        """This build's stream, or None to be called with the whole plan instead."""
        ...


def can_stream(config: RegistryConfig, generators: Sequence[object]) -> bool:
    """Whether a build may hand on one app at a time: no mirror reads every app's plan
    at once, and every generator can stream (`start_streams` may still say no)."""
    if config.mirrors.appr or config.mirrors.calimero:
        return False
    return all(isinstance(g, StreamingGenerator) for g in generators)


def start_streams(start: PlanStart, generators: Sequence[object]) -> list[AppStream] | None:
    """Each generator's stream, in order; None when one of them declines."""
    streams = []
    for generator in generators:
        assert isinstance(generator, StreamingGenerator)
        stream = generator.stream(start)
        if stream is None:
            return None
        streams.append(stream)
    return streams


def refuse_clashes(extra: OutputFiles, planned: Collection[str]) -> None:
    """A generator's files must not replace a planned file.

    Raises:
        OutputError: the first few paths that would.
    """
    clash = sorted(extra.keys() & planned)
    if clash:
        raise OutputError(f"generator output clashes with registry files: {clash[:5]}")


@dataclass(frozen=True)
class HandOn:
    """The `AppFinisher` of a streaming build: the app's pages from each stream, its
    content-addressed copies, then the staging of all of its files."""

    streams: Sequence[AppStream]
    spool: Spool

    def __call__(self, planned: PlannedApp, files: OutputFiles, own: list[str]) -> None:
        """Add the app's pages and copies to `files` (every file planned so far), and
        hand them on with its other files (`own`).

        Raises:
            OutputError: a page would replace a planned file, or a file cannot be
                staged.
        """
        added: list[str] = []
        for stream in self.streams:
            pages = stream.app(planned, files)
            refuse_clashes(pages, files.keys())
            files.update(pages)
            added += pages
        copies = app_copies(planned, files)
        files.update(copies)
        self.spool.add(files, [*own, *added, *copies])
