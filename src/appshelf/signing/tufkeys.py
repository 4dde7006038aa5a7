"""The registry's Ed25519 key as a TUF key and signer (python-tuf / securesystemslib).

A small `Signer` around PyNaCl, which appshelf already signs with, rather than
securesystemslib's `CryptoSigner`, which needs pyca/cryptography (not a dependency of
appshelf). Ed25519 signatures are deterministic, so the same metadata signs to the
same bytes on every rebuild.

TUF names a key by its own rule, not appshelf's: the key id is the SHA-256 of the
canonical JSON of `{"keytype": "ed25519", "keyval": {"public": <hex>}, "scheme":
"ed25519"}` (securesystemslib's default key id), so the same key has two ids.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from securesystemslib.formats import encode_canonical
from securesystemslib.signer import Key, SecretsHandler, Signature, Signer, SSlibKey
from tuf.api.serialization import SignedSerializer

from appshelf.signing.keys import RegistryKey

ED25519 = "ed25519"


def tuf_key(public: bytes) -> SSlibKey:
    """The TUF key (`SSlibKey`) of a raw 32-byte Ed25519 public key, with TUF's key id."""
    keyval = {"public": public.hex()}
    text = encode_canonical({"keytype": ED25519, "scheme": ED25519, "keyval": keyval})
    assert isinstance(text, str)
    return SSlibKey(hashlib.sha256(text.encode()).hexdigest(), ED25519, ED25519, keyval)


class RegistrySigner(Signer):
    """Signs TUF metadata with the registry's key (PyNaCl); never loaded from a URI."""

    def __init__(self, key: RegistryKey):
        self._key = key
        self._public = tuf_key(key.public_bytes)

    @property
    def public_key(self) -> SSlibKey:
        return self._public

    def sign(self, payload: bytes) -> Signature:
        """The Ed25519 signature of `payload`, under the TUF key id."""
        signature = self._key.signing_key.sign(payload).signature
        return Signature(self._public.keyid, signature.hex())

    @classmethod
    def from_priv_key_uri(
        cls,
        priv_key_uri: str,
        public_key: Key,
        secrets_handler: SecretsHandler | None = None,
    ) -> Signer:
        """Not supported: the key comes from appshelf's own key selection.

        Raises:
            ValueError: always.
        """
        raise ValueError("RegistrySigner is made from an appshelf key, not from a URI")


class FastCanonicalSerializer(SignedSerializer):
    """OLPC canonical JSON of a `Signed`, fast: for values of ASCII strings without
    escapes, integers and booleans (all TUF metadata appshelf signs: no floats, and its
    paths are `[A-Za-z0-9._+-/]`), `json.dumps` with sorted keys and no spaces gives
    exactly the bytes of securesystemslib's `encode_canonical`, many times faster.
    Anything else (a backslash escape, a non-ASCII character) goes to `encode_canonical`."""

    def serialize(self, signed_obj: Any) -> bytes:
        """The canonical bytes that are signed."""
        value = signed_obj.to_dict()
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        if "\\" in text or not text.isascii():
            canonical = encode_canonical(value)
            assert isinstance(canonical, str)
            text = canonical
        return text.encode("utf-8")
