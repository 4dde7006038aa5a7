"""Each attack from the issue, against the example registry: refused with the right error."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from appshelf.client import Limits, trusted_keys
from appshelf.errors import (
    BadSignatureError,
    ConnectionFailedError,
    DigestMismatchError,
    ExpiredError,
    InconsistentMetadataError,
    LengthExceededError,
    MalformedError,
    NotFoundError,
    RegistryTimeoutError,
    RollbackError,
    TooManyRedirectsError,
    UntrustedKeyConfigError,
    UntrustedSignatureError,
)
from appshelf.formats.canonical import canonical_json
from appshelf.signing.envelope import sign_body
from appshelf.signing.keys import development_key, write_new_key_file
from conftest import FIXED_NOW, StaticServer, build
from generations import read_name, served

from .conftest import CLIENT_NOW, ClientFactory, HostileServer, endless, redirect_to_self

ARTIFACT = "apps/kv-store/1.1.1/kv-store-1.1.1.tar.gz"


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def test_honest_registry_passes(
    served_registry: StaticServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(served_registry.url)
    download = client.download("kv-store", "1.1.1", tmp_path / "dl")
    assert download.path.read_bytes() == (served_registry.root / ARTIFACT).read_bytes()
    assert client.flows_versions("http-client").versions[0].version == "2.0.0"


def test_tampered_artifact(
    served_registry: StaticServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    _flip_last_byte(served_registry.root / ARTIFACT)
    dest = tmp_path / "dl"
    with pytest.raises(DigestMismatchError, match=r"kv-store 1.1.1 artifact"):
        make_client(served_registry.url).download("kv-store", "1.1.1", dest)
    assert list(dest.iterdir()) == []  # no partial or temporary file left behind


def test_longer_artifact_is_cut_off(
    served_registry: StaticServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    with (served_registry.root / ARTIFACT).open("ab") as handle:
        handle.write(b"x" * 100_000)
    dest = tmp_path / "dl"
    with pytest.raises(LengthExceededError):
        make_client(served_registry.url).download("kv-store", "1.1.1", dest)
    assert list(dest.iterdir()) == []


def test_artifact_filename_is_matched_whole(
    served_registry: StaticServer, make_client: ClientFactory, tmp_path: Path
) -> None:
    """A file name ending in a newline passes `re.match` of `...$`; it must not be written."""
    client = make_client(served_registry.url)
    trusted = client.manifest("kv-store", "1.1.1")
    artifact = trusted.manifest.artifact.model_copy(update={"filename": "kv.tar.gz\n"})
    manifest = trusted.manifest.model_copy(update={"artifact": artifact})
    odd = dataclasses.replace(trusted, manifest=manifest)
    with pytest.raises(MalformedError, match=r"unsafe artifact filename 'kv.tar.gz\\n'"):
        client.download_manifest(odd, tmp_path / "dl")
    assert not (tmp_path / "dl").exists()


def test_tampered_versions_json(served_registry: StaticServer, make_client: ClientFactory) -> None:
    path = served(served_registry.root, "apps/kv-store/versions.json")
    path.write_bytes(path.read_bytes().replace(b"1.1.1", b"1.1.9"))
    with pytest.raises(DigestMismatchError, match=r"apps/kv-store/versions.json"):
        make_client(served_registry.url).flows_versions("kv-store")


def test_tampered_app_json(served_registry: StaticServer, make_client: ClientFactory) -> None:
    path = served(served_registry.root, "apps/kv-store/app.json")
    path.write_bytes(path.read_bytes().replace(b"corrupts", b"improves"))
    with pytest.raises(DigestMismatchError, match=r"apps/kv-store/app.json"):
        make_client(served_registry.url).app("kv-store")


def test_tampered_manifest(served_registry: StaticServer, make_client: ClientFactory) -> None:
    path = served(served_registry.root, "apps/kv-store/1.1.1/manifest.json")
    path.write_bytes(path.read_bytes().replace(b"Fixes large values.", b"Fixes large values!"))
    with pytest.raises(DigestMismatchError, match=r"apps/kv-store/1.1.1/manifest.json"):
        make_client(served_registry.url).manifest("kv-store", "1.1.1")


def test_swapped_manifest(served_registry: StaticServer, make_client: ClientFactory) -> None:
    """A validly signed manifest of another version, served in place of the right one."""
    root = served_registry.root
    shutil.copy(
        root / "apps/kv-store/1.0.0/manifest.json",
        served(root, "apps/kv-store/1.1.1/manifest.json"),
    )
    with pytest.raises(DigestMismatchError):
        make_client(served_registry.url).manifest("kv-store", "1.1.1")


def test_tampered_snapshot_signature(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    path = served_registry.root / "snapshot.json"
    path.write_bytes(path.read_bytes().replace(b'"version":1', b'"version":7'))
    with pytest.raises(BadSignatureError, match=r"bad signature"):
        make_client(served_registry.url).refresh()


def test_signed_by_unknown_key(
    example_source: Path, tmp_path: Path, make_client: ClientFactory
) -> None:
    key_file = tmp_path / "other.key"
    write_new_key_file(key_file)
    with StaticServer(tmp_path / "www") as server:
        build(example_source, server.root, base_url=server.url, key_file=key_file)
        with pytest.raises(UntrustedSignatureError, match=r"none of the 1 trusted key"):
            make_client(server.url).refresh()


def test_expired_snapshot(served_registry: StaticServer, make_client: ClientFactory) -> None:
    client = make_client(served_registry.url, clock=lambda: CLIENT_NOW + timedelta(days=60))
    with pytest.raises(ExpiredError, match=r"expired at 2026-02-14"):
        client.refresh()


def _resign_snapshot(root: Path, **changes: str) -> None:
    """Re-sign the served snapshot with changed fields (as a careless signer could)."""
    path = root / "snapshot.json"
    body = json.loads(path.read_bytes())["signed"] | changes
    path.write_bytes(canonical_json(sign_body(body, development_key())))


def test_snapshot_issued_in_the_future(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    """The registry was built at FIXED_NOW: up to 5 minutes of clock skew is allowed."""
    skewed = make_client(served_registry.url, clock=lambda: FIXED_NOW - timedelta(minutes=5))
    assert skewed.refresh().snapshot.issued == "2026-01-15T12:00:00Z"
    behind = make_client(served_registry.url, clock=lambda: FIXED_NOW - timedelta(minutes=6))
    with pytest.raises(
        MalformedError, match=r"issued: 2026-01-15T12:00:00Z is more than 5 minutes"
    ):
        behind.refresh()


def test_snapshot_valid_for_too_long(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    _resign_snapshot(served_registry.root, expires="2027-01-16T12:00:00Z")  # 366 days
    assert make_client(served_registry.url).refresh().snapshot.expires.startswith("2027-01-16")
    _resign_snapshot(served_registry.root, expires="2027-01-16T12:00:01Z")
    with pytest.raises(MalformedError, match=r"expires: 2027-01-16T12:00:01Z must be after issued"):
        make_client(served_registry.url).refresh()


def test_snapshot_expiring_before_it_was_issued(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    """Not yet expired by the client's clock, but its window is empty: refused."""
    _resign_snapshot(served_registry.root, expires="2026-01-15T11:59:00Z")
    client = make_client(served_registry.url, clock=lambda: FIXED_NOW - timedelta(minutes=2))
    with pytest.raises(MalformedError, match=r"must be after issued 2026-01-15T12:00:00Z"):
        client.refresh()


