"""Verify a Calimero `.mpk` bundle exactly as Calimero does (docs/spec.md section 12).

The publisher's signature covers the manifest: drop `signature` and every top-level key
that starts with `_`, canonicalise with RFC 8785, SHA-256 the bytes, and Ed25519-verify
the 32-byte digest with `signature.publicKey`. Keys and signatures are base64url without
padding; the signer id is the did:key of the public key and must be the manifest's
`signerId`. Then the archive must hold exactly the files the signed manifest declares,
with their sizes and hashes, so the signature binds every byte that matters.

Pure: bytes in, `VerifiedBundle` out, or `BundleError` naming the field and the reason.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

import nacl.exceptions
import nacl.signing

from appshelf.errors import BundleError, CanonicalJSONError
from appshelf.formats.canonical import canonical_json
from appshelf.formats.didkey import did_key
from appshelf.formats.mpk import (
    ArtifactRef,
    BundleManifest,
    check_contents,
    parse_manifest,
    read_archive,
)

SIGNATURE_ALGORITHM: Final = "ed25519"
# Calimero's development key: its seed is SHA-256 of this label (core's bundle crate), so
# anyone can sign with it.
DEV_KEY_LABEL: Final = b"calimero-dev-signing-key-v1"
_DEV_PUBLIC: Final = bytes(
    nacl.signing.SigningKey(hashlib.sha256(DEV_KEY_LABEL).digest()).verify_key
)
# Its private key was committed to calimero-network/core (scripts/test-signing-key/).
_CORE_TEST_PUBLIC: Final = base64.urlsafe_b64decode("zJxVbfNGrbfwgbtupMfpQX2KzStI6wWA3AVpQmxi5pM=")
# did:key -> why a signature by it proves nothing: refused in production builds.
PUBLIC_KEYS: Final = {
    did_key(_DEV_PUBLIC): "Calimero's development key (its seed is public)",
    did_key(_CORE_TEST_PUBLIC): "Calimero's core test key (its private key was published)",
}
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature, signer id and contents all check out.

    Attributes:
        package: The manifest's `package` (Calimero's app id).
        app_version: The manifest's `appVersion`.
        signer_id: The did:key of the key that signed it.
        public_key: That key, 32 raw bytes.
        bundle_hash: SHA-256 (hex) of the canonical signed manifest, Calimero's bundle id.
        manifest: The manifest as parsed, every key kept (the signed ones and any `_` ones).
        artifacts: The files it declares, as checked against the archive.
        public_key_note: Why the key is publicly known (dev or test key), else None.
    """

    package: str
    app_version: str
    signer_id: str
    public_key: bytes
    bundle_hash: str
    manifest: dict[str, Any]
    artifacts: tuple[ArtifactRef, ...]
    public_key_note: str | None


def decode_b64url(text: Any, length: int, where: str) -> bytes:
    """Strict unpadded base64url of exactly `length` bytes, in its one canonical spelling.

    Raises:
        BundleError: not a string, wrong alphabet, padding, length or trailing bits.
    """
    if not isinstance(text, str) or not _B64URL_RE.fullmatch(text):
        raise BundleError(where, "must be unpadded base64url text")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise BundleError(where, "is not valid base64url") from None
    if len(raw) != length:
        raise BundleError(where, f"decodes to {len(raw)} bytes; expected {length}")
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        raise BundleError(where, "is not the canonical base64url of its bytes")
    return raw


def signing_bytes(document: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes the signature's digest is taken over.

    Raises:
        BundleError: the manifest has no canonical JSON form.
    """
    view = {k: v for k, v in document.items() if k != "signature" and not k.startswith("_")}
    try:
        return canonical_json(view)
    except CanonicalJSONError as exc:
        raise BundleError("manifest.json", str(exc)) from None


def verify_signature(document: dict[str, Any]) -> tuple[bytes, str]:
    """Check a manifest's `signature` and `signerId`, whatever else it holds.

    Args:
        document: the parsed manifest object.

    Returns:
        The signer's 32-byte public key and the bundle hash (hex).

    Raises:
        BundleError: unsigned, another algorithm, bad encodings, a signature that does
            not verify, or a signer id that is not the key's did:key.
    """
    block = document.get("signature")
    if not isinstance(block, dict):
        raise BundleError("signature", "missing: the bundle is not signed")
    if block.get("algorithm") != SIGNATURE_ALGORITHM:
        shown = repr(block.get("algorithm"))[:40]
        raise BundleError("signature.algorithm", f"must be 'ed25519', got {shown}")
    public = decode_b64url(block.get("publicKey"), 32, "signature.publicKey")
    signature = decode_b64url(block.get("signature"), 64, "signature.signature")
    digest = hashlib.sha256(signing_bytes(document)).digest()
    try:
        nacl.signing.VerifyKey(public).verify(digest, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        raise BundleError(
            "signature.signature", "does not verify with signature.publicKey"
        ) from None
    expected = did_key(public)
    signer = document.get("signerId")
    if signer != expected:
        shown = repr(signer)[:80]
        raise BundleError("signerId", f"{shown} is not the did:key of the signing key ({expected})")
    return public, digest.hex()


def verify_manifest(data: bytes) -> tuple[BundleManifest, bytes, str]:
    """A manifest on its own (no archive): its shape and signature.

    Args:
        data: `manifest.json` bytes.

    Returns:
        The parsed manifest, the signer's public key and the bundle hash.

    Raises:
        BundleError: see `parse_manifest` and `verify_signature`.
    """
    manifest = parse_manifest(data)
    public, bundle_hash = verify_signature(manifest.document)
    return manifest, public, bundle_hash


def verify_bundle(data: bytes, *, package: str | None, app_version: str | None) -> VerifiedBundle:
    """Verify a whole `.mpk`: archive limits, manifest shape, signature, contents, and
    that it is the app and version it is published as.

    Args:
        data: the bundle's bytes.
        package: the package id it must name (None: any).
        app_version: the version it must be (None: any).

    Returns:
        The verified bundle.

    Raises:
        BundleError: the first rule it breaks.
    """
    archive = read_archive(data)
    manifest, public, bundle_hash = verify_manifest(archive.manifest)
    check_contents(archive, manifest)
    if package is not None and manifest.package != package:
        raise BundleError("package", f"is {manifest.package!r}; this app's package is {package!r}")
    if app_version is not None and manifest.app_version != app_version:
        raise BundleError(
            "appVersion", f"is {manifest.app_version[:80]!r}; the version folder is {app_version!r}"
        )
    return VerifiedBundle(
        package=manifest.package,
        app_version=manifest.app_version,
        signer_id=manifest.signer_id,
        public_key=public,
        bundle_hash=bundle_hash,
        manifest=manifest.document,
        artifacts=manifest.artifacts,
        public_key_note=PUBLIC_KEYS.get(manifest.signer_id),
    )


def check_production(bundle: VerifiedBundle) -> None:
    """Refuse a bundle signed with a key whose private half is public.

    Raises:
        BundleError: the signer is Calimero's development or core test key.
    """
    if bundle.public_key_note is not None:
        raise BundleError(
            "signerId",
            f"signed with {bundle.public_key_note} ({bundle.signer_id}), refused in production: "
            "sign the bundle with the publisher's own key (mero-sign)",
        )
