"""A realistic Spacelift Flows registry, made by the test and served on 127.0.0.1.

It follows the two official registries (tests/importer/SOURCE.md):
- core apps: `<root>registry.json` lists each app with `iconUrl` and `appMetadataUrl`
  under the registry (`<root>apps/<key>/logo.svg`, `<root>apps/<key>/versions.json`);
- community apps are federated: `appMetadataUrl` is the versions.json in the app's own
  repository (`/<owner>/flows-app-<key>/refs/heads/main/versions.json`, as on
  raw.githubusercontent.com), built there from the GitHub releases API;
- artifacts are GitHub release assets, `/<owner>/flows-app-<key>/releases/download/
  v<version>/bundle.tar.gz`, which redirect (302) to an object host, as GitHub's do;
  a few core apps keep the core bucket layout `<root>apps/<key>/versions/<v>.tar.gz`.

The server answers GET and HEAD; some artifacts come without Content-Length (HEAD then
tells no size) and some objects refuse HEAD (405), as object stores and CDNs do.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from conftest import LoopbackServer

MANIFESTS = json.loads((Path(__file__).parent / "flows_manifests.json").read_text())
OWNER = "spacelift-io"


def tarball(key: str, version: str) -> bytes:
    """A bundle like `flowctl version bundle` makes: a .tar.gz with main.js, fixed times."""
    body = f"// {key} {version}\nexport default {{ name: {json.dumps(key)} }};\n".encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("main.js")
        info.size, info.mtime, info.mode = len(body), 1_700_000_000, 0o644
        archive.addfile(info, io.BytesIO(body))
    return gzip.compress(raw.getvalue(), mtime=0)


def svg_icon(color: str, letter: str) -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24">'
        f'<rect width="24" height="24" rx="5" fill="{color}"/>'
        f'<text x="12" y="17" font-size="14" text-anchor="middle" fill="#ffffff">{letter}</text>'
        "</svg>\n"
    ).encode()


def png_icon(color: str) -> bytes:
    """A valid 16x16 RGB PNG of one colour."""
    rgb = bytes.fromhex(color[1:])
    rows = b"".join(b"\x00" + rgb * 16 for _ in range(16))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def versions_of(index: int) -> list[str]:
    return ["1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0"][: 1 + index % 4]


@dataclass
class FlowsRegistry:
    """The files of the registry and of the app repositories, by URL path."""

    files: dict[str, bytes] = field(default_factory=dict)
    no_length: set[str] = field(default_factory=set)  # paths served without Content-Length
    no_head: set[str] = field(default_factory=set)  # paths that answer HEAD with 405
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    federated: list[str] = field(default_factory=list)

    def json(self, path: str) -> object:
        return json.loads(self.files[path])

    def put_json(self, path: str, value: object) -> None:
        self.files[path] = json.dumps(value, indent=2).encode() + b"\n"


def make_registry(base: str, prefix: str = "core/") -> FlowsRegistry:
    """Every app of flows_manifests.json: core ones under `base + prefix`, community ones
    federated from their own repositories. `base` is the server's URL (ends in /)."""
    registry = FlowsRegistry()
    root = base + prefix
    apps: dict[str, object] = {}
    for index, (key, manifest) in enumerate(sorted(MANIFESTS.items())):
        repo = f"{OWNER}/flows-app-{key}"
        community = manifest["registry"] == "community"
        if community:
            metadata_path = f"{repo}/refs/heads/main/versions.json"
            registry.federated.append(key)
        else:
            metadata_path = f"{prefix}apps/{key}/versions.json"
        entries = []
        for number, version in enumerate(versions_of(index)):
            data = tarball(key, version)
            if not community and index % 5 == 0:  # the core bucket layout
                path = url_path = f"{prefix}apps/{key}/versions/{version}.tar.gz"
            else:  # a GitHub release asset, redirected to its object
                url_path = f"{repo}/releases/download/v{version}/bundle.tar.gz"
                path = f"objects/{hashlib.sha256(url_path.encode()).hexdigest()[:16]}/bundle.tar.gz"
                registry.redirects[url_path] = base + path
            registry.files[path] = data
            if (index + number) % 4 == 0:
                registry.no_length.add(path)
            if (index + number) % 7 == 0:
                registry.no_head.add(path)
            entries.append(
                {
                    "version": version,
                    "artifactUrl": base + url_path,
                    "artifactChecksum": f"sha256:{hashlib.sha256(data).hexdigest()}",
                }
            )
        registry.put_json(metadata_path, {"versions": entries})
        logo = manifest["logo"]
        icon = (
            svg_icon(manifest["color"], manifest["name"][0])
            if logo.endswith(".svg")
            else png_icon(manifest["color"])
        )
        icon_path = f"{prefix}apps/{key}/{logo}"
        registry.files[icon_path] = icon
        apps[key] = {
            "name": manifest["name"],
            "description": manifest["description"],
            "blockStyle": {"iconUrl": root + f"apps/{key}/{logo}", "color": manifest["color"]},
            "appMetadataUrl": base + metadata_path,
        }
    registry.put_json(f"{prefix}registry.json", {"apps": apps})
    return registry


class FlowsServer(LoopbackServer):
    """Serves a `FlowsRegistry` (read at request time, so a test may change it)."""

    def __init__(self) -> None:
        self.registry = FlowsRegistry()
        self.hits: dict[tuple[str, str], int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _answer(self, head: bool) -> None:
                path = self.path.split("?")[0].lstrip("/")
                method = "HEAD" if head else "GET"
                server.hits[(method, path)] = server.hits.get((method, path), 0) + 1
                files = server.registry
                if path in files.redirects:
                    self.send_response(302)
                    self.send_header("Location", files.redirects[path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path not in files.files:
                    self.send_error(404)
                    return
                if head and path in files.no_head:
                    self.send_error(405)
                    return
                data = files.files[path]
                self.send_response(200)
                if path not in files.no_length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

        super().__init__(Handler)

    def downloads(self, suffix: str = ".tar.gz") -> int:
        return sum(
            n
            for (m, p), n in self.hits.items()
            if m == "GET" and p.endswith(suffix) and p not in self.registry.redirects
        )
