"""Registry signing keys: generation, key files, key ids and the development key.

A key id is the lowercase hex SHA-256 of the 32-byte raw Ed25519 public key, so any
consumer can recompute it from the key alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import nacl.exceptions
import nacl.signing

from appshelf.errors import InputFileError, SigningKeyError
from appshelf.inputfile import read_input_file

ENV_VAR = "APPSHELF_SIGNING_KEY"
# Set to 1 to accept a key file that group or others may access (a 0444 secret mount).
ALLOW_SHARED_ENV = "APPSHELF_ALLOW_SHARED_KEY_FILE"
MAX_KEY_FILE_BYTES = 64 * 1024
KEY_FILE_TYPE = "appshelf.private-key"
# Everyone can derive this seed: it exists so that a fresh checkout builds, never to be trusted.
DEVELOPMENT_SEED = hashlib.sha256(b"appshelf development key - NOT FOR PRODUCTION").digest()
_HEX_SEED = re.compile(r"^[0-9a-fA-F]{64}\Z")


def key_id(public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True)
class RegistryKey:
    """A private signing key and where it came from (for messages, never the key itself)."""

    signing_key: nacl.signing.SigningKey
    origin: str
    development: bool = False

    @property
    def public_bytes(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def public_hex(self) -> str:
        return self.public_bytes.hex()

    @property
    def keyid(self) -> str:
        return key_id(self.public_bytes)

    def __repr__(self) -> str:  # never show the seed in a traceback or log
        return f"RegistryKey(keyid={self.keyid[:16]}..., origin={self.origin!r})"


def development_key() -> RegistryKey:
    return RegistryKey(
        nacl.signing.SigningKey(DEVELOPMENT_SEED),
        origin="the built-in DEVELOPMENT key",
        development=True,
    )


DEVELOPMENT_KEYID = development_key().keyid


def preview_key() -> RegistryKey:
    """What `appshelf serve` signs with: the development key, which no client trusts
    unless told to, so a preview can never pass for the real registry."""
    return replace(
        development_key(), origin="the PREVIEW key of appshelf serve (the development key)"
    )


def parse_private_key(text: str, origin: str) -> RegistryKey:
    """Read a key file's JSON, or a bare 64-hex-digit seed (handy in CI secrets)."""
    stripped = text.strip()
    if _HEX_SEED.match(stripped):
        seed = bytes.fromhex(stripped)
    else:
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):
            raise SigningKeyError(
                f"{origin}: not an appshelf key (expected the JSON written by "
                "`appshelf keygen`, or a 64-hex-digit Ed25519 seed)"
            ) from None
        if not isinstance(data, dict) or data.get("type") != KEY_FILE_TYPE:
            raise SigningKeyError(f"{origin}: type: expected {KEY_FILE_TYPE!r}")
        seed_hex = data.get("seed")
        if not isinstance(seed_hex, str) or not _HEX_SEED.match(seed_hex):
            raise SigningKeyError(f"{origin}: seed: expected 64 hex digits")
        seed = bytes.fromhex(seed_hex)
    try:
        # The development key stays the development key however it is given (a seed
        # in a CI secret, a key file): the release log refuses it after a real key.
        key = RegistryKey(
            nacl.signing.SigningKey(seed), origin=origin, development=seed == DEVELOPMENT_SEED
        )
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"{origin}: invalid Ed25519 seed ({exc})") from None
    if not stripped.startswith("{"):
        return key
    claimed = json.loads(stripped).get("keyid")
    if claimed is not None and claimed != key.keyid:
        raise SigningKeyError(f"{origin}: keyid: does not match the key's seed")
    return key


def load_key_file(path: Path, allow_shared: bool = False) -> RegistryKey:
    """Read a key file: a regular file of at most 64 KiB that, as ssh insists, only its
    owner may access (unless `allow_shared`, for secrets mounted read-only as 0444).
    Symlinks are followed: secret mounts are made of them."""
    try:
        raw, st, _ = read_input_file(path, MAX_KEY_FILE_BYTES, follow_symlinks=True)
    except InputFileError as exc:
        raise SigningKeyError(f"{path}: cannot use the signing key: {exc}") from None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077 and not allow_shared:
        raise SigningKeyError(
            f"{path}: the signing key is accessible by group or others (mode {mode:04o}); "
            f"run `chmod 600 {path}` (or set {ALLOW_SHARED_ENV}=1 if it must stay shared)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SigningKeyError(f"{path}: not an appshelf key (not UTF-8 text)") from None
    return parse_private_key(text, origin=str(path))


def key_file_text(key: RegistryKey) -> str:
    document = {
        "type": KEY_FILE_TYPE,
        "algorithm": "ed25519",
        "keyid": key.keyid,
        "public": key.public_hex,
        "seed": bytes(key.signing_key).hex(),
    }
    return json.dumps(document, indent=2) + "\n"


def write_new_key_file(path: Path) -> RegistryKey:
    """Generate a key and write it with mode 0600; never overwrite an existing file."""
    key = RegistryKey(nacl.signing.SigningKey.generate(), origin=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(
            f"{path}: already exists; refusing to overwrite a key (choose another path)"
        ) from None
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot create the key file ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key_file_text(key))
    return key


def select_signing_key(
    *,
    key_file: Path | None,
    configured_key_file: Path | None,
    env_var: str,
    environ: dict[str, str] | os._Environ[str],
    expected_keyid: str | None,
    production: bool,
) -> RegistryKey:
    """Pick the key by precedence: --key-file, then the environment variable, then
    registry.toml's key_file, then the development key (refused with --production)."""
    allow_shared = environ.get(ALLOW_SHARED_ENV, "").strip() == "1"
    if key_file is not None:
        key = load_key_file(key_file, allow_shared)
    elif environ.get(env_var, "").strip():
        key = parse_private_key(environ[env_var], origin=f"environment variable {env_var}")
    elif configured_key_file is not None:
        key = load_key_file(configured_key_file, allow_shared)
    elif production:
        raise SigningKeyError(
            "no signing key configured and this is a production build: pass --key-file, "
            f"set {env_var}, or set [signing] key_file (create one with `appshelf keygen`)"
        )
    else:
        key = development_key()
    if expected_keyid is not None and key.keyid != expected_keyid:
        raise SigningKeyError(
            f"{key.origin}: key id {key.keyid} does not match [signing] key_id "
            f"{expected_keyid} in registry.toml (wrong key?)"
        )
    return key
