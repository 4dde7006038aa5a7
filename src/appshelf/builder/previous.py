"""What the registry has published, read back and verified before anything is built on it.

The published state comes from wherever the registry lives: the output folder itself,
`--previous`, `--previous-url` (HTTP) or the deploy target (S3); each is a
`PublishedSource`. Nothing read there is trusted until checked:

1. `snapshot.json` must carry a valid signature by a key the build may sign with (its
   own key, or the old key of a rotation statement in the source) and name this
   registry's base URL;
2. the release log's checkpoint (`log/checkpoint`) must match the snapshot's pin and
   carry a valid signature by the same key;
3. the log's entries must hash to the checkpoint's root, extend the last checkpoint this
   machine saw (the local cache keeps it), and name that key as the active one.

A snapshot without a log (a registry built before the log existed) is adopted: its
versions, read from the pinned app.json files, become the first entries of a new log.

When asked (`want_state`: a build from a git work tree starting from a URL or bucket),
the build state the snapshot pins (`log/state.json`) is read too, checked against its
pin and validated; a state of another format is left unused (it only saves hashing).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pydantic

from appshelf.errors import CheckpointError, LogError, LogFormatError, OutputError, SignatureError
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.buildstate import MAX_STATE_BYTES, STATE_FILE, STATE_FORMAT, BuildState
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.consistent import consistent_path
from appshelf.formats.documents import AppDetail, KeysDocument, Signed, Snapshot, VersionEntry
from appshelf.formats.log import (
    CHECKPOINT,
    TILE_WIDTH,
    Checkpoint,
    decode_bundle,
    log_origin,
    tile_path,
)
from appshelf.formats.merkle import root_of
from appshelf.signing.envelope import trusted_keys_from_hex, verify_envelope
from appshelf.signing.note import verify_checkpoint
from appshelf.signing.releaselog import LogState, replay, verify_log

SNAPSHOT_FILE = "snapshot.json"
MAX_INDEX_BYTES = 64 << 20  # one index file (app.json of a large app, registry.json)
MAX_TILE_BYTES = TILE_WIDTH * (2 + 65535)


class PublishedSource(Protocol):
    """Where the registry's published files are read from (a folder, a URL, a bucket)."""

    description: str  # for messages: "the output folder _site", "https://…"

    def read(self, relpath: str, limit: int) -> bytes | None:
        """The file's bytes, None when it does not exist.

        Raises:
            OutputError: it exists but cannot be read, or is larger than `limit`.
            RemoteAccessError: the same, from a bucket or web host (deploy's sources).
        """
        ...

    def is_empty(self) -> bool | None:
        """Whether nothing at all is published there (None: cannot tell, as over HTTP)."""
        ...


@dataclass
class PreviousOutput:
    root: Path | None = None  # a local folder (the output itself, or --previous)
    snapshot: Snapshot | None = None
    snapshot_bytes: bytes | None = None
    snapshot_keyids: tuple[str, ...] = ()  # who signed it, in order
    log: LogState | None = None  # the verified release log (None: nothing published yet)
    adopted: bool = False  # published before the log existed: its versions seed the log
    keys: KeysDocument | None = None  # adopted registries only
    versions: dict[tuple[str, str], VersionEntry] = field(default_factory=dict)  # adopted only
    bytes_read: int = 0  # of the log (checkpoint and tiles), for the build report
    checkpoint: bytes | None = None  # log/checkpoint as read and verified
    state: BuildState | None = None  # log/state.json as pinned, when asked for

    @property
    def exists(self) -> bool:
        return self.snapshot is not None


