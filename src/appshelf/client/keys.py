"""Which public keys the client trusts: given explicitly, never taken from the registry.

The development key is public knowledge (anyone can sign with it), so trusting it is
refused unless the caller says so explicitly (`allow_dev_key`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import nacl.signing

from appshelf.client.files import read_small_file
from appshelf.errors import UntrustedKeyConfigError
from appshelf.formats.boundedjson import loads_bounded
from appshelf.signing.keys import development_key, key_id

_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
MAX_KEYS_FILE_BYTES = 1024 * 1024
TrustedKeys = Mapping[str, nacl.signing.VerifyKey]
"""The keys a client trusts: key id (SHA-256 of the raw key, hex) to Ed25519 public key."""


def development_public_hex() -> str:
    return development_key().public_hex


def _verify_key(text: str, origin: str) -> tuple[str, nacl.signing.VerifyKey]:
    stripped = text.strip()
    if not _HEX_KEY.fullmatch(stripped):
        raise UntrustedKeyConfigError(
            f"{origin}: {stripped[:20]!r} is not an Ed25519 public key (64 hex digits, "
            "as in the registry's keys.json 'public' field)"
        )
    raw = bytes.fromhex(stripped)
    return key_id(raw), nacl.signing.VerifyKey(raw)


def keys_from_file(path: Path) -> list[str]:
    """A keys.json (`{"keys": [{"public": ...}]}`) or a text file, one hex key per line."""
    try:
        text = read_small_file(path, MAX_KEYS_FILE_BYTES).decode("utf-8")
    except OSError as exc:
        raise UntrustedKeyConfigError(
            f"{path}: cannot read the keys file ({exc.strerror})"
        ) from None
    except UnicodeDecodeError:
        raise UntrustedKeyConfigError(f"{path}: the keys file is not UTF-8 text") from None
    if text.lstrip().startswith("{"):
        try:
            data = loads_bounded(text.encode())
            entries = data["keys"]
            return [str(entry["public"]) for entry in entries]
        except (ValueError, KeyError, TypeError):
            raise UntrustedKeyConfigError(
                f"{path}: expected a keys.json with a 'keys' list of {{'public': HEX}}"
            ) from None
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def trusted_keys(
    hex_keys: Iterable[str] = (),
    keys_file: Path | None = None,
    allow_dev_key: bool = False,
) -> dict[str, nacl.signing.VerifyKey]:
    """Build the trusted key set from keys given by the registry's operators.

    Args:
        hex_keys: Ed25519 public keys, 64 hex digits each (the `public` field of the
            registry's keys.json).
        keys_file: A copy of a keys.json, or a text file with one hex key per line
            (`#` comments allowed).
        allow_dev_key: Allow the well-known development key; with no other key, trust
            only it (local testing, the example registry).

    Returns:
        Key id to public key, ready for `RegistryClient`.

    Raises:
        UntrustedKeyConfigError: No keys at all, a key that is not 64 hex digits, an
            unreadable or malformed `keys_file`, or the development key without
            `allow_dev_key`.
    """
    texts = [(k, "--key") for k in hex_keys]
    if keys_file is not None:
        texts += [(k, str(keys_file)) for k in keys_from_file(keys_file)]
    if not texts and allow_dev_key:
        texts = [(development_public_hex(), "--allow-dev-key")]
    if not texts:
        raise UntrustedKeyConfigError(
            "no trusted keys: pass the registry's public key with --key HEX or --keys-file "
            "FILE (get it from the registry's operators, not from the registry itself)"
        )
    keys = dict(_verify_key(text, origin) for text, origin in texts)
    check_dev_key(keys, allow_dev_key)
    return keys


def check_dev_key(keys: TrustedKeys, allow_dev_key: bool) -> None:
    dev_id = development_key().keyid
    if dev_id in keys and not allow_dev_key:
        raise UntrustedKeyConfigError(
            "refusing to trust the well-known DEVELOPMENT key: anyone can sign with it. "
            "Use the registry's production key, or pass --allow-dev-key for local testing"
        )