def test_snapshot_with_an_impossible_date(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    """Found by scripts/fuzz_client_json.py: a date that fits the pattern but not the
    calendar, behind a valid signature, gave a ValueError traceback."""
    _resign_snapshot(served_registry.root, expires="2026-02-44T12:00:00Z")
    with pytest.raises(MalformedError, match=r"not a real time"):
        make_client(served_registry.url).refresh()


def test_rolled_back_snapshot(
    example_source: Path, tmp_path: Path, make_client: ClientFactory
) -> None:
    with StaticServer(tmp_path / "www") as server:
        build(example_source, server.root, base_url=server.url)
        old = (server.root / "snapshot.json").read_bytes()
        build(example_source, server.root, base_url=server.url, resign=True)
        assert make_client(server.url).refresh().snapshot.version == 2
        (server.root / "snapshot.json").write_bytes(old)  # a stale mirror, or an attacker
        with pytest.raises(RollbackError, match=r"version 1 is older than version 2"):
            make_client(server.url).refresh()


def test_mix_and_match_from_an_older_build(
    example_source: Path, tmp_path: Path, make_client: ClientFactory
) -> None:
    with StaticServer(tmp_path / "www") as server:
        build(example_source, server.root, base_url=server.url)
        apps = server.root / "apps/http-client"
        old_versions, old_app = (
            (apps / "versions.json").read_bytes(),
            (apps / "app.json").read_bytes(),
        )
        release = example_source / "apps/http-client/2.1.0"
        shutil.copytree(example_source / "apps/http-client/2.0.0", release)
        (release / "http-client-2.0.0.tar.gz").rename(release / "http-client-2.1.0.tar.gz")
        build(example_source, server.root, base_url=server.url)
        # The old files served where the new snapshot's are read (their copies).
        served(server.root, "apps/http-client/versions.json").write_bytes(old_versions)
        served(server.root, "apps/http-client/app.json").write_bytes(old_app)
        client = make_client(server.url)
        with pytest.raises(DigestMismatchError, match=r"apps/http-client/versions.json"):
            client.flows_versions("http-client")
        with pytest.raises(DigestMismatchError, match=r"apps/http-client/app.json"):
            client.app("http-client")


def test_endless_snapshot(served_registry: StaticServer, make_client: ClientFactory) -> None:
    with HostileServer(served_registry.root, {"/snapshot.json": endless}) as server:
        client = make_client(server.url, limits=Limits(snapshot=256 * 1024, retries=0))
        with pytest.raises(LengthExceededError, match=r"262,144 bytes"):
            client.refresh()


def test_endless_pinned_file(served_registry: StaticServer, make_client: ClientFactory) -> None:
    routes = {"/" + read_name(served_registry.root, "apps/kv-store/app.json"): endless}
    # Another server over the same folder: tell the client which registry to expect.
    with HostileServer(served_registry.root, routes) as server:
        client = make_client(server.url, expected_registry=served_registry.url)
        with pytest.raises(LengthExceededError, match=r"apps/kv-store/app.json"):
            client.app("kv-store")


def test_endless_artifact_leaves_no_file(
    example_source: Path, tmp_path: Path, make_client: ClientFactory
) -> None:
    root = tmp_path / "www"
    with HostileServer(root, {"/" + ARTIFACT: endless}) as server:
        build(example_source, root, base_url=server.url)
        dest = tmp_path / "dl"
        with pytest.raises(LengthExceededError, match=r"larger than the 201 bytes"):
            make_client(server.url).download("kv-store", "1.1.1", dest)
        assert list(dest.iterdir()) == []


def test_redirect_loop(tmp_path: Path, make_client: ClientFactory) -> None:
    with HostileServer(tmp_path, {"/snapshot.json": redirect_to_self}) as server:
        with pytest.raises(TooManyRedirectsError, match=r"more than 5 redirects"):
            make_client(server.url).refresh()
        assert server.hits["/snapshot.json"] == 6


def test_timeout(tmp_path: Path, make_client: ClientFactory) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(1.5)

    with HostileServer(tmp_path, {"/snapshot.json": slow}) as server:
        client = make_client(server.url, limits=Limits(read_timeout=0.3, retries=0))
        with pytest.raises(RegistryTimeoutError, match=r"did not answer"):
            client.refresh()


def test_transient_errors_are_retried(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    failures = {"left": 2}

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        if failures["left"]:
            failures["left"] -= 1
            handler.send_error(503)
            return
        data = (served_registry.root / "snapshot.json").read_bytes()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    with HostileServer(served_registry.root, {"/snapshot.json": flaky}) as server:
        client = make_client(
            server.url,
            expected_registry=served_registry.url,
            limits=Limits(retries=3, backoff=0.01),
        )
        assert client.refresh().snapshot.version == 1
        assert server.hits["/snapshot.json"] == 3


def test_persistent_server_errors(tmp_path: Path, make_client: ClientFactory) -> None:
    with HostileServer(tmp_path, {"/snapshot.json": lambda h: h.send_error(503)}) as server:
        client = make_client(server.url, limits=Limits(retries=1, backoff=0.01))
        with pytest.raises(ConnectionFailedError, match=r"HTTP 503"):
            client.refresh()


def test_missing_registry(tmp_path: Path, make_client: ClientFactory) -> None:
    with HostileServer(tmp_path) as server, pytest.raises(NotFoundError, match=r"snapshot.json"):
        make_client(server.url).refresh()


def test_snapshot_for_another_registry(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    with (
        HostileServer(served_registry.root) as server,
        pytest.raises(InconsistentMetadataError, match=r"signed for registry"),
    ):
        make_client(server.url).refresh()


def test_development_key_refused_unless_allowed() -> None:
    with pytest.raises(UntrustedKeyConfigError, match=r"DEVELOPMENT"):
        trusted_keys([trusted_keys(allow_dev_key=True).popitem()[1].encode().hex()])
    with pytest.raises(UntrustedKeyConfigError, match=r"no trusted keys"):
        trusted_keys()


def test_slow_retrieval(tmp_path: Path, make_client: ClientFactory) -> None:
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        try:
            for _ in range(40):
                handler.wfile.write(b"{")
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    with HostileServer(tmp_path, {"/snapshot.json": drip}) as server:
        limits = Limits(retries=0, speed_grace=0.3, min_speed=1000)
        with pytest.raises(RegistryTimeoutError, match=r"bytes/s minimum"):
            make_client(server.url, limits=limits).refresh()


def _gzipped(data: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
    body = gzip.compress(data)

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return route


def test_compressed_responses_and_bombs(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    """Limits count decoded bytes: a small gzip body cannot unpack past them."""
    snapshot = (served_registry.root / "snapshot.json").read_bytes()
    routes = {
        "/snapshot.json": _gzipped(snapshot),
        "/" + read_name(served_registry.root, "apps/kv-store/app.json"): _gzipped(b" " * 5 * 10**7),
    }
    with HostileServer(served_registry.root, routes) as server:
        client = make_client(server.url, expected_registry=served_registry.url)
        assert client.refresh().snapshot.version == 1
        with pytest.raises(LengthExceededError, match=r"apps/kv-store/app.json"):
            client.app("kv-store")
