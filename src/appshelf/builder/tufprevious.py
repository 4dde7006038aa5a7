"""The TUF metadata a registry published, read back and verified before a build uses it.

It comes from the same published state as the rest (builder/previous.py: the output
folder, `--previous`, `--previous-url`, the `--deploy` bucket) and is hostile until
checked, as a TUF client would check it:

1. `tuf/1.root.json`, `tuf/2.root.json`, ... up to the first that is missing: each root
   signed by a threshold of its own root keys and of the previous root's; the latest
   must give every top-level role exactly the one key the build accepts for the
   registry (its own, or the old key of a rotation statement to it);
2. `tuf/timestamp.json`, then the snapshot it pins, then the top-level targets the
   snapshot pins: each signed by the latest root's key for its role, each pinned file
   matching its length and SHA-256.

Only what the next build needs is read: versions, expiry dates and the pins of the
delegated bins (never the bins themselves, which may be megabytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuf.api.metadata import Metadata, MetaFile, Root, Signed, Snapshot, Targets, Timestamp

from appshelf.builder.previous import PublishedSource
from appshelf.errors import OutputError
from appshelf.formats.boundedjson import loads_bounded
from appshelf.signing.tufkeys import FastCanonicalSerializer

TUF_DIR = "tuf"
MAX_ROOTS = 1000
MAX_ROOT_BYTES = 512_000  # ngclient's own limits (UpdaterConfig)
MAX_TIMESTAMP_BYTES = 16_384
MAX_SNAPSHOT_BYTES = 16 << 20
MAX_TARGETS_BYTES = 5_000_000


@dataclass(frozen=True)
class Published:
    """One verified metadata file: its parsed form and its exact bytes."""

    metadata: Metadata[Any]
    data: bytes


@dataclass(frozen=True)
class TufPrevious:
    roots: list[bytes]  # 1.root.json .. N.root.json, as published
    root: Metadata[Root]  # the latest
    timestamp: Published | None
    snapshot: Published | None
    targets: Published | None


def read_tuf_previous(source: PublishedSource, trusted: Sequence[bytes]) -> TufPrevious | None:
    """The verified TUF metadata at `source`, or None when it has none.

    Args:
        source: where the registry is published.
        trusted: raw Ed25519 public keys the latest root may give its roles to.

    Raises:
        OutputError: TUF metadata is there but is not what appshelf published.
    """
    roots, root = _read_roots(source, trusted)
    if root is None:
        return None
    raw = source.read(f"{TUF_DIR}/timestamp.json", MAX_TIMESTAMP_BYTES)
    if raw is None:
        return TufPrevious(roots, root, None, None, None)
    timestamp = _verified(source, "timestamp.json", raw, root, Timestamp)
    ts = timestamp.metadata.signed
    assert isinstance(ts, Timestamp)
    snapshot = _pinned(
        source,
        f"{ts.snapshot_meta.version}.snapshot.json",
        ts.snapshot_meta,
        MAX_SNAPSHOT_BYTES,
        root,
        Snapshot,
    )
    snap = snapshot.metadata.signed
    assert isinstance(snap, Snapshot)
    meta = snap.meta.get("targets.json")
    if meta is None:
        raise OutputError(_bad(source, "snapshot", "pins no targets.json"))
    targets = _pinned(
        source, f"{meta.version}.targets.json", meta, MAX_TARGETS_BYTES, root, Targets
    )
    return TufPrevious(roots, root, timestamp, snapshot, targets)


def _read_roots(
    source: PublishedSource, trusted: Sequence[bytes]
) -> tuple[list[bytes], Metadata[Root] | None]:
    roots: list[bytes] = []
    latest: Metadata[Root] | None = None
    for version in range(1, MAX_ROOTS + 1):
        name = f"{version}.root.json"
        raw = source.read(f"{TUF_DIR}/{name}", MAX_ROOT_BYTES)
        if raw is None:
            break
        root = _parse(source, name, raw, Root)
        if root.signed.version != version:
            raise OutputError(_bad(source, name, f"has version {root.signed.version}"))
        check_root_step(latest, root, lambda why, name=name: _bad(source, name, why))
        roots.append(raw)
        latest = root
    if latest is None:
        return roots, None
    if not only_key_of(latest.signed, trusted):
        raise OutputError(
            _bad(
                source,
                f"{len(roots)}.root.json",
                "does not give its roles to this build's "
                "key (or the old key of a rotation statement to it)",
            )
        )
    return roots, latest


def check_root_step(old: Metadata[Root] | None, new: Metadata[Root], bad: Any) -> None:
    """`new` is signed by a threshold of its own root keys and, after `old`, of old's
    (the TUF client's rule for following a root rotation).

    Raises:
        OutputError: it is not; `bad(reason)` gives the message.
    """
    serializer = FastCanonicalSerializer()
    payload = serializer.serialize(new.signed)
    try:
        if old is not None:
            old.signed.verify_delegate(Root.type, payload, new.signatures)
        new.signed.verify_delegate(Root.type, payload, new.signatures)
    except Exception as exc:  # python-tuf raises several kinds here
        raise OutputError(bad(f"not signed as the previous root requires ({exc})")) from None


def only_key_of(root: Root, trusted: Sequence[bytes]) -> bytes | None:
    """The raw public key that holds every top-level role of `root` alone (threshold
    1), when it is one of `trusted`; else None."""
    keyids = {tuple(role.keyids) for role in root.roles.values()}
    thresholds = {role.threshold for role in root.roles.values()}
    if len(keyids) != 1 or thresholds != {1}:
        return None
    (only,) = keyids
    if len(only) != 1 or only[0] not in root.keys:
        return None
    key = root.keys[only[0]]
    public = key.keyval.get("public")
    if key.keytype != "ed25519" or key.scheme != "ed25519" or not isinstance(public, str):
        return None
    try:
        raw = bytes.fromhex(public)
    except ValueError:
        return None
    return raw if raw in trusted else None


def _pinned(
    source: PublishedSource,
    name: str,
    pin: MetaFile,
    limit: int,
    root: Metadata[Root],
    kind: type[Signed],
) -> Published:
    raw = source.read(f"{TUF_DIR}/{name}", limit)
    if raw is None:
        raise OutputError(_bad(source, name, "is missing"))
    try:
        pin.verify_length_and_hashes(raw)
    except Exception:  # LengthOrHashMismatchError, or a malformed pin
        raise OutputError(_bad(source, name, "is not the file its parent pins")) from None
    return _verified(source, name, raw, root, kind)


def _verified(
    source: PublishedSource,
    name: str,
    raw: bytes,
    root: Metadata[Root],
    kind: type[Signed],
) -> Published:
    metadata = _parse(source, name, raw, kind)
    payload = FastCanonicalSerializer().serialize(metadata.signed)
    try:
        root.signed.verify_delegate(kind.type, payload, metadata.signatures)
    except Exception as exc:  # python-tuf raises several kinds here
        raise OutputError(_bad(source, name, f"signature: {exc}")) from None
    return Published(metadata, raw)


def parse_metadata(raw: bytes, kind: type[Signed]) -> Metadata[Any]:
    """Bounded JSON, then python-tuf's own parser; of the `kind` expected.

    Raises:
        ValueError: malformed, or another kind of metadata.
    """
    try:
        metadata: Metadata[Any] = Metadata.from_dict(loads_bounded(raw))
    except Exception as exc:  # from_dict raises KeyError, TypeError, ...
        raise ValueError(f"malformed TUF metadata ({type(exc).__name__}: {exc})") from None
    if not isinstance(metadata.signed, kind):
        raise ValueError(f"is {metadata.signed.type} metadata, not {kind.type}")
    return metadata


def _parse(source: PublishedSource, name: str, raw: bytes, kind: type[Signed]) -> Metadata[Any]:
    try:
        return parse_metadata(raw, kind)
    except ValueError as exc:
        raise OutputError(_bad(source, name, str(exc))) from None


def _bad(source: PublishedSource, name: str, reason: str) -> str:
    return (
        f"{source.description}: {TUF_DIR}/{name}: {reason}. The TUF metadata records "
        "what was published; restore it (or pass --previous with a good copy) rather "
        "than deleting it"
    )


def read_bin_targets(source: PublishedSource, previous: TufPrevious) -> dict[str, tuple[int, str]]:
    """path -> (length, sha256) of every target the published bins list, each bin read
    only if it matches the verified snapshot's pin (so its bytes are the ones this
    registry signed). Used to know the digests of unchanged pages without reading them.

    Raises:
        OutputError: a bin is missing or is not what the snapshot pins.
    """
    found: dict[str, tuple[int, str]] = {}
    if previous.snapshot is None:
        return found
    snapshot = previous.snapshot.metadata.signed
    assert isinstance(snapshot, Snapshot)
    for name, pin in sorted(snapshot.meta.items()):
        if name == "targets.json":
            continue
        raw = source.read(f"{TUF_DIR}/{pin.version}.{name}", MAX_TARGETS_BYTES)
        if raw is None:
            raise OutputError(_bad(source, f"{pin.version}.{name}", "is missing"))
        try:
            pin.verify_length_and_hashes(raw)
            listed = loads_bounded(raw)["signed"]["targets"]
            for path, info in listed.items():
                length, sha256 = info["length"], info["hashes"]["sha256"]
                if isinstance(length, int) and isinstance(sha256, str):
                    found[path] = (length, sha256)
        except Exception:  # a mismatch, or not the shape appshelf writes
            raise OutputError(
                _bad(source, f"{pin.version}.{name}", "is not the bin its snapshot pins")
            ) from None
    return found
