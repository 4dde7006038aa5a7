"""The static Calimero v1 read mirror: built from the same plan, pinned by the snapshot,
valid against schemas written from Calimero's documents and bundles, and read over real
HTTP from hosts that serve a folder path as GitHub Pages and nginx do."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import jsonschema
import nacl.signing
import pytest
import requests

from appshelf.formats.consistent import plain_path
from appshelf.formats.mpkverify import verify_signature
from conftest import LoopbackServer, build
from generations import all_pins
from mpk_helpers import base_manifest, bundle

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "calimero"
VECTORS = Path(__file__).resolve().parent / "vectors" / "calimero"
FIXTURE = VECTORS / "pass/mero-js__tests__e2e__assets__kv-store@ad261ac6.mpk"
KEY = nacl.signing.SigningKey(hashlib.sha256(b"appshelf calimero mirror tests").digest())


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.json").read_text())


def make_source(root: Path, mirror: bool = True) -> Path:
    (root / "apps").mkdir(parents=True)
    text = '[registry]\nname = "Calimero apps"\nbase_url = "https://apps.example.com/"\n'
    (root / "registry.toml").write_text(text + ("[mirrors]\ncalimero = true\n" if mirror else ""))
    kv = root / "apps/kv-store"
    (kv / "0.2.11").mkdir(parents=True)
    (kv / "app.toml").write_text(
        'name = "KV Store"\ndescription = "d"\ncalimero_package = "com.calimero.kv-store"\n'
    )
    shutil.copyfile(FIXTURE, kv / "0.2.11/kv-store.mpk")
    chat = root / "apps/chat"
    chat.mkdir()
    (chat / "app.toml").write_text(
        'name = "Chat <b>"\ndescription = "d"\ncalimero_package = "com.example.chat"\n'
    )
    for version in ("1.0.0", "1.1.0", "2.0.0-beta.1"):
        manifest = base_manifest("com.example.chat", version)
        manifest["metadata"] = {"name": "Chat <script>alert(1)</script> & co"}
        (chat / version).mkdir(parents=True)
        (chat / version / "chat.mpk").write_bytes(bundle(KEY, manifest))
        (chat / version / "release.toml").write_text('provides = ["chat.channel@1"]\n')
    (chat / "1.1.0/release.toml").write_text('provides = ["chat.channel@1"]\nyanked = "broken"\n')
    plain = root / "apps/plain"
    (plain / "1.0.0").mkdir(parents=True)
    (plain / "app.toml").write_text('name = "Plain"\ndescription = "not a Calimero app"\n')
    (plain / "1.0.0/plain.tar.gz").write_bytes(b"flows")
    return root


class PagesLike(SimpleHTTPRequestHandler):
    """As GitHub Pages: /folder -> 301 /folder/ -> folder/index.html; query ignored."""

    def log_message(self, format: str, *args: object) -> None:
        pass


class NginxLike(PagesLike):
    """As nginx with `index index.json index.html;` (or try_files $uri $uri/index.json)."""

    def translate_path(self, path: str) -> str:
        local = super().translate_path(path)
        clean = path.split("?", 1)[0]
        if clean.endswith("/") and os.path.isfile(os.path.join(local, "index.json")):
            return os.path.join(local, "index.json")
        return local


@pytest.fixture
def site(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    build(make_source(tmp_path / "src"), out)
    return out


@pytest.fixture(params=[PagesLike, NginxLike], ids=["pages-like", "nginx-like"])
def server(request: pytest.FixtureRequest, site: Path) -> Iterator[LoopbackServer]:
    handler = functools.partial(request.param, directory=str(site))
    with LoopbackServer(handler) as running:
        yield running


def mirror_files(site: Path) -> list[Path]:
    """The mirror's files, without the content-addressed copies of the pinned ones
    (docs/spec.md 4.1.1), which are appshelf's, not Calimero's."""
    files = (p for p in (site / "v1").rglob("*") if p.is_file())
    return sorted(p for p in files if plain_path(p.relative_to(site).as_posix()) is None)


def test_reads_over_http(server: LoopbackServer, site: Path) -> None:
    session = requests.Session()
    answer = session.get(server.url + "v1/apps/com.example.chat", timeout=10)
    assert answer.status_code == 200 and answer.history and answer.history[0].status_code == 301
    versions = json.loads(answer.content)
    assert versions["id"] == "com.example.chat"
    assert versions["versions"] == ["2.0.0-beta.1", "1.1.0", "1.0.0"]
    for version in versions["versions"]:
        got = session.get(server.url + f"v1/apps/com.example.chat/{version}", timeout=10)
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == versions["_manifests"][version]["sha256"]
        manifest = json.loads(got.content)
        verify_signature(manifest)  # the publisher's signature still holds: `_` keys are unsigned
        artifact = session.get(
            manifest["_artifact"]["uri"].replace("https://apps.example.com/", server.url),
            timeout=10,
        )
        assert (
            "sha256:" + hashlib.sha256(artifact.content).hexdigest()
            == manifest["_artifact"]["digest"]
        )
    assert (
        json.loads(session.get(server.url + "v1/apps/com.example.chat/1.1.0", timeout=10).content)[
            "_yanked"
        ]
        == "broken"
    )
    search = json.loads(session.get(server.url + "v1/search?q=chat", timeout=10).content)
    assert [(e["id"], e["version"]) for e in search] == [
        ("com.calimero.kv-store", "0.2.11"),
        ("com.example.chat", "2.0.0-beta.1"),
    ]
    assert search[1]["provides"] == ["chat.channel@1"]
    assert session.get(server.url + "v1/apps/plain", timeout=10).status_code == 404


def test_index_html_is_the_same_json_and_never_html(site: Path) -> None:
    folder = site / "v1/apps/com.example.chat"
    as_json, as_html = (folder / "index.json").read_bytes(), (folder / "index.html").read_bytes()
    assert json.loads(as_json) == json.loads(as_html)
    manifest = (folder / "1.0.0").read_bytes()
    assert b"<script>" in manifest  # the manifest is the publisher's JSON, never HTML
    for path in mirror_files(site):
        if path.name == "index.html":
            assert not {b"<", b">", b"&"} & {bytes([c]) for c in path.read_bytes()}


def test_every_mirror_file_matches_its_schema(site: Path) -> None:
    files = mirror_files(site)
    assert len(files) == 1 + 2 * 2 + 4  # search, two index pairs, four manifests
    for path in files:
        document = json.loads(path.read_bytes())
        name = (
            "search"
            if path.name == "search"
            else "versions"
            if path.name.startswith("index.")
            else "manifest"
        )
        jsonschema.validate(document, schema(name), cls=jsonschema.Draft202012Validator)


def test_real_bundle_manifests_match_the_manifest_schema() -> None:
    """The schema was written from these; the mirror's own `_` fields aside."""
    bundle_schema = schema("manifest")
    bundle_schema["required"] = [r for r in bundle_schema["required"] if not r.startswith("_")]
    for path in sorted(VECTORS.glob("pass/*.manifest.json")):
        jsonschema.validate(
            json.loads(path.read_bytes()), bundle_schema, cls=jsonschema.Draft202012Validator
        )


