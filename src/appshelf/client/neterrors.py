"""Name the real cause of a failed request: refused, unknown host, TLS, timeout, ...

requests and urllib3 report most failures as "Max retries exceeded" wrapped around the
cause (and urllib3's connection errors even subclass its timeout errors), so the cause
is dug out and told in words a user can act on, never as raw library text.
"""

from __future__ import annotations

import errno
import http.client
import os
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from appshelf.client.deadline import RequestClock
from appshelf.errors import (
    ConnectionFailedError,
    RegistryTimeoutError,
    TooManyRedirectsError,
    TransportError,
)

if TYPE_CHECKING:
    from appshelf.client.transport import Limits

_TRY_LATER = "try again later"


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _cause(exc: BaseException) -> BaseException:
    """The innermost reason: through requests' wrapper, MaxRetryError and __cause__."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MaxRetryError) and current.reason is not None:
            current = current.reason
        elif isinstance(current, requests.RequestException) and current.args:
            inner = current.args[0]
            if not isinstance(inner, BaseException):
                break
            current = inner
        elif isinstance(current, ProtocolError) and len(current.args) > 1:
            inner = current.args[1]
            if not isinstance(inner, BaseException):
                break
            current = inner
        else:
            break
    return current


def _tls_reason(exc: BaseException) -> str:
    """ "certificate verify failed: self-signed certificate", "wrong version number"..."""
    inner = exc.args[0] if isinstance(exc, SSLError) and exc.args else exc
    if isinstance(inner, ssl.SSLCertVerificationError):
        detail = (inner.verify_message or "").rstrip(".")
        return f"certificate verify failed: {detail}" if detail else "certificate verify failed"
    if isinstance(inner, ssl.SSLError) and inner.reason:
        return str(inner.reason).replace("_", " ").lower()
    if isinstance(inner, ssl.SSLError | ssl.CertificateError) and inner.args:
        return str(inner.args[-1])[:200]
    return "handshake failed"


def _timeout(
    cause: BaseException, url: str, what: str, limits: Limits, clock: RequestClock
) -> RegistryTimeoutError:
    if clock.expired == "headers":
        return RegistryTimeoutError(
            f"{what}: {url} did not send its response headers within "
            f"{clock.header_timeout:g}s; {_TRY_LATER}"
        )
    if clock.expired == "total" or clock.out_of_time():
        return RegistryTimeoutError(
            f"{what}: {url} did not deliver the file within {clock.total_timeout:g}s "
            f"(the limit for one request); {_TRY_LATER}"
        )
    if isinstance(cause, ConnectTimeoutError):
        return RegistryTimeoutError(
            f"{what}: {_host_port(url)} did not accept a connection within "
            f"{limits.connect_timeout:g}s "
            f"(for {url}); {_TRY_LATER}"
        )
    return RegistryTimeoutError(
        f"{what}: {url} did not answer within {limits.read_timeout:g}s; {_TRY_LATER}"
    )


def _connect_error(cause: NewConnectionError, url: str, what: str) -> TransportError:
    where = _host_port(url)
    if isinstance(cause, NameResolutionError):
        host = urlsplit(url).hostname or "?"
        return ConnectionFailedError(
            f"{what}: unknown host {host!r} (its name does not resolve); check the URL {url}"
        )
    reason = cause.__cause__
    if isinstance(reason, ConnectionRefusedError):
        return ConnectionFailedError(
            f"{what}: connection refused by {where} (nothing listens there); check the URL "
            f"{url}, or {_TRY_LATER}"
        )
    if isinstance(reason, OSError) and reason.errno is not None:
        text = os.strerror(reason.errno) if reason.errno in errno.errorcode else "network error"
        return ConnectionFailedError(
            f"{what}: cannot connect to {where} ({text}); check the network"
        )
    return ConnectionFailedError(f"{what}: cannot connect to {where}; check the URL and network")


def without_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a malformed URL, not shown)"
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def describe(
    exc: BaseException,
    url: str,
    what: str,
    limits: Limits,
    clock: RequestClock,
    trust_source: str,
) -> TransportError:
    """The TransportError for a failure of `url`, naming its real cause (never a user
    name or password that the URL carries)."""
    url = without_userinfo(url)
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return TooManyRedirectsError(
            f"{what}: more than {limits.max_redirects} redirects from {url} (a redirect loop?); "
            "check the registry URL"
        )
    cause = _cause(exc)
    timed_out = clock.expired or isinstance(cause, TimeoutError | ReadTimeoutError)
    if timed_out and not isinstance(cause, NewConnectionError):  # urllib3: a "timeout" too
        return _timeout(cause, url, what, limits, clock)
    if isinstance(cause, NewConnectionError):
        return _connect_error(cause, url, what)
    if isinstance(cause, SSLError | ssl.SSLError | ssl.CertificateError):
        return ConnectionFailedError(
            f"{what}: TLS with {_host_port(url)} failed: {_tls_reason(cause)} (trusting "
            f"{trust_source}); if the registry uses a private CA, pass its certificate with "
            "--ca-file or APPSHELF_CA_FILE"
        )
    if isinstance(cause, ProxyError):
        return ConnectionFailedError(f"{what}: the HTTP(S) proxy for {url} cannot be reached")
    if isinstance(cause, http.client.HTTPException | ProtocolError | ConnectionError):
        return ConnectionFailedError(
            f"{what}: {url} broke the connection off or sent a malformed HTTP response; "
            f"{_TRY_LATER}"
        )
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
        return ConnectionFailedError(f"{what}: {url!r} is not a URL this client can fetch")
    return ConnectionFailedError(
        f"{what}: cannot read {url} ({type(cause).__name__}); check the URL and network"
    )
