"""The trusted-metadata layer: bytes in, verified objects out. No I/O, no clock reads.

This is the verification walk of docs/spec.md, one function per step:

1. `verify_snapshot`: signature by a trusted key, type, registry binding, a sane
   issued/expires window and expiry against the caller's clock, version never below
   the highest seen before.
2. `verify_bin`: a bin file (docs/spec.md 4.8) against the snapshot's pin, and that it
   is the bin the snapshot pins it as, naming only files of its range;
   `verify_pinned`: any index file (registry.json, index.json, keys.json,
   apps/<key>/app.json, apps/<key>/versions.json) against its pin (the snapshot's, or
   its bin's).
3. `verify_manifest`: a manifest against app.json's pinned digest, its own signature,
   and agreement with app.json (app, version, artifact, yanked, dependencies...).
4. `ArtifactCheck`: an artifact against the manifest's sha256 and size, incrementally.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote

import nacl.signing
from pydantic import BaseModel, ValidationError

from appshelf.client.state import RegistryState
from appshelf.errors import (
    BadSignatureError,
    DigestMismatchError,
    ExpiredError,
    InconsistentMetadataError,
    JsonRejectedError,
    LengthExceededError,
    MalformedError,
    RollbackError,
    SignatureError,
    UnknownAppError,
    UnknownKeyError,
    UntrustedKeyConfigError,
    UntrustedSignatureError,
)
from appshelf.formats.bins import all_bin_paths, bin_of, bin_problem, is_bin_path
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.canonical import format_timestamp, parse_timestamp, sha256_hex
from appshelf.formats.consistent import consistent_path
from appshelf.formats.documents import (
    MANIFEST_TYPE,
    SNAPSHOT_TYPE,
    AppDetail,
    BinDocument,
    FileDigest,
    Manifest,
    Snapshot,
    VersionEntry,
)
from appshelf.formats.flows import FlowsVersions
from appshelf.signing.envelope import verify_envelope

SNAPSHOT_PATH = "snapshot.json"
# docs/spec.md section 5: how far `issued` may be ahead of the verifier's clock, and the
# longest `expires - issued` (the builder's `snapshot_lifetime_days` allows 1-366).
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_SNAPSHOT_LIFETIME = timedelta(days=366)
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class TrustedSnapshot:
    """A snapshot that passed step 1 of the walk; only `verify_snapshot` makes one.

    Attributes:
        snapshot: The signed snapshot document.
        keyid: The id of the trusted key whose signature verified.
        sha256: The SHA-256 of the snapshot.json bytes (kept for rollback protection).
        bins: The bins read and verified so far under this snapshot (path -> bin,
            docs/spec.md 4.8); only `verify_bin` adds to it.
    """

    snapshot: Snapshot
    keyid: str
    sha256: str
    # The bins read so far (path -> verified bin); only `verify_bin` adds to it.
    bins: dict[str, BinDocument] = field(default_factory=dict, compare=False, repr=False)

    @property
    def registry(self) -> str:
        """The registry URL the snapshot is signed for."""
        return self.snapshot.registry

    def bin_for(self, relpath: str) -> str | None:
        """The bin that pins a file (docs/spec.md 4.8).

        Args:
            relpath: A path relative to the registry root, e.g. `apps/kv-store/app.json`.

        Returns:
            The bin's path when the snapshot has bins and `relpath` is a per-app file;
            None when the snapshot pins it directly (or pins nothing for it).
        """
        bins = self.snapshot.bins
        return None if bins is None else bin_of(relpath, bins.bits)

    def missing_bins(self, relpaths: list[str] | None = None) -> list[str]:
        """The bins not yet read that pin `relpaths` (default: every bin).

        Args:
            relpaths: The files about to be looked up.

        Returns:
            Bin paths to fetch and pass to `verify_bin`, sorted.
        """
        if self.snapshot.bins is None:
            return []
        if relpaths is None:
            wanted = set(all_bin_paths(self.snapshot.bins.bits))
        else:
            wanted = {b for path in relpaths if (b := self.bin_for(path)) is not None}
        return sorted(path for path in wanted if path not in self.bins)

    def pin(self, relpath: str) -> FileDigest | None:
        """The pinned digest of an index file.

        Args:
            relpath: Its path relative to the registry root, e.g. `apps/kv-store/app.json`.

        Returns:
            Its SHA-256 and length, or None when the snapshot (or the bin of its app)
            does not pin it (then the file must not be trusted).

        Raises:
            LookupError: The file is a per-app file and its bin was not read yet (a bug
                of the caller: read `missing_bins` first).
        """
        where = self.bin_for(relpath)
        if where is None:
            return self.snapshot.meta.get(relpath)
        document = self.bins.get(where)
        if document is None:
            raise LookupError(f"{relpath}: its bin {where} was not read yet")
        return document.meta.get(relpath)

    def location(self, relpath: str, pin: FileDigest) -> str:
        """Where to fetch a pinned file: by its content-addressed name when the snapshot
        is consistent (docs/spec.md 4.1), so a registry being republished meanwhile
        still serves this snapshot's bytes; else by its plain path.

        Args:
            relpath: Its plain path, e.g. `apps/kv-store/app.json`.
            pin: Its digest, from the snapshot (or, for a manifest, from app.json).

        Returns:
            The path to read.
        """
        return consistent_path(relpath, pin.sha256) if self.snapshot.consistent else relpath

    def pins(self) -> dict[str, FileDigest]:
        """Every file pinned by the snapshot and by the bins read so far.

        Returns:
            Path -> pin (the bin files themselves included).
        """
        pins = dict(self.snapshot.meta)
        for document in self.bins.values():
            pins.update(document.meta)
        return pins

    def app_keys(self) -> list[str]:
        """Apps the snapshot pins an app.json for (every bin must have been read).

        Returns:
            Their keys, sorted.

        Raises:
            LookupError: A bin was not read yet (see `missing_bins`).
        """
        if self.missing_bins():
            raise LookupError(f"{self.missing_bins()[0]}: not read yet")
        return app_keys_in(self.pins())


def app_keys_in(paths: Iterable[str]) -> list[str]:
    """The keys of the apps whose app.json is among `paths`, sorted."""
    return sorted(
        path.split("/")[1]
        for path in paths
        if path.startswith("apps/") and path.endswith("/app.json") and path.count("/") == 2
    )


@dataclass(frozen=True)
class TrustedManifest:
    """A manifest that passed step 3 of the walk; only `verify_manifest` makes one.

    Attributes:
        manifest: The signed manifest, pinning the artifact's SHA-256 and size.
        keyid: The id of the trusted key that signed it (recorded in lock files).
        digest: The manifest's own SHA-256 and length, as pinned by app.json.
        publisher: The verified publisher (`client.publisher.PublisherVerified`) when
            the manifest names one and `RegistryClient.manifest` checked its statement;
            else None.
    """

    manifest: Manifest
    keyid: str
    digest: FileDigest
    publisher: object = None  # client/publisher.PublisherVerified, once checked


def parse_json(data: bytes, what: str) -> Any:
    """Bounded, strict JSON (see formats/boundedjson.py) or `MalformedError` naming the file."""
    try:
        return loads_bounded(data)
    except JsonRejectedError as exc:
        raise MalformedError(f"{what}: {exc}") from None


def _envelope(
    data: bytes, expected_type: str, trusted: Mapping[str, nacl.signing.VerifyKey], what: str
) -> tuple[dict[str, object], str]:
    envelope = parse_json(data, what)
    try:
        return verify_envelope(envelope, expected_type, trusted, what=what)
    except UnknownKeyError as exc:
        _refuse_key_ids(envelope, trusted)
        raise UntrustedSignatureError(
            f"{exc}; if the registry rotated its key, get the new public key from its "
            "operators and pass it with --key"
        ) from None
    except SignatureError as exc:
        raise BadSignatureError(str(exc)) from None


def _refuse_key_ids(envelope: object, trusted: Mapping[str, nacl.signing.VerifyKey]) -> None:
    """A key id is 64 hex digits too; if one was given as a key, say so (not "rotated")."""
    signatures = envelope.get("signatures") if isinstance(envelope, dict) else None
    signed_by = {s.get("keyid") for s in signatures or [] if isinstance(s, dict)}
    given = {bytes(key).hex() for key in trusted.values()}
    if signed_by & given:
        raise UntrustedKeyConfigError(
            "this is a key id; the full public key is needed: appshelf keygen --public "
            "KEYFILE prints it (or take the 'public' field of the registry's keys.json from "
            "its operators)"
        )


def _model(model: type[ModelT], data: object, what: str) -> ModelT:
    if isinstance(data, bytes):
        data = parse_json(data, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise MalformedError(f"{what}: {where}: {first['msg']}") from None


def verify_snapshot(
    data: bytes,
    trusted: Mapping[str, nacl.signing.VerifyKey],
    now: datetime,
    state: RegistryState | None,
    expected_registry: str | None = None,
) -> TrustedSnapshot:
    """Step 1. `state` is what this client saw before for the same registry."""
    body, keyid = _envelope(data, SNAPSHOT_TYPE, trusted, SNAPSHOT_PATH)
    snapshot = _model(Snapshot, body, SNAPSHOT_PATH)
    if expected_registry is not None and snapshot.registry != expected_registry:
        raise InconsistentMetadataError(
            f"{SNAPSHOT_PATH}: signed for registry {snapshot.registry}, but served from "
            f"{expected_registry}; a snapshot only vouches for the registry it names"
        )
    _check_times(snapshot, now)
    _check_bin_layout(snapshot)
    digest = sha256_hex(data)
    if state is not None and state.snapshot_version > snapshot.version:
        raise RollbackError(
            f"{SNAPSHOT_PATH}: version {snapshot.version} is older than version "
            f"{state.snapshot_version} already seen from {snapshot.registry}; refusing a "
            "rolled-back registry (a stale mirror or cache, or an attack)"
        )
    if (
        state is not None
        and state.snapshot_version == snapshot.version
        and state.snapshot_sha256 not in (None, digest)
    ):
        raise RollbackError(
            f"{SNAPSHOT_PATH}: a different snapshot with the same version {snapshot.version} "
            "was seen before; a registry never signs two snapshots with one version"
        )
    return TrustedSnapshot(snapshot, keyid, digest)


def _check_times(snapshot: Snapshot, now: datetime) -> None:
    """Freeze protection only works if a snapshot's validity window is sane: not issued
    in the future, not valid for years, and not past its expiry."""
    try:
        issued, expires = parse_timestamp(snapshot.issued), parse_timestamp(snapshot.expires)
    except ValueError as exc:  # the pattern holds, the date does not (a 44th of February)
        raise MalformedError(
            f"{SNAPSHOT_PATH}: issued/expires is not a real time ({exc})"
        ) from None
    if issued > now + MAX_CLOCK_SKEW:
        raise MalformedError(
            f"{SNAPSHOT_PATH}: issued: {snapshot.issued} is more than 5 minutes in the future "
            f"(now {format_timestamp(now)}); the registry was signed with a wrong clock, or "
            "this machine's clock is behind"
        )
    if not issued < expires <= issued + MAX_SNAPSHOT_LIFETIME:
        raise MalformedError(
            f"{SNAPSHOT_PATH}: expires: {snapshot.expires} must be after issued "
            f"{snapshot.issued} and at most 366 days later (a snapshot valid for longer "
            "defeats freeze protection)"
        )
    if expires <= now:
        raise ExpiredError(
            f"{SNAPSHOT_PATH}: version {snapshot.version} expired at {snapshot.expires}; "
            "the registry must be rebuilt and re-signed (or something serves a stale copy)"
        )


def _check_bin_layout(snapshot: Snapshot) -> None:
    """With bins, `meta` pins exactly the 2^bits bins and no per-app file: a per-app
    file pinned beside its bin would be two answers to one question."""
    if snapshot.bins is None:
        return
    bits = snapshot.bins.bits
    expected = set(all_bin_paths(bits))
    bins = {path for path in snapshot.meta if is_bin_path(path)}
    per_app = sorted(path for path in snapshot.meta if bin_of(path, bits) is not None)
    problem = None
    if bins != expected:
        odd = sorted(bins ^ expected)
        problem = f"bins.bits is {bits}, but meta does not pin exactly its bins ({odd[0]})"
    elif per_app:
        problem = f"meta pins {per_app[0]}, a per-app file, which only its bin may pin"
    if problem is not None:
        raise MalformedError(f"{SNAPSHOT_PATH}: {problem}")


def verify_bin(trusted: TrustedSnapshot, relpath: str, data: bytes) -> BinDocument:
    """Step 2 for a bin: its pin in the snapshot, then that it is the bin `relpath` of
    this snapshot's registry and bit count, naming only files of its own range (a bin
    moved, or one from another build, could hide or replace another app's files).
    Remembered in `trusted.bins`.

    Args:
        trusted: The verified snapshot.
        relpath: The bin's path, e.g. `bins/3f.json`.
        data: Its bytes as served.

    Returns:
        The verified bin.

    Raises:
        MalformedError: The snapshot pins no such bin, or the file is not a bin.
        DigestMismatchError: The bytes differ from the snapshot's pin.
        LengthExceededError: They are longer than the pin.
        InconsistentMetadataError: It is another registry's bin, another position's, or
            names an app of another bin.
    """
    pin = trusted.snapshot.meta.get(relpath)
    bins = trusted.snapshot.bins
    if pin is None or bins is None or not is_bin_path(relpath):
        raise MalformedError(f"{relpath}: not a bin the snapshot pins, so it cannot be trusted")
    check_digest(data, pin, relpath)
    document = _model(BinDocument, data, relpath)
    problem = bin_problem(document, relpath, bins.bits, trusted.registry)
    if problem is not None:
        raise InconsistentMetadataError(f"{relpath}: {problem}")
    trusted.bins[relpath] = document
    return document


def next_state(trusted: TrustedSnapshot) -> RegistryState:
    log = trusted.snapshot.log
    return RegistryState(
        registry=trusted.registry,
        snapshot_version=trusted.snapshot.version,
        snapshot_sha256=trusted.sha256,
        log_size=log.size if log is not None else None,
        log_root=log.root if log is not None else None,
    )


def check_digest(data: bytes, pin: FileDigest, what: str) -> None:
    if len(data) > pin.length:
        raise LengthExceededError(f"{what}: {len(data)} bytes, but {pin.length} are pinned")
    if len(data) != pin.length or sha256_hex(data) != pin.sha256:
        raise DigestMismatchError(
            f"{what}: sha256 {sha256_hex(data)[:16]}... ({len(data)} bytes) does not match the "
            f"pinned {pin.sha256[:16]}... ({pin.length} bytes); the file was altered or mixed "
            "up with another build"
        )


def verify_pinned(trusted: TrustedSnapshot, relpath: str, data: bytes) -> bytes:
    """Step 2: check bytes against the snapshot's pin for `relpath`."""
    pin = trusted.pin(relpath)
    if pin is None:
        raise MalformedError(f"{relpath}: not pinned by the snapshot, so it cannot be trusted")
    check_digest(data, pin, relpath)
    return data


