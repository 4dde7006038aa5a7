"""did:key identifiers of Ed25519 keys, as Calimero's bundle signer ids use them.

`did:key:z<base58btc(0xed 0x01 || public key)>`: multibase base58btc (prefix `z`),
multicodec ed25519-pub (0xed01, varint-encoded as the two bytes ed 01), then the 32-byte
raw key. Base58 is small enough to write here (the `base58` package has had no release
since 2021 and would be a dependency for twenty lines); tests/test_didkey.py checks it
against the did:key spec's and Calimero's own vectors.
"""

from __future__ import annotations

import re
from typing import Final

from appshelf.errors import DidKeyError

ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final = {char: value for value, char in enumerate(ALPHABET)}
ED25519_PUB_MULTICODEC: Final = b"\xed\x01"
PREFIX: Final = "did:key:z"
# 34 bytes of payload encode to at most 47 base58 digits; anything longer is not a key.
_DID_RE: Final = re.compile(r"did:key:z[1-9A-HJ-NP-Za-km-z]{1,60}")


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet): each leading zero byte is one `1`."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(ALPHABET[rest])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Inverse of `b58encode`.

    Raises:
        DidKeyError: a character outside the alphabet.
    """
    number = 0
    for char in text:
        value = _INDEX.get(char)
        if value is None:
            raise DidKeyError(f"{char!r} is not a base58 digit")
        number = number * 58 + value
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def did_key(public_key: bytes) -> str:
    """The did:key of a raw 32-byte Ed25519 public key.

    Raises:
        DidKeyError: the key is not 32 bytes.
    """
    if len(public_key) != 32:
        raise DidKeyError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    return PREFIX + b58encode(ED25519_PUB_MULTICODEC + public_key)


def parse_did_key(text: str) -> bytes:
    """The raw Ed25519 public key a did:key names (only the one spelling `did_key` writes).

    Raises:
        DidKeyError: not `did:key:z…`, not base58, not the ed25519-pub multicodec, not
            32 bytes, or not the canonical encoding of its key.
    """
    if not _DID_RE.fullmatch(text):
        raise DidKeyError("must be did:key:z followed by base58btc digits")
    payload = b58decode(text[len(PREFIX) :])
    if not payload.startswith(ED25519_PUB_MULTICODEC):
        raise DidKeyError("is not an ed25519-pub did:key (multicodec 0xed01)")
    key = payload[len(ED25519_PUB_MULTICODEC) :]
    if len(key) != 32 or did_key(key) != text:
        raise DidKeyError(f"holds {len(key)} key bytes, not the 32 of an Ed25519 key")
    return key
