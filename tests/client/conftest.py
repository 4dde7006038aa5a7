"""Helpers for the client tests: a client factory, a hostile HTTP server, a clock."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from appshelf.client import Limits, RegistryClient, trusted_keys
from conftest import FIXED_NOW, LoopbackServer

# The example registry is built with FIXED_NOW and a 30-day snapshot lifetime.
CLIENT_NOW = FIXED_NOW + timedelta(days=1)
ClientFactory = Callable[..., RegistryClient]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "client-state"


@pytest.fixture
def make_client(state_dir: Path) -> Iterator[ClientFactory]:
    """A client trusting the development key, with the test clock and fast limits."""
    made: list[RegistryClient] = []

    def factory(location: str | Path, **options: object) -> RegistryClient:
        options.setdefault("allow_dev_key", True)
        options.setdefault("state_dir", state_dir)
        options.setdefault("clock", lambda: CLIENT_NOW)
        options.setdefault("limits", Limits(retries=1, backoff=0.01, read_timeout=5))
        keys = options.pop("keys", None) or trusted_keys(allow_dev_key=True)
        client = RegistryClient(location, keys, **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


Route = Callable[[BaseHTTPRequestHandler], None]


class HostileServer(LoopbackServer):
    """Serves a folder like a web host, except for paths given special `routes`."""

    def __init__(self, root: Path, routes: dict[str, Route] | None = None):
        self.root = root
        self.routes = routes or {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                route = server.routes.get(path)
                if route is not None:
                    route(self)
                    return
                file = server.root / path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)


def endless(handler: BaseHTTPRequestHandler) -> None:
    """No Content-Length, and the bytes never stop (until the client hangs up)."""
    handler.send_response(200)
    handler.end_headers()
    chunk = b"{" * 65536
    try:
        while True:
            handler.wfile.write(chunk)
    except OSError:
        pass


def redirect_to_self(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(302)
    handler.send_header("Location", handler.path)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def copy_registry(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
