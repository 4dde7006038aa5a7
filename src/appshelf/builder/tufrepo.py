"""A standard TUF repository of the whole site, written with python-tuf's Metadata API.

With `[tuf] enabled = true` the build adds `tuf/` (docs/spec.md §16): root, timestamp,
snapshot and a top-level targets role that delegates every site file, by the SHA-256
of its path, to one of `[tuf] bins` hashed bins (TUF succinct delegations, TAP 15).
Every other file of the output is a target with its length and SHA-256, so any TUF
client (python-tuf's ngclient, go-tuf, tuf-js, tough) can fetch and verify any file.

Consistent snapshots: metadata is written as `<version>.<role>.json` (roots kept for
ever, so old clients can walk the chain); targets keep their plain paths (clients set
`prefix_targets_with_hash=False`: hash-prefixed copies would double the artifacts).

Every role is signed by the registry's key (signing/tufkeys.py). A role keeps its
version and bytes while its content is unchanged and more than half its lifetime is
left; otherwise it is signed again with version + 1. `--resign` renews the timestamp
and the snapshot. Versions continue from the verified previous state
(builder/tufprevious.py); a new signing key continues only through a root signed by the
old and the new key (`appshelf rotate-key --tuf-root`), found in the source as
`keys/tuf/<N>.root.json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tuf.api.metadata import (
    Delegations,
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)

from appshelf.builder.cache import BuildCache, Record, stat_key
from appshelf.builder.outputs import MAX_PAGE_BYTES, OutputFile, OutputFiles
from appshelf.builder.previous import FolderSource
from appshelf.builder.tufprevious import (
    TUF_DIR,
    Published,
    TufPrevious,
    check_root_step,
    only_key_of,
    parse_metadata,
)
from appshelf.builder.writer import output_records
from appshelf.errors import OutputError, SigningKeyError
from appshelf.formats.canonical import sha256_hex
from appshelf.signing.keys import RegistryKey
from appshelf.signing.tufkeys import FastCanonicalSerializer, RegistrySigner, tuf_key

BIN_PREFIX = "bin"
_KEEP_RENDERED_BYTES = 256 << 20  # pages rendered for their digest, kept for the writer
_TOP_ROLES = (Root.type, Timestamp.type, Snapshot.type, Targets.type)


@dataclass(frozen=True)
class TufSettings:
    """What the roles' contents and lifetimes depend on, besides the files."""

    bins: int
    root_lifetime: timedelta
    targets_lifetime: timedelta
    short_lifetime: timedelta  # snapshot and timestamp: [signing] snapshot_lifetime_days
    now: datetime
    resign: bool = False  # the scheduled re-sign: a new snapshot and timestamp


@dataclass
class _Signing:
    signer: RegistrySigner
    settings: TufSettings
    serializer: FastCanonicalSerializer

    def fresh(self, expires: datetime, lifetime: timedelta) -> bool:
        return expires - self.settings.now > lifetime / 2

    def expiry(self, lifetime: timedelta) -> datetime:
        return self.settings.now + lifetime

    def signed_by_us(self, published: Published | None) -> bool:
        return published is not None and set(published.metadata.signatures) == {
            self.signer.public_key.keyid
        }

    def encode(self, metadata: _AnyMetadata) -> bytes:
        """Sign with the registry's key (replacing any signature): the file's bytes."""
        return encode_signed(metadata, [self.signer], self.serializer)


_AnyMetadata = Metadata[Targets] | Metadata[Root] | Metadata[Snapshot] | Metadata[Timestamp]


def encode_signed(
    metadata: _AnyMetadata,
    signers: list[RegistrySigner],
    serializer: FastCanonicalSerializer | None = None,
) -> bytes:
    """Sign `metadata` by each of `signers`, in order (replacing any signature), and
    return the file's bytes: what python-tuf's compact JSONSerializer writes, assembled
    around the signed bytes so a large body is encoded once."""
    payload = (serializer or FastCanonicalSerializer()).serialize(metadata.signed)
    metadata.signatures.clear()
    for signer in signers:
        signature = signer.sign(payload)
        metadata.signatures[signature.keyid] = signature
    listed = [signature.to_dict() for signature in metadata.signatures.values()]
    head = json.dumps(listed, sort_keys=True, separators=(",", ":"))
    return b'{"signatures":' + head.encode() + b',"signed":' + payload + b"}"


