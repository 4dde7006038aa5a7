"""The client re-verifies the publisher's signature (issue 11 item 6): the statement
beside each manifest, with the keys in publishers.json, and `--require-publisher`.

Over a real HTTP server on 127.0.0.1; the registry is built now (the CLI's clock)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appshelf.client.publisher import PublisherVerified
from appshelf.client.verify import verify_registry
from appshelf.errors import DigestMismatchError, PublisherMissingError, UntrustedSignatureError
from conftest import build
from publisher_helpers import declare, new_key, new_version, set_owners, sign

from .conftest import ClientFactory, HostileServer, cli

APP, NEW, OLD = "kv-store", "1.2.0", "1.1.1"


class Live:
    def __init__(self, source: Path, server: HostileServer, work: Path):
        self.source, self.server, self.work = source, server, work
        self.alice = new_key(work, "alice")
        self.mallory = new_key(work, "mallory")

    def build(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        build(self.source, self.server.root, base_url=self.server.url, now=now)


@pytest.fixture
def live(example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv("APPSHELF_STATE_DIR", str(tmp_path / "cli-state"))
    with HostileServer(tmp_path / "live") as server:
        reg = Live(example_source, server, tmp_path)
        declare(example_source, "alice", [(reg.alice[1], "active")])
        declare(example_source, "mallory", [(reg.mallory[1], "active")])
        set_owners(example_source, APP, ["alice"])
        folder = new_version(example_source, APP, NEW, 'provides = ["storage.kv"]\n')
        code, out = sign(folder, server.url, "alice", reg.alice[0])
        assert code == 0, out
        reg.build()
        yield reg


def test_both_signatures_are_checked(live: Live, make_client: ClientFactory) -> None:
    client = make_client(live.server.url, clock=lambda: datetime.now(UTC))
    trusted = client.manifest(APP, NEW)
    assert trusted.publisher == PublisherVerified("alice", "Alice Example", live.alice[1].keyid)
    assert client.manifest(APP, OLD).publisher is None  # no statement: accepted by default
    report = verify_registry(client)
    assert report.ok, report.failures
    assert report.publisher_signatures == 1


def test_policy_requires_a_publisher(live: Live, make_client: ClientFactory) -> None:
    client = make_client(live.server.url, clock=lambda: datetime.now(UTC), require_publisher=True)
    assert client.manifest(APP, NEW).publisher is not None
    with pytest.raises(PublisherMissingError, match=f"{APP} {OLD}: no publisher signature"):
        client.manifest(APP, OLD)
    report = verify_registry(client)
    assert any("no publisher signature" in f for f in report.failures)


def test_a_replaced_statement_is_refused(live: Live, make_client: ClientFactory) -> None:
    folder = live.server.root / "apps" / APP / NEW
    code, out = sign(live.source / "apps" / APP / NEW, live.server.url, "alice", live.mallory[0])
    assert code == 0, out
    shutil.copy(live.source / "apps" / APP / NEW / "statement.json", folder / "statement.json")
    client = make_client(live.server.url, clock=lambda: datetime.now(UTC))
    with pytest.raises(DigestMismatchError, match="differs from the statement the manifest pins"):
        client.manifest(APP, NEW)


def test_a_revoked_publisher_key_is_refused_by_the_client(
    live: Live, make_client: ClientFactory
) -> None:
    # The registry keeps the logged version (published stays published) but now lists
    # the key as revoked: the client no longer accepts what that key signed.
    declare(live.source, "alice", [(live.alice[1], "revoked")])
    live.build()
    client = make_client(live.server.url, clock=lambda: datetime.now(UTC))
    with pytest.raises(
        UntrustedSignatureError, match="not signed by a current \\(non-revoked\\) key"
    ):
        client.manifest(APP, NEW)


def test_cli_show_fetch_and_require_publisher(live: Live, tmp_path: Path) -> None:
    reg = ["-r", live.server.url, "--allow-dev-key"]
    code, out = cli("show", *reg, f"{APP}@{NEW}")
    assert code == 0, out
    assert f"published by Alice Example (alice, key id {live.alice[1].keyid[:16]}...)" in out
    code, out = cli("fetch", *reg, "--require-publisher", f"{APP}@{NEW}", "-d", str(tmp_path / "d"))
    assert code == 0, out
    code, out = cli("fetch", *reg, "--require-publisher", f"{APP}@{OLD}", "-d", str(tmp_path / "e"))
    assert code == 1 and "Error: " in out and "no publisher signature" in out, out
    assert "Traceback" not in out and not (tmp_path / "e").exists()
    code, out = cli("verify", live.server.url, "--allow-dev-key")
    assert code == 0 and "publishers       1 statements ok" in out, out


def test_config_policy(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`registry add --require-publisher` keeps the policy in the consumer config."""
    from appshelf.signing.keys import development_key

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    other = live.mallory[1].public_hex  # the config needs a key; the dev key is given below
    code, out = cli(
        "registry", "add", "team", live.server.url, "--key", other, "--require-publisher"
    )
    assert code == 0, out
    dev = ["--key", development_key().public_hex, "--allow-dev-key"]
    code, out = cli("show", "-r", "team", *dev, f"{APP}@{NEW}")
    assert code == 0 and "published by Alice Example" in out, out
    code, out = cli("show", "-r", "team", *dev, f"{APP}@{OLD}")
    assert code == 1 and "no publisher signature" in out, out
