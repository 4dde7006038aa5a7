"""did:key of Ed25519 keys (base58btc, multicodec 0xed01), as Calimero's signer ids."""

from __future__ import annotations

import base64
import hashlib

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appshelf.errors import DidKeyError
from appshelf.formats.didkey import b58decode, b58encode, did_key, parse_did_key


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Calimero's own pins: core's dev_signer_id test, and the keys in tests/vectors/calimero.
VECTORS = [
    (
        "c7yxmuCRXfb4Ab4kcl9M3D5lxcpG9BTZm7smM8jMdMI",
        "did:key:z6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQd",
    ),
    (
        "zJxVbfNGrbfwgbtupMfpQX2KzStI6wWA3AVpQmxi5pM",
        "did:key:z6MktDyUgjyGaEMxMyuZMs2v2L46zvVKNqB5K3KTvFxudtKL",
    ),
    (
        "I0-kEyTMUZI-YjW_DnC90iefjWGqbpnJlr4djOZ0IBE",
        "did:key:z6Mkgq6kSMMeruLjZkpfcauwnvDTZH3v6PfEH51hwCcgaGSL",
    ),
]


@pytest.mark.parametrize(("public", "did"), VECTORS)
def test_calimero_vectors(public: str, did: str) -> None:
    assert did_key(_b64url(public)) == did
    assert parse_did_key(did) == _b64url(public)


def test_dev_key_seed_is_the_published_label() -> None:
    seed = hashlib.sha256(b"calimero-dev-signing-key-v1").digest()
    assert seed.hex() == "8cb7ae251b4da55aecc3875f4c0a712ce2b34cb06d4771e713f2bb3289d0f7b4"
    assert did_key(bytes(nacl.signing.SigningKey(seed).verify_key)) == VECTORS[0][1]


def test_base58_known_values() -> None:
    assert b58encode(b"hello world") == "StV1DL6CwTryKyV"
    assert b58encode(b"\0\0\x01") == "112"
    assert b58encode(b"") == ""
    assert b58decode("112") == b"\0\0\x01"


@given(st.binary(max_size=64))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


@given(st.binary(min_size=32, max_size=32))
def test_did_key_round_trip(key: bytes) -> None:
    assert parse_did_key(did_key(key)) == key


@pytest.mark.parametrize(
    "text",
    [
        "did:key:z6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQ",  # one digit short
        "did:key:z6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQdd",
        "did:key:6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQd",  # no multibase z
        "did:key:z" + b58encode(b"\xe7\x01" + bytes(33)),  # secp256k1-pub, not ed25519
        "did:key:z0OIl",
        "did:web:example.com",
        "did:key:z" + b58encode(b"\xed\x01" + bytes(32)) + "\n",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(DidKeyError):
        parse_did_key(text)


def test_a_did_key_is_accepted_as_a_publisher_key() -> None:
    from appshelf.formats.didkey import parse_did_key
    from appshelf.source.publishers import PublisherKeyConfig

    did = "did:key:z6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQd"  # Calimero's dev key
    key = PublisherKeyConfig(did=did).key()
    assert key.public == parse_did_key(did).hex() and key.did == did
    with pytest.raises(ValueError, match="exactly one of public or did"):
        PublisherKeyConfig(did=did, public=key.public)