def plan_tuf(
    targets: Mapping[str, tuple[int, str]],
    previous: TufPrevious | None,
    handover: bytes | None,
    key: RegistryKey,
    settings: TufSettings,
) -> OutputFiles:
    """The files of `tuf/` for a site whose files are `targets` (path -> length, sha256).

    Args:
        targets: every site file but those of `tuf/`.
        previous: the verified TUF metadata published before, if any.
        handover: `keys/tuf/<N+1>.root.json` of the source (N: the latest published
            root), when there is one: the root that hands the roles to a new key.
        key: the build's signing key.
        settings: bins, lifetimes, the clock, and whether this is a re-sign.

    Raises:
        SigningKeyError: the published root gives its roles to another key and the
            source holds no valid hand-over root.
        OutputError: `[tuf] bins` differs from what was published.
    """
    sign = _Signing(RegistrySigner(key), settings, FastCanonicalSerializer())
    roots = _plan_roots(previous, handover, sign)
    files: OutputFiles = {}
    for version, data in enumerate(roots, start=1):
        files[f"{TUF_DIR}/{version}.root.json"] = OutputFile.from_bytes(data)
    files[f"{TUF_DIR}/root.json"] = OutputFile.from_bytes(roots[-1])
    # After a rotation every role is signed again (other key, other bytes), and its
    # version still goes on from the published one.
    old_snapshot = previous.snapshot if previous is not None else None
    old_meta = old_snapshot.metadata.signed.meta if old_snapshot is not None else {}
    top, top_bytes = _plan_targets(previous.targets if previous else None, sign)
    meta: dict[str, MetaFile] = {"targets.json": _meta_file(top.signed.version, top_bytes)}
    files[f"{TUF_DIR}/{top.signed.version}.targets.json"] = OutputFile.from_bytes(top_bytes)
    for name, (version, data) in _plan_bins(targets, old_meta, top.signed.expires, sign).items():
        meta[f"{name}.json"] = _meta_file(version, data)
        files[f"{TUF_DIR}/{version}.{name}.json"] = OutputFile.from_bytes(data)
    dropped = sorted(set(old_meta) - set(meta))
    if dropped:
        raise OutputError(
            f"[tuf] bins = {settings.bins}, but the published TUF snapshot lists "
            f"{len(old_meta) - 1} bins ({dropped[0]} among them): the number of bins cannot "
            "change once published (TUF clients refuse a snapshot that drops a role)"
        )
    snapshot_version, snapshot_bytes = _plan_snapshot(old_snapshot, meta, sign)
    files[f"{TUF_DIR}/{snapshot_version}.snapshot.json"] = OutputFile.from_bytes(snapshot_bytes)
    old_timestamp = previous.timestamp if previous is not None else None
    pin = _meta_file(snapshot_version, snapshot_bytes)
    files[f"{TUF_DIR}/timestamp.json"] = OutputFile.from_bytes(
        _plan_timestamp(old_timestamp, pin, sign)
    )
    return files


def _meta_file(version: int, data: bytes) -> MetaFile:
    return MetaFile(version=version, length=len(data), hashes={"sha256": sha256_hex(data)})


def root_for(public: bytes, version: int, expires: datetime) -> Metadata[Root]:
    """The root appshelf signs: one Ed25519 key holds every role (threshold 1), and
    consistent snapshots."""
    key = tuf_key(public)
    root = Root(
        version=version,
        expires=expires,
        keys={key.keyid: key},
        roles={name: Role([key.keyid], 1) for name in _TOP_ROLES},
        consistent_snapshot=True,
    )
    return Metadata(root)


def _our_root(version: int, sign: _Signing) -> bytes:
    public = bytes.fromhex(sign.signer.public_key.keyval["public"])
    return sign.encode(root_for(public, version, sign.expiry(sign.settings.root_lifetime)))


def handover_root(
    current: bytes, old: RegistryKey, new: RegistryKey, expires: datetime
) -> tuple[int, bytes]:
    """The root that follows the published root `current` (held by `old`) and gives
    every role to `new`, signed by both (what `appshelf rotate-key --tuf-root` writes
    into keys/tuf/): (its version, its bytes).

    Raises:
        SigningKeyError: `current` is not a TUF root held by `old` alone.
    """
    try:
        root = parse_metadata(current, Root)
        check_root_step(None, root, str)
    except (ValueError, OutputError) as exc:
        raise SigningKeyError(f"--tuf-root: {exc}") from None
    if only_key_of(root.signed, [old.public_bytes]) is None:
        raise SigningKeyError(
            "--tuf-root: that root does not give its roles to the old key alone (is it the "
            "registry's published tuf/root.json, and the right old key?)"
        )
    version = root.signed.version + 1
    following = root_for(new.public_bytes, version, expires)
    return version, encode_signed(following, [RegistrySigner(old), RegistrySigner(new)])


