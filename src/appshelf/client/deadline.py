"""Deadlines for a whole HTTP request, at the socket, plus a cap on Retry-After waits.

requests' timeouts bound each socket read, so a server that sends one header byte every
few seconds, or a 16 MiB body at the speed guard's minimum, holds a client for hours.
Here every read of a response (status line, headers, body) first sets the socket's
timeout to what is left of the request's time, and fails once nothing is left: the
headers of one attempt must arrive within `header_timeout`, and the request as a whole
(every attempt, every wait, the body) must end within `total_timeout`.

The request in flight is found through a context variable the transport sets around
each `session.get`, so urllib3's connection pool, connections and Retry (which requests
creates on its own) all see it without being handed it.
"""

from __future__ import annotations

import contextvars
import io
import math
import re
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.client import HTTPResponse
from typing import Any, Self

from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import ConnectionPool, HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NameResolutionError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

_DELAY_SECONDS = re.compile(r"\s*([0-9]+)\s*")
_SLACK = 0.01  # seconds: a socket timeout may end a hair before the deadline it was set to


@dataclass
class RequestClock:
    """The time budget of one request (one URL, all its attempts and redirects)."""

    total_timeout: float
    header_timeout: float
    read_timeout: float
    wait_budget: float  # seconds of Retry-After this request may still sleep
    started: float = field(default_factory=time.monotonic)
    headers_by: float = math.inf  # the current attempt's header deadline
    in_body: bool = False
    expired: str = ""  # "headers" or "total", once a deadline struck
    refused_wait: float | None = None  # a Retry-After longer than the budget left

    def left(self) -> float:
        """Seconds the next read may take; records which deadline ran out at zero."""
        now = time.monotonic()
        total = self.started + self.total_timeout - now
        limit = total if self.in_body else min(total, self.headers_by - now)
        if limit <= _SLACK:
            self.expired = "total" if limit == total else "headers"
        return min(limit, self.read_timeout)

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.started + self.total_timeout

    def take_wait(self, asked: float) -> float:
        """The Retry-After sleep allowed: at most what is left of the budget."""
        wait = min(asked, self.wait_budget)
        self.wait_budget -= wait
        return wait


_CURRENT: contextvars.ContextVar[RequestClock | None] = contextvars.ContextVar(
    "appshelf_request_clock", default=None
)


@contextmanager
def timed(clock: RequestClock) -> Iterator[RequestClock]:
    token = _CURRENT.set(clock)
    try:
        yield clock
    finally:
        _CURRENT.reset(token)


class _DeadlineReader(io.RawIOBase):
    """The response's byte source: each read gets only the time the request has left."""

    def __init__(self, sock: socket.socket, clock: RequestClock):
        super().__init__()
        self._sock = sock
        # A SocketIO keeps the socket open after http.client's connection lets go of it.
        self._raw = sock.makefile("rb", buffering=0)
        self._clock = clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._clock.left()
        if left <= _SLACK:
            raise TimeoutError("the request's deadline passed")
        self._sock.settimeout(left)
        try:
            return self._raw.readinto(buffer)
        except TimeoutError:
            self._clock.left()  # records the deadline that the wait ran into, if any
            raise

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Socket:
    """What http.client's response asks of a socket: `makefile`, here deadline-aware."""

    def __init__(self, sock: socket.socket, clock: RequestClock):
        self.sock = sock
        self.clock = clock

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self.sock, self.clock))


class _Response(HTTPResponse):
    """An http.client response whose reads keep to the current request's deadlines."""

    def __init__(
        self, sock: Any, debuglevel: int = 0, method: str | None = None, url: str | None = None
    ):
        self._clock = _CURRENT.get()
        if self._clock is not None:
            self._clock.headers_by = time.monotonic() + self._clock.header_timeout
            self._clock.in_body = False
            sock = _Socket(sock, self._clock)
        super().__init__(sock, debuglevel, method, url)

    def begin(self) -> None:
        super().begin()
        if self._clock is not None:
            self._clock.in_body = True


class _HTTPConnection(HTTPConnection):
    response_class = _Response


class _HTTPSConnection(HTTPSConnection):
    response_class = _Response


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def _use_deadline_pools(manager: PoolManager) -> PoolManager:
    manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return manager


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter with deadline-aware pools and one fixed TLS context.

    The context decides which CAs are trusted (see tls.py), so requests' own CA
    settings (`verify` strings, REQUESTS_CA_BUNDLE) are not applied on top of it.
    """

    def __init__(self, ssl_context: ssl.SSLContext, max_retries: Retry):
        self._ssl_context = ssl_context
        super().__init__(max_retries=max_retries)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        _use_deadline_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs.setdefault("ssl_context", self._ssl_context)
        return _use_deadline_pools(super().proxy_manager_for(proxy, **proxy_kwargs))

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = True  # the adapter's context carries the trust settings
        return super().send(request, *args, **kwargs)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (delay or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    if match := _DELAY_SECONDS.fullmatch(value):
        return float(match[1])
    if len(value) > 64:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


class DeadlineRetry(Retry):
    """urllib3's Retry, stopping at the request's deadline, for unknown hosts, and for
    Retry-After waits beyond the request's budget (which urllib3 would sleep in full)."""

    def is_exhausted(self) -> bool:
        clock = _CURRENT.get()
        return super().is_exhausted() or (clock is not None and clock.out_of_time())

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: Any = None,
    ) -> Self:
        if isinstance(error, NameResolutionError):  # an unknown host stays unknown
            raise MaxRetryError(_pool, url, error) from error  # type: ignore[arg-type]
        clock = _CURRENT.get()
        if response is not None and clock is not None:
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            if asked is not None and asked > clock.wait_budget:
                clock.refused_wait = asked  # waiting would not help within the budget
                raise MaxRetryError(_pool, url, ResponseError("Retry-After too long"))  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        asked = retry_after_seconds(response.headers.get("Retry-After"))
        if asked is None:
            return None
        clock = _CURRENT.get()
        return None if clock is None else clock.take_wait(asked)