def test_snapshot_pins_the_mirror(site: Path) -> None:
    signed = json.loads((site / "snapshot.json").read_bytes())["signed"]
    meta = all_pins(signed, lambda name: (site / name).read_bytes())  # the bins' too
    assert "v1/apps/com.example.chat/index.json" not in signed["meta"]  # in its bin
    for path in (
        "v1/search",
        "v1/apps/com.example.chat/index.json",
        "v1/apps/com.example.chat/index.html",
    ):
        data = (site / path).read_bytes()
        assert meta[path] == {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data)}
    assert "v1/apps/com.example.chat/1.0.0" not in meta  # pinned through index.json's _manifests


def test_rebuild_is_byte_identical_and_off_means_no_mirror(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    out = tmp_path / "out"
    build(source, out)
    before = {p: p.read_bytes() for p in mirror_files(out)}
    report = build(source, out)
    assert report.files_written == 0 and {p: p.read_bytes() for p in mirror_files(out)} == before
    off = tmp_path / "off"
    build(make_source(tmp_path / "src-off", mirror=False), off)
    assert not (off / "v1").exists()


def test_deploy_content_types() -> None:
    from appshelf.deploy.files import content_type

    assert content_type("v1/apps/com.example.chat/1.0.0") == "application/json"
    assert content_type("v1/search") == "application/json"
    assert content_type("v1/apps/com.example.chat/index.json") == "application/json"
    assert content_type("v1/apps/com.example.chat/index.html").startswith("text/html")
    assert content_type("apps/chat/1.0.0/chat.mpk") == "application/octet-stream"
