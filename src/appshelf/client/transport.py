"""The thin I/O layer: read registry files over HTTP(S) or from a local folder.

Transports only move bytes, with hard limits; they never decide whether bytes are
trustworthy (that is `trusted.py`). Every read has a byte limit: pinned files are read
up to their pinned length and refused beyond it, the snapshot (pinned by nothing) up
to `Limits.snapshot`, so an endless or oversized response cannot exhaust memory or disk.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol
from urllib.parse import urljoin

import requests
from urllib3.exceptions import (
    DecodeError,
    HTTPError,
    IncompleteRead,
    ProtocolError,
    ReadTimeoutError,
)

from appshelf import __version__
from appshelf.client.deadline import DeadlineAdapter, DeadlineRetry, RequestClock, timed
from appshelf.client.files import open_regular
from appshelf.client.neterrors import describe
from appshelf.client.tls import tls_trust
from appshelf.errors import (
    ConnectionFailedError,
    LengthExceededError,
    NotFoundError,
    RegistryTimeoutError,
)
from appshelf.formats.layout import url_for

CHUNK = 64 * 1024
MiB = 1024 * 1024
_DECIMAL = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Limits:
    """Size, time and retry limits, so an endless or slow server cannot hang a client.

    Every field has the default docs/client.md lists; pass a changed copy to
    `RegistryClient(limits=...)`.

    Attributes:
        snapshot: Largest snapshot.json accepted, in bytes (pinned by nothing); 16 MiB
            allows roughly 100,000 apps (two pins each).
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait between bytes.
        header_timeout: Seconds for one attempt's status line and headers, however
            slowly they trickle in.
        total_timeout: Seconds for everything of one request: attempts, redirects,
            waits and the whole body.
        max_redirects: Redirects followed per request.
        retries: Retries on connection errors and HTTP 429/500/502/503/504.
        backoff: Seconds before the first retry; doubles per retry (urllib3's
            `backoff_factor`).
        retry_after_budget: Seconds of `Retry-After` sleep honoured per request, in
            all; a server asking for more is reported at once ("try again later").
        min_speed: Bytes per second a download must average after `speed_grace`
            (against slow-retrieval attacks: a byte every 29 s beats any read timeout).
        speed_grace: Seconds before `min_speed` applies.
    """

    snapshot: int = 16 * MiB
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # Whole-request deadlines (see deadline.py).
    header_timeout: float = 30.0
    total_timeout: float = 300.0
    max_redirects: int = 5
    retries: int = 3
    backoff: float = 0.25
    retry_after_budget: float = 30.0
    min_speed: int = 1024
    speed_grace: float = 30.0


class Transport(Protocol):
    """Reads registry files by their path relative to the registry root."""

    description: str

    def chunks(self, relpath: str, limit: int, what: str) -> Iterator[bytes]:
        """Yield the file's bytes; raise `LengthExceededError` once more than `limit` arrive."""
        ...

    def close(self) -> None: ...


def read_all(transport: Transport, relpath: str, limit: int, what: str) -> bytes:
    return b"".join(transport.chunks(relpath, limit, what))


def _too_long(what: str, limit: int) -> LengthExceededError:
    return LengthExceededError(
        f"{what}: the response is larger than the {limit:,} bytes allowed for it; "
        "refusing it (a broken server, or an endless-data attack)"
    )


