"""Hostile and broken servers: every request ends in bounded time, with its real cause named."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.client import Limits
from appshelf.client.tls import CA_ENV_VARS
from appshelf.deploy.http import HttpSource
from appshelf.errors import (
    BadSignatureError,
    ClientUsageError,
    ConnectionFailedError,
    RegistryTimeoutError,
    RemoteAccessError,
)
from conftest import StaticServer, build

from .conftest import ClientFactory, HostileServer, Route

pytestmark = pytest.mark.timeout(60)


def _drip_headers(handler: BaseHTTPRequestHandler) -> None:
    """A status line, then one header byte every 0.5 s: each read is quick, the whole not."""
    try:
        handler.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
        handler.wfile.flush()
        for _ in range(240):
            time.sleep(0.5)
            handler.wfile.write(b"a")
            handler.wfile.flush()
    except OSError:
        pass


def test_trickling_headers_hit_the_header_deadline(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    with HostileServer(tmp_path, {"/snapshot.json": _drip_headers}) as server:
        limits = Limits(header_timeout=1.5, read_timeout=5, retries=1, backoff=0.01)
        with pytest.raises(
            RegistryTimeoutError, match=r"did not send its response headers within 1.5s"
        ):
            make_client(server.url, limits=limits).refresh()
        assert server.hits["/snapshot.json"] == 2  # the retry got its own header deadline


def test_a_slow_body_hits_the_total_deadline(tmp_path: Path, make_client: ClientFactory) -> None:
    """Fast enough for the speed guard, but it would take an hour: the request ends."""

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        try:
            for _ in range(400):
                handler.wfile.write(b" " * 10)
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    with HostileServer(tmp_path, {"/snapshot.json": drip}) as server:
        limits = Limits(total_timeout=2, min_speed=1, retries=0)
        with pytest.raises(RegistryTimeoutError, match=r"did not deliver the file within 2s"):
            make_client(server.url, limits=limits).refresh()


def _unavailable(retry_after: str) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(503)
        handler.send_header("Retry-After", retry_after)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


@pytest.mark.parametrize("asked", ["3600", "99999999999999999999999"])
def test_a_long_retry_after_is_not_slept(
    tmp_path: Path, make_client: ClientFactory, asked: str
) -> None:
    with HostileServer(tmp_path, {"/snapshot.json": _unavailable(asked)}) as server:
        client = make_client(server.url, limits=Limits(retries=3, backoff=0.01))
        with pytest.raises(
            ConnectionFailedError,
            match=r"HTTP 503 and asks to be retried after \d+s, more than the 30s this client waits",
        ):
            client.refresh()
        assert server.hits["/snapshot.json"] == 1


def test_retry_after_waits_share_one_budget(tmp_path: Path, make_client: ClientFactory) -> None:
    with HostileServer(tmp_path, {"/snapshot.json": _unavailable("1")}) as server:
        limits = Limits(retries=5, backoff=0.01, retry_after_budget=2.5)
        with pytest.raises(ConnectionFailedError, match=r"retried after 1s, more than the 2.5s"):
            make_client(server.url, limits=limits).refresh()
        assert server.hits["/snapshot.json"] == 3  # waited 1 s twice, then 0.5 s was left


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_named(make_client: ClientFactory) -> None:
    port = _free_port()
    with pytest.raises(ConnectionFailedError, match=rf"connection refused by 127.0.0.1:{port}"):
        make_client(f"http://127.0.0.1:{port}/").refresh()


def test_unknown_host_is_named(make_client: ClientFactory) -> None:
    with pytest.raises(ConnectionFailedError, match=r"unknown host 'appshelf-test.invalid'"):
        make_client("http://appshelf-test.invalid/").refresh()


def test_a_garbled_content_length(tmp_path: Path, make_client: ClientFactory) -> None:
    """ "²" passes str.isdigit() but not int(): the header is ignored, the body still read."""

    def garbled(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "²")
        handler.end_headers()
        handler.wfile.write(b"{}")

    with (
        HostileServer(tmp_path, {"/snapshot.json": garbled}) as server,
        pytest.raises(BadSignatureError, match=r"expected 'signed'"),
    ):
        make_client(server.url, limits=Limits(retries=0)).refresh()


def test_previous_url_errors_name_the_cause() -> None:
    port = _free_port()
    with pytest.raises(RemoteAccessError, match=rf"connection refused by 127.0.0.1:{port}") as info:
        HttpSource(f"http://127.0.0.1:{port}/").read("snapshot.json", 1 << 20)
    assert "Max retries" not in str(info.value)


# -- TLS with a private CA ----------------------------------------------------------------


@pytest.fixture(scope="module")
def private_ca() -> trustme.CA:
    return trustme.CA()


class TlsServer(StaticServer):
    def __init__(self, root: Path, cert: trustme.LeafCert):
        super().__init__(root)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.port}/"


@pytest.fixture
def tls_registry(
    example_source: Path, tmp_path: Path, private_ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TlsServer]:
    """The example registry over https, its certificate issued by a CA nobody trusts."""
    for name in CA_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "tls"
    root.mkdir()
    with TlsServer(root, private_ca.issue_cert("127.0.0.1")) as server:
        build(example_source, root, base_url=server.url, now=datetime.now(UTC))
        yield server


@pytest.fixture
def ca_pem(private_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    private_ca.cert_pem.write_to_path(str(path))
    return path


def test_tls_without_the_ca(tls_registry: TlsServer, make_client: ClientFactory) -> None:
    with pytest.raises(
        ConnectionFailedError,
        match=r"TLS with 127.0.0.1:\d+ failed: certificate verify failed: unable to get local "
        r"issuer certificate \(trusting the system trust store\); .* --ca-file",
    ):
        make_client(tls_registry.url).refresh()


def test_tls_with_the_ca(
    tls_registry: TlsServer,
    make_client: ClientFactory,
    ca_pem: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refreshed(**options: object) -> int:
        client = make_client(tls_registry.url, **options)
        client.clock = lambda: datetime.now(UTC)  # the registry was signed just now
        return client.refresh().snapshot.version

    assert refreshed(ca_file=ca_pem) == 1
    for name in ("APPSHELF_CA_FILE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.setenv(name, str(ca_pem))
        assert refreshed() == 1
        monkeypatch.delenv(name)


def test_tls_hostname_mismatch(
    tmp_path: Path,
    private_ca: trustme.CA,
    make_client: ClientFactory,
    ca_pem: Path,
) -> None:
    with (
        TlsServer(tmp_path, private_ca.issue_cert("registry.example")) as server,
        pytest.raises(
            ConnectionFailedError, match=r"certificate verify failed: IP address mismatch"
        ),
    ):
        make_client(server.url, ca_file=ca_pem).refresh()


def test_a_ca_file_that_is_not_one(tmp_path: Path, make_client: ClientFactory) -> None:
    (tmp_path / "not-a-ca.pem").write_text("hello")
    with pytest.raises(ClientUsageError, match=r"not-a-ca.pem: not a PEM file of CA certificates"):
        make_client("https://127.0.0.1:1/", ca_file=tmp_path / "not-a-ca.pem")


def test_cli_ca_file_option_and_env(
    tls_registry: TlsServer, ca_pem: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPSHELF_STATE_DIR", str(tmp_path / "state"))
    reg = ["-r", tls_registry.url, "--allow-dev-key"]
    runner = CliRunner()
    result = runner.invoke(main, ["search", *reg, "kv"])
    assert result.exit_code == 1 and "certificate verify failed" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(main, ["search", *reg, "--ca-file", str(ca_pem), "kv"])
    assert result.exit_code == 0 and "kv-store" in result.output, result.output
    result = runner.invoke(main, ["search", *reg, "kv"], env={"APPSHELF_CA_FILE": str(ca_pem)})
    assert result.exit_code == 0 and "kv-store" in result.output, result.output
    result = runner.invoke(
        main, ["verify", tls_registry.url, "--allow-dev-key", "--ca-file", str(ca_pem)]
    )
    assert result.exit_code == 0, result.output
