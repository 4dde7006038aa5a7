"""The client reads a consistent snapshot's pinned files by their content-addressed names
(docs/spec.md 4.1, 5), over a real HTTP server on 127.0.0.1; a snapshot from before
consistent snapshots is still read by the plain names."""

from __future__ import annotations

import json
from pathlib import Path

from appshelf.client.verify import verify_registry
from appshelf.formats.canonical import canonical_json
from appshelf.formats.consistent import consistent_path, plain_path
from appshelf.signing.envelope import sign_body
from appshelf.signing.keys import development_key
from client.conftest import ClientFactory, HostileServer
from conftest import build
from generations import all_pins


def _pinned(root: Path) -> dict[str, str]:
    """Plain path -> sha256 of every file the snapshot pins, and of every manifest."""
    signed = json.loads((root / "snapshot.json").read_bytes())["signed"]
    meta = all_pins(signed, lambda name: (root / name).read_bytes())
    pinned = {path: pin["sha256"] for path, pin in meta.items()}
    for path in list(pinned):
        if path.endswith("/app.json"):
            for entry in json.loads((root / path).read_bytes())["versions"]:
                pinned[entry["manifest_path"]] = entry["manifest"]["sha256"]
    return pinned


def _read_everything(client_factory: ClientFactory, url: str, tmp_path: Path) -> None:
    client = client_factory(url)
    assert {a.key for a in client.index().apps} == set(client.app_keys())
    assert client.flows_registry().apps and client.keys_document().keys
    for key in client.app_keys():
        client.flows_versions(key)
        for entry in client.app(key).versions:
            client.manifest(key, entry.version)
    download = client.download("kv-store", "1.1.0", tmp_path / "vendor")
    assert download.path.read_bytes()
    report = verify_registry(client, artifacts=True)  # also the log's checkpoint
    assert report.ok and report.log_entries, report.failures


def test_pinned_files_are_read_by_digest_while_the_plain_names_change(
    example_source: Path, tmp_path: Path, make_client: ClientFactory
) -> None:
    with HostileServer(tmp_path / "www") as server:
        build(example_source, server.root, base_url=server.url)
        pinned = _pinned(server.root)
        # Every plain name now holds other bytes (as while the next build is published).
        for relpath in pinned:
            (server.root / relpath).write_bytes(b'{"next":"build"}')
        _read_everything(make_client, server.url, tmp_path)
        fetched = {path.lstrip("/") for path in server.hits}
    copies = {consistent_path(path, sha) for path, sha in pinned.items()}
    assert copies <= fetched  # index files, app.json, versions.json, manifests, checkpoint
    assert not fetched & set(pinned)  # never a plain name of a pinned file
    assert all(plain_path(p) is None or p in copies for p in fetched)


def test_a_snapshot_without_consistent_is_read_by_plain_names(
    example_source: Path, tmp_path: Path, make_client: ClientFactory
) -> None:
    with HostileServer(tmp_path / "www") as server:
        build(example_source, server.root, base_url=server.url)
        pinned = _pinned(server.root)
        for relpath, sha256 in pinned.items():
            (server.root / consistent_path(relpath, sha256)).unlink()
        envelope = json.loads((server.root / "snapshot.json").read_bytes())
        body = {k: v for k, v in envelope["signed"].items() if k != "consistent"}
        (server.root / "snapshot.json").write_bytes(
            canonical_json(sign_body(body, development_key()))
        )
        _read_everything(make_client, server.url, tmp_path)
        fetched = {path.lstrip("/") for path in server.hits}
    assert set(pinned) <= fetched
    assert not any(plain_path(p) for p in fetched)
