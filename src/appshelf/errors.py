"""Every appshelf exception, in one module, under two roots named after who must act.

Every exception the user can act on derives from `AppshelfError`. The CLI prints its
message as one `Error: ...` block and exits with status 1; anything else that escapes is
a bug and keeps its traceback. Every class name ends in `Error`. This module imports
nothing from appshelf, so every layer (formats up to the CLI) may raise from it.

Below `AppshelfError`, as python-tuf separates `RepositoryError` from `DownloadError`:

- `DataError`: what was read -- a registry, a built or published site, a release log, a
  signed document, a bundle -- does not verify or does not have the form docs/spec.md
  requires. Do not use it; rebuild it or tell whoever publishes it.
- `RequestError`: what the user asked for or provided (the source tree, an option, a
  file, a version range), or the environment the command runs in (network, bucket,
  folders, state), stops the command. Change the request or fix the environment.

```text
AppshelfError
├── DataError
│   ├── RepositoryError                 the client: served content fails verification
│   │   ├── BadSignatureError
│   │   ├── UntrustedSignatureError
│   │   ├── ExpiredError
│   │   ├── RollbackError
│   │   ├── DigestMismatchError
│   │   ├── LengthExceededError
│   │   ├── MalformedError
│   │   ├── InconsistentMetadataError
│   │   ├── LogInconsistentError
│   │   ├── LockMismatchError
│   │   └── PublisherMissingError
│   ├── VerificationFailedError         `appshelf verify` found problems
│   ├── BuiltSiteError                  deploy: the built site is incomplete
│   ├── IngestedError, InboxError       deploy: the bucket's records or inbox
│   ├── SignatureError                  signing: envelopes
│   │   └── UnknownKeyError
│   ├── StatementError                  signing: release statements
│   │   └── UnknownSignerError
│   ├── CheckpointError, LogError       signing: the release log
│   └── JsonRejectedError, CanonicalJSONError, DidKeyError, BundleError,
│       LogFormatError, ProofError      formats (also ValueError)
└── RequestError
    ├── SourceTreeError                 every problem of the source tree at once
    ├── InputFileError, IconError, TemplateError   one source file (the caller locates it)
    ├── SigningKeyError, OutputError
    ├── SiteBuildError                  a site template cannot be rendered
    ├── PublishError, PublisherError    writing or signing a version
    ├── FlowsImportError                `appshelf import` and `sync`
    ├── InvalidRangeError, InvalidVersionError
    ├── ClientUsageError                the client's request cannot be met
    │   ├── UnknownAppError, UnknownVersionError, UnknownChannelError
    │   ├── ResolutionImpossibleError, UntrustedKeyConfigError
    │   └── ConfigError
    ├── StateError                      the client's state folder
    ├── TransportError                  the registry could not be read; retry
    │   ├── NotFoundError, RegistryTimeoutError
    │   └── TooManyRedirectsError, ConnectionFailedError
    └── RemoteAccessError, DeployRefusedError, DeployConflictError   deploy
```

The format errors also derive from `ValueError`, so parsers and pydantic validators that
expect one keep working. The client's old names (`Malformed`, `Rollback`, ...) remain as
deprecated aliases in `appshelf.client.errors` (docs/client.md lists them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class AppshelfError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""


class DataError(AppshelfError):
    """What was read does not verify or does not have the required form: do not use it."""


class RequestError(AppshelfError):
    """What was asked or provided, or the environment, stops the command: change it."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input, located by file (relative path) and field.

    Attributes:
        path: The file, relative to the source tree's root.
        field: Where in the file (a JSON path), or empty for the whole file.
        message: What is wrong and what to do.
    """

    path: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else self.path
        return f"{where}: {self.message}"


# --- DataError: the client's verification (RepositoryError) -------------------------


class RepositoryError(DataError):
    """The registry's content failed verification: do not trust it."""


class BadSignatureError(RepositoryError):
    """A signed document's signature does not verify (or its envelope is broken)."""


