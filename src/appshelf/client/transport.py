"""The thin I/O layer: read registry files over HTTP(S) or from a local folder.

Transports only move bytes, with hard limits; they never decide whether bytes are
trustworthy (that is `trusted.py`). Every read has a byte limit: pinned files are read
up to their pinned length and refused beyond it, the snapshot (pinned by nothing) up
to `Limits.snapshot`, so an endless or oversized response cannot exhaust memory or disk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, ReadTimeoutError
from urllib3.util.retry import Retry

from appshelf import __version__
from appshelf.build.outputs import url_for
from appshelf.client.errors import (
    ConnectionFailed,
    LengthExceeded,
    NotFound,
    Timeout,
    TooManyRedirects,
)
from appshelf.client.files import open_regular

CHUNK = 64 * 1024
MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Network limits. The snapshot cap allows roughly 100,000 apps (two pins each)."""

    snapshot: int = 16 * MiB
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_redirects: int = 5
    retries: int = 3
    backoff: float = 0.25  # seconds; doubles per retry (urllib3 backoff_factor)
    # Slow-retrieval attacks (a byte every 29 s beats any read timeout): after a grace
    # period, a download must average at least this many bytes per second.
    min_speed: int = 1024
    speed_grace: float = 30.0


class Transport(Protocol):
    """Reads registry files by their path relative to the registry root."""

    description: str

    def chunks(self, relpath: str, limit: int, what: str) -> Iterator[bytes]:
        """Yield the file's bytes; raise `LengthExceeded` once more than `limit` arrive."""
        ...

    def close(self) -> None: ...


def read_all(transport: Transport, relpath: str, limit: int, what: str) -> bytes:
    return b"".join(transport.chunks(relpath, limit, what))


def _too_long(what: str, limit: int) -> LengthExceeded:
    return LengthExceeded(
        f"{what}: the response is larger than the {limit:,} bytes allowed for it; "
        "refusing it (a broken server, or an endless-data attack)"
    )


class HttpTransport:
    """requests + urllib3's Retry: transient failures are retried with backoff."""

    def __init__(self, base_url: str, limits: Limits | None = None):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.description = self.base_url
        self.limits = limits or Limits()
        retry = Retry(
            total=self.limits.retries,
            connect=self.limits.retries,
            read=self.limits.retries,
            status=self.limits.retries,
            backoff_factor=self.limits.backoff,
            backoff_max=5.0,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        self.session = requests.Session()
        self.session.max_redirects = self.limits.max_redirects
        self.session.headers["User-Agent"] = f"appshelf/{__version__}"
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def chunks(self, relpath: str, limit: int, what: str) -> Iterator[bytes]:
        return self.url_chunks(url_for(self.base_url, relpath), limit, what)

    def url_chunks(self, url: str, limit: int, what: str) -> Iterator[bytes]:
        if not url.startswith(("https://", "http://")):
            raise ConnectionFailed(f"{what}: {url!r} is not an http(s) URL")
        timeout = (self.limits.connect_timeout, self.limits.read_timeout)
        try:
            response = self.session.get(url, stream=True, timeout=timeout)
        except requests.exceptions.RequestException as exc:
            raise _transport_error(exc, url, what, self.limits) from None
        return self._body(response, url, limit, what)

    def _body(
        self, response: requests.Response, url: str, limit: int, what: str
    ) -> Iterator[bytes]:
        with response:
            if response.status_code in (404, 410):
                raise NotFound(f"{what}: not found at {url} (HTTP {response.status_code})")
            if response.status_code != 200:
                raise ConnectionFailed(
                    f"{what}: {url} answered HTTP {response.status_code} "
                    f"(after {self.limits.retries} retries); try again later"
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_long(what, limit)
            received = 0
            started = time.monotonic()
            raw = response.raw
            try:
                # read1 returns whatever has arrived, so limits and the speed check apply
                # as bytes trickle in (iter_content would block until a chunk is full).
                while chunk := raw.read1(CHUNK, decode_content=True):
                    received += len(chunk)
                    if received > limit:
                        raise _too_long(what, limit)
                    self._check_speed(received, started, url, what)
                    yield chunk
            except ReadTimeoutError:
                raise _transport_error(
                    requests.exceptions.ReadTimeout(), url, what, self.limits
                ) from None
            except (HTTPError, OSError) as exc:
                raise ConnectionFailed(
                    f"{what}: the download from {url} broke off ({type(exc).__name__}); "
                    "try again later"
                ) from None

    def _check_speed(self, received: int, started: float, url: str, what: str) -> None:
        elapsed = time.monotonic() - started
        if elapsed > self.limits.speed_grace and received / elapsed < self.limits.min_speed:
            raise Timeout(
                f"{what}: {url} sends {received / elapsed:.0f} bytes/s, below the "
                f"{self.limits.min_speed} bytes/s minimum (a slow-retrieval attack, or a "
                "very bad connection); try again later"
            )

    def close(self) -> None:
        self.session.close()


def _transport_error(
    exc: requests.exceptions.RequestException, url: str, what: str, limits: Limits
) -> Exception:
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return TooManyRedirects(
            f"{what}: more than {limits.max_redirects} redirects from {url} "
            "(a redirect loop?); check the registry URL"
        )
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, MaxRetryError):  # retries used up: the last failure is the reason
        inner = inner.reason
    timed_out = isinstance(exc, requests.exceptions.Timeout) or isinstance(
        inner, ReadTimeoutError | ConnectTimeoutError
    )
    if timed_out:
        return Timeout(
            f"{what}: {url} did not answer within {limits.connect_timeout:g}s (connect) / "
            f"{limits.read_timeout:g}s (read); try again later"
        )
    reason = type(exc).__name__
    return ConnectionFailed(f"{what}: cannot read {url} ({reason}); check the URL and network")


class FolderTransport:
    """A registry on disk (a build output or a mirror); paths cannot leave the folder."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.description = str(self.root)

    def path_of(self, relpath: str, what: str) -> Path:
        parts = PurePosixPath(relpath).parts
        if (
            not relpath
            or relpath.startswith("/")
            or "\\" in relpath
            or "\x00" in relpath
            or any(part in ("", ".", "..") for part in parts)
        ):
            raise NotFound(f"{what}: {relpath!r} is not a path inside the registry")
        path = (self.root / relpath).resolve()
        if not path.is_relative_to(self.root):
            raise NotFound(f"{what}: {relpath!r} leads outside the registry folder (symlink?)")
        return path

    def chunks(self, relpath: str, limit: int, what: str) -> Iterator[bytes]:
        path = self.path_of(relpath, what)
        try:
            handle = open_regular(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"{what}: {path} does not exist") from None
        except OSError as exc:
            raise ConnectionFailed(f"{what}: cannot read {path} ({exc.strerror})") from None
        return _file_chunks(handle, limit, what)

    def files_under(self, prefix: str) -> list[str]:
        """Every regular file (and symlink) below `prefix`, as registry-relative paths."""
        base = self.root / prefix
        found: list[str] = []
        for folder, dirs, files in os.walk(base):
            dirs.sort()
            for name in sorted(files):
                found.append((Path(folder) / name).relative_to(self.root).as_posix())
        return found

    def close(self) -> None:
        pass


def _file_chunks(handle: BinaryIO, limit: int, what: str) -> Iterator[bytes]:
    with handle:
        received = 0
        while chunk := handle.read(CHUNK):
            received += len(chunk)
            if received > limit:
                raise _too_long(what, limit)
            yield chunk
