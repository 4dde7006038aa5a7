"""`did:key` identifiers of Ed25519 keys, as Calimero names its signers (pure).

did:key:z + base58btc(0xed 0x01 || 32-byte public key): the multibase `z` prefix,
the multicodec varint for ed25519-pub, then the raw key (W3C did:key method).
"""

from __future__ import annotations

import re
from typing import Final

_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final = {c: i for i, c in enumerate(_ALPHABET)}
_ED25519_PUB: Final = b"\xed\x01"
PREFIX: Final = "did:key:z"
# 34 bytes encode to 47 or 48 base58 characters; anything else cannot be a key.
DID_KEY_RE: Final = re.compile(r"did:key:z[1-9A-HJ-NP-Za-km-z]{40,50}")


class DidKeyError(ValueError):
    """Not the did:key of an Ed25519 public key."""


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _ALPHABET[rest] + out
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + out


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def encode_did_key(public_key: bytes) -> str:
    """The did:key of a raw 32-byte Ed25519 public key.

    Raises:
        DidKeyError: the key is not 32 bytes.
    """
    if len(public_key) != 32:
        raise DidKeyError(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
    return PREFIX + _b58encode(_ED25519_PUB + public_key)


def decode_did_key(did: str) -> bytes:
    """The raw Ed25519 public key a did:key names.

    Raises:
        DidKeyError: not a did:key, not base58btc, or not an ed25519-pub multicodec key.
    """
    if not DID_KEY_RE.fullmatch(did):
        raise DidKeyError(f"not a did:key of an Ed25519 key: {did[:80]!r}")
    raw = _b58decode(did[len(PREFIX) :])
    if len(raw) != 34 or not raw.startswith(_ED25519_PUB):
        raise DidKeyError(f"{did[:80]!r} is not an ed25519-pub did:key (0xed01 and 32 bytes)")
    if encode_did_key(raw[2:]) != did:
        raise DidKeyError(f"{did[:80]!r} is not in canonical base58btc form")
    return raw[2:]
