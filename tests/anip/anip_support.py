"""Helpers for the ANIP tests: template bundles, a registry with a template, and a
static host that behaves like GitHub Pages and nginx for paths that are also folders.

Not a conftest.py (a second `conftest` would shadow tests/conftest.py)."""

from __future__ import annotations

import copy
import functools
import json
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

from conftest import LoopbackServer

BUNDLE: dict[str, Any] = {
    "template": {
        "anipSpecVersion": "anip/0.24",
        "projectType": "service",
        "industries": ["retail"],
        "domains": ["orders", "payments"],
        "starter": {"summary": "An order service to start from.", "reviewed": True},
        "capabilities": [{"name": "orders.create", "sideEffect": "write"}],
        "connections": [
            {
                "name": "payments",
                "kind": "http",
                "apiToken": "${PAYMENTS_API_TOKEN}",
                "secrets": {"signing": "env:PAYMENTS_SIGNING_SECRET"},
            }
        ],
        "discovery": [{"name": "orders", "path": "/orders"}],
    },
    "documents": [
        {"path": "README.md", "content": "# Orders starter\n\nCreate *orders* safely.\n"},
        {"path": "docs/design.md", "content": "## Design\n\n- one service\n- one queue\n"},
    ],
}


def bundle(**changes: Any) -> dict[str, Any]:
    """A valid bundle (a deep copy), with top-level members replaced by `changes`."""
    data = copy.deepcopy(BUNDLE)
    data.update(changes)
    return data


def manifest(**changes: Any) -> dict[str, Any]:
    """A valid bundle whose template manifest has `changes`."""
    data = copy.deepcopy(BUNDLE)
    data["template"].update(changes)
    return data


def add_template(
    source: Path,
    data: dict[str, Any] | bytes | None = None,
    key: str = "starter",
    version: str = "1.0.0",
    app_toml: str = 'kind = "template"\n',
) -> Path:
    """Write apps/<key>/ as a template (app.toml and one version's bundle); return the
    bundle's path."""
    folder = source / "apps" / key
    (folder / version).mkdir(parents=True, exist_ok=True)
    (folder / "app.toml").write_text(
        f'name = "Orders starter"\ndescription = "A starter for order services."\n{app_toml}'
    )
    payload = data if isinstance(data, bytes) else json.dumps(data or BUNDLE).encode()
    path = folder / version / f"{key}-{version}.anip-template.json"
    path.write_bytes(payload)
    return path


class IndexFileHandler(SimpleHTTPRequestHandler):
    """What GitHub Pages and nginx (`index index.html;`) do, and the S3 REST endpoint
    does not: `/dir` answers 301 to `/dir/`, and `/dir/` serves `dir/index.html`.
    SimpleHTTPRequestHandler does both; a folder without an index file is 404, as on
    those hosts, never a listing."""

    def list_directory(self, path: str | Path) -> None:  # type: ignore[override]
        self.send_error(404, "Not Found")
        return None

    def log_message(self, format: str, *args: object) -> None:
        pass


class IndexFileServer(LoopbackServer):
    def __init__(self, root: Path):
        self.root = root
        super().__init__(functools.partial(IndexFileHandler, directory=str(root)))
