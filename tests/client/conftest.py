"""Helpers for the client tests: a client factory, a hostile HTTP server, a clock."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from appshelf.client import Limits, RegistryClient, trusted_keys
from conftest import FIXED_NOW, LoopbackServer, build

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


@pytest.fixture
def live(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HostileServer]:
    """The example registry signed now (the CLI uses the real clock)."""
    monkeypatch.setenv("APPSHELF_STATE_DIR", str(tmp_path / "cli-state"))
    with HostileServer(tmp_path / "live") as server:
        build(example_source, server.root, base_url=server.url, now=datetime.now(UTC))
        yield server


def cli(*args: str) -> tuple[int, str]:
    """Run the appshelf CLI in-process: its exit code and output."""
    from click.testing import CliRunner

    from appshelf.cli import main

    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


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


def read_log_entries(root: Path) -> list[bytes]:
    """The entries of the log a built registry folder publishes."""
    from appshelf.formats.log import decode_bundle, tiles_for

    size = json.loads((root / "snapshot.json").read_bytes())["signed"]["log"]["size"]
    entries: list[bytes] = []
    for ref in tiles_for(size):
        if ref.level == "entries":
            entries += decode_bundle((root / ref.path).read_bytes(), ref.width)
    return entries


def resign_log(
    root: Path,
    entries: list[bytes],
    *,
    bump: int = 1,
    checkpoint: Callable[[bytes], bytes] | None = None,
) -> None:
    """Publish `entries` as root's release log, signed by the development key as a
    registry's own build would: tiles, checkpoint, and a snapshot `bump` versions newer
    naming the new head (so only a log check can tell a rewritten history)."""
    from appshelf.builder.logplan import log_files
    from appshelf.formats.canonical import canonical_json, sha256_hex
    from appshelf.formats.consistent import consistent_path
    from appshelf.formats.merkle import leaf_hash
    from appshelf.signing.envelope import sign_body
    from appshelf.signing.keys import development_key
    from appshelf.signing.releaselog import LogState

    body = json.loads((root / "snapshot.json").read_bytes())["signed"]
    state = LogState(entries=list(entries), leaves=[leaf_hash(e) for e in entries])
    planned = log_files(state, development_key(), body["registry"])
    files = {path: file.materialize().data or b"" for path, file in planned.items()}
    if checkpoint is not None:
        files["log/checkpoint"] = checkpoint(files["log/checkpoint"])
    shutil.rmtree(root / "log")
    for relpath, data in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(data)
    cp = files["log/checkpoint"]
    body["meta"]["log/checkpoint"] = {"sha256": sha256_hex(cp), "length": len(cp)}
    if body.get("consistent"):  # the copy a client reads (docs/spec.md 4.1.1)
        (root / consistent_path("log/checkpoint", sha256_hex(cp))).write_bytes(cp)
    body["log"] = {"size": state.size, "root": state.root.hex()}
    body["version"] += bump
    (root / "snapshot.json").write_bytes(canonical_json(sign_body(body, development_key())))


def entry_json(data: bytes) -> dict[str, object]:
    return json.loads(data)  # type: ignore[no-any-return]


def entry_bytes(entry: dict[str, object]) -> bytes:
    from appshelf.formats.canonical import canonical_json

    return canonical_json(entry)
