"""Which characters a source field may hold, and which URLs an artifact may come from.

Names are shown on one line in the site, the feed and clients: a control character
breaks feed.xml (XML 1.0 forbids most C0 controls) and a bidirectional-formatting
character (U+202E RIGHT-TO-LEFT OVERRIDE) lets `gpj.exe` read as `exe.jpg`. Free text
(descriptions, notes) keeps line breaks and tabs but refuses every other control and
the bidi overrides, embeddings and isolates.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import SplitResult, unquote, urlsplit

_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"  # embeddings, overrides, isolates
_BIDI_MARKS = "\u200e\u200f\u061c"
# C0, DEL, C1, bidi, line/paragraph separators, and the XML non-characters.
_NAME_FORBIDDEN = re.compile(
    f"[\x00-\x1f\x7f-\x9f{_BIDI_CONTROLS}{_BIDI_MARKS}\u2028\u2029\ufffe\uffff]"
)
_TEXT_FORBIDDEN = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_CONTROLS}\ufffe\uffff]")


def _refuse(match: re.Match[str] | None, what: str) -> None:
    if match is not None:
        raise ValueError(
            f"must not contain {what} (found U+{ord(match.group()):04X} at position "
            f"{match.start()})"
        )


def name_text(value: str) -> str:
    """A name-like field: one line, no control or bidirectional-formatting character."""
    _refuse(_NAME_FORBIDDEN.search(value), "control, line-break or bidirectional characters")
    return value


def free_text(value: str) -> str:
    """Descriptions and notes: line breaks and tabs allowed, other controls and bidi
    overrides not."""
    _refuse(_TEXT_FORBIDDEN.search(value), "control characters or bidirectional overrides")
    return value


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.?\Z")
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c|00)", re.IGNORECASE)
# Names that only ever mean this machine, its network, or a cloud metadata service.
_INTERNAL_NAMES = ("localhost", "metadata.google.internal", "metadata.goog")
_INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".home.arpa")
_METADATA_IPS = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


def artifact_url_problem(url: str) -> str | None:
    """Why `url` (already known to start with https://) cannot be an artifact URL: it
    must name a host, carry no credentials, and have no dot segments or encoded
    separators that a server or CDN might resolve differently from a client."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if "@" in parts.netloc:
        return "must not contain a user name or password"
    if not parts.hostname or not (_HOST_RE.match(parts.hostname) or ":" in parts.hostname):
        return "must name a host (an ASCII host name or IP address; use punycode for IDN)"
    if port == 0:
        return "must not use port 0"
    try:
        _ip_literal(parts.hostname)
    except ValueError:
        return f"has a host that is neither a name nor an IP address: {parts.hostname!r}"
    if "\\" in url or _ENCODED_SEPARATOR.search(parts.path):
        return "must not contain backslashes or encoded separators (%2F, %5C, %00)"
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        return "must not contain . or .. path segments (also as %2e)"
    return None


def internal_host_problem(url: str) -> str | None:
    """Why `url` points at this machine, a private network or a metadata service (a
    client fetching it could be made to reach inside its own network), or None."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    if host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES):
        return f"points at the internal host name {host!r}"
    try:
        address = _ip_literal(host)
    except ValueError:
        return f"has a host that is neither a name nor an IP address: {host!r}"
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA_IPS or not address.is_global or address.is_multicast:
        return f"points at the non-public address {address}"
    return None


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host literal means, counting the legacy IPv4 spellings that
    resolvers still accept (`2130706433`, `0x7f.1`, `127.1` are all 127.0.0.1). None
    for a host name; ValueError for numbers no resolver reads the same way."""
    if ":" in host:
        return ipaddress.IPv6Address(host.split("%", 1)[0])
    last = host.rstrip(".").rsplit(".", 1)[-1]
    if not last or not (last.isdigit() or last.startswith("0x")):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError:
        raise ValueError(host) from None


def url_without_userinfo(url: str) -> str:
    """`url` with any user name and password removed, for messages."""
    try:
        parts: SplitResult = urlsplit(url)
    except ValueError:
        return "(a malformed URL, not shown)" if "@" in url else url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