def app_path(key: str) -> str:
    return f"apps/{key}/app.json"


def versions_path(key: str) -> str:
    return f"apps/{key}/versions.json"


def require_app(trusted: TrustedSnapshot, key: str) -> str:
    relpath = app_path(key)
    if trusted.pin(relpath) is None:
        raise UnknownAppError(f"no app {key!r} in the registry {trusted.registry}")
    return relpath


def parse_app(trusted: TrustedSnapshot, key: str, data: bytes) -> AppDetail:
    relpath = app_path(key)
    verify_pinned(trusted, relpath, data)
    detail = _model(AppDetail, data, relpath)
    if detail.key != key:
        raise InconsistentMetadataError(f"{relpath}: describes app {detail.key!r}, not {key!r}")
    return detail


def parse_document(
    trusted: TrustedSnapshot, relpath: str, model: type[ModelT], data: bytes
) -> ModelT:
    """A pinned index file as its model; checks the registry binding when it has one."""
    verify_pinned(trusted, relpath, data)
    document = _model(model, data, relpath)
    bound = getattr(document, "registry", None)
    if bound is not None and bound != trusted.registry:
        raise InconsistentMetadataError(f"{relpath}: belongs to registry {bound}")
    return document


def check_versions_file(detail: AppDetail, versions: FlowsVersions) -> None:
    """versions.json (the Flows view) must list exactly app.json's versions and artifacts."""
    relpath = versions_path(detail.key)
    expected = [(v.version, v.artifact.url, f"sha256:{v.artifact.sha256}") for v in detail.versions]
    actual = [(v.version, v.artifactUrl, v.artifactChecksum) for v in versions.versions]
    if expected != actual:
        raise InconsistentMetadataError(f"{relpath}: disagrees with {app_path(detail.key)}")


