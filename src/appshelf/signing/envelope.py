"""Sign and verify envelopes `{"signed": {...}, "signatures": [{"keyid", "sig"}]}`.

The signed bytes are the RFC 8785 canonical form of `signed`. Verification is pure:
bytes in, the trusted body out, or a `SignatureError` that says exactly why not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.signing

from appshelf.errors import CanonicalJSONError, JsonRejectedError, SignatureError, UnknownKeyError
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.canonical import canonical_json
from appshelf.signing.keys import RegistryKey, key_id


def signature_is_valid(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Raw Ed25519 (RFC 8032) verification: the one primitive every check rests on."""
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def signed_envelope_json(body_json: bytes, key: RegistryKey) -> tuple[bytes, str]:
    """Sign canonical body bytes; return the envelope's canonical bytes and the signature.

    The envelope's RFC 8785 form is built around the body's bytes instead of encoding
    the body twice: "signatures" sorts before "signed", and key id and signature are
    lowercase hex, which JCS leaves unescaped. tests/test_canonical_fast.py checks it
    against `canonical_json` of the whole envelope."""
    signature = key.signing_key.sign(body_json).signature.hex()
    head = f'{{"signatures":[{{"keyid":"{key.keyid}","sig":"{signature}"}}],"signed":'
    return head.encode() + body_json + b"}", signature


def sign_body(body: Mapping[str, Any], key: RegistryKey) -> dict[str, Any]:
    """Wrap a JSON-ready body in an envelope signed by `key`."""
    signature = key.signing_key.sign(canonical_json(body)).signature
    return {"signed": dict(body), "signatures": [{"keyid": key.keyid, "sig": signature.hex()}]}


def trusted_keys_from_hex(public_keys: list[str]) -> dict[str, nacl.signing.VerifyKey]:
    """Map key id -> verify key for a list of hex public keys."""
    keys: dict[str, nacl.signing.VerifyKey] = {}
    for text in public_keys:
        raw = bytes.fromhex(text)
        if len(raw) != 32:
            raise ValueError(f"public key {text[:16]}... is not 32 bytes")
        keys[key_id(raw)] = nacl.signing.VerifyKey(raw)
    return keys


def verify_envelope(
    data: bytes | Mapping[str, Any],
    expected_type: str,
    trusted: Mapping[str, nacl.signing.VerifyKey],
    what: str = "document",
) -> tuple[dict[str, Any], str]:
    """Check an envelope; return its `signed` body and the id of the key that signed it.

    One valid signature by a trusted key suffices; signatures by unknown keys are ignored,
    and a bad signature by a trusted key fails the whole envelope, wherever it stands in
    the list (docs/spec.md section 3).

    Raises:
        SignatureError: malformed, of another type, or a bad signature by a trusted key.
        UnknownKeyError: no signature by a trusted key.
    """
    body, signatures = _parse(data, what)
    if body.get("type") != expected_type:
        raise SignatureError(f"{what}: type is {body.get('type')!r}, expected {expected_type!r}")
    try:
        message = canonical_json(body)
    except CanonicalJSONError as exc:
        raise SignatureError(f"{what}: {exc}") from None
    return body, _trusted_signer(message, signatures, trusted, what)


def _parse(data: bytes | Mapping[str, Any], what: str) -> tuple[dict[str, Any], list[Any]]:
    """The envelope's body and signature list, once they have the right shape."""
    if isinstance(data, bytes | bytearray):
        try:  # bounded: nothing unsigned is parsed without limits (size is the caller's)
            envelope = loads_bounded(bytes(data))
        except JsonRejectedError as exc:
            raise SignatureError(f"{what}: not valid JSON ({exc})") from None
    else:
        envelope = data
    if not isinstance(envelope, Mapping):
        raise SignatureError(f"{what}: expected a JSON object")
    body = envelope.get("signed")
    signatures = envelope.get("signatures")
    if not isinstance(body, dict) or not isinstance(signatures, list) or not signatures:
        raise SignatureError(f"{what}: expected 'signed' and a non-empty 'signatures' list")
    return body, signatures


def _trusted_signer(
    message: bytes,
    signatures: list[Any],
    trusted: Mapping[str, nacl.signing.VerifyKey],
    what: str,
) -> str:
    """The first trusted key id with a valid signature of `message`; every signature
    by a trusted key must be valid, wherever it stands."""
    seen: list[str] = []
    good: str | None = None
    for entry in signatures:
        keyid, sig = _signature_entry(entry, what)
        seen.append(keyid)
        verify_key = trusted.get(keyid)
        if verify_key is None:
            continue
        try:
            signature = bytes.fromhex(sig)
        except ValueError:
            signature = b""
        if not signature_is_valid(bytes(verify_key), message, signature):
            raise SignatureError(
                f"{what}: bad signature by key {keyid[:16]}... (the file was altered)"
            ) from None
        good = good or keyid
    if good is not None:
        return good
    raise UnknownKeyError(
        f"{what}: signed by {len(seen)} key(s) ({', '.join(k[:16] + '...' for k in seen)}), "
        f"none of the {len(trusted)} trusted key(s)"
    )


def _signature_entry(entry: Any, what: str) -> tuple[str, str]:
    """One `{"keyid", "sig"}` entry's two strings."""
    if isinstance(entry, Mapping):
        keyid, sig = entry.get("keyid"), entry.get("sig")
        if isinstance(keyid, str) and isinstance(sig, str):
            return keyid, sig
    raise SignatureError(f"{what}: malformed signature entry")
