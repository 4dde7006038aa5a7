"""The pure parts: file kinds, content types, CloudFront paths, and planner refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import nacl.signing
import pytest

from appshelf.deploy.files import Kind, content_disposition, content_type, kind_of
from appshelf.deploy.plan import plan_deploy
from appshelf.deploy.s3 import S3Target, invalidation_paths
from appshelf.deploy.site import read_site
from appshelf.deploy.state import RemoteObject, RemoteState
from appshelf.errors import BuiltSiteError, DeployRefusedError
from appshelf.signing.keys import RegistryKey, development_key
from appshelf.signing.releaselog import make_rotation
from appshelf.source.models import DeploySection
from conftest import build


def generate_key() -> RegistryKey:
    return RegistryKey(nacl.signing.SigningKey.generate(), origin="test")


def key_env(key: RegistryKey) -> dict[str, str]:
    return {"APPSHELF_SIGNING_KEY": bytes(key.signing_key).hex()}


ARTIFACTS = frozenset({"apps/a/1.0.0/a-1.0.0.tar.gz", "apps/a/1.0.0/a.wasm"})


@pytest.mark.parametrize(
    ("relpath", "kind", "ctype"),
    [
        ("apps/a/1.0.0/a-1.0.0.tar.gz", Kind.ARTIFACT, "application/gzip"),
        ("apps/a/1.0.0/a.wasm", Kind.ARTIFACT, "application/wasm"),
        ("apps/a/1.0.0/manifest.json", Kind.MANIFEST, "application/json"),
        ("apps/a/app.json", Kind.APP_INDEX, "application/json"),
        ("apps/a/versions.json", Kind.APP_INDEX, "application/json"),
        ("apps/a/icon.svg", Kind.ASSET, "image/svg+xml"),
        ("apps/a/icon.png", Kind.ASSET, "image/png"),
        ("registry.json", Kind.TOP_INDEX, "application/json"),
        ("keys.json", Kind.TOP_INDEX, "application/json"),
        ("snapshot.json", Kind.SNAPSHOT, "application/json"),
        ("schemas/manifest.schema.json", Kind.PAGE, "application/json"),
        ("apps/a/index.html", Kind.PAGE, "text/html; charset=utf-8"),
        ("feed.xml", Kind.PAGE, "application/xml"),
        ("CNAME", Kind.PAGE, "text/plain; charset=utf-8"),
        ("static/app.js", Kind.ASSET, "text/javascript; charset=utf-8"),
        ("x/file.zip", Kind.PAGE, "application/zip"),
        ("x/file.tgz", Kind.PAGE, "application/gzip"),
        ("x/file.mpk", Kind.PAGE, "application/octet-stream"),
        ("x/unknown.bin", Kind.PAGE, "application/octet-stream"),
    ],
)
def test_kinds_and_types(relpath: str, kind: Kind, ctype: str) -> None:
    assert kind_of(relpath, ARTIFACTS) is kind
    assert content_type(relpath) == ctype


def test_phases_put_what_is_named_before_what_names_it() -> None:
    order = [Kind.ARTIFACT, Kind.MANIFEST, Kind.APP_INDEX, Kind.TOP_INDEX, Kind.SNAPSHOT]
    assert [k.phase for k in order] == sorted({k.phase for k in order})
    assert Kind.ASSET.phase < Kind.PAGE.phase


def test_cloudfront_paths() -> None:
    target = S3Target.parse("s3://bucket/reg/")
    assert target.prefix == "reg"
    assert invalidation_paths(target, ["index.json", "apps/a/index.html", "a b.html"]) == [
        "/reg/a%20b.html",
        "/reg/apps/a/",
        "/reg/apps/a/index.html",
        "/reg/index.json",
    ]
    assert invalidation_paths(target, [f"f{i}.html" for i in range(16)]) == ["/reg/*"]
    with pytest.raises(Exception, match="expected s3://"):
        S3Target.parse("s3://bucket/../x")


def _remote_from(site: Path) -> RemoteState:
    """A bucket holding exactly `site` (as a deploy record would describe it)."""
    local = read_site(site)
    state = RemoteState(snapshot_bytes=local.snapshot_bytes, snapshot_etag='"s"')
    for rel, f in local.files.items():
        state.objects[rel] = RemoteObject(f'"{rel}"', f.size, f.sha256)
    state.documents["log/checkpoint"] = (site / "log/checkpoint").read_bytes()
    return state


def _rotate(source: Path, old: RegistryKey, new: RegistryKey) -> None:
    """A rotation statement from `old` to `new`, as `appshelf rotate-key` writes it."""
    (source / "keys").mkdir(exist_ok=True)
    statement = make_rotation(old, new, "http://127.0.0.1:8000/", "2026-01-15T12:00:00Z")
    (source / "keys" / f"rotate-{new.keyid[:16]}.json").write_bytes(statement)


def test_planner_refuses_a_snapshot_signed_by_an_unknown_key(
    example_source: Path, tmp_path: Path
) -> None:
    key = generate_key()
    deployed = tmp_path / "deployed"
    build(example_source, deployed, environ=key_env(key))
    other = tmp_path / "other"
    build(example_source, other, environ=key_env(generate_key()))
    state = _remote_from(deployed)
    for rel in list(state.objects):
        if rel.endswith("/app.json"):
            state.documents[rel] = (deployed / rel).read_bytes()
    with pytest.raises(DeployRefusedError, match="signed by a key this build does not list"):
        plan_deploy(read_site(other), state, DeploySection())
    # Listed as retired, the old key is trusted again (this fresh build is still refused,
    # but for being older than the deployed one, not for the key).
    (example_source / "registry.toml").write_text(
        (example_source / "registry.toml")
        .read_text()
        .replace("[signing]", f'[signing]\nretired_keys = ["{key.public_hex}"]')
    )
    shutil.rmtree(other)  # and forget its log: a new registry, not the old one lost
    build(example_source, other, environ=key_env(generate_key()), cache=False)
    with pytest.raises(DeployRefusedError, match="is not a prefix of the one being deployed"):
        plan_deploy(read_site(other), state, DeploySection())
    # Built on the deployed output with a rotation statement, the old key is retired.
    newer = tmp_path / "newer"
    shutil.copytree(deployed, newer)
    new_key = generate_key()
    _rotate(example_source, key, new_key)
    build(example_source, newer, environ=key_env(new_key))
    plan = plan_deploy(read_site(newer), state, DeploySection())
    assert plan.uploads[-1].relpath == "snapshot.json"


def test_planner_accepts_replacing_a_development_key_registry(
    example_source: Path, tmp_path: Path
) -> None:
    deployed = tmp_path / "deployed"
    build(example_source, deployed)
    state = _remote_from(deployed)
    newer = tmp_path / "newer"
    shutil.copytree(deployed, newer)
    new_key = generate_key()
    _rotate(example_source, development_key(), new_key)
    build(example_source, newer, resign=True, environ=key_env(new_key))
    plan = plan_deploy(read_site(newer), state, DeploySection())
    assert plan.uploads[-1].if_match == '"s"'


def test_a_tampered_site_is_not_uploaded(example_source: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(example_source, site)
    (site / "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz").write_bytes(b"changed")
    with pytest.raises(BuiltSiteError, match=r"kv-store-1\.0\.0\.tar\.gz: missing or different"):
        read_site(site)
    build(example_source, tmp_path / "s2")
    (tmp_path / "s2/index.json").write_bytes(b"{}")
    with pytest.raises(BuiltSiteError, match=r"index\.json: missing or different"):
        read_site(tmp_path / "s2")
    (tmp_path / "s3").mkdir()
    (tmp_path / "s3/snapshot.json").symlink_to(tmp_path / "s2/snapshot.json")
    with pytest.raises(BuiltSiteError, match="symbolic link"):
        read_site(tmp_path / "s3")


def test_artifacts_a_browser_would_render_download_instead() -> None:
    """Defence in depth for a site not built by this appshelf: an artifact named like a
    page is sent as an attachment; the site's own pages are not."""
    artifact = "apps/x/1.0.0/notes.HTML"
    assert content_disposition(artifact, Kind.ARTIFACT) == "attachment"
    assert content_disposition("apps/x/1.0.0/x-1.0.0.tar.gz", Kind.ARTIFACT) is None
    assert content_disposition("apps/x/1.0.0/index.html", Kind.PAGE) is None
    assert content_disposition("apps/x/icon.svg", Kind.ASSET) == "attachment"
