"""Release statements: made, read and verified (src/appshelf/signing/statement.py)."""

from __future__ import annotations

import json

import nacl.signing
import pytest

from appshelf.errors import StatementError, UnknownSignerError
from appshelf.formats.statement import StatementArtifact
from appshelf.signing.envelope import trusted_keys_from_hex
from appshelf.signing.keys import RegistryKey
from appshelf.signing.statement import make_statement, read_statement, verify_statement

SEED_A = bytes(range(32))
SEED_B = bytes(range(1, 33))


def _key(seed: bytes) -> RegistryKey:
    return RegistryKey(nacl.signing.SigningKey(seed), origin="test key")


def _statement(key: RegistryKey, **changes: object) -> bytes:
    fields: dict[str, object] = {
        "registry": "https://registry.example.com/",
        "publisher": "alice",
        "app": "kv-store",
        "version": "1.0.0",
        "artifact": StatementArtifact(filename="kv.tar.gz", sha256="ab" * 32, size=10),
        "dependencies": {"base": "^1"},
        "provides": ["storage.kv"],
        "requires": [],
        "notes": None,
        "published": "2024-05-01T12:00:00Z",
        "key": key,
    }
    fields.update(changes)
    return make_statement(**fields)  # type: ignore[arg-type]


def test_round_trip_verifies_with_the_publisher_key() -> None:
    key = _key(SEED_A)
    data = _statement(key)
    envelope = read_statement(data, "statement.json")
    assert envelope.signed.publisher == "alice"
    assert envelope.signed.artifact.url is None
    assert b'"notes"' not in data and b'"requires":[]' in data
    assert verify_statement(envelope, trusted_keys_from_hex([key.public_hex])) == key.keyid


def test_another_key_is_an_unknown_signer() -> None:
    envelope = read_statement(_statement(_key(SEED_A)), "statement.json")
    with pytest.raises(UnknownSignerError, match="none of the 1 trusted"):
        verify_statement(envelope, trusted_keys_from_hex([_key(SEED_B).public_hex]))


def test_an_altered_body_is_a_bad_signature() -> None:
    key = _key(SEED_A)
    raw = json.loads(_statement(key))
    raw["signed"]["version"] = "1.0.1"
    envelope = read_statement(json.dumps(raw).encode(), "statement.json")
    with pytest.raises(StatementError, match="bad signature"):
        verify_statement(envelope, trusted_keys_from_hex([key.public_hex]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("requires"), "not in its canonical form"),
        (lambda s: s.update(notes=None), "not in its canonical form"),
        (lambda s: s.update(size="10"), "signed.size"),
        (lambda s: s.update(extra=1), "signed.extra"),
        (lambda s: s.update(type="appshelf.manifest"), "signed.type"),
        (lambda s: s["artifact"].update(sha256="xyz"), "signed.artifact.sha256"),
    ],
)
def test_malformed_statements_name_the_field(change: object, message: str) -> None:
    raw = json.loads(_statement(_key(SEED_A)))
    change(raw["signed"])  # type: ignore[operator]
    with pytest.raises(StatementError, match=message) as caught:
        read_statement(json.dumps(raw).encode(), "apps/kv-store/1.0.0/statement.json")
    assert str(caught.value).startswith("apps/kv-store/1.0.0/statement.json: ")


def test_not_json_and_too_large_are_refused() -> None:
    with pytest.raises(StatementError, match="not valid JSON"):
        read_statement(b"{", "s.json")
    with pytest.raises(StatementError, match="at most"):
        read_statement(b" " * (300 << 10), "s.json")


def test_bad_fields_are_refused_when_making() -> None:
    with pytest.raises(StatementError, match="publisher"):
        _statement(_key(SEED_A), publisher="Not An Id")


def test_the_spec_worked_example() -> None:
    """docs/spec.md 10.7 is what make_statement writes."""
    import hashlib
    from pathlib import Path

    seed = hashlib.sha256(b"appshelf spec example publisher alice").digest()
    data = make_statement(
        registry="https://registry.example.com/",
        publisher="alice",
        app="hello",
        version="1.1.0",
        artifact=StatementArtifact(
            filename="hello-1.1.0.txt",
            sha256=hashlib.sha256(b"hello again\n").hexdigest(),
            size=12,
        ),
        dependencies={},
        provides=[],
        requires=[],
        notes=None,
        published="2026-01-02T00:00:00Z",
        key=_key(seed),
    )
    spec = (Path(__file__).parent.parent / "docs" / "spec.md").read_text()
    assert data.decode() in spec
    prose = " ".join(spec.split())
    assert f"({len(data)} bytes, SHA-256 `{hashlib.sha256(data).hexdigest()}`)" in prose
