"""Make, read and verify publishers' release statements (formats/statement.py).

A statement is an envelope exactly like the registry's own (docs/spec.md section 3),
signed by a publisher key. Reading is bounded and strict: the body must be the very
bytes its model re-encodes to, so what was verified is what the build uses.
"""

from __future__ import annotations

from collections.abc import Mapping

import nacl.signing
from pydantic import ValidationError

from appshelf.errors import (
    CanonicalJSONError,
    JsonRejectedError,
    SignatureError,
    StatementError,
    UnknownKeyError,
    UnknownSignerError,
)
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.canonical import canonical_json, model_to_json
from appshelf.formats.documents import Signed
from appshelf.formats.statement import (
    MAX_STATEMENT_BYTES,
    STATEMENT_TYPE,
    ReleaseStatement,
    StatementArtifact,
)
from appshelf.signing.envelope import signed_envelope_json, verify_envelope
from appshelf.signing.keys import RegistryKey


def make_statement(
    *,
    registry: str,
    publisher: str,
    app: str,
    version: str,
    artifact: StatementArtifact,
    dependencies: Mapping[str, str],
    provides: list[str],
    requires: list[str],
    notes: str | None,
    published: str,
    key: RegistryKey,
) -> bytes:
    """The canonical bytes of a statement envelope signed by the publisher's `key`.

    Raises:
        StatementError: a field does not fit the statement model.
    """
    try:
        body = ReleaseStatement(
            registry=registry,
            publisher=publisher,
            app=app,
            version=version,
            artifact=artifact,
            dependencies=dict(dependencies),
            provides=sorted(set(provides)),
            requires=sorted(set(requires)),
            notes=notes,
            published=published,
        )
    except ValidationError as exc:
        raise StatementError(f"release statement: {_first_error(exc)}") from None
    envelope, _ = signed_envelope_json(model_to_json(body), key)
    return envelope


def read_statement(data: bytes, where: str) -> Signed[ReleaseStatement]:
    """Parse a statement envelope (not yet its signature: see `verify_statement`).

    Raises:
        StatementError: too large, not JSON, not a statement, or a body that is not
            exactly its model's canonical bytes; the message names `where` and the field.
    """
    if len(data) > MAX_STATEMENT_BYTES:
        raise StatementError(f"{where}: {len(data)} bytes; at most {MAX_STATEMENT_BYTES}")
    try:
        raw = loads_bounded(data, max_bytes=MAX_STATEMENT_BYTES)
    except JsonRejectedError as exc:
        raise StatementError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("signed"), dict):
        raise StatementError(f"{where}: signed: expected a signed envelope (a JSON object)")
    if raw["signed"].get("type") != STATEMENT_TYPE:
        raise StatementError(
            f"{where}: signed.type: is {raw['signed'].get('type')!r}, expected {STATEMENT_TYPE!r}"
        )
    try:
        envelope = Signed[ReleaseStatement].model_validate(raw)
        body_bytes = canonical_json(raw["signed"])
    except ValidationError as exc:
        raise StatementError(f"{where}: {_first_error(exc)}") from None
    except CanonicalJSONError as exc:
        raise StatementError(f"{where}: signed: {exc}") from None
    if model_to_json(envelope.signed) != body_bytes:
        raise StatementError(
            f"{where}: signed: not in its canonical form (a field has the wrong type, or "
            "an empty list or map is missing: write it with `appshelf sign-release`)"
        )
    return envelope


def verify_statement(
    envelope: Signed[ReleaseStatement], trusted: Mapping[str, nacl.signing.VerifyKey]
) -> str:
    """Check the publisher's signature; return the id of the trusted key that signed.

    Raises:
        UnknownSignerError: signed by none of the `trusted` keys.
        StatementError: a bad signature by a trusted key (the statement was altered).
    """
    document = envelope.model_dump(mode="json", exclude_none=True)
    try:
        _, keyid = verify_envelope(document, STATEMENT_TYPE, trusted, "release statement")
    except UnknownKeyError as exc:
        raise UnknownSignerError(str(exc)) from None
    except SignatureError as exc:
        raise StatementError(str(exc)) from None
    return keyid


def statement_signers(envelope: Signed[ReleaseStatement]) -> list[str]:
    """The key ids a statement claims to be signed by (for messages)."""
    return [signature.keyid for signature in envelope.signatures]


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "document"
    return f"{field}: {error['msg']}"