def _plan_roots(
    previous: TufPrevious | None, handover: bytes | None, sign: _Signing
) -> list[bytes]:
    """Every root, oldest first: the published ones, and a new one when the key changed
    (the hand-over from the source), when the latest is past half its lifetime, or when
    it is not what this build would sign (consistent snapshots, one key)."""
    if previous is None:
        return [_our_root(1, sign)]
    ours = bytes.fromhex(sign.signer.public_key.keyval["public"])
    latest = previous.root.signed
    following = len(previous.roots) + 1
    if only_key_of(latest, [ours]) is None:
        return [*previous.roots, _handover(previous, handover, ours, following)]
    if latest.consistent_snapshot and sign.fresh(latest.expires, sign.settings.root_lifetime):
        return list(previous.roots)
    return [*previous.roots, _our_root(following, sign)]


def _handover(previous: TufPrevious, handover: bytes | None, ours: bytes, version: int) -> bytes:
    where = f"keys/tuf/{version}.root.json"
    if handover is None:
        raise SigningKeyError(
            f"the published TUF root (tuf/{version - 1}.root.json) gives its roles to another "
            f"key; hand them to this one with a root signed by both keys: `appshelf rotate-key "
            f"--old-key-file OLD --new-key-file NEW --tuf-root <published tuf/root.json>` "
            f"writes {where}"
        )

    def bad(why: str) -> str:
        return f"{where}: {why}; write it again with `appshelf rotate-key ... --tuf-root`"

    try:
        new = parse_metadata(handover, Root)
    except ValueError as exc:
        raise SigningKeyError(bad(str(exc))) from None
    if new.signed.version != version:
        raise SigningKeyError(bad(f"has version {new.signed.version}, not {version}"))
    try:
        check_root_step(previous.root, new, bad)
    except OutputError as exc:
        raise SigningKeyError(str(exc)) from None
    if only_key_of(new.signed, [ours]) is None or not new.signed.consistent_snapshot:
        raise SigningKeyError(bad("does not give every role to this build's key alone"))
    return handover


def _plan_targets(old: Published | None, sign: _Signing) -> tuple[Metadata[Targets], bytes]:
    """The top-level targets role: no targets of its own, the succinct delegation to the
    bins. Its expiry is also the bins' (they are renewed with it)."""
    key = sign.signer.public_key
    bits = sign.settings.bins.bit_length() - 1
    delegations = Delegations(
        keys={key.keyid: key},
        succinct_roles=SuccinctRoles([key.keyid], 1, bits, BIN_PREFIX),
    )
    lifetime = sign.settings.targets_lifetime
    if old is not None:
        before = old.metadata.signed
        assert isinstance(before, Targets)
        if sign.fresh(before.expires, lifetime):
            same = Metadata(Targets(before.version, None, before.expires, {}, delegations))
            data = sign.encode(same)
            if data == old.data:
                return same, data
        version = before.version + 1
    else:
        version = 1
    top = Metadata(Targets(version, None, sign.expiry(lifetime), {}, delegations))
    return top, sign.encode(top)


def _plan_bins(
    targets: Mapping[str, tuple[int, str]],
    old_meta: Mapping[str, MetaFile],
    expires: datetime,
    sign: _Signing,
) -> dict[str, tuple[int, bytes]]:
    """bin name -> (version, bytes). A bin keeps its version when it signs to the bytes
    the published snapshot pins (same targets, same expiry, same key)."""
    bits = sign.settings.bins.bit_length() - 1
    roles = SuccinctRoles([], 1, bits, BIN_PREFIX)
    grouped: dict[str, dict[str, TargetFile]] = {name: {} for name in roles.get_roles()}
    for path in sorted(targets):
        length, sha256 = targets[path]
        target = TargetFile(length, {"sha256": sha256}, path)
        grouped[roles.get_role_for_target(path)][path] = target
    planned: dict[str, tuple[int, bytes]] = {}
    for name, files in grouped.items():
        old = old_meta.get(f"{name}.json")
        version = old.version if old is not None else 1
        data = sign.encode(Metadata(Targets(version, None, expires, files)))
        if old is not None and (old.hashes or {}).get("sha256") != sha256_hex(data):
            version += 1
            data = sign.encode(Metadata(Targets(version, None, expires, files)))
        planned[name] = (version, data)
    return planned