class UntrustedSignatureError(RepositoryError):
    """A document is signed only by keys the client does not trust."""


class ExpiredError(RepositoryError):
    """The snapshot's expiry time has passed (a freeze attack, or an unmaintained registry)."""


class RollbackError(RepositoryError):
    """The snapshot is older than one this client has already seen."""


class DigestMismatchError(RepositoryError):
    """A file's SHA-256 or length differs from the value pinned by a verified document."""


class LengthExceededError(RepositoryError):
    """A response is larger than its pinned length or the limit for its kind of file."""


class MalformedError(RepositoryError):
    """A verified file does not have the expected structure."""


class InconsistentMetadataError(RepositoryError):
    """Two verified documents disagree (a manifest and app.json, a wrong registry binding)."""


class LogInconsistentError(RepositoryError):
    """The release log is rewritten or forked, or disagrees with the documents it backs."""


class LockMismatchError(RepositoryError):
    """The registry no longer serves what a lock file recorded."""


class PublisherMissingError(RepositoryError):
    """The policy requires a publisher's signature and the version has none."""


# --- DataError: other readers ----------------------------------------------------------


class VerificationFailedError(DataError):
    """`appshelf verify` found problems (listed in its report)."""


class BuiltSiteError(DataError):
    """The built site being deployed is not a complete, self-consistent appshelf build."""


class IngestedError(DataError):
    """The record, or a published object it names, is not what was ingested."""


class InboxError(DataError):
    """A publish to the inbox was refused; the message names the object."""


class SignatureError(DataError):
    """An envelope is malformed, of the wrong type, or not signed by a trusted key."""


class UnknownKeyError(SignatureError):
    """Signed only by keys the verifier does not trust."""


class StatementError(DataError):
    """A release statement that is malformed or not signed by a trusted publisher key."""


class UnknownSignerError(StatementError):
    """Signed only by keys that are not among the trusted ones."""


class CheckpointError(DataError):
    """A checkpoint that is malformed or not signed by the key it must be signed by."""


class LogError(DataError):
    """A log that breaks a rule: malformed, rewritten, or not what its checkpoint says."""


class JsonRejectedError(DataError, ValueError):
    """The bytes are not JSON, or are JSON outside the limits. The message says which."""


class CanonicalJSONError(DataError, ValueError):
    """A value has no RFC 8785 form: NaN or infinity, an integer beyond 2**53, a lone
    surrogate, a non-string key, a type JSON lacks, or nesting too deep to encode."""


class DidKeyError(DataError, ValueError):
    """The text is not the did:key of an Ed25519 public key; the message says why."""


class BundleError(DataError, ValueError):
    """A bundle is refused. `field` names the manifest field or archive member (or
    `archive`), `reason` says why; `str()` is both."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class LogFormatError(DataError, ValueError):
    """Bytes that are not a well-formed log file (checkpoint, tile or entry)."""


class ProofError(DataError, ValueError):
    """A proof that does not verify, or a request outside the tree."""


# --- RequestError: the source tree and the build -------------------------------------


class SourceTreeError(RequestError):
    """The registry source tree has one or more problems; all are listed at once."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems))
        count = len(self.problems)
        header = f"the source tree has {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  {p}" for p in self.problems)]))


class InputFileError(RequestError):
    """Why a file cannot be used as input; the caller names the file."""


class IconError(RequestError, ValueError):
    """Why an icon is refused; the source reader reports it against the icon's path."""


