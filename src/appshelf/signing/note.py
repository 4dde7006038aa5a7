"""Sign and verify the release log's checkpoint as a C2SP signed note (Ed25519).

The key hash of a note signature is the first 4 bytes of
SHA-256(key name || 0x0A || 0x01 || 32-byte public key), the key name being the
checkpoint's origin; the signature is Ed25519 over the note's text (origin, size and
root lines, each ending in a newline). This is the format of Go's `sumdb/note` package,
so tlog tooling can check an appshelf checkpoint too.
"""

from __future__ import annotations

import hashlib

from appshelf.errors import CheckpointError, LogFormatError
from appshelf.formats.log import Checkpoint, NoteSignature, format_note, parse_note
from appshelf.signing.envelope import signature_is_valid
from appshelf.signing.keys import RegistryKey


def note_key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]


def sign_checkpoint(checkpoint: Checkpoint, key: RegistryKey) -> bytes:
    signature = key.signing_key.sign(checkpoint.body()).signature
    note = NoteSignature(
        checkpoint.origin, note_key_hash(checkpoint.origin, key.public_bytes), signature
    )
    return format_note(checkpoint, [note])


def verify_checkpoint(data: bytes, public_key: bytes, origin: str) -> Checkpoint:
    """The checkpoint in `data`, if it has `origin` and a valid signature by `public_key`.

    Raises:
        CheckpointError: malformed, another origin, or no valid signature by that key.
    """
    try:
        checkpoint, signatures = parse_note(data)
    except LogFormatError as exc:
        raise CheckpointError(str(exc)) from None
    if checkpoint.origin != origin:
        raise CheckpointError(
            f"the checkpoint is for the log {checkpoint.origin!r}, not {origin!r}"
        )
    key_hash = note_key_hash(origin, public_key)
    mine = [s for s in signatures if s.name == origin and s.key_hash == key_hash]
    if not mine:
        raise CheckpointError("the checkpoint is not signed by the registry's active key")
    for signature in mine:
        if not signature_is_valid(public_key, checkpoint.body(), signature.signature):
            raise CheckpointError("the checkpoint's signature is not valid (it was altered)")
    return checkpoint
