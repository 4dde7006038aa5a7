"""The release log's static layout: entries, tiles and the checkpoint (pure: no I/O).

The log is the registry's signed, append-only record of everything it has published
(docs/spec.md section 9). It is stored as C2SP tlog-tiles (the layout of Go's checksum
database, Sunlight and Rekor v2) under `log/` in the published registry:

- `log/checkpoint`: a C2SP signed note (origin, tree size, base64 root hash), signed by
  the registry key; `snapshot.json` pins it.
- `log/tile/entries/<N>[.p/<W>]`: entry bundles of 256 entries (a partial bundle of the
  log's last W entries has `.p/<W>`), each entry a big-endian uint16 length then its
  RFC 8785 bytes.
- `log/tile/<L>/<N>[.p/<W>]`: hash tiles: the 32-byte hashes of the complete subtrees
  at tree level 8*L, 256 a tile.

Every file but the checkpoint is immutable: a full tile never changes, and a partial
tile of width W is a prefix of every later tile at its place.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from appshelf.errors import LogFormatError, ProofError
from appshelf.formats.canonical import TIMESTAMP_PATTERN, model_to_json
from appshelf.formats.documents import HEX64, ChannelName, FileDigest
from appshelf.formats.frozen import FrozenModel
from appshelf.formats.merkle import HASH_SIZE, node_hash

LOG_DIR: Final = "log"
CHECKPOINT: Final = "log/checkpoint"
TILE_WIDTH: Final = 256
TILE_HEIGHT: Final = 8
MAX_ENTRY: Final = 65535  # uint16 length prefix
MAX_CHECKPOINT: Final = 4096

RELEASE_TYPE: Final = "appshelf.log.release"
LIFECYCLE_TYPE: Final = "appshelf.log.lifecycle"
KEY_TYPE: Final = "appshelf.log.key"
OWNERS_TYPE: Final = "appshelf.log.owners"
CHANNEL_TYPE: Final = "appshelf.log.channel"


class _Entry(FrozenModel):
    spec_version: Literal["1"] = "1"
    registry: str
    logged: str = Field(pattern=TIMESTAMP_PATTERN)  # when the build appended it


class LoggedArtifact(FrozenModel):
    filename: str
    url: str
    sha256: str = Field(pattern=HEX64)
    size: int = Field(ge=0)


class ReleaseEntry(_Entry):
    """A version as first published: none of these fields may ever change."""

    type: Literal["appshelf.log.release"] = RELEASE_TYPE
    app: str
    version: str
    artifact: LoggedArtifact
    manifest: FileDigest  # the manifest as first published (later ones add lifecycle)
    dependencies: dict[str, str] = Field(default_factory=dict)
    provides: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)
    published: str = Field(pattern=TIMESTAMP_PATTERN)
    publisher: str | None = None  # the publisher whose statement the build verified
    statement: FileDigest | None = None  # that statement.json, as published beside it
    kind: Literal["template"] | None = None  # absent for apps; a template (spec section 15)


class LifecycleEntry(_Entry):
    """A change of a published version's standing; the release itself never changes."""

    type: Literal["appshelf.log.lifecycle"] = LIFECYCLE_TYPE
    action: Literal["yank", "unyank", "deprecate", "undeprecate", "takedown"]
    app: str
    version: str
    reason: str = ""
    replacement: str | None = None  # deprecate: the version to use instead


class ChannelEntry(_Entry):
    """A channel of an app (`stable`, `beta`) pointed at a released version, or removed
    (`version` absent). Moving a channel is a new entry; the last one for (app, channel)
    is the channel's state."""

    type: Literal["appshelf.log.channel"] = CHANNEL_TYPE
    app: str
    channel: ChannelName
    version: str | None = None  # absent: the channel is removed


class LoggedKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    keyid: str = Field(pattern=HEX64)
    public: str = Field(pattern=HEX64)
    development: bool = False


class KeyEntry(_Entry):
    """The keys that may sign the registry. `genesis` starts the log; `rotate` hands
    signing over to `key` and carries the old key's signature over the rotation
    statement (`statement`, RFC 8785 bytes in base64); `retire` and `revoke` end a key."""

    type: Literal["appshelf.log.key"] = KEY_TYPE
    action: Literal["genesis", "rotate", "retire", "revoke"]
    key: LoggedKey
    previous: str | None = None  # rotate: the key id that signed the statement
    statement: str | None = None  # rotate: base64 of the signed rotation statement


