"""`RegistryClient`: the verified view of one registry, over HTTP(S) or a local folder.

Every method returns only data that passed the walk in `trusted.py`; the client
fetches (through a `Transport`) and remembers (through a `StateStore`), nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appshelf.client import trusted as t
from appshelf.client.errors import ClientUsageError, Malformed, RepositoryError, UnknownVersion
from appshelf.client.files import atomic_file
from appshelf.client.keys import TrustedKeys, check_dev_key
from appshelf.client.log import check_log_head
from appshelf.client.state import StateStore, default_state_dir
from appshelf.client.transport import (
    FolderTransport,
    HttpTransport,
    Limits,
    Transport,
    read_all,
)
from appshelf.formats.documents import AppDetail, KeysDocument, RegistryIndex, VersionEntry
from appshelf.formats.flows import FlowsRegistry, FlowsVersions
from appshelf.source.models import ARTIFACT_NAME_RE, RESERVED_ARTIFACT_NAMES


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Download:
    app: str
    version: str
    path: Path
    sha256: str
    size: int
    reused: bool  # an identical, verified file was already there


def open_transport(
    location: str | Path, limits: Limits, ca_file: Path | str | None = None
) -> tuple[Transport, str | None]:
    """A transport for a URL or folder, and the registry URL the snapshot must name."""
    text = str(location)
    if text.startswith(("http://", "https://")):
        base = text if text.endswith("/") else text + "/"
        return HttpTransport(base, limits, ca_file), base
    folder = Path(location)
    if not folder.is_dir():
        raise ClientUsageError(
            f"{folder}: not a folder, and not an http(s):// URL; give the registry's base URL "
            "or a folder holding a built registry"
        )
    return FolderTransport(folder), None


class RegistryClient:
    def __init__(
        self,
        location: str | Path,
        keys: TrustedKeys,
        *,
        allow_dev_key: bool = False,
        state_dir: Path | None = None,
        clock: Callable[[], datetime] = utc_now,
        limits: Limits | None = None,
        transport: Transport | None = None,
        expected_registry: str | None = None,
        ca_file: Path | str | None = None,
    ):
        check_dev_key(keys, allow_dev_key)
        if not keys:
            raise ClientUsageError("a client needs at least one trusted key")
        self.keys = keys
        self.limits = limits or Limits()
        self.ca_file = ca_file  # None: $APPSHELF_CA_FILE, ..., the system trust store
        if transport is None:
            transport, expected = open_transport(location, self.limits, ca_file)
            expected_registry = expected_registry or expected
        self.transport = transport
        self.location = str(location)
        self.expected_registry = expected_registry
        self.state = StateStore(state_dir or default_state_dir())
        self.clock = clock
        self._snapshot: t.TrustedSnapshot | None = None
        self._apps: dict[str, AppDetail] = {}
        self._external: HttpTransport | None = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()
        if self._external is not None:
            self._external.close()

    # -- step 1 ------------------------------------------------------------------
    def refresh(self) -> t.TrustedSnapshot:
        """Fetch and verify the snapshot; remember its version (rollback protection) and
        its log head (fork protection)."""
        data = read_all(self.transport, t.SNAPSHOT_PATH, self.limits.snapshot, t.SNAPSHOT_PATH)
        # The state is per registry; until the signature is checked we only know the
        # claimed registry, so verify once without state to learn it, then with it.
        unchecked = t.verify_snapshot(data, self.keys, self.clock(), None, self.expected_registry)
        state = self.state.load(unchecked.registry)
        trusted = t.verify_snapshot(data, self.keys, self.clock(), state, self.expected_registry)
        check_log_head(self.transport, state, trusted)  # append-only: no rewritten history
        if t.next_state(trusted) != state:  # a newer version, or a log head to remember
            self.state.save(t.next_state(trusted))
        self._snapshot = trusted
        self._apps.clear()
        return trusted

    @property
    def snapshot(self) -> t.TrustedSnapshot:
        return self._snapshot if self._snapshot is not None else self.refresh()

    # -- step 2 ------------------------------------------------------------------
    def read_pinned(self, relpath: str) -> bytes:
        pin = self.snapshot.pin(relpath)
        if pin is None:
            raise Malformed(f"{relpath}: not pinned by the snapshot, so it cannot be trusted")
        # Read at most the pinned length: one byte more is refused as LengthExceeded.
        data = read_all(self.transport, relpath, pin.length, relpath)
        return t.verify_pinned(self.snapshot, relpath, data)

    def index(self) -> RegistryIndex:
        return t.parse_document(
            self.snapshot, "index.json", RegistryIndex, self.read_pinned("index.json")
        )

    def keys_document(self) -> KeysDocument:
        return t.parse_document(
            self.snapshot, "keys.json", KeysDocument, self.read_pinned("keys.json")
        )

    def flows_registry(self) -> FlowsRegistry:
        return t.parse_document(
            self.snapshot, "registry.json", FlowsRegistry, self.read_pinned("registry.json")
        )

    def app_keys(self) -> list[str]:
        return self.snapshot.app_keys()

    def app(self, key: str) -> AppDetail:
        if key not in self._apps:
            relpath = t.require_app(self.snapshot, key)
            self._apps[key] = t.parse_app(self.snapshot, key, self.read_pinned(relpath))
        return self._apps[key]

    def flows_versions(self, key: str) -> FlowsVersions:
        """The Flows `versions.json`, verified and checked against app.json."""
        t.require_app(self.snapshot, key)
        relpath = t.versions_path(key)
        versions = t.parse_document(
            self.snapshot, relpath, FlowsVersions, self.read_pinned(relpath)
        )
        t.check_versions_file(self.app(key), versions)
        return versions

    def entry(self, key: str, version: str) -> VersionEntry:
        for entry in self.app(key).versions:
            if entry.version == version:
                return entry
        known = ", ".join(v.version for v in self.app(key).versions) or "none"
        raise UnknownVersion(f"{key} has no version {version!r} (published: {known})")

    # -- step 3 ------------------------------------------------------------------
    def manifest(self, key: str, version: str) -> t.TrustedManifest:
        entry = self.entry(key, version)
        relpath = t.manifest_relpath(key, entry)
        data = read_all(self.transport, relpath, entry.manifest.length, relpath)
        return t.verify_manifest(self.snapshot, key, entry, data, self.keys)

    # -- step 4 ------------------------------------------------------------------
    def artifact_chunks(
        self, trusted: t.TrustedManifest
    ) -> tuple[Iterator[bytes], t.ArtifactCheck]:
        manifest = trusted.manifest
        artifact = manifest.artifact
        what = f"{manifest.app} {manifest.version} artifact {artifact.filename}"
        check = t.ArtifactCheck(artifact.sha256, artifact.size, what)
        local = t.local_artifact_path(self.snapshot, manifest)
        if local is not None:
            return self.transport.chunks(local, artifact.size, what), check
        if self._external is None:
            self._external = HttpTransport("", self.limits, self.ca_file)
        return self._external.url_chunks(artifact.url, artifact.size, what), check

    def check_artifact(self, trusted: t.TrustedManifest) -> str:
        """Download and verify an artifact without keeping it; return its sha256."""
        chunks, check = self.artifact_chunks(trusted)
        for chunk in chunks:
            check.update(chunk)
        return check.finish()

    def download(self, key: str, version: str, folder: Path) -> Download:
        return self.download_manifest(self.manifest(key, version), folder)

    def download_manifest(self, trusted: t.TrustedManifest, folder: Path) -> Download:
        """Write the verified artifact to folder/<filename>: temp file, fsync, rename."""
        manifest = trusted.manifest
        artifact = manifest.artifact
        name = artifact.filename
        if not ARTIFACT_NAME_RE.fullmatch(name) or name in RESERVED_ARTIFACT_NAMES:
            raise Malformed(f"{manifest.app} {manifest.version}: unsafe artifact filename {name!r}")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if (
            target.is_file()
            and not target.is_symlink()
            and _matches(target, artifact.sha256, artifact.size)
        ):
            return Download(
                manifest.app, manifest.version, target, artifact.sha256, artifact.size, reused=True
            )
        chunks, check = self.artifact_chunks(trusted)
        with atomic_file(target) as handle:
            for chunk in chunks:
                check.update(chunk)
                handle.write(chunk)
            digest = check.finish()
        return Download(manifest.app, manifest.version, target, digest, check.size, reused=False)


def _matches(path: Path, sha256: str, size: int) -> bool:
    if path.stat().st_size != size:
        return False
    check = t.ArtifactCheck(sha256, size, str(path))
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 16):
                check.update(chunk)
        check.finish()
    except (RepositoryError, OSError):
        return False
    return True
