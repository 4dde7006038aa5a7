"""The client holds to the release log: verify checks it, refresh refuses a forked or
rewritten history (even signed by the registry key), locks survive a yank, `appshelf log`.

All over real HTTP on 127.0.0.1; forged logs are re-signed with the registry's own key
(the development key the example is built with), so only the log checks can tell.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appshelf.client.keys import trusted_keys
from appshelf.client.lock import check_lock, lock_plan, read_lock, write_lock
from appshelf.client.verify import verify_registry
from appshelf.errors import LockMismatchError, LogInconsistentError
from appshelf.signing.keys import RegistryKey, write_new_key_file
from appshelf.signing.releaselog import make_rotation
from appshelf.source.lifecycle import record_standing
from conftest import build

from .conftest import (
    ClientFactory,
    HostileServer,
    cli,
    entry_bytes,
    entry_json,
    read_log_entries,
    resign_log,
)

Entries = list[bytes]


@pytest.fixture
def served(example_source: Path, tmp_path: Path) -> Iterator[HostileServer]:
    """The example registry over HTTP, counting the requests for each path."""
    root = tmp_path / "www"
    root.mkdir()
    with HostileServer(root) as server:
        build(example_source, root, base_url=server.url)
        yield server


def _resolve(client, *roots: str):  # type: ignore[no-untyped-def]
    from appshelf.cli.client_options import resolve_with

    return resolve_with(client, roots, False)


# --- appshelf verify -------------------------------------------------------------------


def test_verify_checks_the_whole_log(served: HostileServer, make_client: ClientFactory) -> None:
    report = verify_registry(make_client(served.url))
    assert report.ok, report.failures
    assert (report.log_entries, report.log_versions) == (16, 14)
    assert served.hits["/log/tile/entries/000.p/16"] == 1


def _changed(index: int, **fields: object) -> Callable[[Entries], Entries]:
    def change(entries: Entries) -> Entries:
        entry = entry_json(entries[index])
        for name, value in fields.items():
            target = entry
            *parents, leaf = name.split(".")
            for parent in parents:
                target = target[parent]  # type: ignore[assignment]
            target[leaf] = value
        return [*entries[:index], entry_bytes(entry), *entries[index + 1 :]]

    return change


def _appended(index: int, **fields: object) -> Callable[[Entries], Entries]:
    return lambda entries: [*entries, _changed(index, **fields)(entries)[index]]


def _unyank(entries: Entries) -> Entries:
    entry = entry_json(entries[11])
    entry.update(action="unyank", reason="")
    return [*entries, entry_bytes(entry)]


FORGED_LOGS = {
    "release entry rewritten": (
        _changed(9, **{"artifact.sha256": "1" * 64}),
        "apps/kv-store/1.1.1/manifest.json: artifact differ from its release entry 9 in the log",
    ),
    "dependencies rewritten": (
        _changed(8, dependencies={}),
        "apps/jira-sync/3.1.0/manifest.json: dependencies differ from its release entry 8",
    ),
    "releases swapped": (
        lambda e: [*e[:9], e[10], e[9], *e[11:]],
        "apps/kv-store/app.json: version 1.1.1: log_index 9 does not name its release entry 10",
    ),
    "a release never published": (
        _appended(15, version="9.9.9"),
        "log entry 16: slack-notify 9.9.9 is released and not taken down, but "
        "apps/slack-notify/app.json does not list it",
    ),
    "a published version never logged": (
        lambda e: e[:15],
        "apps/slack-notify/app.json: version 1.0.0 is not in the release log",
    ),
    "standing differs": (
        _unyank,
        "apps/kv-store/1.1.0/manifest.json: yanked/deprecated/replacement differ from its "
        "release entry 10",
    ),
    "a rule of the log broken": (
        _appended(9),
        "the release log: entry 16: kv-store 1.1.1 is logged twice",
    ),
}


@pytest.mark.parametrize("forge", FORGED_LOGS, ids=list(FORGED_LOGS))
def test_verify_refuses_a_log_that_disagrees(
    forge: str, served: HostileServer, make_client: ClientFactory
) -> None:
    change, expected = FORGED_LOGS[forge]
    resign_log(served.root, change(read_log_entries(served.root)))
    report = verify_registry(make_client(served.url))
    assert not report.ok
    assert any(expected in failure for failure in report.failures), report.failures


def _bad_signature(note: bytes) -> bytes:
    body, _, line = note.decode().rpartition("\n\n")
    prefix, sig = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    return f"{body}\n\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n".encode()


def test_verify_refuses_a_checkpoint_with_a_bad_signature(
    served: HostileServer, make_client: ClientFactory
) -> None:
    resign_log(served.root, read_log_entries(served.root), checkpoint=_bad_signature)
    report = verify_registry(make_client(served.url))
    assert "log/checkpoint: the checkpoint's signature is not valid (it was altered)" in (
        report.failures
    )


def test_verify_refuses_entries_that_do_not_hash_to_the_signed_head(
    served: HostileServer, make_client: ClientFactory
) -> None:
    bundle = served.root / "log/tile/entries/000.p/16"
    bundle.write_bytes(bundle.read_bytes().replace(b"corrupts", b"Corrupts"))
    report = verify_registry(make_client(served.url))
    assert any("do not hash to its checkpoint's root" in f for f in report.failures), (
        report.failures
    )


# --- refresh: the log only grows ---------------------------------------------------------


def _state(state_dir: Path) -> dict[str, object]:
    (path,) = state_dir.glob("registry-*.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_a_grown_log_is_accepted_by_a_consistency_proof_alone(
    served: HostileServer, make_client: ClientFactory, example_source: Path, state_dir: Path
) -> None:
    make_client(served.url).refresh()
    assert _state(state_dir)["log_size"] == 16
    record_standing(example_source, "hello-world", "1.0.0", "yank", "security hole")
    build(example_source, served.root, base_url=served.url)
    served.hits.clear()
    make_client(served.url).refresh()
    assert _state(state_dir)["log_size"] == 17
    assert "/log/tile/0/000.p/17" in served.hits  # hash tiles for the proof ...
    assert not [p for p in served.hits if p.startswith("/log/tile/entries/")]  # no entries


def test_a_forked_history_signed_by_the_registry_key_is_refused(
    served: HostileServer, make_client: ClientFactory, example_source: Path, tmp_path: Path
) -> None:
    """Issue 10: the registry key signs a different history for the same base URL."""
    make_client(served.url).refresh()
    shutil.rmtree(example_source / "apps/kv-store/0.9.0")
    other = tmp_path / "other" / "site"
    build(example_source, other, base_url=served.url)  # a fresh history, same key and URL
    shutil.rmtree(served.root)
    shutil.copytree(other, served.root)
    resign_log(served.root, read_log_entries(served.root), bump=5)  # newer than seen
    with pytest.raises(
        LogInconsistentError, match=r"release log of 15 entries that does not extend"
    ):
        make_client(served.url).refresh()
    with pytest.raises(LogInconsistentError, match=r"the 16 entries this client accepted"):
        make_client(served.url).index()  # search, fetch: every command refreshes first


FORKS = {
    "rewritten, same size": (_changed(9, **{"artifact.size": 1}), 16),
    "rewritten and grown": (
        lambda e: [*_changed(5, published="2020-01-01T00:00:00Z")(e), e[3]],
        17,
    ),
    "truncated": (lambda e: e[:15], 15),
}


@pytest.mark.parametrize("fork", FORKS, ids=list(FORKS))
def test_a_rewritten_log_is_refused_on_refresh(
    fork: str, served: HostileServer, make_client: ClientFactory
) -> None:
    change, size = FORKS[fork]
    make_client(served.url).refresh()
    resign_log(served.root, change(read_log_entries(served.root)))
    with pytest.raises(
        LogInconsistentError, match=rf"log of {size} entries that does not extend the 16"
    ):
        make_client(served.url).refresh()


# --- locks survive a yank ----------------------------------------------------------------


def test_a_lock_checks_the_log_entry_at_its_index(
    served: HostileServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(served.url)
    lock = lock_plan(client, _resolve(client, "kv-store@=1.1.1"))
    assert (lock.lock_version, lock.apps[0].log_index) == (2, 9)
    path = tmp_path / "appshelf.lock"
    write_lock(lock, path)
    data = json.loads(path.read_text())
    data["apps"][0]["log_index"] = 10
    path.write_text(json.dumps(data))
    with pytest.raises(LockMismatchError, match=r"names release log entry 10, the registry's app"):
        check_lock(make_client(served.url), read_lock(path))
    # The log's entry 9 records another artifact (app.json and the manifest do not):
    resign_log(served.root, _changed(9, **{"artifact.size": 1})(read_log_entries(served.root)))
    fresh = make_client(served.url, state_dir=tmp_path / "fresh-state")
    with pytest.raises(
        LockMismatchError, match=r"release log entry 9 does not record this release"
    ):
        check_lock(fresh, lock)


def test_a_lock_still_installs_after_the_registry_rotates_its_key(
    example_source: Path, make_client: ClientFactory, tmp_path: Path
) -> None:
    """After a rotation every manifest is signed by the new key; the lock's logged release
    is the pin, so a client that trusts the new key installs what the lock says."""
    old = write_new_key_file(tmp_path / "old.key")
    new = write_new_key_file(tmp_path / "new.key")
    root = tmp_path / "www"
    root.mkdir()
    with HostileServer(root) as server:
        build(example_source, root, base_url=server.url, environ=_key_env(old))
        both = trusted_keys([old.public_hex, new.public_hex])
        client = make_client(server.url, keys=both, allow_dev_key=False)
        lock = lock_plan(client, _resolve(client, "kv-store@=1.1.1"))
        assert lock.apps[0].keyid == old.keyid
        (example_source / "keys").mkdir()
        (example_source / "keys" / "rotate.json").write_bytes(
            make_rotation(old, new, server.url, "2026-01-15T12:00:00Z")
        )
        build(example_source, root, base_url=server.url, environ=_key_env(new))
        only_new = trusted_keys([new.public_hex])
        fresh = make_client(
            server.url, keys=only_new, allow_dev_key=False, state_dir=tmp_path / "fresh"
        )
        (checked,) = check_lock(fresh, lock)
        assert (checked.keyid, checked.manifest.version) == (new.keyid, "1.1.1")


def _key_env(key: RegistryKey) -> dict[str, str]:
    return {"APPSHELF_SIGNING_KEY": bytes(key.signing_key).hex()}


def test_an_old_lock_without_a_log_index_still_works(
    served: HostileServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(served.url)
    path = tmp_path / "appshelf.lock"
    write_lock(lock_plan(client, _resolve(client, "kv-store@=1.1.1")), path)
    data = json.loads(path.read_text())
    data["lock_version"] = 1
    del data["apps"][0]["log_index"]
    path.write_text(json.dumps(data))
    checked = check_lock(make_client(served.url), read_lock(path))
    assert [m.manifest.version for m in checked] == ["1.1.1"]


def test_fetch_lock_of_a_yanked_version_works_and_warns(
    live: HostileServer, example_source: Path, tmp_path: Path
) -> None:
    lock_path = tmp_path / "appshelf.lock"
    code, out = cli(
        "lock", "-r", live.url, "--allow-dev-key", "hello-world@=1.0.0", "-o", str(lock_path)
    )
    assert code == 0, out
    code, out = cli(
        "yank", "hello-world", "1.0.0", "--reason", "security hole", "--source", str(example_source)
    )
    assert code == 0, out
    build(example_source, live.root, base_url=live.url, now=datetime.now(UTC))
    code, out = cli("fetch", "--allow-dev-key", "--lock", str(lock_path), "-d", str(tmp_path / "d"))
    assert code == 0, out
    assert (
        "Warning: hello-world 1.0.0 is yanked (security hole); fetching it because the lock pins it"
        in out
    )
    assert (tmp_path / "d/hello-world-1.0.0.tar.gz").is_file()


# --- appshelf log ------------------------------------------------------------------------


def test_log_command_prints_an_apps_history(live: HostileServer, example_source: Path) -> None:
    record_standing(example_source, "kv-store", "1.0.0", "deprecate", "old", "1.1.1")
    build(example_source, live.root, base_url=live.url, now=datetime.now(UTC))
    code, out = cli("log", "kv-store", "-r", live.url, "--allow-dev-key", "--json")
    assert code == 0, out
    rows = [
        (r["index"], r["action"], r["version"], r["reason"], r["replacement"])
        for r in json.loads(out)
    ]
    assert rows == [
        (9, "released", "1.1.1", "", None),
        (10, "released", "1.1.0", "", None),
        (11, "yanked", "1.1.0", "corrupts values larger than 1 MiB; use 1.1.1", None),
        (12, "released", "1.0.0", "", None),
        (13, "released", "0.9.0", "", None),
        (16, "deprecated", "1.0.0", "old", "1.1.1"),
    ]
    code, out = cli("log", "kv-store", "-r", live.url, "--allow-dev-key")
    assert code == 0 and "#16" in out and "deprecated   1.0.0  old (use 1.1.1)" in out, out
    code, out = cli("log", "no-such-app", "-r", live.url, "--allow-dev-key")
    assert code == 1 and "Error: no app 'no-such-app' in the release log" in out, out


def test_a_snapshot_dropping_the_log_is_refused(
    served: HostileServer, make_client: ClientFactory
) -> None:
    from appshelf.formats.canonical import canonical_json
    from appshelf.signing.envelope import sign_body
    from appshelf.signing.keys import development_key

    make_client(served.url).refresh()
    body = json.loads((served.root / "snapshot.json").read_bytes())["signed"]
    del body["log"], body["meta"]["log/checkpoint"]
    body["version"] += 1
    snapshot = canonical_json(sign_body(body, development_key()))
    (served.root / "snapshot.json").write_bytes(snapshot)
    with pytest.raises(
        LogInconsistentError, match=r"names no release log, but this client accepted"
    ):
        make_client(served.url).refresh()
