"""What an earlier build published: the memory that makes versions immutable.

Read from an output folder (the target itself, or `--previous`): the snapshot, the
keys, and every app's versions with their artifact digests and published times.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import pydantic

from appshelf.errors import OutputError
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import (
    AppDetail,
    KeysDocument,
    Signed,
    Snapshot,
    VersionEntry,
)

SNAPSHOT_FILE = "snapshot.json"


@dataclass
class PreviousOutput:
    root: Path | None = None
    snapshot: Snapshot | None = None
    snapshot_bytes: bytes | None = None
    snapshot_keyids: tuple[str, ...] = ()  # who signed it, in order
    keys: KeysDocument | None = None
    versions: dict[tuple[str, str], VersionEntry] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # relpath -> sha256 of index files

    @property
    def exists(self) -> bool:
        return self.snapshot is not None


def looks_like_output(folder: Path) -> bool:
    return (folder / SNAPSHOT_FILE).is_file()


def read_previous_output(folder: Path, skip_apps: Collection[str] = ()) -> PreviousOutput:
    """Read an earlier output; an absent folder means a first build. The files of
    `skip_apps` (apps reused unchanged, whose files the build cache vouches for) are
    not read: their versions are not listed."""
    if not folder.exists():
        return PreviousOutput()
    snapshot_path = folder / SNAPSHOT_FILE
    if not snapshot_path.is_file():
        return PreviousOutput(root=folder)
    try:
        raw = snapshot_path.read_bytes()
        envelope = Signed[Snapshot].model_validate_json(raw)
    except (OSError, pydantic.ValidationError) as exc:
        raise OutputError(_corrupt(snapshot_path, exc)) from None
    previous = PreviousOutput(
        root=folder,
        snapshot=envelope.signed,
        snapshot_bytes=raw,
        snapshot_keyids=tuple(s.keyid for s in envelope.signatures),
    )
    skip = {f"apps/{key}/{name}" for key in skip_apps for name in ("app.json", "versions.json")}
    for relpath, pinned in envelope.signed.meta.items():
        if relpath in skip:
            previous.digests[relpath] = pinned.sha256
            continue
        path = folder / relpath
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise OutputError(_corrupt(path, exc)) from None
        if sha256_hex(data) != pinned.sha256 or len(data) != pinned.length:
            raise OutputError(_corrupt(path, "it does not match the digest in snapshot.json"))
        previous.digests[relpath] = pinned.sha256
        try:
            if relpath == "keys.json":
                previous.keys = KeysDocument.model_validate_json(data)
            elif relpath.endswith("/app.json"):
                detail = AppDetail.model_validate_json(data)
                for entry in detail.versions:
                    previous.versions[(detail.key, entry.version)] = entry
        except pydantic.ValidationError as exc:
            raise OutputError(_corrupt(path, exc)) from None
    return previous


def _corrupt(path: Path, reason: object) -> str:
    return (
        f"{path}: the earlier output cannot be read ({reason}). It records what was "
        "published; restore it (or pass --previous with a good copy) rather than deleting it"
    )
