"""The pure verification layer, fed bytes directly: checks an attacker would need to pass
after getting past the pins (for example with a compromised app.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appshelf.client import RegistryClient
from appshelf.client import trusted as t
from appshelf.client.keys import trusted_keys
from appshelf.client.resolve import parse_requirement
from appshelf.client.state import RegistryState, StateStore
from appshelf.errors import (
    BadSignatureError,
    ClientUsageError,
    InconsistentMetadataError,
    MalformedError,
    RollbackError,
    StateError,
)
from appshelf.formats.canonical import canonical_json, sha256_hex
from appshelf.formats.documents import FileDigest
from conftest import build

from .conftest import CLIENT_NOW

KEYS = trusted_keys(allow_dev_key=True)


@pytest.fixture
def built(example_source: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    build(example_source, out)
    return out


def _snapshot(root: Path) -> t.TrustedSnapshot:
    """The verified snapshot, with every bin (docs/spec.md 4.8) read and verified."""
    snap = t.verify_snapshot((root / "snapshot.json").read_bytes(), KEYS, CLIENT_NOW, None)
    for relpath in snap.missing_bins():
        t.verify_bin(snap, relpath, (root / relpath).read_bytes())
    return snap


def _entry_and_manifest(root: Path, key: str, version: str):  # type: ignore[no-untyped-def]
    detail = t.parse_app(_snapshot(root), key, (root / t.app_path(key)).read_bytes())
    entry = next(e for e in detail.versions if e.version == version)
    return entry, json.loads((root / entry.manifest_path).read_bytes())


def _repin(entry, data: bytes):  # type: ignore[no-untyped-def]
    """What an attacker who controls app.json (but not the snapshot) could do."""
    return entry.model_copy(
        update={"manifest": FileDigest(sha256=sha256_hex(data), length=len(data))}
    )


def test_manifest_signature_is_checked_even_when_the_pin_matches(built: Path) -> None:
    entry, envelope = _entry_and_manifest(built, "kv-store", "1.1.1")
    envelope["signed"]["notes"] = "now with a backdoor"
    data = canonical_json(envelope)
    with pytest.raises(BadSignatureError, match=r"bad signature"):
        t.verify_manifest(_snapshot(built), "kv-store", _repin(entry, data), data, KEYS)


def test_manifest_must_agree_with_app_json(built: Path) -> None:
    entry, envelope = _entry_and_manifest(built, "kv-store", "1.1.1")
    data = canonical_json(envelope)
    lying = _repin(entry, data).model_copy(update={"yanked": None, "dependencies": {"x": "*"}})
    with pytest.raises(InconsistentMetadataError, match=r"dependencies differ"):
        t.verify_manifest(_snapshot(built), "kv-store", lying, data, KEYS)
    # A validly signed manifest of another version, pinned under this version.
    _, other = _entry_and_manifest(built, "kv-store", "1.0.0")
    other_data = canonical_json(other)
    with pytest.raises(InconsistentMetadataError, match=r"version"):
        t.verify_manifest(_snapshot(built), "kv-store", _repin(entry, other_data), other_data, KEYS)


def test_manifest_path_cannot_point_elsewhere(built: Path) -> None:
    entry, _ = _entry_and_manifest(built, "kv-store", "1.1.1")
    bad = entry.model_copy(update={"manifest_path": "snapshot.json"})
    with pytest.raises(MalformedError, match=r"manifest_path"):
        t.manifest_relpath("kv-store", bad)


def test_same_version_different_snapshot_is_refused(built: Path) -> None:
    data = (built / "snapshot.json").read_bytes()
    seen = RegistryState(
        registry="http://127.0.0.1:8000/", snapshot_version=1, snapshot_sha256="0" * 64
    )
    with pytest.raises(RollbackError, match=r"same version"):
        t.verify_snapshot(data, KEYS, CLIENT_NOW, seen)
    ok = RegistryState(registry=seen.registry, snapshot_version=1, snapshot_sha256=sha256_hex(data))
    assert t.verify_snapshot(data, KEYS, CLIENT_NOW, ok).snapshot.version == 1


def test_state_store_round_trip_and_corruption(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert store.load("http://r/").snapshot_version == 0
    store.save(RegistryState(registry="http://r/", snapshot_version=4, snapshot_sha256="a" * 64))
    assert store.load("http://r/").snapshot_version == 4
    assert [p.name.startswith("registry-") for p in (tmp_path / "state").iterdir()] == [True]
    store.path_for("http://r/").write_text("{not json")
    with pytest.raises(StateError, match=r"corrupt"):
        store.load("http://r/")


def test_keys_file_forms(built: Path, tmp_path: Path) -> None:
    from appshelf.errors import UntrustedKeyConfigError

    keys_json = built / "keys.json"  # a copy of the registry's keys.json: the dev key here
    with pytest.raises(UntrustedKeyConfigError, match=r"DEVELOPMENT"):
        trusted_keys(keys_file=keys_json)
    assert list(trusted_keys(keys_file=keys_json, allow_dev_key=True)) == list(KEYS)
    other = "ab" * 32
    listing = tmp_path / "keys.txt"
    listing.write_text(f"# production key\n{other}\n")
    assert len(trusted_keys(keys_file=listing)) == 1
    listing.write_text("not-a-key\n")
    with pytest.raises(UntrustedKeyConfigError, match=r"not an Ed25519 public key"):
        trusted_keys(keys_file=listing)


def test_a_bad_signature_by_a_trusted_key_fails_even_after_a_good_one(built: Path) -> None:
    """docs/spec.md section 3: a verifier MUST reject an envelope that carries an invalid
    signature by a trusted key, wherever it stands in the list."""
    envelope = json.loads((built / "snapshot.json").read_bytes())
    good = envelope["signatures"][0]
    envelope["signatures"] = [good, {"keyid": good["keyid"], "sig": "00" * 64}]
    with pytest.raises(BadSignatureError, match=r"bad signature"):
        t.verify_snapshot(canonical_json(envelope), KEYS, CLIENT_NOW, None)
    envelope["signatures"] = [good]
    t.verify_snapshot(canonical_json(envelope), KEYS, CLIENT_NOW, None)
def test_names_with_a_trailing_newline_are_refused(built: Path, tmp_path: Path) -> None:
    """`^...$` with re.match accepts "name\\n"; the client matches whole strings only."""
    with pytest.raises(ClientUsageError, match=r"expected app@range"):
        parse_requirement("kv-store\n@^1")
    with RegistryClient(built, KEYS, allow_dev_key=True, state_dir=tmp_path / "s") as client:
        client.clock = lambda: CLIENT_NOW
        trusted = client.manifest("kv-store", "1.1.1")
        artifact = trusted.manifest.artifact
        renamed = artifact.model_copy(update={"filename": artifact.filename + "\n"})
        manifest = trusted.manifest.model_copy(update={"artifact": renamed})
        lying = t.TrustedManifest(manifest, trusted.keyid, trusted.digest)
        with pytest.raises(MalformedError, match=r"unsafe artifact filename"):
            client.download_manifest(lying, tmp_path / "d")
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