class FolderSource:
    """A local output folder; links are never followed (the folder may be a checkout)."""

    def __init__(self, root: Path, description: str | None = None):
        self.root = root
        self.description = description or f"the earlier output {root}"

    def read(self, relpath: str, limit: int) -> bytes | None:
        current = self.root
        parts = relpath.split("/")
        try:
            for part in parts[:-1]:
                current = current / part
                if not stat.S_ISDIR(os.lstat(current).st_mode):
                    raise OutputError(f"{current}: is a link or not a folder; appshelf wrote none")
            path = current / parts[-1]
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise OutputError(_corrupt(self.root / relpath, exc.strerror or exc)) from None
        info = os.fstat(fd)  # before fdopen, which refuses a folder with IsADirectoryError
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise OutputError(_corrupt(path, "not a regular file"))
        with os.fdopen(fd, "rb") as handle:
            if info.st_size > limit:
                raise OutputError(_corrupt(path, f"larger than {limit} bytes"))
            return handle.read(limit + 1)

    def is_empty(self) -> bool | None:
        try:
            return not any(os.scandir(self.root))
        except FileNotFoundError:
            return True
        except OSError:
            return None


def looks_like_output(folder: Path) -> bool:
    return (folder / SNAPSHOT_FILE).is_file()


@dataclass(frozen=True)
class Trust:
    """The keys the published state may be signed by, and what else it must match."""

    base_url: str
    public_keys: Sequence[bytes]  # the build's key, then old keys of rotations to it
    seen: Checkpoint | None = None  # the last checkpoint this machine saw for the output
    seen_log: LogState | None = None  # its entries, if cached (only the rest is read)


def read_previous(
    source: PublishedSource,
    trust: Trust,
    skip_apps: Collection[str] = (),
    want_state: bool = False,
) -> PreviousOutput:
    """Read and verify what `source` has published (see the module docstring).

    Raises:
        OutputError: something is published but cannot be read or verified; the message
            names the file and says what to do.
    """
    raw = source.read(SNAPSHOT_FILE, MAX_INDEX_BYTES)
    if raw is None:
        if trust.seen is not None and trust.seen.size:
            raise OutputError(
                f"{source.description}: has no snapshot.json, but this machine saw its release "
                f"log at {trust.seen.size} entries; the published registry is gone or this is "
                "the wrong place. Restore it (or delete .appshelf-cache/ if that log was never "
                "published)"
            )
        return PreviousOutput(root=getattr(source, "root", None))
    previous = _verified_snapshot(source, raw, trust)
    pin = previous.snapshot.meta.get(CHECKPOINT) if previous.snapshot else None
    if pin is None:
        if trust.seen is not None and trust.seen.size:
            raise OutputError(
                f"{source.description}: its snapshot pins no release log, but this machine saw "
                f"one of {trust.seen.size} entries: the history was replaced"
            )
        _read_adopted(source, previous, skip_apps)
        return previous
    _read_log(source, previous, pin.sha256, pin.length, trust)
    if want_state:
        previous.state = _read_state(source, previous)
    return previous


def _read_state(source: PublishedSource, previous: PreviousOutput) -> BuildState | None:
    """The pinned build state, or None when none is pinned or it is of another format.

    Raises:
        OutputError: it is missing or not what the snapshot pins.
    """
    assert previous.snapshot is not None
    pin = previous.snapshot.meta.get(STATE_FILE)
    if pin is None:
        return None
    where = f"{source.description}: {STATE_FILE}"
    name = consistent_path(STATE_FILE, pin.sha256) if previous.snapshot.consistent else STATE_FILE
    data = source.read(name, min(pin.length, MAX_STATE_BYTES))
    if data is None or sha256_hex(data) != pin.sha256 or len(data) != pin.length:
        raise OutputError(_corrupt(where, "missing, or not what snapshot.json pins"))
    try:
        raw = loads_bounded(data)
        if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
            return None  # a later format: only a saving, so go without it
        state = BuildState.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise OutputError(_corrupt(where, _first(exc))) from None
    except ValueError as exc:
        raise OutputError(_corrupt(where, exc)) from None
    if state.registry != previous.snapshot.registry:
        raise OutputError(_corrupt(where, f"is for the registry {state.registry!r}"))
    return state


