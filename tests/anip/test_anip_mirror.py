"""The ANIP static read mirror (docs/spec.md section 15): every file validates against
the JSON Schemas written from the ANIP documentation, is pinned through the snapshot,
and is served on a real 127.0.0.1 host that behaves like GitHub Pages and nginx for
paths that are also folders (an index file and a redirect)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from functools import cache, partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from anip_support import IndexFileServer, add_template
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from appshelf.client import RegistryClient
from appshelf.client.verify import verify_registry
from appshelf.deploy.files import content_type
from appshelf.formats.boundedjson import loads_bounded
from appshelf.signing.envelope import trusted_keys_from_hex, verify_envelope
from appshelf.signing.keys import development_key
from appshelf.source.lifecycle import record_standing
from conftest import LoopbackServer, build

DEV_PUBLIC = development_key().public_hex
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "anip"
MIRROR = """
[mirrors]
anip = true
anip_publisher_id = "acme-platform"
anip_publisher_type = "organization"
"""


@cache
def _schemas() -> Registry:  # type: ignore[type-arg]
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)  # type: ignore[return-value]


def validate(name: str, document: Any) -> None:
    schema = _schemas().contents(f"https://appshelf.invalid/schemas/anip/{name}.json")
    Draft202012Validator(schema, registry=_schemas()).validate(document)


def get(url: str) -> tuple[bytes, str]:
    """GET following redirects, as an ANIP client does; returns the body and final URL."""
    assert url.startswith("http://127.0.0.1:"), url  # tests use only 127.0.0.1
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.read(), response.geturl()


def _mirrored(source: Path, root: Path, url: str) -> None:
    with (source / "registry.toml").open("a") as f:
        f.write(MIRROR)
    add_template(source)
    build(source, root, base_url=url, now=datetime.now(UTC))


def _api(server: IndexFileServer, path: str) -> Any:
    data, _ = get(server.url + "registry-api/v1/" + path)
    return loads_bounded(data)


def test_every_mirror_file_validates_and_is_pinned(example_source: Path, tmp_path: Path) -> None:
    root = tmp_path / "www"
    with IndexFileServer(root) as server:
        _mirrored(example_source, root, server.url)
        client = RegistryClient(
            server.url,
            trusted_keys_from_hex([DEV_PUBLIC]),
            allow_dev_key=True,
            state_dir=tmp_path / "state",
        )
        pins = loads_bounded(client.read_pinned("mirrors/anip.json"))  # pinned by the snapshot
        assert pins["type"] == "appshelf.mirror" and pins["registry"] == server.url
        served = 0
        for path, digest in pins["files"].items():
            data, _ = get(server.url + path)
            assert (len(data), hashlib.sha256(data).hexdigest()) == (
                digest["length"],
                digest["sha256"],
            ), path
            served += 1
        keys = _api(server, "keys")
        validate("keys", keys)
        assert keys["mode"] == "dev" and keys["keys"][0]["publicKeyHex"] == DEV_PUBLIC
        publications = _api(server, "publications")
        validate("publications", publications)
        ids = {(p["packageId"], p["version"]) for p in publications["publications"]}
        assert ("kv-store", "1.1.1") in ids and not any(p == "starter" for p, _ in ids)
        stamps = [p["publishedAt"] for p in publications["publications"]]
        assert stamps == sorted(stamps, reverse=True)
        for package_id, version in sorted(ids):
            _check_package(server, package_id, version)
        templates = _api(server, "templates")
        validate("templates", templates)
        (template,) = templates["templates"]
        assert template["templateId"] == "starter" and template["anipSpecVersion"] == "anip/0.24"
        detail = _api(server, "templates/starter/1.0.0")
        validate("template", detail)
        assert detail == template
        assert served == 3 * len(ids) + 4  # keys, publications, templates, one template
        report = verify_registry(client, artifacts=True)  # the whole registry still verifies
        assert report.ok, report.failures
        assert report.mirror_files == served
        # A mirror file altered on the host fails its pin.
        keys_file = root / "registry-api/v1/keys"
        keys_file.write_bytes(keys_file.read_bytes().replace(b'"mode":"dev"', b'"mode":"xyz"'))
        report = verify_registry(client, artifacts=False)
        assert [f.split(":")[0] for f in report.failures] == ["registry-api/v1/keys"]
        assert "does not match the pinned" in report.failures[0]


def _check_package(server: IndexFileServer, package_id: str, version: str) -> None:
    data, final = get(f"{server.url}registry-api/v1/packages/{package_id}/{version}")
    assert final.endswith("/")  # redirected to the folder, served from its index file
    package = loads_bounded(data)
    validate("package", package)
    lock_bytes, _ = get(package["lockUrl"])
    lock = loads_bounded(lock_bytes)
    validate("lock", lock)
    assert lock == package["lock"]
    assert package["lockDigest"] == "sha256:" + hashlib.sha256(lock_bytes).hexdigest()
    manifest, _ = get(package["manifestUrl"])  # never changed since first published
    assert lock["manifestDigest"] == "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert lock["serviceDefinitionDigest"] == "sha256:" + package["artifact"]["sha256"]
    if package["artifact"]["url"].startswith(server.url):  # (external ones are not fetched)
        artifact, _ = get(package["artifact"]["url"])
        assert package["artifact"]["sha256"] == hashlib.sha256(artifact).hexdigest()
    receipt_bytes, _ = get(package["receiptUrl"])
    receipt = loads_bounded(receipt_bytes)
    validate("receipt", receipt)
    body, keyid = verify_envelope(
        receipt_bytes, "appshelf.anip.receipt", trusted_keys_from_hex([DEV_PUBLIC])
    )
    assert keyid == package["registryKeyId"] == lock["registryKeyId"]
    assert body["publisher"] == {"id": "acme-platform", "type": "organization"}
    assert (body["packageId"], body["version"], body["lockDigest"]) == (
        package_id,
        version,
        package["lockDigest"],
    )


def test_a_yank_keeps_locks_and_receipts(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _mirrored(example_source, out, "https://registry.example.com/")
    folder = out / "registry-api/v1/packages/kv-store/1.1.1"
    lock, receipt = (folder / "lock").read_bytes(), (folder / "receipt").read_bytes()
    record_standing(example_source, "kv-store", "1.1.1", "yank", "broken")
    build(example_source, out, base_url="https://registry.example.com/")
    assert (folder / "lock").read_bytes() == lock
    assert (folder / "receipt").read_bytes() == receipt
    package = json.loads((folder / "index.html").read_bytes())
    validate("package", package)
    assert (package["status"], package["yanked"]) == ("yanked", "broken")
    report = build(example_source, out, base_url="https://registry.example.com/")
    assert report.files_written == 0  # deterministic: a rebuild rewrites nothing


def test_mirror_is_off_by_default(example_source: Path, tmp_path: Path) -> None:
    build(example_source, tmp_path / "out")
    assert not (tmp_path / "out/registry-api").exists()
    assert not (tmp_path / "out/mirrors").exists()


class _FilesOnlyHandler(SimpleHTTPRequestHandler):
    """The S3 REST endpoint: an object per key, no index documents, no redirects."""

    def send_head(self):  # type: ignore[no-untyped-def]
        if Path(self.translate_path(self.path)).is_dir():
            self.send_error(404)
            return None
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_host_without_index_files_cannot_serve_folder_paths(
    example_source: Path, tmp_path: Path
) -> None:
    root = tmp_path / "www"
    _mirrored(example_source, root, "http://127.0.0.1:1/")
    with LoopbackServer(partial(_FilesOnlyHandler, directory=str(root))) as server:
        get(server.url + "registry-api/v1/publications")  # a plain file: fine
        with pytest.raises(urllib.error.HTTPError, match="404"):
            get(server.url + "registry-api/v1/packages/kv-store/1.1.1")


def test_the_schemas_refuse_a_drifted_file() -> None:
    lock = {
        "packageId": "kv-store",
        "version": "1.0.0",
        "manifestDigest": "sha256:" + "0" * 64,
        "serviceDefinitionDigest": "sha256:" + "1" * 64,
        "registryKeyId": "2" * 64,
    }
    validate("lock", lock)

    for broken in (
        {k: v for k, v in lock.items() if k != "registryKeyId"},
        {**lock, "manifestDigest": "0" * 64},
        {**lock, "extra": 1},
    ):
        with pytest.raises(ValidationError):
            validate("lock", broken)


def test_deploy_sends_mirror_files_as_json() -> None:
    for path in ("registry-api/v1/keys", "registry-api/v1/packages/a/1.0.0/index.html"):
        assert content_type(path) == "application/json"
    assert content_type("apps/a/index.html") == "text/html; charset=utf-8"


def test_index_files_hold_no_markup(example_source: Path, tmp_path: Path) -> None:
    """GitHub Pages serves index.html as text/html: a description with markup must not
    become a page that runs script on the registry's origin."""
    hostile = "<script>alert(1)</script> & <img src=x onerror=alert(2)>"
    app_toml = example_source / "apps/kv-store/app.toml"
    app_toml.write_text(
        app_toml.read_text().replace('description = "', f'description = "{hostile} ', 1)
    )
    out = tmp_path / "out"
    _mirrored(example_source, out, "https://registry.example.com/")
    folder_file = out / "registry-api/v1/packages/kv-store/1.1.1/index.html"
    for path in (folder_file, out / "registry-api/v1/templates/index.html"):
        data = path.read_bytes()
        assert b"<" not in data and b">" not in data and b"&" not in data
    package = loads_bounded(folder_file.read_bytes())
    assert package["description"].startswith(hostile)  # the same text for a JSON reader
    validate("package", package)
