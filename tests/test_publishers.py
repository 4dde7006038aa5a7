"""Publishers (issue 11 items 1 and 2): owners are logged, every new version's
statement.json is checked against them, and the manifest countersigns it.

Each refusal is checked on the same output folder and over `--previous-url` (a real
HTTP server on 127.0.0.1), with its message, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.errors import SourceTreeError
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.log import OwnersEntry, ReleaseEntry, decode_entry
from appshelf.signing.keys import parse_private_key
from appshelf.signing.owners import make_owners_change
from conftest import StaticServer
from log_helpers import log_entries
from publisher_helpers import declare, new_key, new_version, set_owners, sign
from test_log_paths import Paths, _files

APP, NEW = "kv-store", "1.2.0"
RELEASE = 'provides = ["storage.kv"]\nnotes = "Faster."\n'


class Registry:
    """example-registry with publishers alice (owner of kv-store), bob and mallory."""

    def __init__(self, paths: Paths):
        self.paths, self.source, self.url = paths, paths.source, paths.server.url
        self.keys = {n: new_key(paths.work, n) for n in ("alice", "alice2", "bob", "mallory")}
        declare(self.source, "alice", [(self.keys["alice"][1], "active")])
        declare(self.source, "bob", [(self.keys["bob"][1], "active")])
        declare(self.source, "mallory", [(self.keys["mallory"][1], "active")])
        set_owners(self.source, APP, ["alice"])

    def version(self, signer: str = "alice", key: str | None = None, **kw: str) -> Path:
        folder = new_version(self.source, APP, kw.pop("version", NEW), kw.pop("release", RELEASE))
        code, output = sign(folder, self.url, signer, self.keys[key or signer][0])
        assert code == 0, output
        return folder

    def refused(self, *needles: str) -> str:
        before = _files(self.paths.published)
        with pytest.raises(SourceTreeError) as caught:
            self.paths.rebuild()
        message = str(caught.value)
        for needle in needles:
            assert needle in message, message
        self.paths.nothing_written(before)
        result = CliRunner().invoke(main, self.paths.cli_args(), env={"APPSHELF_SIGNING_KEY": ""})
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert needles[0] in result.output, result.output
        self.paths.nothing_written(before)
        return message

    def accepted(self) -> Path:
        _, output = self.paths.rebuild()
        self.paths.promote(output)
        return self.paths.published

    def entries(self) -> list[object]:
        return [decode_entry(e) for e in log_entries(self.paths.published)]


@pytest.fixture(params=("same", "url"))
def reg(request: pytest.FixtureRequest, example_source: Path, tmp_path: Path) -> Iterator[Registry]:
    with StaticServer(tmp_path / "www") as server:
        server.root.mkdir()
        registry = Registry(Paths(request.param, example_source, tmp_path, server))
        registry.paths.publish()
        yield registry


def test_signed_version_is_countersigned_and_logged(reg: Registry) -> None:
    folder = reg.version()
    site = reg.accepted()
    statement = (folder / "statement.json").read_bytes()
    assert (site / f"apps/{APP}/{NEW}/statement.json").read_bytes() == statement
    manifest = json.loads((site / f"apps/{APP}/{NEW}/manifest.json").read_bytes())["signed"]
    alice = reg.keys["alice"][1]
    assert manifest["publisher"] == {
        "id": "alice",
        "keyid": alice.keyid,
        "statement": {"sha256": sha256_hex(statement), "length": len(statement)},
    }
    entries = reg.entries()
    owners = [e for e in entries if isinstance(e, OwnersEntry)]
    assert [(o.app, o.action, o.owners) for o in owners] == [(APP, "initial", ["alice"])]
    release = next(e for e in entries if isinstance(e, ReleaseEntry) and e.version == NEW)
    assert release.publisher == "alice" and release.statement is not None
    assert release.statement.sha256 == sha256_hex(statement)
    published = json.loads((site / "publishers.json").read_bytes())
    assert [p["id"] for p in published["publishers"]] == ["alice", "bob", "mallory"]
    snapshot = json.loads((site / "snapshot.json").read_bytes())["signed"]
    assert "publishers.json" in snapshot["meta"]
    old = json.loads((site / f"apps/{APP}/1.1.1/manifest.json").read_bytes())["signed"]
    assert "publisher" not in old  # versions without a statement are as before
    for kind, document in (("statement", json.loads(statement)), ("publishers", published)):
        schema = json.loads((site / "schemas" / f"{kind}.schema.json").read_bytes())
        jsonschema.Draft202012Validator(schema).validate(document)
    reg.accepted()  # a rebuild changes nothing and is accepted
    assert _files(reg.paths.published)[f"apps/{APP}/{NEW}/statement.json"] == statement


def test_unknown_publisher_is_refused(reg: Registry) -> None:
    folder = reg.version()
    (reg.source / "publishers" / "alice.toml").unlink()
    reg.refused(f"{APP} {NEW} is signed as publisher 'alice'", "(unknown signer)")
    assert folder.exists()


def test_key_not_the_publishers_is_an_unknown_signer(reg: Registry) -> None:
    reg.version(signer="alice", key="mallory")
    reg.refused(f"{APP} {NEW} claims publisher 'alice'", "none of theirs (unknown signer)")


def test_signer_not_an_owner_is_refused(reg: Registry) -> None:
    reg.version(signer="bob")
    reg.refused("signed by 'bob', who is not an owner of kv-store", "its owners are ['alice']")


def test_revoked_publisher_key_is_refused(reg: Registry) -> None:
    alice, alice2 = reg.keys["alice"][1], reg.keys["alice2"][1]
    declare(reg.source, "alice", [(alice, "revoked"), (alice2, "active")])
    reg.version()
    reg.refused(f"signed by key {alice.keyid[:16]}... of 'alice', which is revoked")


def test_statement_release_mismatch_is_refused(reg: Registry) -> None:
    folder = reg.version()
    (folder / "release.toml").write_text('provides = ["storage.blob"]\nnotes = "Faster."\n')
    reg.refused("gives provides ['storage.kv']", "['storage.blob']", "statement/release mismatch")


def test_artifact_bytes_mismatch_is_refused(reg: Registry) -> None:
    folder = reg.version()
    (folder / f"{APP}-{NEW}.tar.gz").write_bytes(b"other bytes")
    reg.refused("gives artifact.sha256", "statement/release mismatch")


def test_required_but_missing_is_refused(reg: Registry) -> None:
    config = reg.source / "registry.toml"
    config.write_text(config.read_text() + "\n[publishers]\nrequired = true\n")
    reg.accepted()  # versions logged before the rule are not signed again
    new_version(reg.source, APP, NEW, RELEASE)
    reg.refused("requires a publisher's signature on every new version", f"{APP} {NEW} has none")


def test_editing_app_toml_owners_is_a_takeover(reg: Registry) -> None:
    set_owners(reg.source, APP, ["mallory"])
    reg.refused("differ from kv-store's owners in the release log ['alice']", "(a takeover)")


def test_forged_owners_change_is_refused(reg: Registry) -> None:
    mallory = reg.keys["mallory"][1]
    forged = make_owners_change(
        registry=reg.url, app=APP, previous=["alice"], owners=["mallory"], signer="alice",
        issued="2026-01-15T12:00:00Z", key=mallory,
    )  # fmt: skip
    (reg.source / "owners").mkdir()
    (reg.source / "owners" / "takeover.json").write_bytes(forged)
    set_owners(reg.source, APP, ["mallory"])
    reg.refused("owners change refused", "not signed by an active key of 'alice'")


def test_owners_change_by_a_non_owner_is_refused(reg: Registry) -> None:
    change = make_owners_change(
        registry=reg.url, app=APP, previous=["alice"], owners=["mallory"], signer="mallory",
        issued="2026-01-15T12:00:00Z", key=reg.keys["mallory"][1],
    )  # fmt: skip
    (reg.source / "owners").mkdir()
    (reg.source / "owners" / "takeover.json").write_bytes(change)
    set_owners(reg.source, APP, ["mallory"])
    reg.refused("owners change refused", "'mallory' is not one of kv-store's owners ['alice']")


def test_owners_change_signed_by_a_current_owner_is_accepted(reg: Registry) -> None:
    key_file = reg.keys["alice"][0]
    args = ["change-owners", str(reg.source), "--app", APP, "--owners", "bob"]
    args += ["--signer", "alice", "--key-file", str(key_file)]
    result = CliRunner().invoke(main, args, env={"SOURCE_DATE_EPOCH": "1768478400"})
    assert "from ['alice'] to ['bob']" in result.output
    assert result.exit_code == 0, result.output
    set_owners(reg.source, APP, ["bob"])
    # base_url of the example is not the server's: sign the change for the server's
    change = make_owners_change(
        registry=reg.url, app=APP, previous=["alice"], owners=["bob"], signer="alice",
        issued="2026-01-15T12:00:00Z", key=parse_private_key(key_file.read_text(), "alice"),
    )  # fmt: skip
    (reg.source / "owners" / "to-bob.json").write_bytes(change)
    reg.version(signer="bob")
    reg.accepted()
    owners = [e for e in reg.entries() if isinstance(e, OwnersEntry)]
    assert [(o.action, o.owners) for o in owners] == [("initial", ["alice"]), ("change", ["bob"])]
    assert owners[1].signer is not None and owners[1].signer.publisher == "alice"
    new_version(reg.source, APP, "1.3.0", RELEASE)
    sign(reg.source / "apps" / APP / "1.3.0", reg.url, "alice", key_file)
    reg.refused("signed by 'alice', who is not an owner of kv-store", "its owners are ['bob']")