def _verified_snapshot(source: PublishedSource, raw: bytes, trust: Trust) -> PreviousOutput:
    where = f"{source.description}: snapshot.json"
    keys = trusted_keys_from_hex([k.hex() for k in trust.public_keys])
    try:
        _, signer = verify_envelope(raw, "appshelf.snapshot", keys, where)
        envelope = Signed[Snapshot].model_validate_json(raw)
    except SignatureError as exc:
        raise OutputError(
            f"{exc}. A build only continues a registry signed by its own key (or by the old "
            "key of a rotation statement in keys/): check --key-file / $APPSHELF_SIGNING_KEY, "
            "and that this is your registry"
        ) from None
    except pydantic.ValidationError as exc:
        raise OutputError(_corrupt(where, _first(exc))) from None
    if envelope.signed.registry != trust.base_url:
        raise OutputError(
            f"{where}: is for the registry {envelope.signed.registry}, not {trust.base_url}; "
            "a registry's base URL cannot change (its documents are bound to it)"
        )
    ordered = (signer, *(s.keyid for s in envelope.signatures if s.keyid != signer))
    return PreviousOutput(
        root=getattr(source, "root", None),
        snapshot=envelope.signed,
        snapshot_bytes=raw,
        snapshot_keyids=ordered,
    )


def _read_log(
    source: PublishedSource, previous: PreviousOutput, sha256: str, length: int, trust: Trust
) -> None:
    where = f"{source.description}: {CHECKPOINT}"
    data, checkpoint = _read_checkpoint(source, previous, sha256, length, trust)
    known = _known_prefix(trust, checkpoint, where)
    try:
        state = _verify_entries(source, checkpoint, known, previous)
    except (LogError, LogFormatError) as exc:
        raise OutputError(f"{source.description}: the release log: {exc}") from None
    if known is None:  # (entries from the cache were bound to the anchor by verify_log)
        _check_seen(state, trust.seen, where)
    head = previous.snapshot.log if previous.snapshot else None
    if head is not None and (head.size, head.root) != (state.size, state.root.hex()):
        raise OutputError(f"{where}: is not the log head snapshot.json names")
    if state.active is None or state.active.keyid != previous.snapshot_keyids[0]:
        raise OutputError(f"{where}: the log's active key is not the key that signed snapshot.json")
    previous.log = state
    previous.checkpoint = data
    previous.bytes_read += len(data)


def _read_checkpoint(
    source: PublishedSource, previous: PreviousOutput, sha256: str, length: int, trust: Trust
) -> tuple[bytes, Checkpoint]:
    """log/checkpoint as the snapshot pins it, its note signed by the snapshot's signer."""
    where = f"{source.description}: {CHECKPOINT}"
    consistent = previous.snapshot is not None and previous.snapshot.consistent
    data = source.read(consistent_path(CHECKPOINT, sha256) if consistent else CHECKPOINT, 4096)
    if data is None or sha256_hex(data) != sha256 or len(data) != length:
        raise OutputError(_corrupt(where, "missing, or not the checkpoint snapshot.json pins"))
    signer = next(k for k in trust.public_keys if _keyid(k) == previous.snapshot_keyids[0])
    try:
        return data, verify_checkpoint(data, signer, log_origin(trust.base_url))
    except CheckpointError as exc:
        raise OutputError(f"{where}: {exc}") from None


def _keyid(public: bytes) -> str:
    from appshelf.signing.keys import key_id

    return key_id(public)


def _known_prefix(trust: Trust, checkpoint: Checkpoint, where: str) -> LogState | None:
    """The cached entries to start from, when they are a prefix of the published log."""
    seen = trust.seen
    if seen is None:
        return None
    if checkpoint.size < seen.size:
        raise OutputError(
            f"{where}: has {checkpoint.size} entries, but this machine saw {seen.size}: the "
            "published log was rolled back or replaced. If the newer entries were never "
            "published, delete .appshelf-cache/ beside the output and build again"
        )
    cached = trust.seen_log
    if cached is not None and cached.size == seen.size and cached.root == seen.root:
        return cached
    return None  # no usable entries: read them all and check the root against `seen` below