class TemplateError(RequestError, ValueError):
    """A template bundle breaks a rule: `field` is where (JSON path), the text says why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class SigningKeyError(RequestError):
    """The signing key is missing, malformed, or not allowed for this build."""


class OutputError(RequestError):
    """The output folder cannot be written or read back."""


class SiteBuildError(RequestError):
    """A site template (usually a registry's override) could not be rendered."""


class PublishError(RequestError):
    """The version cannot be written there; nothing was written."""


class PublisherError(RequestError):
    """A publisher's command was given something it cannot sign."""


class FlowsImportError(RequestError):
    """The Flows registry (or the upstream of a federated app) cannot be imported as is;
    nothing was written. The message lists every problem, each naming where it is."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(dict.fromkeys(problems))
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            lines = [f"{len(self.problems)} problems; nothing was written:"]
            super().__init__("\n".join([*lines, *(f"  {p}" for p in self.problems)]))


class InvalidRangeError(RequestError):
    """A version range (or a version inside one) is not valid npm range syntax."""


class InvalidVersionError(RequestError):
    """A string is not a strict SemVer 2.0.0 version."""


# --- RequestError: the client ----------------------------------------------------------


class ClientUsageError(RequestError):
    """The request cannot be met as given."""


class UnknownAppError(ClientUsageError):
    """The registry has no app with this key."""


class UnknownVersionError(ClientUsageError):
    """The app has no such version."""


class UnknownChannelError(ClientUsageError):
    """The app has no channel (dist-tag) of this name."""


class ResolutionImpossibleError(ClientUsageError):
    """No set of versions satisfies every requirement; the message explains the clash."""


class UntrustedKeyConfigError(ClientUsageError):
    """The trusted keys given are missing, malformed, or include the development key."""


class ConfigError(ClientUsageError):
    """The consumer config file is unreadable or invalid."""


class StateError(RequestError):
    """The state folder cannot be read or written."""


class TransportError(RequestError):
    """A file could not be read from the registry."""


class NotFoundError(TransportError):
    """The registry has no such file (HTTP 404 or a missing local file)."""


class RegistryTimeoutError(TransportError):
    """The registry did not answer in time."""


class TooManyRedirectsError(TransportError):
    """The registry redirected more often than allowed (or in a loop)."""


class ConnectionFailedError(TransportError):
    """The connection failed, or the server kept answering with errors."""


# --- RequestError: deploy --------------------------------------------------------------


class RemoteAccessError(RequestError):
    """The bucket cannot be reached or the credentials are refused."""


class DeployRefusedError(RequestError):
    """What is deployed forbids this deploy (a published version would change or vanish)."""


class DeployConflictError(RequestError):
    """Another deploy changed the bucket after this one read it: this one lost the race."""


__all__ = [
    "AppshelfError",
    "BadSignatureError",
    "BuiltSiteError",
    "BundleError",
    "CanonicalJSONError",
    "CheckpointError",
    "ClientUsageError",
    "ConfigError",
    "ConnectionFailedError",
    "DataError",
    "DeployConflictError",
    "DeployRefusedError",
    "DidKeyError",
    "DigestMismatchError",
    "ExpiredError",
    "FlowsImportError",
    "IconError",
    "InboxError",
    "InconsistentMetadataError",
    "IngestedError",
    "InputFileError",
    "InvalidRangeError",
    "InvalidVersionError",
    "JsonRejectedError",
    "LengthExceededError",
    "LockMismatchError",
    "LogError",
    "LogFormatError",
    "LogInconsistentError",
    "MalformedError",
    "NotFoundError",
    "OutputError",
    "Problem",
    "ProofError",
    "PublishError",
    "PublisherError",
    "PublisherMissingError",
    "RegistryTimeoutError",
    "RemoteAccessError",
    "RepositoryError",
    "RequestError",
    "ResolutionImpossibleError",
    "RollbackError",
    "SignatureError",
    "SigningKeyError",
    "SiteBuildError",
    "SourceTreeError",
    "StateError",
    "StatementError",
    "TemplateError",
    "TooManyRedirectsError",
    "TransportError",
    "UnknownAppError",
    "UnknownChannelError",
    "UnknownKeyError",
    "UnknownSignerError",
    "UnknownVersionError",
    "UntrustedKeyConfigError",
    "UntrustedSignatureError",
    "VerificationFailedError",
]