def manifest_relpath(key: str, entry: VersionEntry) -> str:
    expected = f"apps/{key}/{entry.version}/manifest.json"
    if entry.manifest_path != expected:
        raise MalformedError(
            f"{app_path(key)}: version {entry.version}: manifest_path {entry.manifest_path!r} "
            f"should be {expected!r}"
        )
    return expected


def verify_manifest(
    trusted: TrustedSnapshot,
    key: str,
    entry: VersionEntry,
    data: bytes,
    keys: Mapping[str, nacl.signing.VerifyKey],
) -> TrustedManifest:
    """Step 3: digest pinned by app.json, signature, then agreement with app.json."""
    relpath = manifest_relpath(key, entry)
    check_digest(data, entry.manifest, relpath)
    body, keyid = _envelope(data, MANIFEST_TYPE, keys, relpath)
    manifest = _model(Manifest, body, relpath)
    mismatches = [
        name
        for name, mine, theirs in (
            ("registry", manifest.registry, trusted.registry),
            ("app", manifest.app, key),
            ("version", manifest.version, entry.version),
            ("artifact", manifest.artifact, entry.artifact),
            ("yanked", manifest.yanked, entry.yanked),
            ("provides", manifest.provides, entry.provides),
            ("requires", manifest.requires, entry.requires),
            ("dependencies", manifest.dependencies, entry.dependencies),
            ("published", manifest.published, entry.published),
        )
        if mine != theirs
    ]
    if mismatches:
        raise InconsistentMetadataError(
            f"{relpath}: {', '.join(mismatches)} differ from {app_path(key)}"
        )
    return TrustedManifest(manifest, keyid, entry.manifest)


