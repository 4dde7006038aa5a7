"""did:key of Ed25519 keys (formats/didkey.py), as Calimero names its signers.

Vectors: the two key pairs in ../shared/vectors/calimero/SOURCE.md (Calimero's
development key, seed SHA-256("calimero-dev-signing-key-v1"), and its core test key),
public keys in base64url as Calimero writes them, copied here with that note."""

from __future__ import annotations

import base64
import hashlib

import nacl.signing
import pytest

from appshelf.formats.didkey import DidKeyError, decode_did_key, encode_did_key

VECTORS = [
    ("c7yxmuCRXfb4Ab4kcl9M3D5lxcpG9BTZm7smM8jMdMI", "did:key:z6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQd"),
    ("zJxVbfNGrbfwgbtupMfpQX2KzStI6wWA3AVpQmxi5pM", "did:key:z6MktDyUgjyGaEMxMyuZMs2v2L46zvVKNqB5K3KTvFxudtKL"),
]  # fmt: skip


def _raw(b64url: str) -> bytes:
    return base64.urlsafe_b64decode(b64url + "=" * (-len(b64url) % 4))


@pytest.mark.parametrize(("public", "did"), VECTORS)
def test_calimero_vectors(public: str, did: str) -> None:
    assert encode_did_key(_raw(public)) == did
    assert decode_did_key(did) == _raw(public)


def test_the_development_seed_derives_the_first_vector() -> None:
    seed = hashlib.sha256(b"calimero-dev-signing-key-v1").digest()
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    assert encode_did_key(public) == VECTORS[0][1]


@pytest.mark.parametrize(
    "bad",
    [
        "did:key:z6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQ",  # one character short
        "did:key:z6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQd\n",
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",  # secp256k1, not ed25519
        "did:web:example.com",
        "did:key:z0OIl" + "1" * 40,  # not base58
    ],
)
def test_not_an_ed25519_did_key(bad: str) -> None:
    with pytest.raises(DidKeyError):
        decode_did_key(bad)


def test_a_did_key_is_accepted_as_a_publisher_key(tmp_path: object) -> None:
    from appshelf.source.publishers import PublisherKeyConfig

    key = PublisherKeyConfig(did=VECTORS[0][1]).key()
    assert key.public == _raw(VECTORS[0][0]).hex() and key.did == VECTORS[0][1]
    with pytest.raises(ValueError, match="exactly one of public or did"):
        PublisherKeyConfig(did=VECTORS[0][1], public=key.public)
