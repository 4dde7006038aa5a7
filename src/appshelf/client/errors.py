"""Client exceptions, named after who is at fault.

- `RepositoryError`: the registry served something that fails verification. Do not
  use it; tell the registry's operators (or suspect an attack).
- `TransportError`: the registry could not be read (missing file, timeout, network).
  Retry later or check the URL.
- `ClientUsageError`: the request itself cannot be met (bad range, unknown app,
  unresolvable requirements, untrusted keys). Change the request.

All derive from `AppshelfError`, so the CLI prints `Error: ...` and exits 1.
"""

from __future__ import annotations

from appshelf.errors import AppshelfError
from appshelf.versions import InvalidRange, InvalidVersion


class RepositoryError(AppshelfError):
    """The registry's content failed verification: do not trust it."""


class BadSignature(RepositoryError):
    """A signed document's signature does not verify (or its envelope is broken)."""


class UnknownKey(RepositoryError):
    """A document is signed only by keys the client does not trust."""


class Expired(RepositoryError):
    """The snapshot's expiry time has passed (a freeze attack, or an unmaintained registry)."""


class Rollback(RepositoryError):
    """The snapshot is older than one this client has already seen."""


class DigestMismatch(RepositoryError):
    """A file's SHA-256 or length differs from the value pinned by a verified document."""


class LengthExceeded(RepositoryError):
    """A response is larger than its pinned length or the limit for its kind of file."""


class Malformed(RepositoryError):
    """A verified file does not have the expected structure."""


class InconsistentMetadata(RepositoryError):
    """Two verified documents disagree (a manifest and app.json, a wrong registry binding)."""


class LogInconsistent(RepositoryError):
    """The release log is rewritten or forked, or disagrees with the documents it backs."""


class LockMismatch(RepositoryError):
    """The registry no longer serves what a lock file recorded."""


class TransportError(AppshelfError):
    """A file could not be read from the registry."""


class NotFound(TransportError):
    """The registry has no such file (HTTP 404 or a missing local file)."""


class Timeout(TransportError):
    """The registry did not answer in time."""


class TooManyRedirects(TransportError):
    """The registry redirected more often than allowed (or in a loop)."""


class ConnectionFailed(TransportError):
    """The connection failed, or the server kept answering with errors."""


class ClientUsageError(AppshelfError):
    """The request cannot be met as given."""


class UnknownApp(ClientUsageError):
    """The registry has no app with this key."""


class UnknownVersion(ClientUsageError):
    """The app has no such version."""


class UnknownChannel(ClientUsageError):
    """The app has no channel (dist-tag) of this name."""


class ResolutionImpossible(ClientUsageError):
    """No set of versions satisfies every requirement; the message explains the clash."""


class UntrustedKeyConfig(ClientUsageError):
    """The trusted keys given are missing, malformed, or include the development key."""


__all__ = [
    "BadSignature",
    "ClientUsageError",
    "ConnectionFailed",
    "DigestMismatch",
    "Expired",
    "InconsistentMetadata",
    "InvalidRange",
    "InvalidVersion",
    "LengthExceeded",
    "LockMismatch",
    "LogInconsistent",
    "Malformed",
    "NotFound",
    "RepositoryError",
    "ResolutionImpossible",
    "Rollback",
    "Timeout",
    "TooManyRedirects",
    "TransportError",
    "UnknownApp",
    "UnknownKey",
    "UnknownVersion",
    "UntrustedKeyConfig",
]