def local_artifact_path(trusted: TrustedSnapshot, manifest: Manifest) -> str | None:
    """The registry-relative path of a locally hosted artifact; None for external URLs."""
    url = manifest.artifact.url
    if not url.startswith(trusted.registry):
        if not url.startswith("https://"):
            raise MalformedError(
                f"apps/{manifest.app}/{manifest.version}/manifest.json: external artifact "
                f"URL {url!r} is not https"
            )
        return None
    return unquote(url[len(trusted.registry) :])


class ArtifactCheck:
    """Step 4, incrementally: feed chunks, then `finish()`; never trusts a partial file."""

    def __init__(self, sha256: str, size: int, what: str):
        self.expected_sha256 = sha256
        self.expected_size = size
        self.what = what
        self.size = 0
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.expected_size:
            raise LengthExceededError(
                f"{self.what}: more than the {self.expected_size:,} bytes pinned by its manifest"
            )
        self._hash.update(chunk)

    def finish(self) -> str:
        digest = self._hash.hexdigest()
        if self.size != self.expected_size or digest != self.expected_sha256:
            raise DigestMismatchError(
                f"{self.what}: got sha256 {digest[:16]}... ({self.size:,} bytes), the signed "
                f"manifest pins {self.expected_sha256[:16]}... ({self.expected_size:,} bytes); "
                "the artifact was altered, truncated or replaced"
            )
        return digest
