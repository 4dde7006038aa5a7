"""The second signature: re-verify a manifest's publisher statement (docs/spec.md 10).

A manifest that names a publisher pins statement.json beside it; the client reads
it, checks the pin, checks the publisher's signature with the keys the registry
publishes in publishers.json (pinned by the snapshot), and that the statement says
what the manifest says. The registry's signature alone cannot forge a publisher's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nacl.signing

from appshelf.errors import (
    BadSignatureError,
    DigestMismatchError,
    InconsistentMetadataError,
    JsonRejectedError,
    MalformedError,
    PublisherMissingError,
    StatementError,
    UnknownSignerError,
    UntrustedSignatureError,
)
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import Manifest
from appshelf.formats.publishers import PUBLISHERS_FILE, PublishersDocument
from appshelf.formats.statement import STATEMENT_FILE, ReleaseStatement
from appshelf.signing.statement import read_statement, verify_statement


@dataclass(frozen=True)
class PublisherVerified:
    """Who signed the version's statement, checked: id, display name and key id."""

    id: str
    name: str
    keyid: str


def parse_publishers(data: bytes, registry: str) -> PublishersDocument:
    """publishers.json (already checked against its snapshot pin) as its model.

    Raises:
        MalformedError: not a publishers document, or for another registry.
    """
    try:
        document = PublishersDocument.model_validate(loads_bounded(data))
    except (JsonRejectedError, ValueError) as exc:
        raise MalformedError(f"{PUBLISHERS_FILE}: {str(exc).splitlines()[0]}") from None
    if document.registry != registry:
        raise MalformedError(f"{PUBLISHERS_FILE}: is for {document.registry}, not {registry}")
    return document


def check_publisher(
    manifest: Manifest,
    read: Callable[[str, int], bytes],
    publishers: Callable[[], PublishersDocument],
    require: bool,
) -> PublisherVerified | None:
    """Verify the manifest's publisher statement; None when it names no publisher.

    `read(relpath, limit)` reads a registry file; `publishers()` gives the verified
    publishers.json.

    Raises:
        PublisherMissingError: no publisher and `require`.
        DigestMismatchError: statement.json is not the file the manifest pins.
        UntrustedSignatureError: not signed by a non-revoked key of the named publisher.
        BadSignatureError: a bad signature (the statement was altered).
        InconsistentMetadataError: the statement and the manifest disagree.
    """
    ident = f"{manifest.app} {manifest.version}"
    named = manifest.publisher
    if named is None:
        if require:
            raise PublisherMissingError(
                f"{ident}: no publisher signature, and the policy requires one "
                "(--require-publisher)"
            )
        return None
    relpath = f"apps/{manifest.app}/{manifest.version}/{STATEMENT_FILE}"
    data = read(relpath, named.statement.length)
    if sha256_hex(data) != named.statement.sha256 or len(data) != named.statement.length:
        raise DigestMismatchError(f"{relpath}: differs from the statement the manifest pins")
    try:
        envelope = read_statement(data, relpath)
    except StatementError as exc:
        raise MalformedError(str(exc)) from None
    document = publishers()
    publisher = document.publisher(named.id)
    if publisher is None or envelope.signed.publisher != named.id:
        raise UntrustedSignatureError(
            f"{relpath}: publisher {named.id!r} is not in {PUBLISHERS_FILE}"
        )
    usable = {
        k.keyid: nacl.signing.VerifyKey(bytes.fromhex(k.public))
        for k in publisher.keys
        if k.status != "revoked"
    }
    try:
        keyid = verify_statement(envelope, usable)
    except UnknownSignerError:
        raise UntrustedSignatureError(
            f"{relpath}: not signed by a current (non-revoked) key of publisher {named.id!r}"
        ) from None
    except StatementError as exc:
        raise BadSignatureError(f"{relpath}: {exc}") from None
    if keyid != named.keyid:
        raise InconsistentMetadataError(
            f"{relpath}: signed by {keyid[:16]}..., the manifest names {named.keyid[:16]}..."
        )
    _agrees(envelope.signed, manifest, relpath)
    return PublisherVerified(publisher.id, publisher.name, keyid)


def _agrees(statement: ReleaseStatement, manifest: Manifest, relpath: str) -> None:
    artifact = manifest.artifact
    pairs: list[tuple[str, object, object]] = [
        ("registry", statement.registry, manifest.registry),
        ("app", statement.app, manifest.app),
        ("version", statement.version, manifest.version),
        ("artifact.sha256", statement.artifact.sha256, artifact.sha256),
        ("artifact.size", statement.artifact.size, artifact.size),
        ("artifact.filename", statement.artifact.filename, artifact.filename),
        ("dependencies", statement.dependencies, manifest.dependencies),
        ("provides", statement.provides, manifest.provides),
        ("requires", statement.requires, manifest.requires),
        ("published", statement.published, manifest.published),
    ]
    if statement.artifact.url is not None:
        pairs.append(("artifact.url", statement.artifact.url, artifact.url))
    for name, signed, pinned in pairs:
        if signed != pinned:
            raise InconsistentMetadataError(
                f"{relpath}: the publisher signed {name} {signed!r}, the manifest says {pinned!r}"
            )
