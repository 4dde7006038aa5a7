"""Owners-change statements: a current owner hands an app to new owners (signed).

`owners/*.json` in the source holds them; the build logs one as an `appshelf.log.owners`
`change` entry, and `replay` re-checks its signature (signing/releaselog.py).
"""

from __future__ import annotations

from typing import Any

import pydantic

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
from appshelf.formats.statement import MAX_STATEMENT_BYTES, OWNERS_CHANGE_TYPE, OwnersChange
from appshelf.signing.envelope import signed_envelope_json, trusted_keys_from_hex, verify_envelope
from appshelf.signing.keys import RegistryKey


def make_owners_change(
    *,
    registry: str,
    app: str,
    previous: list[str],
    owners: list[str],
    signer: str,
    issued: str,
    key: RegistryKey,
) -> bytes:
    """The canonical bytes of an owners-change envelope signed by `key`.

    Raises:
        StatementError: a field does not fit the model.
    """
    try:
        body = OwnersChange(
            registry=registry,
            app=app,
            previous=sorted(previous),
            owners=sorted(owners),
            signer=signer,
            issued=issued,
        )
    except pydantic.ValidationError as exc:
        raise StatementError(f"owners change: {_first(exc)}") from None
    return signed_envelope_json(model_to_json(body), key)[0]


def peek_owners_change(data: bytes, where: str) -> OwnersChange:
    """The statement's body, not yet verified (it names the signer whose keys to try).

    Raises:
        StatementError: not JSON, not an owners change, or not canonical.
    """
    try:
        raw = loads_bounded(data, max_bytes=MAX_STATEMENT_BYTES)
    except JsonRejectedError as exc:
        raise StatementError(f"{where}: not valid JSON ({exc})") from None
    body = raw.get("signed") if isinstance(raw, dict) else None
    if not isinstance(body, dict) or body.get("type") != OWNERS_CHANGE_TYPE:
        raise StatementError(f"{where}: signed.type: expected {OWNERS_CHANGE_TYPE!r}")
    return _parse(body, where)


def verify_owners_change(data: bytes, public_hex: str, where: str) -> OwnersChange:
    """The statement, checked to be signed by the key `public_hex`.

    Raises:
        UnknownSignerError: not signed by that key.
        StatementError: malformed, or a bad signature (altered).
    """
    try:
        body, _ = verify_envelope(
            data, OWNERS_CHANGE_TYPE, trusted_keys_from_hex([public_hex]), where
        )
    except UnknownKeyError as exc:
        raise UnknownSignerError(str(exc)) from None
    except SignatureError as exc:
        raise StatementError(str(exc)) from None
    return _parse(body, where)


def _parse(body: dict[str, Any], where: str) -> OwnersChange:
    try:
        change = OwnersChange.model_validate(body)
        canonical = canonical_json(body)
    except pydantic.ValidationError as exc:
        raise StatementError(f"{where}: signed.{_first(exc)}") from None
    except CanonicalJSONError as exc:
        raise StatementError(f"{where}: {exc}") from None
    if canonical != model_to_json(change):
        raise StatementError(f"{where}: signed: not in its canonical form")
    return change


def _first(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