class OwnersSigner(BaseModel):
    """Who signed an owners change: a publisher among the owners before it, and the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    publisher: str
    via: str | None = None  # the owning organisation the publisher is a member of
    keyid: str = Field(pattern=HEX64)
    public: str = Field(pattern=HEX64)


class OwnersEntry(_Entry):
    """Who may publish an app. `initial` records app.toml's owners when the log first
    meets them; `change` carries the owners-change statement (base64 of its bytes)
    signed by `signer`, one of the owners before it."""

    type: Literal["appshelf.log.owners"] = OWNERS_TYPE
    action: Literal["initial", "change"]
    app: str
    owners: list[str] = Field(min_length=1)
    signer: OwnersSigner | None = None  # change only
    statement: str | None = None  # change only


# How people read each entry about a release (`release`, then the lifecycle actions,
# then channel entries): the words of `appshelf log` and of the site's History section.
EVENT_LABELS: Final = {
    "release": "released",
    "yank": "yanked",
    "unyank": "unyanked",
    "deprecate": "deprecated",
    "undeprecate": "undeprecated",
    "takedown": "taken down",
    "channel": "channel set",
    "channel-removed": "channel removed",
}

AnyEntry = ReleaseEntry | LifecycleEntry | KeyEntry | ChannelEntry | OwnersEntry
LogEntry = Annotated[AnyEntry, Field(discriminator="type")]
_ENTRY = TypeAdapter(LogEntry)


def encode_entry(entry: AnyEntry) -> bytes:
    data = model_to_json(entry)
    if len(data) > MAX_ENTRY:
        raise LogFormatError(f"a log entry is {len(data)} bytes; the limit is {MAX_ENTRY}")
    return data


def decode_entry(data: bytes, *, check_canonical: bool = True) -> AnyEntry:
    """One entry from its bytes.

    Re-encoding to compare the bytes costs more than the decoding; `check_canonical=False`
    is for bytes checked when first accepted and bound, by the caller, to a signed root
    (signing.releaselog.replay's `bound`).

    Raises:
        LogFormatError: not one of the entry types, or (when checked) not canonical JSON.
    """
    try:
        entry = _ENTRY.validate_json(data)
    except ValueError as exc:
        raise LogFormatError(f"not a log entry ({_first_error(exc)})") from None
    if check_canonical and model_to_json(entry) != data:
        raise LogFormatError("a log entry is not in RFC 8785 canonical form")
    return entry


def _first_error(exc: ValueError) -> str:
    text = str(exc).splitlines()
    return " ".join(text[:3])[:300]


# --- tiles -------------------------------------------------------------------------


def tile_index_path(index: int) -> str:
    """tlog-tiles N: zero-padded 3-digit elements, all but the last prefixed by x."""
    digits = f"{index:03d}"
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def tile_path(level: int | Literal["entries"], index: int, width: int = TILE_WIDTH) -> str:
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"{LOG_DIR}/tile/{level}/{tile_index_path(index)}{suffix}"


@dataclass(frozen=True)
class TileRef:
    level: int | Literal["entries"]
    index: int
    width: int

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)


def tiles_for(size: int) -> list[TileRef]:
    """Every tile of a tree of `size` leaves: full tiles and the partial one per level."""
    refs: list[TileRef] = []
    full, rest = divmod(size, TILE_WIDTH)
    refs += [TileRef("entries", n, TILE_WIDTH) for n in range(full)]
    if rest:
        refs.append(TileRef("entries", full, rest))
    level = 0
    while (count := size >> (TILE_HEIGHT * level)) > 0:
        full, rest = divmod(count, TILE_WIDTH)
        refs += [TileRef(level, n, TILE_WIDTH) for n in range(full)]
        if rest:
            refs.append(TileRef(level, full, rest))
        level += 1
    return refs


def tile_for_leaf(index: int, size: int) -> TileRef:
    """The entry bundle holding leaf `index` in a tree of `size`."""
    n = index // TILE_WIDTH
    return TileRef("entries", n, min(TILE_WIDTH, size - n * TILE_WIDTH))


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    return b"".join(len(e).to_bytes(2, "big") + e for e in entries)


def split_entries(data: bytes, limit: int | None = None) -> list[bytes]:
    """The length-prefixed entries of `data` (at most `limit` + 1 are split off).

    Raises:
        LogFormatError: the bytes end inside a length prefix or an entry.
    """
    entries: list[bytes] = []
    offset = 0
    while offset < len(data) and (limit is None or len(entries) <= limit):
        if offset + 2 > len(data):
            raise LogFormatError("an entry bundle ends inside a length prefix")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if offset + length > len(data):
            raise LogFormatError("an entry bundle ends inside an entry")
        entries.append(data[offset : offset + length])
        offset += length
    return entries


def decode_bundle(data: bytes, width: int) -> list[bytes]:
    """Raises LogFormatError: not exactly `width` length-prefixed entries."""
    entries = split_entries(data, width)
    if len(entries) != width:
        raise LogFormatError(f"an entry bundle holds {len(entries)} entries, expected {width}")
    return entries


def encode_hash_tile(hashes: Sequence[bytes]) -> bytes:
    return b"".join(hashes)


def decode_hash_tile(data: bytes, width: int) -> list[bytes]:
    if len(data) != width * HASH_SIZE:
        raise LogFormatError(f"a hash tile is {len(data)} bytes, expected {width * HASH_SIZE}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def hash_tiles(levels: Sequence[Sequence[bytes]], size: int) -> Iterator[tuple[TileRef, bytes]]:
    """The hash tiles of a tree, from its node hashes level by level (levels[h] holds
    the complete nodes at tree level h, as merkle.MemoryTree keeps them)."""
    for ref in tiles_for(size):
        if ref.level == "entries":
            continue
        row = levels[TILE_HEIGHT * ref.level]
        start = ref.index * TILE_WIDTH
        yield ref, encode_hash_tile(row[start : start + ref.width])


NodeTileFetch = Callable[[TileRef], bytes]  # bytes of one tile, from wherever it is served


class TileNodes:
    """A merkle.NodeHashes oracle over hash tiles fetched on demand (untrusted: proofs
    made from them are checked against a signed root by merkle.verify_*)."""

    def __init__(self, size: int, fetch: NodeTileFetch):
        self.size = size
        self._fetch = fetch
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def __call__(self, level: int, index: int) -> bytes:
        tile_level, within = divmod(level, TILE_HEIGHT)
        first = index << within  # the first node at tree level 8*tile_level
        count = 1 << within
        hashes = [self._node(tile_level, first + i) for i in range(count)]
        while len(hashes) > 1:
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]

    def _node(self, tile_level: int, node: int) -> bytes:
        n, offset = divmod(node, TILE_WIDTH)
        nodes_at_level = self.size >> (TILE_HEIGHT * tile_level)
        width = min(TILE_WIDTH, nodes_at_level - n * TILE_WIDTH)
        if offset >= width:
            raise ProofError(f"no node {node} at tile level {tile_level} in a tree of {self.size}")
        tile = self._tiles.get((tile_level, n))
        if tile is None:
            tile = decode_hash_tile(self._fetch(TileRef(tile_level, n, width)), width)
            self._tiles[(tile_level, n)] = tile
        return tile[offset]


# --- checkpoint (C2SP tlog-checkpoint in a C2SP signed note) -------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> bytes:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n".encode()


_ORIGIN = re.compile(r"[\x21-\x7e]{1,255}")
_SIGNATURE_LINE = re.compile(r"\u2014 ([\x21-\x7e]{1,255}) ([A-Za-z0-9+/]{1,200}={0,2})")


def log_origin(base_url: str) -> str:
    """The checkpoint's origin: the base URL without its scheme or final `/`."""
    return base_url.split("://", 1)[-1].rstrip("/")


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hash: bytes  # 4 bytes
    signature: bytes  # 64 bytes


def format_note(checkpoint: Checkpoint, signatures: Sequence[NoteSignature]) -> bytes:
    lines = "".join(
        f"\u2014 {s.name} {base64.b64encode(s.key_hash + s.signature).decode()}\n"
        for s in signatures
    )
    return checkpoint.body() + b"\n" + lines.encode()


def parse_note(data: bytes) -> tuple[Checkpoint, list[NoteSignature]]:
    """Raises LogFormatError: not a checkpoint note of the shape this spec writes."""
    if len(data) > MAX_CHECKPOINT:
        raise LogFormatError(f"the checkpoint is {len(data)} bytes; the limit is {MAX_CHECKPOINT}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LogFormatError("the checkpoint is not UTF-8") from None
    body, sep, sigs = text.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise LogFormatError("the checkpoint has no signature block")
    lines = body.split("\n")
    if len(lines) != 3:
        raise LogFormatError("the checkpoint body is not origin, size and root hash")
    origin, size_text, root_text = lines
    if _ORIGIN.fullmatch(origin) is None:
        raise LogFormatError("the checkpoint origin is not printable ASCII")
    if re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text) is None:
        raise LogFormatError("the checkpoint tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        root = b""
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise LogFormatError("the checkpoint root hash is not 32 bytes of base64")
    signatures = []
    for line in sigs[:-1].split("\n"):
        match = _SIGNATURE_LINE.fullmatch(line)
        raw = base64.b64decode(match.group(2)) if match else b""
        if match is None or len(raw) != 4 + 64:
            raise LogFormatError("a checkpoint signature line is not an Ed25519 note signature")
        signatures.append(NoteSignature(match.group(1), raw[:4], raw[4:]))
    return Checkpoint(origin, int(size_text), root), signatures
