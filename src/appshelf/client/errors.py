"""The client's exceptions, named after who is at fault (defined in `appshelf.errors`).

- `RepositoryError`: the registry served something that fails verification. Do not
  use it; tell the registry's operators (or suspect an attack).
- `TransportError`: the registry could not be read (missing file, timeout, network).
  Retry later or check the URL.
- `ClientUsageError`: the request itself cannot be met (bad range, unknown app,
  unresolvable requirements, untrusted keys). Change the request.

All derive from `AppshelfError`, so the CLI prints `Error: ...` and exits 1.

The names before every exception ended in `Error` (`Malformed`, `Rollback`, ...) still
import from here and from `appshelf.client`, with a DeprecationWarning; docs/client.md
lists them.
"""

from __future__ import annotations

import warnings

from appshelf.errors import (
    AppshelfError,
    BadSignatureError,
    ClientUsageError,
    ConfigError,
    ConnectionFailedError,
    DigestMismatchError,
    ExpiredError,
    InconsistentMetadataError,
    InvalidRangeError,
    InvalidVersionError,
    LengthExceededError,
    LockMismatchError,
    LogInconsistentError,
    MalformedError,
    NotFoundError,
    PublisherMissingError,
    RegistryTimeoutError,
    RepositoryError,
    ResolutionImpossibleError,
    RollbackError,
    StateError,
    TooManyRedirectsError,
    TransportError,
    UnknownAppError,
    UnknownChannelError,
    UnknownVersionError,
    UntrustedKeyConfigError,
    UntrustedSignatureError,
    VerificationFailedError,
)

DEPRECATED: dict[str, type[AppshelfError]] = {
    "BadSignature": BadSignatureError,
    "ConnectionFailed": ConnectionFailedError,
    "DigestMismatch": DigestMismatchError,
    "Expired": ExpiredError,
    "InconsistentMetadata": InconsistentMetadataError,
    "InvalidRange": InvalidRangeError,
    "InvalidVersion": InvalidVersionError,
    "LengthExceeded": LengthExceededError,
    "LockMismatch": LockMismatchError,
    "LogInconsistent": LogInconsistentError,
    "Malformed": MalformedError,
    "NotFound": NotFoundError,
    "PublisherMissing": PublisherMissingError,
    "ResolutionImpossible": ResolutionImpossibleError,
    "Rollback": RollbackError,
    "Timeout": RegistryTimeoutError,
    "TooManyRedirects": TooManyRedirectsError,
    "UnknownApp": UnknownAppError,
    "UnknownChannel": UnknownChannelError,
    "UnknownKey": UntrustedSignatureError,
    "UnknownVersion": UnknownVersionError,
    "UntrustedKeyConfig": UntrustedKeyConfigError,
    "VerificationFailed": VerificationFailedError,
}
"""Old name -> the class it now names (the same class: `except Malformed` still catches)."""


def deprecated_alias(module: str, name: str) -> type[AppshelfError]:
    """The class an old name stands for, with a warning that names its replacement.

    Args:
        module: The module the old name was imported from, for the message.
        name: The attribute asked for.

    Returns:
        The exception class the old name now stands for.

    Raises:
        AttributeError: `name` is not an old exception name (what Python expects from a
            module's `__getattr__`).
    """
    cls = DEPRECATED.get(name)
    if cls is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(
        f"{module}.{name} is deprecated; use appshelf.errors.{cls.__name__}",
        DeprecationWarning,
        stacklevel=3,
    )
    return cls


def __getattr__(name: str) -> type[AppshelfError]:
    return deprecated_alias(__name__, name)


__all__ = [
    "BadSignatureError",
    "ClientUsageError",
    "ConfigError",
    "ConnectionFailedError",
    "DigestMismatchError",
    "ExpiredError",
    "InconsistentMetadataError",
    "InvalidRangeError",
    "InvalidVersionError",
    "LengthExceededError",
    "LockMismatchError",
    "LogInconsistentError",
    "MalformedError",
    "NotFoundError",
    "PublisherMissingError",
    "RegistryTimeoutError",
    "RepositoryError",
    "ResolutionImpossibleError",
    "RollbackError",
    "StateError",
    "TooManyRedirectsError",
    "TransportError",
    "UnknownAppError",
    "UnknownChannelError",
    "UnknownVersionError",
    "UntrustedKeyConfigError",
    "UntrustedSignatureError",
    "VerificationFailedError",
]
