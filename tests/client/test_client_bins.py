"""Hashed bins (docs/spec.md section 4.8) in the client, over real HTTP on 127.0.0.1:
one app costs the snapshot and one bin, and a bin that is not the one the snapshot
says (moved, from another range, with another member, altered) is refused. Forged
registries are re-signed with the registry's own key (the development key), so only
the bin checks can tell."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appshelf.client.verify import verify_registry
from appshelf.errors import (
    DigestMismatchError,
    InconsistentMetadataError,
    MalformedError,
    UnknownAppError,
)
from appshelf.formats.bins import bin_of
from appshelf.formats.canonical import canonical_json
from appshelf.formats.consistent import consistent_path
from conftest import REPO_ROOT, build
from generations import repin

from .conftest import ClientFactory, HostileServer

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import generate

APPS = 40  # 8 bins (bits 3)


@pytest.fixture
def served(example_source: Path, tmp_path: Path) -> Iterator[HostileServer]:
    with HostileServer(tmp_path / "www") as server:
        build(example_source, server.root, base_url=server.url)
        yield server


def _signed(root: Path) -> dict[str, object]:
    return json.loads((root / "snapshot.json").read_bytes())["signed"]  # type: ignore[no-any-return]


def _bin(root: Path, key: str) -> tuple[str, dict[str, object]]:
    """The bin that pins an app, as the registry serves it."""
    signed = _signed(root)
    where = bin_of(f"apps/{key}/app.json", signed["bins"]["bits"])  # type: ignore[index]
    assert where is not None
    pin = signed["meta"][where]  # type: ignore[index]
    return where, json.loads((root / consistent_path(where, pin["sha256"])).read_bytes())


def test_one_app_costs_the_snapshot_one_bin_and_its_own_files(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    source = tmp_path / "source"
    generate.generate_small(source, APPS, 1, seed=5)
    key = generate.app_key(7)
    with HostileServer(tmp_path / "www") as server:
        build(source, server.root, base_url=server.url)
        signed = _signed(server.root)
        assert signed["bins"] == {"bits": 3}
        assert not any(p.startswith("apps/") for p in signed["meta"])  # type: ignore[attr-defined]
        where, binned = _bin(server.root, key)
        client = make_client(server.url)
        version = client.app(key).versions[0].version
        download = client.download(key, version, tmp_path / "dest")
        assert download.path.is_file()
        hits = {path.lstrip("/"): count for path, count in server.hits.items()}
    entry = next(e for e in client.app(key).versions if e.version == version)
    app_pin = binned["meta"][f"apps/{key}/app.json"]  # type: ignore[index]
    assert hits == {
        "snapshot.json": 1,
        consistent_path(where, signed["meta"][where]["sha256"]): 1,  # type: ignore[index]
        consistent_path(f"apps/{key}/app.json", app_pin["sha256"]): 1,
        consistent_path(entry.manifest_path, entry.manifest.sha256): 1,
        f"apps/{key}/{version}/{entry.artifact.filename}": 1,
    }
    served_bytes = sum(
        (server.root / path).stat().st_size for path in hits if not path.endswith(".tar.gz")
    )
    all_bins = sum(pin["length"] for p, pin in signed["meta"].items() if p.startswith("bins/"))  # type: ignore[attr-defined]
    assert served_bytes < (server.root / "snapshot.json").stat().st_size + all_bins / 2


def test_a_full_audit_reads_every_bin(served: HostileServer, make_client: ClientFactory) -> None:
    report = verify_registry(make_client(served.url))
    assert report.ok, report.failures
    bins = {p for p in served.hits if p.startswith("/bins/")}
    assert len(bins) == 4  # 5 apps: bits 2


def test_a_bin_pinned_under_another_prefix_is_refused(
    served: HostileServer, make_client: ClientFactory
) -> None:
    where, binned = _bin(served.root, "kv-store")
    other, _ = _bin(served.root, "slack-notify")
    assert (where, other) == ("bins/0.json", "bins/1.json")
    repin(served.root, other, canonical_json(binned), bump=1)  # kv-store's bin, moved
    with pytest.raises(InconsistentMetadataError, match=rf"^{other}: is bin '0' of 2 bits"):
        make_client(served.url).app("slack-notify")


def test_a_bin_naming_an_app_of_another_bin_is_refused(
    served: HostileServer, make_client: ClientFactory
) -> None:
    where, binned = _bin(served.root, "kv-store")
    _, elsewhere = _bin(served.root, "slack-notify")
    binned["meta"].update(elsewhere["meta"])  # type: ignore[attr-defined]
    repin(served.root, where, canonical_json(binned), bump=1)
    with pytest.raises(InconsistentMetadataError, match=r"slack-notify/.*hashes to bins/1\.json"):
        make_client(served.url).app("kv-store")


def test_an_app_left_out_of_its_bin_is_unknown(
    served: HostileServer, make_client: ClientFactory
) -> None:
    where, binned = _bin(served.root, "kv-store")
    binned["meta"] = {}
    repin(served.root, where, canonical_json(binned), bump=1)
    with pytest.raises(UnknownAppError, match=r"no app 'kv-store'"):
        make_client(served.url).app("kv-store")


def test_a_bin_with_an_extra_member_is_refused(
    served: HostileServer, make_client: ClientFactory
) -> None:
    where, binned = _bin(served.root, "kv-store")
    repin(served.root, where, canonical_json({**binned, "note": "hi"}), bump=1)
    with pytest.raises(MalformedError, match=rf"^{where}: note: Extra inputs are not permitted"):
        make_client(served.url).app("kv-store")


def test_a_bin_of_another_registry_is_refused(
    served: HostileServer, make_client: ClientFactory
) -> None:
    where, binned = _bin(served.root, "kv-store")
    repin(served.root, where, canonical_json({**binned, "registry": "https://x.example/"}))
    with pytest.raises(InconsistentMetadataError, match=r"belongs to registry https://x\.example/"):
        make_client(served.url).app("kv-store")


def test_an_altered_bin_fails_its_pin(served: HostileServer, make_client: ClientFactory) -> None:
    where, binned = _bin(served.root, "kv-store")
    pin = _signed(served.root)["meta"][where]  # type: ignore[index]
    data = canonical_json({**binned, "meta": {}})
    data += b" " * (pin["length"] - len(data))  # same length, other bytes
    (served.root / consistent_path(where, pin["sha256"])).write_bytes(data)
    with pytest.raises(DigestMismatchError, match=rf"^{where}: sha256"):
        make_client(served.url).app("kv-store")
    report = verify_registry(make_client(served.url))  # the audit names it, goes on
    assert any(f.startswith(f"{where}: sha256") for f in report.failures), report.failures
    assert report.manifests > 0  # the apps of the other bins were still checked


def test_a_snapshot_pinning_an_app_beside_its_bins_is_refused(
    served: HostileServer, make_client: ClientFactory
) -> None:
    where, binned = _bin(served.root, "kv-store")
    body = _signed(served.root)
    body["meta"]["apps/kv-store/app.json"] = binned["meta"]["apps/kv-store/app.json"]  # type: ignore[index]
    _sign(served.root, body)
    with pytest.raises(MalformedError, match=r"meta pins apps/kv-store/app.json, a per-app file"):
        make_client(served.url).refresh()
    body = _signed(served.root)
    del body["meta"]["apps/kv-store/app.json"], body["meta"][where]  # type: ignore[attr-defined]
    _sign(served.root, body)
    with pytest.raises(MalformedError, match=r"does not pin exactly its bins"):
        make_client(served.url).refresh()


def _sign(root: Path, body: dict[str, object]) -> None:
    from appshelf.signing.envelope import sign_body
    from appshelf.signing.keys import development_key

    (root / "snapshot.json").write_bytes(canonical_json(sign_body(body, development_key())))
