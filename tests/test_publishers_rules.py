"""Owners in the release log (signing/releaselog.py replay rules), organisations,
did:key publishers, and `appshelf sign-release` refusals."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import nacl.signing
import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.errors import LogError
from appshelf.formats.didkey import did_key
from appshelf.formats.log import KeyEntry, LoggedKey, OwnersEntry, OwnersSigner
from appshelf.signing.keys import RegistryKey, development_key
from appshelf.signing.owners import make_owners_change
from appshelf.signing.releaselog import LogState, replay
from conftest import build
from publisher_helpers import new_key, new_version, set_owners, sign

REG, NOW = "https://registry.example.com/", "2026-01-15T12:00:00Z"
ALICE = RegistryKey(nacl.signing.SigningKey(bytes(range(32))), "alice")
MALLORY = RegistryKey(nacl.signing.SigningKey(bytes(range(1, 33))), "mallory")


def _log() -> LogState:
    dev = development_key()
    state = LogState()
    genesis = LoggedKey(keyid=dev.keyid, public=dev.public_hex, development=True)
    state.append(KeyEntry(registry=REG, logged=NOW, action="genesis", key=genesis))
    state.append(
        OwnersEntry(registry=REG, logged=NOW, action="initial", app="kv", owners=["alice"])
    )
    return state


def _change(key: RegistryKey, signer: str = "alice", **body: object) -> OwnersEntry:
    fields: dict[str, object] = {"previous": ["alice"], "owners": ["bob"]}
    fields.update(body)
    statement = make_owners_change(
        registry=REG,
        app="kv",
        signer=signer,
        issued=NOW,
        key=key,
        **fields,  # type: ignore[arg-type]
    )
    return OwnersEntry(
        registry=REG,
        logged=NOW,
        action="change",
        app="kv",
        owners=["bob"],
        signer=OwnersSigner(publisher=signer, keyid=key.keyid, public=key.public_hex),
        statement=base64.b64encode(statement).decode(),
    )


def test_a_signed_change_replays() -> None:
    state = _log()
    state.append(_change(ALICE))
    assert state.owners == {"kv": ["bob"]}
    again = replay(state.entries)  # a reader replaying the bytes gets the same owners
    assert again.owners == {"kv": ["bob"]}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (lambda: _change(MALLORY, signer="mallory"), "mallory is not an owner of kv"),
        (lambda: _change(ALICE, previous=["carol"]), "the owners-change statement says otherwise"),
        (lambda: _change(ALICE, owners=["mallory"]), "the owners-change statement says otherwise"),
        (
            lambda: _change(ALICE).model_copy(
                update={"signer": OwnersSigner(publisher="alice", keyid=MALLORY.keyid, public=MALLORY.public_hex)}
            ),
            "none of the 1 trusted",
        ),
        (lambda: OwnersEntry(registry=REG, logged=NOW, action="initial", app="kv", owners=["x"]), "already has owners"),
        (lambda: _change(ALICE).model_copy(update={"statement": None}), "needs logged owners and a signer"),
    ],
)  # fmt: skip
def test_replay_refuses(entry: object, message: str) -> None:
    state = _log()
    with pytest.raises(LogError, match=message):
        state.append(entry())  # type: ignore[operator]


def test_a_change_for_an_app_without_owners_is_refused() -> None:
    state = _log()
    entry = _change(ALICE).model_copy(update={"app": "other"})
    with pytest.raises(LogError, match="needs logged owners"):
        state.append(entry)


def _did_publisher(source: Path, publisher: str, key: RegistryKey) -> None:
    (source / "publishers").mkdir(exist_ok=True)
    did = did_key(key.public_bytes)
    text = f'name = "{publisher}"\n[[keys]]\ndid = "{did}"\n'
    (source / "publishers" / f"{publisher}.toml").write_text(text)


def test_did_key_publisher_in_an_organisation(example_source: Path, tmp_path: Path) -> None:
    """A Calimero-style signer (did:key) who owns the app through an organisation."""
    key_file, key = new_key(tmp_path, "carol")
    _did_publisher(example_source, "carol", key)
    (example_source / "orgs").mkdir()
    (example_source / "orgs" / "acme.toml").write_text('name = "Acme"\nmembers = ["carol"]\n')
    set_owners(example_source, "kv-store", ["acme"])
    folder = new_version(example_source, "kv-store", "1.2.0", 'provides = ["storage.kv"]\n')
    code, out = sign(folder, "https://registry.example.com/", "carol", key_file)
    assert code == 0, out
    out_dir = tmp_path / "out"
    build(example_source, out_dir, base_url="https://registry.example.com/")
    manifest = json.loads((out_dir / "apps/kv-store/1.2.0/manifest.json").read_bytes())
    assert manifest["signed"]["publisher"]["keyid"] == key.keyid
    published = json.loads((out_dir / "publishers.json").read_bytes())
    assert published["organisations"] == [{"id": "acme", "name": "Acme", "members": ["carol"]}]
    assert published["publishers"][0]["keys"][0]["did"] == did_key(key.public_bytes)


def test_identity_files_are_checked(example_source: Path, tmp_path: Path) -> None:
    from appshelf.errors import SourceTreeError

    (example_source / "publishers").mkdir()
    (example_source / "publishers" / "Bad Name.toml").write_text('name = "x"\n')
    (example_source / "publishers" / "eve.toml").write_text(
        'name = "Eve"\n[[keys]]\ndid = "did:key:zNope"\n'
    )
    (example_source / "orgs").mkdir()
    (example_source / "orgs" / "acme.toml").write_text('name = "Acme"\nmembers = ["nobody"]\n')
    with pytest.raises(SourceTreeError) as caught:
        build(example_source, tmp_path / "out")
    message = str(caught.value)
    assert "publishers/Bad Name.toml: expected <id>.toml" in message
    assert "publishers/eve.toml: keys.0.did: not a did:key of an Ed25519 key" in message
    assert "orgs/acme.toml: members: no publisher 'nobody'" in message
    assert not (tmp_path / "out").exists()


def test_sign_release_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPSHELF_PUBLISHER_KEY", raising=False)
    artifact = tmp_path / "kv.tar.gz"
    artifact.write_bytes(b"bytes")
    base = ["sign-release", "--registry", REG, "--publisher", "alice", "--app", "kv"]
    base += ["--version", "1.0.0", "-o", str(tmp_path / "statement.json")]
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> str:
        result = runner.invoke(main, [*base, *args], env=env or {})
        assert result.exit_code == 1 and "Error: " in result.output, result.output
        assert "Traceback" not in result.output and not (tmp_path / "statement.json").exists()
        return result.output

    assert "no publisher key: pass --key-file or set APPSHELF_PUBLISHER_KEY" in run(
        "--artifact", str(artifact)
    )
    dev_seed = hashlib.sha256(b"appshelf development key - NOT FOR PRODUCTION").hexdigest()
    assert "is the development key" in run(
        "--artifact", str(artifact), env={"APPSHELF_PUBLISHER_KEY": dev_seed}
    )
    key_file, _ = new_key(tmp_path, "alice")
    key = ["--key-file", str(key_file)]
    assert "give --artifact FILE, or --artifact-url" in run(*key)
    assert "--dependency: expected APP=RANGE" in run(
        *key, "--artifact", str(artifact), "--dependency", "x"
    )
    assert "needs --sha256 and --size" in run(
        *key, "--artifact-url", "https://example.com/kv.tar.gz"
    )
    assert "provides" in run(*key, "--artifact", str(artifact), "--provides", "bad name!")
    ok = runner.invoke(
        main, [*base, *key, "--artifact", str(artifact)], env={"SOURCE_DATE_EPOCH": "0"}
    )
    assert ok.exit_code == 0, ok.output
    assert b'"published":"1970-01-01T00:00:00Z"' in (tmp_path / "statement.json").read_bytes()


def test_a_preview_accepts_statements_for_the_declared_registry(
    example_source: Path, tmp_path: Path
) -> None:
    """`appshelf serve` and demos build with --base-url: statements signed for
    registry.toml's base_url still build (the client then sees the other registry)."""
    from appshelf.errors import SourceTreeError
    from publisher_helpers import declare

    key_file, key = new_key(tmp_path, "alice")
    declare(example_source, "alice", [(key, "active")])
    set_owners(example_source, "kv-store", ["alice"])
    folder = new_version(example_source, "kv-store", "1.2.0", 'provides = ["storage.kv"]\n')
    code, out = sign(folder, "http://127.0.0.1:8000/", "alice", key_file)  # registry.toml's
    assert code == 0, out
    build(example_source, tmp_path / "preview", base_url="http://127.0.0.1:9999/")
    sign(folder, "https://elsewhere.example.com/", "alice", key_file)
    with pytest.raises(SourceTreeError, match=r"gives registry 'https://elsewhere\.example\.com/'"):
        build(example_source, tmp_path / "other", base_url="http://127.0.0.1:9999/")
