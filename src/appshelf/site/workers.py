"""App pages rendered in worker processes (a cold build of a large registry).

The pages stay lazy (builder/outputs.py): the writer asks for them one at a time, in
sorted path order, and only for those the output does not already hold. The first few
are rendered here, in this process; once more are asked for (a cold build, a new theme),
worker processes are started and render the pages ahead of the writer, a window of
small batches at a time, in that same order. A page's bytes do not depend on where it
was rendered: each worker makes the same Jinja environment once, from the same theme,
and renders the same template with the same context. So the output is the same bytes,
in the same dict order, as with one process.

Processes are started by a 'forkserver' (never 'fork': the build holds threads and sqlite
handles), only when pages are asked for (a no-op build starts none), and stopped once
every page was delivered, on an error, or when the pages are forgotten. A page whose
worker failed in any other way than a SiteBuildError (a worker that died, an exception
that is a bug) is rendered again here, so the build ends as a one-process build would.
"""

from __future__ import annotations

import multiprocessing
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

import jinja2

from appshelf.errors import SiteBuildError

MIN_APPS = 200  # fewer app pages than this: rendered in this process (not worth a process)
WARMUP = 16  # pages rendered here before workers start (a build that needs a few)
BATCH = 8  # pages per task sent to a worker
START_METHOD = "forkserver"  # a fresh server process, forked per worker; never "fork"
AHEAD = 6  # batches in flight per worker, ahead of the page the writer waits for


def default_jobs() -> int:
    """1: measured on 2 cores, two workers made a cold 20,000-version build slower (61 s
    with one process, 71 s with two workers), so they are opt-in (`--site-jobs 2`)."""
    return 1


class PageState(Protocol):
    """What renders any page given its context (picklable: sent once to each worker)."""

    def environment(self) -> jinja2.Environment: ...

    def render(
        self, env: jinja2.Environment, template: str, path: str, root: str, context: dict[str, Any]
    ) -> bytes: ...


@dataclass(frozen=True)
class Page:
    """One page's work: small and picklable (the app's view, not the whole plan)."""

    template: str
    path: str
    root: str
    context: dict[str, Any]


_worker: tuple[PageState, jinja2.Environment] | None = None


def _start_worker(state: PageState) -> None:
    """Each worker's initializer: the Jinja environment, once per process."""
    global _worker
    _worker = (state, state.environment())


def _render_batch(pages: list[Page]) -> list[bytes | str]:
    """Each page's bytes, or the SiteBuildError's message (raised again by the build)."""
    assert _worker is not None
    state, env = _worker
    found: list[bytes | str] = []
    for page in pages:
        try:
            found.append(state.render(env, page.template, page.path, page.root, page.context))
        except SiteBuildError as exc:
            found.append(str(exc))
    return found


def _stop(executor: list[ProcessPoolExecutor]) -> None:
    while executor:
        executor.pop().shutdown(wait=False, cancel_futures=True)


class PagePool:
    """App pages to render, by path; `render(path)` gives one's bytes (the lazy file's
    render). Add every page first (`add`), in any order; workers start later."""

    def __init__(
        self,
        state: PageState,
        jobs: int,
        local: Callable[[Page], bytes],
        *,
        warmup: int | None = None,
    ) -> None:
        self._state = state
        self._jobs = jobs
        self._local = local
        self._warmup = WARMUP if warmup is None else warmup
        self._pages: dict[str, Page] = {}
        self._order: list[str] = []  # sorted paths, once workers start
        self._position: dict[str, int] = {}
        self._batches: dict[int, Future[list[bytes | str]]] = {}
        self._asked = 0
        self._delivered = 0
        self._lock = threading.Lock()
        self._executor: list[ProcessPoolExecutor] = []  # one, while running
        self._local_only = False  # workers stopped (all delivered, or broken)
        weakref.finalize(self, _stop, self._executor)

    def add(self, page: Page) -> None:
        self._pages[page.path] = page

    def render(self, path: str) -> bytes:
        with self._lock:
            self._asked += 1
            if self._local_only or self._asked <= self._warmup:
                return self._local(self._pages[path])
            if not self._executor:
                self._start()
            return self._from_worker(path)

    def _start(self) -> None:
        self._order = sorted(self._pages)
        self._position = {path: index for index, path in enumerate(self._order)}
        context = multiprocessing.get_context(START_METHOD)
        self._executor.append(
            ProcessPoolExecutor(
                self._jobs, mp_context=context, initializer=_start_worker, initargs=(self._state,)
            )
        )

    def _from_worker(self, path: str) -> bytes:
        size = BATCH
        batch, offset = divmod(self._position[path], size)
        last = (len(self._order) - 1) // size
        for behind in [b for b in self._batches if b < batch]:  # the writer is past them
            self._batches.pop(behind).cancel()
        for ahead in range(batch, min(batch + AHEAD * self._jobs, last) + 1):
            if ahead not in self._batches:
                paths = self._order[ahead * size : (ahead + 1) * size]
                pages = [self._pages[p] for p in paths]
                self._batches[ahead] = self._executor[0].submit(_render_batch, pages)
        try:
            result = self._batches[batch].result()[offset]
        except BrokenProcessPool:  # a worker died (killed, out of memory): go on here
            self._stop()
            return self._local(self._pages[path])
        except Exception:  # any other failure there: here, it is what one process does
            self._stop()
            return self._local(self._pages[path])
        if isinstance(result, str):
            self._stop()
            raise SiteBuildError(result)
        self._delivered += 1
        if self._delivered + self._warmup >= len(self._pages):
            self._stop()  # every page was asked for (any asked again: in this process)
        return result

    def _stop(self) -> None:
        self._local_only = True
        self._batches.clear()
        _stop(self._executor)