def _still_good(old: Published, unchanged: bool, sign: _Signing, lifetime: timedelta) -> bool:
    """Keep a published role as it is: same content, our signature, not half expired,
    and no re-sign asked for."""
    return (
        not sign.settings.resign
        and unchanged
        and sign.signed_by_us(old)
        and sign.fresh(old.metadata.signed.expires, lifetime)
    )


def _plan_snapshot(
    old: Published | None, meta: dict[str, MetaFile], sign: _Signing
) -> tuple[int, bytes]:
    lifetime = sign.settings.short_lifetime
    if old is not None:
        before = old.metadata.signed
        assert isinstance(before, Snapshot)
        if _still_good(old, before.meta == meta, sign, lifetime):
            return before.version, old.data
        version = before.version + 1
    else:
        version = 1
    snapshot = Snapshot(version, None, sign.expiry(lifetime), meta)
    return version, sign.encode(Metadata(snapshot))


def _plan_timestamp(old: Published | None, pin: MetaFile, sign: _Signing) -> bytes:
    lifetime = sign.settings.short_lifetime
    if old is not None:
        before = old.metadata.signed
        assert isinstance(before, Timestamp)
        if _still_good(old, before.snapshot_meta == pin, sign, lifetime):
            return old.data
        version = before.version + 1
    else:
        version = 1
    return sign.encode(Metadata(Timestamp(version, None, sign.expiry(lifetime), pin)))


def site_targets(
    files: OutputFiles,
    reused: set[str],
    output: Path,
    cache: BuildCache,
    listed: Mapping[str, tuple[int, str]] | None = None,
) -> dict[str, tuple[int, str]]:
    """path -> (length, sha256) of every planned file outside `tuf/`.

    Most digests are in the plan. Two kinds are not: pages rendered only when written
    (lazy files) and the files of unchanged apps (`reused`, builder/memo.py). For these,
    a file on disk whose stat key and token are what the writer recorded is what the
    plan would write: its digest is the recorded one (or, for a page, its bytes are
    hashed, unless `listed`, the verified TUF targets of the build that wrote the
    folder, has it); any other page is rendered here, and kept for the writer up to
    256 MB in all (past that the writer renders it again: the site is never all in
    memory).

    Raises:
        OutputError: an unchanged app's output file is gone.
    """
    records = output_records(cache, output.absolute()) or {}
    kept = 0
    disk = FolderSource(output)
    found: dict[str, tuple[int, str]] = {}
    for path in sorted(files.keys() | reused):
        if path.startswith(f"{TUF_DIR}/"):
            continue
        planned = files.get(path)
        if planned is not None and not planned.is_lazy:
            found[path] = (planned.size, planned.sha256)
            continue
        recorded = _recorded_target(path, planned, records.get(path), output, disk, listed)
        if recorded is not None:
            found[path] = recorded
            continue
        if planned is None:  # an unchanged app's file the cache has no digest of
            found[path] = _read_reused(path, output, disk)
            continue
        rendered = planned.materialize()
        found[path] = (rendered.size, rendered.sha256)
        if kept + rendered.size <= _KEEP_RENDERED_BYTES:  # the writer need not render it again
            files[path] = rendered
            kept += rendered.size
    return found


def _recorded_target(
    path: str,
    planned: OutputFile | None,
    record: Record | None,
    output: Path,
    disk: FolderSource,
    listed: Mapping[str, tuple[int, str]] | None,
) -> tuple[int, str] | None:
    """(length, sha256) of a file on disk that is what the writer recorded (same stat
    key and token): the recorded digest, else the listed one, else its bytes hashed;
    None when the record does not vouch for it (or a page cannot be read)."""
    on_disk = _stat(output / path)
    token = planned.cache_token if planned is not None else None
    if record is None or on_disk != record.key or token not in (None, record.sha256):
        return None
    if not record.sha256.startswith("fp:"):
        return (record.key.size, record.sha256)
    if listed is not None and path in listed:
        return listed[path]
    data = disk.read(path, MAX_PAGE_BYTES)
    return (len(data), sha256_hex(data)) if data is not None else None


def _read_reused(path: str, output: Path, disk: FolderSource) -> tuple[int, str]:
    """Hash an unchanged app's output file the cache has no digest of."""
    data = disk.read(path, 1 << 40)
    if data is None:
        raise OutputError(
            f"{output / path}: an output file of an unchanged app is gone; run the build again"
        )
    return (len(data), sha256_hex(data))


def _stat(path: Path) -> tuple[int, int, int, int, int] | None:
    try:
        return stat_key(os.lstat(path))
    except OSError:
        return None
