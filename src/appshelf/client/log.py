"""The release log as a client checks it (docs/spec.md sections 5 and 9).

The snapshot signs the log's tree head (size, root); everything else under `log/` is
untrusted until it hashes to that head:

- `check_log_head`: on every refresh, the new head must extend the last head this
  client accepted, shown by an RFC 9162 consistency proof built from the few hash
  tiles it needs (never the whole log), so a rewritten or forked history is refused
  even when the registry key signed it;
- `read_log`: the whole log (`appshelf verify`, `appshelf log`), its checkpoint signed
  by the snapshot's key, its entries replayed by `signing.releaselog`;
- `logged_entry`: one entry, by an inclusion proof (`fetch --lock`);
- `compare_with_log`: app.json and the manifests against what the log says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from appshelf.client import trusted as t
from appshelf.client.keys import TrustedKeys
from appshelf.client.state import RegistryState
from appshelf.client.transport import Transport, read_all
from appshelf.errors import (
    CheckpointError,
    LogError,
    LogFormatError,
    LogInconsistentError,
    ProofError,
)
from appshelf.formats.documents import AppDetail, Manifest, VersionEntry
from appshelf.formats.log import (
    CHECKPOINT,
    EVENT_LABELS,
    MAX_CHECKPOINT,
    MAX_ENTRY,
    TILE_WIDTH,
    ChannelEntry,
    Checkpoint,
    LifecycleEntry,
    ReleaseEntry,
    TileNodes,
    TileRef,
    decode_bundle,
    decode_entry,
    log_origin,
    tile_for_leaf,
)
from appshelf.formats.merkle import (
    HASH_SIZE,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from appshelf.signing.note import verify_checkpoint
from appshelf.signing.releaselog import Entry, LoggedRelease, LogState, verify_log

MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY)  # 256 entries of at most 65535 bytes
# A proof needs at most two tiles per tile level (a 2**64 tree has 8 levels); more
# requests than this mean the served tiles are not a tree of the signed size.
MAX_PROOF_TILES = 64


@dataclass
class TileReader:
    """Reads tiles with hard caps: a hash tile is exactly its width times 32 bytes."""

    transport: Transport
    fetched: int = 0
    bytes_read: int = 0

    def hash_tile(self, ref: TileRef) -> bytes:
        self.fetched += 1
        if self.fetched > MAX_PROOF_TILES:
            raise LogInconsistentError(
                f"{ref.path}: more than {MAX_PROOF_TILES} hash tiles needed for one proof"
            )
        data = read_all(self.transport, ref.path, ref.width * HASH_SIZE, ref.path)
        self.bytes_read += len(data)
        return data

    def bundle(self, index: int, width: int) -> list[bytes]:
        ref = TileRef("entries", index, width)
        data = read_all(self.transport, ref.path, MAX_BUNDLE_BYTES, ref.path)
        self.bytes_read += len(data)
        try:
            return decode_bundle(data, width)
        except LogFormatError as exc:
            raise LogInconsistentError(f"{ref.path}: {exc}") from None


def head_of(trusted: t.TrustedSnapshot) -> tuple[int, bytes] | None:
    log = trusted.snapshot.log
    return (log.size, bytes.fromhex(log.root)) if log is not None else None


def check_log_head(transport: Transport, state: RegistryState, trusted: t.TrustedSnapshot) -> None:
    """The snapshot's log must extend the head accepted before (none yet: accepted).

    Raises:
        LogInconsistentError: it does not, naming both sizes.
    """
    if state.log_size is None or state.log_root is None:
        return
    old_size, old_root = state.log_size, bytes.fromhex(state.log_root)
    head = head_of(trusted)
    if head is None:
        raise LogInconsistentError(
            f"{t.SNAPSHOT_PATH}: version {trusted.snapshot.version} names no release log, but "
            f"this client accepted a log of {old_size} entries from {trusted.registry} before: "
            "the registry's history was replaced"
        )
    size, root = head
    try:
        if size < old_size:
            raise ProofError("it is shorter")
        proof = consistency_proof(TileNodes(size, TileReader(transport).hash_tile), old_size, size)
        verify_consistency(old_size, old_root, size, root, proof)
    except (ProofError, LogFormatError):
        raise LogInconsistentError(
            f"{t.SNAPSHOT_PATH}: version {trusted.snapshot.version} has a release log of "
            f"{size} entries that does not extend the {old_size} entries this client "
            f"accepted from {trusted.registry} before: the published history was rewritten, "
            "truncated or forked (even if the registry key signed it). Tell the registry's "
            "operators; do not trust it until they explain"
        ) from None


def _checkpoint(transport: Transport, trusted: t.TrustedSnapshot, keys: TrustedKeys) -> None:
    """log/checkpoint: pinned by the snapshot, signed by the snapshot's key, same head."""
    pin = trusted.pin(CHECKPOINT)
    if pin is None:
        raise LogInconsistentError(
            f"{t.SNAPSHOT_PATH}: names a release log but pins no {CHECKPOINT}"
        )
    where = trusted.location(CHECKPOINT, pin)
    data = read_all(transport, where, min(pin.length, MAX_CHECKPOINT), CHECKPOINT)
    t.check_digest(data, pin, CHECKPOINT)
    try:
        checkpoint = verify_checkpoint(
            data, bytes(keys[trusted.keyid]), log_origin(trusted.registry)
        )
    except CheckpointError as exc:
        raise LogInconsistentError(f"{CHECKPOINT}: {exc}") from None
    if (checkpoint.size, checkpoint.root) != head_of(trusted):
        raise LogInconsistentError(f"{CHECKPOINT}: is not the log head {t.SNAPSHOT_PATH} signs")


