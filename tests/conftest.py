"""Shared fixtures: a private copy of example-registry, builds, and a real HTTP server."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseRequestHandler
from typing import Self

import pytest

from appshelf.builder import BuildOptions, BuildReport, build_registry

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_REGISTRY = REPO_ROOT / "example-registry"
VECTORS = Path(__file__).resolve().parent / "vectors"
FIXED_NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def example_source(tmp_path: Path) -> Path:
    """A writable copy of example-registry that a test may edit freely."""
    target = tmp_path / "source"
    shutil.copytree(EXAMPLE_REGISTRY, target)
    return target


def build(source: Path, output: Path, **options: object) -> BuildReport:
    """Build with a fixed clock and no inherited signing key unless a test asks."""
    options.setdefault("now", FIXED_NOW)
    options.setdefault("environ", {})
    return build_registry(source, output, BuildOptions(**options))  # type: ignore[arg-type]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class LoopbackServer:
    """A real HTTP server on a free 127.0.0.1 port, run in a thread while in a `with`."""

    def __init__(self, handler: Callable[..., BaseRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StaticServer(LoopbackServer):
    """Serves one folder, as a web host does."""

    def __init__(self, root: Path):
        self.root = root
        super().__init__(functools.partial(_QuietHandler, directory=str(root)))


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[StaticServer]:
    """Serves tmp_path/'www' on a free port; build into server.root with base_url=server.url."""
    root = tmp_path / "www"
    root.mkdir()
    with StaticServer(root) as server:
        yield server


@pytest.fixture
def served_registry(example_source: Path, tmp_path: Path) -> Iterator[StaticServer]:
    """example-registry built with the server's own base_url and served over HTTP."""
    root = tmp_path / "served"
    with StaticServer(root) as server:
        build(example_source, root, base_url=server.url)
        yield server