def _verify_entries(
    source: PublishedSource,
    checkpoint: Checkpoint,
    known: LogState | None,
    previous: PreviousOutput,
) -> LogState:
    """The published log after `known` (from the cache, replayed `bound`), verified."""
    tail = _read_entries(source, known.size if known is not None else 0, checkpoint.size, previous)
    try:
        return verify_log(checkpoint, tail, known)
    except LogError:
        if known is None or _replays_in_full(known):
            raise
    # A cache whose entries are not canonical was never the log: read as if there were none.
    return _verify_entries(source, checkpoint, None, previous)


def _replays_in_full(state: LogState) -> bool:
    try:
        replay(state.entries)
    except LogError:
        return False
    return True


def _read_entries(
    source: PublishedSource, start: int, size: int, previous: PreviousOutput
) -> list[bytes]:
    """Entries `start`..`size` from the entry bundles, reading each bundle once."""
    entries: list[bytes] = []
    first = start // TILE_WIDTH
    for n in range(first, -(-size // TILE_WIDTH)):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        path = tile_path("entries", n, width)
        data = source.read(path, MAX_TILE_BYTES)
        if data is None and width < TILE_WIDTH:
            path = tile_path("entries", n)  # a later full bundle serves as well
            full = source.read(path, MAX_TILE_BYTES)
            data = _prefix_of_bundle(full, width) if full is not None else None
        if data is None:
            raise OutputError(f"{source.description}: {path}: missing from the release log")
        previous.bytes_read += len(data)
        bundle = decode_bundle(data, width)
        skip = max(0, start - n * TILE_WIDTH)
        entries += bundle[skip:]
    return entries


def _prefix_of_bundle(data: bytes, width: int) -> bytes:
    offset = 0
    for _ in range(width):
        if offset + 2 > len(data):
            break
        offset += 2 + int.from_bytes(data[offset : offset + 2], "big")
    return data[:offset]


def _check_seen(log: LogState, seen: Checkpoint | None, where: str) -> None:
    """The published log must extend the last one this machine saw (an anchor of the
    same size and another root is a forked or rewritten history, not a cache to ignore:
    a planted anchor can make a build refuse, never accept).

    Raises:
        OutputError: it does not.
    """
    if seen is None or not seen.size:
        return
    if log.size < seen.size:
        prefix_root = b""
    else:  # the log's own root is cached (LogState.root): no second pass at the same size
        prefix_root = log.root if seen.size == log.size else root_of(log.leaves[: seen.size])
    if prefix_root != seen.root:
        raise OutputError(
            f"{where}: the published release log does not extend the one this machine saw "
            f"last ({seen.size} entries): its history was rewritten or forked. Find out who "
            "published it before building on it; if that log was never published, delete "
            ".appshelf-cache/ beside the output and build again"
        )


def _read_adopted(
    source: PublishedSource, previous: PreviousOutput, skip_apps: Collection[str]
) -> None:
    """A registry from before the log: read its pinned keys.json and app.json files."""
    assert previous.snapshot is not None
    previous.adopted = True
    skip = {f"apps/{key}/{name}" for key in skip_apps for name in ("app.json", "versions.json")}
    for relpath, pinned in previous.snapshot.meta.items():
        if relpath in skip or not (relpath == "keys.json" or relpath.endswith("/app.json")):
            continue
        data = source.read(relpath, MAX_INDEX_BYTES)
        where = f"{source.description}: {relpath}"
        if data is None or sha256_hex(data) != pinned.sha256 or len(data) != pinned.length:
            raise OutputError(_corrupt(where, "missing, or not what snapshot.json pins"))
        try:
            if relpath == "keys.json":
                previous.keys = KeysDocument.model_validate_json(data)
            else:
                detail = AppDetail.model_validate_json(data)
                for entry in detail.versions:
                    previous.versions[(detail.key, entry.version)] = entry
        except pydantic.ValidationError as exc:
            raise OutputError(_corrupt(where, _first(exc))) from None


def _first(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


def _corrupt(path: object, reason: object) -> str:
    return (
        f"{path}: the earlier output cannot be read ({reason}). It records what was "
        "published; restore it (or pass --previous with a good copy) rather than deleting it"
    )