@dataclass
class VerifiedLog:
    state: LogState
    bytes_read: int


def read_log(transport: Transport, trusted: t.TrustedSnapshot, keys: TrustedKeys) -> VerifiedLog:
    """Every entry, hashed to the signed head and replayed (every rule of the log).

    Raises:
        LogInconsistentError: no log, a bad checkpoint, entries that do not hash to the head,
            a broken rule, or an active key other than the snapshot's signer.
        TransportError: a tile cannot be read.
    """
    head = head_of(trusted)
    if head is None:
        raise LogInconsistentError(
            f"{t.SNAPSHOT_PATH}: names no release log (a registry built before the log existed)"
        )
    _checkpoint(transport, trusted, keys)
    size, root = head
    reader = TileReader(transport)
    entries: list[bytes] = []
    for n in range(-(-size // TILE_WIDTH)):
        entries += reader.bundle(n, min(TILE_WIDTH, size - n * TILE_WIDTH))
    try:
        state = verify_log(Checkpoint(log_origin(trusted.registry), size, root), entries)
    except LogError as exc:
        raise LogInconsistentError(f"the release log: {exc}") from None
    if state.active is None or state.active.keyid != trusted.keyid:
        raise LogInconsistentError(
            f"the release log: its active key is not the key {trusted.keyid[:16]}... that "
            f"signed {t.SNAPSHOT_PATH}"
        )
    return VerifiedLog(state, reader.bytes_read)


def logged_entry(transport: Transport, trusted: t.TrustedSnapshot, index: int) -> Entry:
    """Entry `index` of the signed log, proven by inclusion (one bundle, a few tiles).

    Raises:
        LogInconsistentError: no such entry, or the served one is not in the signed tree.
    """
    head = head_of(trusted)
    size = head[0] if head is not None else 0
    if not 0 <= index < size:
        raise LogInconsistentError(f"the release log has no entry {index} (it has {size})")
    assert head is not None
    reader = TileReader(transport)
    ref = tile_for_leaf(index, size)
    data = reader.bundle(ref.index, ref.width)[index % TILE_WIDTH]
    try:
        proof = inclusion_proof(TileNodes(size, reader.hash_tile), index, size)
        verify_inclusion(leaf_hash(data), index, size, proof, head[1])
        return decode_entry(data)
    except (ProofError, LogFormatError) as exc:
        raise LogInconsistentError(f"{ref.path}: entry {index}: {exc}") from None


# --- app.json and manifests against the log ------------------------------------------


def _standing(release: LoggedRelease) -> tuple[str | None, str | None, str | None]:
    s = release.standing
    return s.yanked, s.deprecated, s.replacement


def _logged_artifact(release: LoggedRelease) -> tuple[str, str, str, int]:
    a = release.entry.artifact
    return a.filename, a.url, a.sha256, a.size


def release_mismatches(release: LoggedRelease, manifest: Manifest) -> list[str]:
    """The manifest's fields that differ from its release entry (and from its standing)."""
    logged = release.entry
    a = manifest.artifact
    pairs = (
        ("artifact", (a.filename, a.url, a.sha256, a.size), _logged_artifact(release)),
        ("dependencies", manifest.dependencies, logged.dependencies),
        ("provides", manifest.provides, logged.provides),
        ("requires", manifest.requires, logged.requires),
        ("published", manifest.published, logged.published),
        (
            "yanked/deprecated/replacement",
            (manifest.yanked, manifest.deprecated, manifest.replacement),
            _standing(release),
        ),
        (
            "publisher/statement",
            (manifest.publisher.id, manifest.publisher.statement) if manifest.publisher else None,
            (logged.publisher, logged.statement) if logged.publisher else None,
        ),
    )
    return [name for name, mine, theirs in pairs if mine != theirs]


def _check_version(
    key: str, entry: VersionEntry, release: LoggedRelease, manifest: Manifest | None
) -> list[str]:
    where = f"{t.app_path(key)}: version {entry.version}"
    failures = []
    if release.standing.takedown is not None:
        failures.append(f"{where}: taken down by log entry {release.history[-1]}, but listed")
    if entry.log_index != release.index:
        failures.append(
            f"{where}: log_index {entry.log_index} does not name its release entry {release.index}"
        )
    if (entry.yanked, entry.deprecated, entry.replacement) != _standing(release):
        failures.append(f"{where}: its yanked/deprecated/replacement differ from the log's")
    if manifest is not None and (differ := release_mismatches(release, manifest)):
        failures.append(
            f"apps/{key}/{entry.version}/manifest.json: {', '.join(differ)} differ from "
            f"its release entry {release.index} in the log"
        )
    return failures


def _check_channels(state: LogState, key: str, detail: AppDetail) -> list[str]:
    """app.json's channels must be the log's: same names, versions and entries."""
    logged = {name: (c.version, c.index) for name, c in state.app_channels(key).items()}
    listed = {name: (r.version, r.log_index) for name, r in (detail.channels or {}).items()}
    if logged == listed:
        return []
    return [f"{t.app_path(key)}: its channels {listed} are not the release log's {logged}"]


def compare_with_log(
    state: LogState,
    details: Mapping[str, AppDetail],
    manifests: Mapping[tuple[str, str], Manifest],
    unread: frozenset[str] = frozenset(),
) -> list[str]:
    """Every problem between the log and the published documents. `details` holds the
    app.json files read; apps in `unread` failed to load and are not judged here."""
    failures = []
    listed: set[tuple[str, str]] = set()
    for key, detail in sorted(details.items()):
        for entry in detail.versions:
            listed.add((key, entry.version))
            release = state.releases.get((key, entry.version))
            if release is None:
                failures.append(
                    f"{t.app_path(key)}: version {entry.version} is not in the release log"
                )
                continue
            failures += _check_version(key, entry, release, manifests.get((key, entry.version)))
        failures += _check_channels(state, key, detail)
    for (app, version), release in sorted(state.releases.items(), key=lambda r: r[1].index):
        missing = (app, version) not in listed and app not in unread
        if release.standing.takedown is None and missing:
            failures.append(
                f"log entry {release.index}: {app} {version} is released and not taken "
                f"down, but {t.app_path(app)} does not list it"
            )
    return failures


# --- an app's history ------------------------------------------------------------------



@dataclass(frozen=True)
class HistoryRow:
    index: int
    logged: str
    action: str
    version: str
    reason: str
    replacement: str | None


def app_history(state: LogState, app: str) -> list[HistoryRow]:
    """Every entry of a verified log about `app`, oldest first."""
    rows = []
    for index, entry in state.app_history(app):
        if isinstance(entry, ReleaseEntry):
            rows.append(
                HistoryRow(index, entry.logged, EVENT_LABELS["release"], entry.version, "", None)
            )
        elif isinstance(entry, LifecycleEntry):
            action = EVENT_LABELS[entry.action]
            rows.append(
                HistoryRow(
                    index, entry.logged, action, entry.version, entry.reason, entry.replacement
                )
            )
        elif isinstance(entry, ChannelEntry):
            label = EVENT_LABELS["channel" if entry.version else "channel-removed"]
            rows.append(
                HistoryRow(index, entry.logged, label, entry.version or "", entry.channel, None)
            )
    return rows
