"""The core build: outputs checked by following docs/spec.md, determinism, immutability,
atomicity, and keys."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import nacl.signing
import pytest
import rfc8785

from appshelf.builder.pipeline import build_registry
from appshelf.errors import OutputError, SigningKeyError, SourceTreeError
from appshelf.formats.consistent import plain_path
from appshelf.signing.keys import write_new_key_file
from appshelf.signing.releaselog import make_rotation
from conftest import FIXED_NOW, build


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _mtimes(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()
    }


def verify_by_spec(site: Path, base_url: str) -> dict[str, int]:
    """An independent verifier written from docs/spec.md: key -> snapshot -> indexes ->
    manifests -> artifacts. Uses only PyNaCl, rfc8785 and hashlib."""

    def load(rel: str) -> Any:
        return json.loads((site / rel).read_bytes())

    def check_sig(envelope: dict[str, Any], kind: str, keys: dict[str, bytes]) -> dict[str, Any]:
        body = envelope["signed"]
        assert body["type"] == kind
        sig = envelope["signatures"][0]
        nacl.signing.VerifyKey(keys[sig["keyid"]]).verify(
            rfc8785.dumps(body), bytes.fromhex(sig["sig"])
        )
        return body

    def pinned(rel: str, digest: dict[str, Any]) -> bytes:
        data = (site / rel).read_bytes()
        assert len(data) == digest["length"], rel
        assert hashlib.sha256(data).hexdigest() == digest["sha256"], rel
        return data

    keys_doc = load("keys.json")
    keys = {}
    for entry in keys_doc["keys"]:
        raw = bytes.fromhex(entry["public"])
        assert hashlib.sha256(raw).hexdigest() == entry["keyid"]
        keys[entry["keyid"]] = raw
    snapshot = check_sig(load("snapshot.json"), "appshelf.snapshot", keys)
    assert snapshot["registry"] == base_url
    meta = dict(snapshot["meta"])
    bits = snapshot["bins"]["bits"]  # hashed bins (docs/spec.md 4.8), checked independently
    assert {p for p in meta if p.startswith("bins/")} == {
        f"bins/{i:0{max(1, -(-bits // 4))}x}.json" for i in range(1 << bits)
    }
    for rel in [p for p in meta if p.startswith("bins/")]:
        binned = json.loads(pinned(rel, meta[rel]))
        assert binned["type"] == "appshelf.bin" and binned["registry"] == base_url
        assert f"bins/{binned['prefix']}.json" == rel and binned["bits"] == bits
        for path in binned["meta"]:
            top = int.from_bytes(hashlib.sha256(path.split("/")[1].encode()).digest()[:2], "big")
            assert top >> (16 - bits) == int(binned["prefix"], 16), path
        meta |= binned["meta"]
    pinned("keys.json", meta["keys.json"])
    registry = json.loads(pinned("registry.json", meta["registry.json"]))
    pinned("index.json", meta["index.json"])
    counts = {"manifests": 0, "artifacts": 0}
    for key, app in registry["apps"].items():
        assert app["appMetadataUrl"] == f"{base_url}apps/{key}/versions.json"
        versions = json.loads(
            pinned(f"apps/{key}/versions.json", meta[f"apps/{key}/versions.json"])
        )
        detail = json.loads(pinned(f"apps/{key}/app.json", meta[f"apps/{key}/app.json"]))
        assert [v["version"] for v in versions["versions"]] == [
            v["version"] for v in detail["versions"]
        ]
        for flows, entry in zip(versions["versions"], detail["versions"], strict=True):
            manifest_env = json.loads(pinned(entry["manifest_path"], entry["manifest"]))
            manifest = check_sig(manifest_env, "appshelf.manifest", keys)
            counts["manifests"] += 1
            assert (manifest["app"], manifest["version"]) == (key, entry["version"])
            assert manifest["artifact"] == entry["artifact"]
            assert flows["artifactChecksum"] == "sha256:" + manifest["artifact"]["sha256"]
            assert flows["artifactUrl"] == manifest["artifact"]["url"]
            url = manifest["artifact"]["url"]
            if url.startswith(base_url):
                data = (site / unquote(url[len(base_url) :])).read_bytes()
                assert len(data) == manifest["artifact"]["size"]
                assert hashlib.sha256(data).hexdigest() == manifest["artifact"]["sha256"]
                counts["artifacts"] += 1
    return counts


def test_example_registry_verifies_by_the_spec(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    report = build(example_source, out)
    counts = verify_by_spec(out, "http://127.0.0.1:8000/")
    assert counts == {"manifests": 14, "artifacts": 13}  # jira-sync 3.2.0 is external
    assert report.files_written == report.files_total
    for kind in ("registry", "versions", "manifest", "snapshot", "keys", "app", "index"):
        schema = json.loads((out / "schemas" / f"{kind}.schema.json").read_bytes())
        assert schema["$schema"].endswith("2020-12/schema")


def test_flows_files_have_exactly_the_flows_fields(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(example_source, out, base_url="https://example.github.io/shelf/")
    registry = json.loads((out / "registry.json").read_bytes())
    assert set(registry) == {"apps"}
    for app in registry["apps"].values():
        assert set(app) == {"name", "description", "blockStyle", "appMetadataUrl"}
        assert set(app["blockStyle"]) <= {"iconUrl", "color"}
        assert app["appMetadataUrl"].startswith("https://example.github.io/shelf/apps/")
    versions = json.loads((out / "apps/hello-world/versions.json").read_bytes())
    assert set(versions) == {"versions"}
    assert [v["version"] for v in versions["versions"]] == ["2.0.0-beta.1", "1.1.0", "1.0.0"]
    for entry in versions["versions"]:
        assert set(entry) == {"version", "artifactUrl", "artifactChecksum"}
        assert entry["artifactUrl"].startswith("https://example.github.io/shelf/apps/hello-world/")


def test_app_without_icon_has_no_icon_url(example_source: Path, tmp_path: Path) -> None:
    (example_source / "apps/http-client/icon.svg").unlink()
    build(example_source, tmp_path / "out")
    registry = json.loads((tmp_path / "out/registry.json").read_bytes())
    assert "iconUrl" not in registry["apps"]["http-client"]["blockStyle"]
    assert "iconUrl" in registry["apps"]["kv-store"]["blockStyle"]


def test_two_builds_are_byte_identical(example_source: Path, tmp_path: Path) -> None:
    build(example_source, tmp_path / "a")
    build(example_source, tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_source_date_epoch_makes_builds_reproducible(example_source: Path, tmp_path: Path) -> None:
    env = {"SOURCE_DATE_EPOCH": "1767225600"}
    build(example_source, tmp_path / "a", now=None, environ=env)
    build(example_source, tmp_path / "b", now=None, environ=env)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    snapshot = json.loads((tmp_path / "a/snapshot.json").read_bytes())["signed"]
    assert snapshot["issued"] == "2026-01-01T00:00:00Z"


def test_rebuild_with_no_change_rewrites_nothing(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(example_source, out)
    before, inode = _mtimes(out), out.stat().st_ino
    report = build(example_source, out, now=FIXED_NOW + timedelta(days=1))
    assert (report.changed, report.files_written) == (False, 0)
    assert _mtimes(out) == before and out.stat().st_ino == inode
    assert report.snapshot_version == 1


def test_one_change_rewrites_only_what_it_touches(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(example_source, out)
    before = _files(out)
    mtimes = _mtimes(out)
    new = example_source / "apps/kv-store/1.2.0"
    new.mkdir()
    (new / "kv-store-1.2.0.tar.gz").write_bytes(b"new release")
    report = build(example_source, out, now=FIXED_NOW + timedelta(hours=1))
    after = _files(out)
    changed = {p for p in after if before.get(p) != after[p]}
    # Each changed pinned file is also written under its digest (consistent snapshots).
    copies = {p for p in changed if plain_path(p) is not None}
    assert {plain_path(p)[0] for p in copies} == changed - copies - {  # type: ignore[index]
        "apps/kv-store/1.2.0/kv-store-1.2.0.tar.gz",
        "log/tile/0/000.p/17",
        "log/tile/entries/000.p/17",
        "snapshot.json",
    }
    assert (
        changed
        == {
            "apps/kv-store/1.2.0/kv-store-1.2.0.tar.gz",
            "apps/kv-store/1.2.0/manifest.json",
            "apps/kv-store/app.json",
            "apps/kv-store/versions.json",
            "bins/0.json",  # the bin of kv-store (docs/spec.md 4.8): its two pins changed
            "index.json",
            "log/checkpoint",  # the release log: one entry more (16 -> 17)
            "log/tile/0/000.p/17",
            "log/tile/entries/000.p/17",
            "snapshot.json",
        }
        | copies
    )
    assert report.snapshot_version == 2 and report.log_appended == 1
    unchanged = set(after) - changed
    assert all(_mtimes(out)[p] == mtimes[p] for p in unchanged)
    verify_by_spec(out, "http://127.0.0.1:8000/")
    manifest = json.loads((out / "apps/kv-store/1.2.0/manifest.json").read_bytes())["signed"]
    assert manifest["published"] == "2026-01-15T13:00:00Z"


def test_published_time_is_kept_from_the_first_build(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    new = example_source / "apps/kv-store/2.0.0"
    new.mkdir()
    (new / "kv.tar.gz").write_bytes(b"two")
    build(example_source, out)
    (example_source / "apps/kv-store/app.toml").write_text(
        (example_source / "apps/kv-store/app.toml").read_text().replace("durable", "sturdy")
    )
    build(example_source, out, now=FIXED_NOW + timedelta(days=3))
    manifest = json.loads((out / "apps/kv-store/2.0.0/manifest.json").read_bytes())["signed"]
    assert manifest["published"] == "2026-01-15T12:00:00Z"
    assert "sturdy" in manifest["metadata"]["description"]


def test_stale_snapshot_is_resigned_with_a_higher_version(
    example_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(example_source, out)
    report = build(example_source, out, now=FIXED_NOW + timedelta(days=20))
    assert report.changed and report.files_written == 1 and report.snapshot_version == 2
    forced = build(example_source, out, now=FIXED_NOW + timedelta(days=21), resign=True)
    assert forced.snapshot_version == 3


def test_changed_artifact_of_published_version_is_refused(
    example_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(example_source, out)
    before = _files(out)
    artifact = example_source / "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz"
    old_sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    artifact.write_bytes(b"different bytes")
    new_sha = hashlib.sha256(b"different bytes").hexdigest()
    with pytest.raises(SourceTreeError) as caught:
        build(example_source, out)
    message = str(caught.value)
    assert "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz" in message
    assert "kv-store 1.0.0" in message and old_sha in message and new_sha in message
    assert _files(out) == before


def test_previous_output_guards_a_fresh_output(example_source: Path, tmp_path: Path) -> None:
    build(example_source, tmp_path / "published")
    (example_source / "apps/hello-world/1.0.0/hello-world-1.0.0.tar.gz").write_bytes(b"evil")
    with pytest.raises(SourceTreeError, match=r"hello-world 1\.0\.0 was published \(release log"):
        build(example_source, tmp_path / "fresh", previous=tmp_path / "published")
    assert not (tmp_path / "fresh").exists()


def test_failed_build_leaves_previous_output_untouched(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    build(example_source, out)
    before, mtimes = _files(out), _mtimes(out)
    (example_source / "apps/slack-notify/1.2.0").mkdir()
    (example_source / "apps/slack-notify/1.2.0/s.tar.gz").write_bytes(b"s")

    import appshelf.builder.writer as writer

    real_write = writer._write_file
    calls = {"n": 0}

    def failing_write(planned: Any, destination: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real_write(planned, destination)

    monkeypatch.setattr(writer, "_write_file", failing_write)
    with pytest.raises(OutputError, match="No space left on device"):
        build(example_source, out, now=FIXED_NOW + timedelta(hours=1))
    assert _files(out) == before and _mtimes(out) == mtimes
    assert [p.name for p in tmp_path.iterdir() if "appshelf-tmp" in p.name] == []


def test_killed_build_leftovers_are_cleaned(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(example_source, out)
    leftover = tmp_path / ".appshelf-tmp-out-99999"
    (leftover / "apps").mkdir(parents=True)
    build(example_source, out)
    assert not leftover.exists()


def test_output_that_is_not_appshelf_is_refused(example_source: Path, tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="not an appshelf output"):
        build(example_source, precious)
    assert (precious / "thesis.tex").read_text() == "years of work"
    with pytest.raises(OutputError, match="must not contain or be inside"):
        build(example_source, example_source / "apps" / "out")


def test_key_file_and_production(example_source: Path, tmp_path: Path) -> None:
    key_path = tmp_path / "keys" / "registry.key"
    key = write_new_key_file(key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with pytest.raises(SigningKeyError, match="production build"):
        build(example_source, tmp_path / "out", production=True)
    report = build(example_source, tmp_path / "out", key_file=key_path, production=True)
    assert report.key_id == key.keyid and not report.development_key
    keys = json.loads((tmp_path / "out/keys.json").read_bytes())["keys"]
    assert [(k["keyid"], k["status"]) for k in keys] == [(key.keyid, "active")]
    assert key.public_hex in (tmp_path / "out/keys.json").read_text()
    seed = json.loads(key_path.read_text())["seed"]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert seed.encode() not in path.read_bytes(), path
    with pytest.raises(SigningKeyError, match="already exists"):
        write_new_key_file(key_path)


def test_key_from_environment_and_rotation(example_source: Path, tmp_path: Path) -> None:
    """A new key signs only through a rotation statement signed by the old one and itself;
    afterwards the old key is refused and keys.json lists it as retired."""
    old = write_new_key_file(tmp_path / "old.key")
    new = write_new_key_file(tmp_path / "new.key")
    out = tmp_path / "out"
    with_old = {"APPSHELF_SIGNING_KEY": (tmp_path / "old.key").read_text()}
    with_new = {"APPSHELF_SIGNING_KEY": bytes(new.signing_key).hex()}
    build(example_source, out, environ=with_old)
    before = _files(out)
    with pytest.raises(SigningKeyError, match=r"rotation statement"):
        build(example_source, out, environ=with_new)
    assert _files(out) == before
    (example_source / "keys").mkdir()
    (example_source / "keys" / "rotate.json").write_bytes(
        make_rotation(old, new, "http://127.0.0.1:8000/", "2026-01-15T12:00:00Z")
    )
    report = build(example_source, out, environ=with_new)
    assert report.key_id == new.keyid and report.snapshot_version == 2
    assert report.log_appended == 1  # the rotation entry
    keys = json.loads((out / "keys.json").read_bytes())["keys"]
    assert [(k["keyid"], k["status"]) for k in keys] == [
        (new.keyid, "active"),
        (old.keyid, "retired"),
    ]
    verify_by_spec(out, "http://127.0.0.1:8000/")
    with pytest.raises(SigningKeyError, match=r"rotation statement"):
        build(example_source, out, environ=with_old)
    with pytest.raises(SigningKeyError, match=r"found no signing key"):
        build(example_source, out)  # the CI secret is missing: never the development key


def test_configured_key_id_must_match(example_source: Path, tmp_path: Path) -> None:
    config = example_source / "registry.toml"
    config.write_text(config.read_text() + f'key_id = "{"0" * 64}"\n')
    with pytest.raises(SigningKeyError, match="does not match"):
        build(example_source, tmp_path / "out")


def test_large_artifact_is_hashed_by_streaming(example_source: Path, tmp_path: Path) -> None:
    big = example_source / "apps/kv-store/3.0.0"
    big.mkdir()
    chunk = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with (big / "big.bin").open("wb") as handle:
        for _ in range(40):
            handle.write(chunk)
            digest.update(chunk)
    build(example_source, tmp_path / "out")
    detail = json.loads((tmp_path / "out/apps/kv-store/app.json").read_bytes())
    entry = next(v for v in detail["versions"] if v["version"] == "3.0.0")
    assert entry["artifact"]["sha256"] == digest.hexdigest()
    assert entry["artifact"]["size"] == 40 << 20


def test_build_function_defaults(example_source: Path, tmp_path: Path) -> None:
    """The public entry point works without options (dev key, current time)."""
    report = build_registry(example_source, tmp_path / "out")
    assert report.development_key and report.warnings[0].startswith(
        "signed with the DEVELOPMENT key"
    )


def test_artifact_changed_between_hashing_and_copying_is_refused(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes published must be the bytes whose digest the manifest signs (the copy
    is made while the app is handed on, right after it is planned)."""
    from appshelf.builder.reuse import Reuse

    out = tmp_path / "out"
    build(example_source, out)
    before = _files(out)
    new = example_source / "apps/kv-store/9.0.0"
    new.mkdir()
    (new / "kv.tar.gz").write_bytes(b"the bytes that were hashed")
    real_hash = Reuse.hash

    def hash_then_edit(*args: Any, **kwargs: Any) -> Any:
        hashes = real_hash(*args, **kwargs)
        (new / "kv.tar.gz").write_bytes(b"the bytes that would be copied")
        return hashes

    monkeypatch.setattr(Reuse, "hash", hash_then_edit)
    with pytest.raises(OutputError, match="changed while the build was running"):
        build(example_source, out, now=FIXED_NOW + timedelta(hours=1))
    assert _files(out) == before


