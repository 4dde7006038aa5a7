"""Lock files: exactly which artifact of which app version to install, and why to trust it.

`appshelf lock` writes one from a resolved plan; `fetch --lock` installs exactly what it
says after checking that the registry (verified afresh) still serves the same release:
the same artifact (filename, URL, sha256, size), and the release log's entry at the
locked index (proven by inclusion in the signed log) still records it. The manifest's
bytes are not compared: a yank or deprecation re-signs the manifest but is not a change
of the release, and neither is the signing key's id once the registry has a log (after
a key rotation every manifest is signed by the new key; the log entry is the pin). Lock
files of version 1 (no log index) are still read; they are checked against the entry
app.json names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appshelf.client.client import RegistryClient
from appshelf.client.files import atomic_file, read_small_file
from appshelf.client.log import logged_entry
from appshelf.client.resolve import Plan
from appshelf.client.trusted import TrustedManifest
from appshelf.errors import (
    ClientUsageError,
    JsonRejectedError,
    LockMismatchError,
    UnknownAppError,
    UnknownVersionError,
)
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.documents import HEX64, ArtifactRef, VersionEntry
from appshelf.formats.log import ReleaseEntry

LOCK_TYPE = "appshelf.lock"
MAX_LOCK_BYTES = 16 * 1024 * 1024


class LockedManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str = Field(pattern=HEX64)
    length: int = Field(ge=0)


class LockedApp(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    app: str
    version: str
    artifact: ArtifactRef
    manifest: LockedManifest  # as locked; informational (a yank re-signs the manifest)
    keyid: str = Field(pattern=HEX64)
    log_index: int | None = Field(default=None, ge=0)  # its release entry in the log


class LockFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["appshelf.lock"] = "appshelf.lock"
    lock_version: Literal[1, 2] = 2  # 1: before the release log (no log_index)
    registry: str
    snapshot_version: int
    requirements: list[str]
    apps: list[LockedApp]


def lock_plan(client: RegistryClient, plan: Plan) -> LockFile:
    """Verify every planned manifest and record what it pins."""
    apps = []
    for install in plan.installs:
        trusted = client.manifest(install.app, install.version)
        apps.append(
            LockedApp(
                app=install.app,
                version=install.version,
                artifact=trusted.manifest.artifact,
                manifest=LockedManifest(
                    path=install.entry.manifest_path,
                    sha256=trusted.digest.sha256,
                    length=trusted.digest.length,
                ),
                keyid=trusted.keyid,
                log_index=install.entry.log_index,
            )
        )
    return LockFile(
        registry=client.snapshot.registry,
        snapshot_version=client.snapshot.snapshot.version,
        requirements=plan.requirements,
        apps=apps,
    )


def write_lock(lock: LockFile, path: Path) -> None:
    """Atomic: a temp file beside the target, fsync, rename."""
    with atomic_file(path) as handle:
        handle.write(lock.model_dump_json(indent=2).encode() + b"\n")


def read_lock(path: Path) -> LockFile:
    try:
        data = read_small_file(path, MAX_LOCK_BYTES)
    except OSError as exc:
        raise ClientUsageError(f"{path}: cannot read the lock file ({exc.strerror})") from None
    try:
        return LockFile.model_validate(loads_bounded(data))
    except JsonRejectedError as exc:
        raise ClientUsageError(f"{path}: not a valid appshelf lock file: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ClientUsageError(
            f"{path}: not a valid appshelf lock file: {where}: {first['msg']}"
        ) from None


def check_lock(client: RegistryClient, lock: LockFile) -> list[TrustedManifest]:
    """Each locked app's verified manifest; `LockMismatchError` if the registry disagrees."""
    if client.snapshot.registry != lock.registry:
        raise LockMismatchError(
            f"the lock is for registry {lock.registry}, but this registry is "
            f"{client.snapshot.registry}"
        )
    return [_check_locked(client, locked) for locked in lock.apps]


def _check_locked(client: RegistryClient, locked: LockedApp) -> TrustedManifest:
    what = f"{locked.app} {locked.version}"
    try:
        entry = client.entry(locked.app, locked.version)
    except (UnknownAppError, UnknownVersionError):
        raise LockMismatchError(
            f"{what}: locked, but the registry no longer publishes it"
        ) from None
    if entry.artifact != locked.artifact:
        raise LockMismatchError(
            f"{what}: the registry's artifact (sha256 {entry.artifact.sha256[:16]}..., "
            f"{entry.artifact.url}) differs from the lock's (sha256 "
            f"{locked.artifact.sha256[:16]}...); refusing to install"
        )
    trusted = client.manifest(locked.app, locked.version)
    if client.snapshot.snapshot.log is not None:
        # The logged release is the pin: after a key rotation the manifest is signed by
        # the new key (one this client trusts, or `manifest` would have failed), and the
        # release entry, proven in the signed log, still says it is the same release.
        _check_logged(client, locked, entry)
    elif trusted.keyid != locked.keyid:
        raise LockMismatchError(
            f"{what}: signed by key {trusted.keyid[:16]}..., the lock says {locked.keyid[:16]}..."
        )
    return trusted


def _check_logged(client: RegistryClient, locked: LockedApp, entry: VersionEntry) -> None:
    """The log entry at the locked index is this release, with the locked artifact."""
    what = f"{locked.app} {locked.version}"
    index = locked.log_index if locked.log_index is not None else entry.log_index
    if index is None or entry.log_index != index:
        raise LockMismatchError(
            f"{what}: the lock names release log entry {locked.log_index}, the registry's "
            f"app.json names {entry.log_index}; the release's history changed"
        )
    logged = logged_entry(client.transport, client.snapshot, index)
    a = locked.artifact
    if not (
        isinstance(logged, ReleaseEntry)
        and (logged.app, logged.version) == (locked.app, locked.version)
        and (logged.artifact.filename, logged.artifact.url) == (a.filename, a.url)
        and (logged.artifact.sha256, logged.artifact.size) == (a.sha256, a.size)
    ):
        raise LockMismatchError(
            f"{what}: release log entry {index} does not record this release with the "
            "locked artifact; refusing to install"
        )
