"""`app@<channel>` in the client: resolved through app.json's channels and checked
against the signed release log (an inclusion proof of the entry that set it), over
real HTTP on 127.0.0.1. Forged registries are re-signed with the registry's own key
(the development key), so only the log check can tell."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appshelf.client.resolve import parse_requirement, resolve
from appshelf.client.verify import verify_registry
from appshelf.errors import InconsistentMetadataError, LogInconsistentError, UnknownChannelError
from appshelf.formats.canonical import canonical_json
from conftest import build
from generations import repin

from .conftest import ClientFactory, HostileServer, cli

CHANNELS = 'stable = "1.1.0"\nbeta = "2.0.0-beta.1"\n'


@pytest.fixture
def served(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HostileServer]:
    monkeypatch.setenv("APPSHELF_STATE_DIR", str(tmp_path / "cli-state"))
    (example_source / "apps/hello-world/channels.toml").write_text(CHANNELS)
    with HostileServer(tmp_path / "www") as server:
        build(example_source, server.root, base_url=server.url, now=datetime.now(UTC))
        yield server


def _forge_app_json(root: Path, edit: dict[str, object]) -> None:
    """Rewrite hello-world's app.json channels and re-sign the snapshot pinning it."""
    path = root / "apps/hello-world/app.json"
    detail = json.loads(path.read_bytes())
    detail["channels"] = edit
    repin(root, "apps/hello-world/app.json", canonical_json(detail), bump=1)


def test_resolve_and_fetch_by_channel(
    served: HostileServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(served.url, clock=lambda: datetime.now(UTC))
    assert client.channel("hello-world", "beta") == "2.0.0-beta.1"
    plan = resolve(["hello-world@beta"], client.app, client.app_keys, channels=client.channel)
    assert [(i.app, i.version) for i in plan.installs] == [("hello-world", "2.0.0-beta.1")]
    assert plan.requirements == ["hello-world@beta"]
    with pytest.raises(
        UnknownChannelError,
        match=r"hello-world@nightly: no such channel \(channels: beta, stable\)",
    ):
        client.channel("hello-world", "nightly")
    assert parse_requirement("hello-world@beta").channel == "beta"
    assert parse_requirement("hello-world@x").channel is None  # `x` is a range, never a channel
    assert verify_registry(client).ok

    code, out = cli("resolve", "-r", served.url, "--allow-dev-key", "hello-world@stable", "--json")
    assert code == 0, out
    assert json.loads(out)["install"][0]["version"] == "1.1.0"
    dest = tmp_path / "dl"
    code, out = cli(
        "fetch", "-r", served.url, "--allow-dev-key", "hello-world@beta", "-d", str(dest)
    )
    assert code == 0, out
    artifact = served.root / "apps/hello-world/2.0.0-beta.1/hello-world-2.0.0-beta.1.tar.gz"
    fetched = dest / artifact.name
    assert (
        hashlib.sha256(fetched.read_bytes()).digest()
        == hashlib.sha256(artifact.read_bytes()).digest()
    )
    code, out = cli(
        "fetch", "-r", served.url, "--allow-dev-key", "hello-world@nightly", "-d", str(dest)
    )
    assert code == 1 and "Error: hello-world@nightly: no such channel" in out


def test_a_channel_the_log_does_not_record_is_refused(
    served: HostileServer, make_client: ClientFactory
) -> None:
    detail = json.loads((served.root / "apps/hello-world/app.json").read_bytes())
    beta = detail["channels"]["beta"]
    # Signed app.json moves beta to 1.0.0, naming the log entry that set beta elsewhere.
    _forge_app_json(served.root, {"beta": {"log_index": beta["log_index"], "version": "1.0.0"}})
    client = make_client(served.url, clock=lambda: datetime.now(UTC))
    with pytest.raises(
        LogInconsistentError, match=r"channel 'beta' -> 1\.0\.0 names release log entry"
    ):
        client.channel("hello-world", "beta")
    report = verify_registry(client)
    assert any("are not the release log's" in f for f in report.failures)


def test_a_channel_naming_an_unlisted_version_is_refused(
    served: HostileServer, make_client: ClientFactory
) -> None:
    _forge_app_json(served.root, {"beta": {"log_index": 1, "version": "9.9.9"}})
    client = make_client(served.url, clock=lambda: datetime.now(UTC))
    with pytest.raises(
        InconsistentMetadataError, match=r"names version 9\.9\.9, which it does not list"
    ):
        client.channel("hello-world", "beta")