def test_the_callers_collector_thresholds_are_put_back(
    example_source: Path, tmp_path: Path
) -> None:
    """A build runs the cycle collector less often (pipeline._fewer_collections), and puts
    the caller's thresholds back, also when it fails."""
    import gc

    before = gc.get_threshold()
    try:
        gc.set_threshold(123, 4, 5)
        build(example_source, tmp_path / "out")
        assert gc.get_threshold() == (123, 4, 5)
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "registry.toml").write_text("not toml [")
        with pytest.raises(SourceTreeError):
            build(tmp_path / "bad", tmp_path / "out2")
        assert gc.get_threshold() == (123, 4, 5)
    finally:
        gc.set_threshold(*before)


def test_a_replacement_must_be_another_version_of_the_app(
    example_source: Path, tmp_path: Path
) -> None:
    """lifecycle.toml's `replacement` names another version of the same app: an unknown
    version is a problem naming the file and field; a known one builds."""
    from appshelf.source.lifecycle import record_standing

    build(example_source, tmp_path / "out")
    record_standing(example_source, "hello-world", "1.0.0", "deprecate", "old", "1.1.0")
    assert build(example_source, tmp_path / "out").log_appended == 1
    lifecycle = example_source / "apps/hello-world/lifecycle.toml"
    lifecycle.write_text(lifecycle.read_text().replace('"1.1.0"', '"9.9.9"'))
    with pytest.raises(SourceTreeError) as caught:
        build(example_source, tmp_path / "out")
    [problem] = caught.value.problems
    assert (problem.path, problem.field) == (
        "apps/hello-world/lifecycle.toml",
        "versions.1.0.0.replacement",
    )
    assert "'9.9.9' is not another version of hello-world" in problem.message


def test_earlier_artifact_digests_are_listed_only_when_asked(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output paths -> digests of logged artifacts (one `unquote` per release) are
    made only once the writer looks one up: not in a no-op build."""
    from appshelf.builder import pipeline

    out = tmp_path / "out"
    build(example_source, out)
    made: list[dict[str, str]] = []
    real = pipeline.known_artifact_digests

    def counted(previous: Any, base_url: str) -> dict[str, str]:
        made.append(real(previous, base_url))
        return made[-1]

    monkeypatch.setattr(pipeline, "known_artifact_digests", counted)
    build(example_source, out)
    assert made == []
    artifact = next(p for p in (out / "apps").rglob("*.tar.gz") if "." not in p.parent.name[:1])
    os.utime(artifact, ns=(1, 1))  # not as written: the writer checks it, by the log's digest
    build(example_source, out)
    assert len(made) == 1 and made[0]  # asked for, and made once