class HttpTransport:
    """requests + urllib3's Retry: transient failures are retried with backoff, within
    the deadlines of `Limits`; TLS trusts what `tls.tls_trust` picks.

    `url_check` (used by `appshelf import`, whose URLs come from a hostile registry)
    returns why a URL may not be fetched, or None; it is asked of every URL and of
    every redirect target before that target is requested."""

    def __init__(
        self,
        base_url: str,
        limits: Limits | None = None,
        ca_file: Path | str | None = None,
        environ: Mapping[str, str] | None = None,
        url_check: Callable[[str], str | None] | None = None,
    ):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.description = self.base_url
        self.limits = limits or Limits()
        self.trust = tls_trust(ca_file, environ)
        retry = DeadlineRetry(
            total=self.limits.retries,
            connect=self.limits.retries,
            read=self.limits.retries,
            status=self.limits.retries,
            backoff_factor=self.limits.backoff,
            backoff_max=5.0,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        self.session = requests.Session()
        self.session.max_redirects = self.limits.max_redirects
        self.session.headers["User-Agent"] = f"appshelf/{__version__}"
        adapter = DeadlineAdapter(self.trust.context, retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.url_check = url_check
        if url_check is not None:
            self.session.hooks["response"].append(self._check_redirect)

    def _check_redirect(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Refuse a redirect to a URL `url_check` forbids, before it is followed."""
        if self.url_check is None or not response.is_redirect:
            return
        target = urljoin(response.url, response.headers.get("Location", ""))
        problem = self.url_check(target)
        if problem is not None:
            response.close()
            raise ConnectionFailedError(f"{response.url} redirects to {target!r}, which {problem}")

    def _checked(self, url: str, what: str) -> None:
        if not url.startswith(("https://", "http://")):
            raise ConnectionFailedError(f"{what}: {url!r} is not an http(s) URL")
        problem = self.url_check(url) if self.url_check is not None else None
        if problem is not None:
            raise ConnectionFailedError(f"{what}: {url} {problem}")

    def _clock(self) -> RequestClock:
        limits = self.limits
        return RequestClock(
            total_timeout=limits.total_timeout,
            header_timeout=limits.header_timeout,
            read_timeout=limits.read_timeout,
            wait_budget=limits.retry_after_budget,
        )

    def head_length(self, url: str, what: str) -> int | None:
        """The Content-Length a HEAD request for `url` reports (redirects followed), or
        None when the server gives none or does not answer HEAD (405, 501).

        Raises:
            NotFoundError: HTTP 404 or 410.
            ConnectionFailedError: another status, a refused URL or redirect, a network error.
            RegistryTimeoutError: a deadline of `Limits` passed.
        """
        self._checked(url, what)
        clock = self._clock()
        timeout = (self.limits.connect_timeout, self.limits.read_timeout)
        try:
            with timed(clock):
                response = self.session.head(url, timeout=timeout, allow_redirects=True)
        except (requests.exceptions.RequestException, HTTPError, HTTPException) as exc:
            raise describe(exc, url, what, self.limits, clock, self.trust.source) from None
        except (ValueError, UnicodeError):
            raise ConnectionFailedError(
                f"{what}: {url!r} is not a URL this client can fetch"
            ) from None
        with response:
            if response.status_code in (405, 501):
                return None
            if response.status_code != 200:
                raise self._status_error(response, url, what, clock)
            declared = response.headers.get("Content-Length", "")
            return int(declared) if _DECIMAL.fullmatch(declared) else None

    def chunks(self, relpath: str, limit: int, what: str) -> Iterator[bytes]:
        return self.url_chunks(url_for(self.base_url, relpath), limit, what)

    def url_chunks(self, url: str, limit: int, what: str) -> Iterator[bytes]:
        self._checked(url, what)
        limits = self.limits
        clock = self._clock()
        timeout = (limits.connect_timeout, limits.read_timeout)
        try:
            with timed(clock):
                response = self.session.get(url, stream=True, timeout=timeout)
        except (requests.exceptions.RequestException, HTTPError, HTTPException) as exc:
            raise describe(exc, url, what, limits, clock, self.trust.source) from None
        except (ValueError, UnicodeError):  # a URL (or redirect target) requests cannot use
            raise ConnectionFailedError(
                f"{what}: {url!r} is not a URL this client can fetch"
            ) from None
        return self._body(response, url, limit, what, clock)

    def _status_error(
        self, response: requests.Response, url: str, what: str, clock: RequestClock
    ) -> Exception:
        status = response.status_code
        if status in (404, 410):
            return NotFoundError(f"{what}: not found at {url} (HTTP {status})")
        if clock.refused_wait is not None:
            return ConnectionFailedError(
                f"{what}: {url} answered HTTP {status} and asks to be retried after "
                f"{clock.refused_wait:.0f}s, more than the {self.limits.retry_after_budget:g}s "
                "this client waits; try again later"
            )
        return ConnectionFailedError(
            f"{what}: {url} answered HTTP {status} "
            f"(after {self.limits.retries} retries); try again later"
        )

    def _body(
        self, response: requests.Response, url: str, limit: int, what: str, clock: RequestClock
    ) -> Iterator[bytes]:
        with response:
            if response.status_code != 200:
                raise self._status_error(response, url, what, clock)
            declared = response.headers.get("Content-Length", "")
            if _DECIMAL.fullmatch(declared) and int(declared) > limit:
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
            except (HTTPError, OSError, HTTPException) as exc:
                if isinstance(exc, ReadTimeoutError | TimeoutError) or clock.expired:
                    raise describe(exc, url, what, self.limits, clock, self.trust.source) from None
                raise ConnectionFailedError(
                    f"{what}: the download from {url} broke off ({_broken(exc)}); try again later"
                ) from None

    def _check_speed(self, received: int, started: float, url: str, what: str) -> None:
        elapsed = time.monotonic() - started
        if elapsed > self.limits.speed_grace and received / elapsed < self.limits.min_speed:
            raise RegistryTimeoutError(
                f"{what}: {url} sends {received / elapsed:.0f} bytes/s, below the "
                f"{self.limits.min_speed} bytes/s minimum (a slow-retrieval attack, or a "
                "very bad connection); try again later"
            )

    def close(self) -> None:
        self.session.close()


def _broken(exc: BaseException) -> str:
    if isinstance(exc, DecodeError):
        return "its Content-Encoding does not decode"
    if isinstance(exc, ProtocolError | IncompleteRead | HTTPException):
        return "the connection closed early, or the body is malformed"
    return "connection lost"


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
            raise NotFoundError(f"{what}: {relpath!r} is not a path inside the registry")
        path = (self.root / relpath).resolve()
        if not path.is_relative_to(self.root):
            raise NotFoundError(f"{what}: {relpath!r} leads outside the registry folder (symlink?)")
        return path

    def chunks(self, relpath: str, limit: int, what: str) -> Iterator[bytes]:
        path = self.path_of(relpath, what)
        try:
            handle = open_regular(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"{what}: {path} does not exist") from None
        except OSError as exc:
            raise ConnectionFailedError(f"{what}: cannot read {path} ({exc.strerror})") from None
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
