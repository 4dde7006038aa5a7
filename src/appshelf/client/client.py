"""`RegistryClient`: the verified view of one registry, over HTTP(S) or a local folder.

Every method returns only data that passed the walk in `trusted.py`; the client
fetches (through a `Transport`) and remembers (through a `StateStore`), nothing more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appshelf.client import trusted as t
from appshelf.client.channels import checked_channel
from appshelf.client.files import atomic_file
from appshelf.client.keys import TrustedKeys, check_dev_key
from appshelf.client.log import check_log_head
from appshelf.client.publisher import check_publisher, parse_publishers
from appshelf.client.state import StateStore, default_state_dir
from appshelf.client.transport import (
    FolderTransport,
    HttpTransport,
    Limits,
    Transport,
    read_all,
)
from appshelf.errors import ClientUsageError, MalformedError, RepositoryError, UnknownVersionError
from appshelf.formats.documents import (
    AppDetail,
    FileDigest,
    KeysDocument,
    RegistryIndex,
    VersionEntry,
)
from appshelf.formats.flows import FlowsRegistry, FlowsVersions
from appshelf.formats.layout import ARTIFACT_NAME_RE, RESERVED_ARTIFACT_NAMES
from appshelf.formats.publishers import PUBLISHERS_FILE, PublishersDocument
from appshelf.formats.templates import TEMPLATES_PATH, TemplatesIndex


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Download:
    """One artifact on disk, verified against its signed manifest.

    Attributes:
        app: The app key.
        version: The version downloaded.
        path: Where the artifact now is (`folder/<filename>`).
        sha256: Its SHA-256, as checked against the manifest.
        size: Its size in bytes.
        reused: True when an identical, verified file was already there and was kept
            (nothing was downloaded).
    """

    app: str
    version: str
    path: Path
    sha256: str
    size: int
    reused: bool


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
    """The verified view of one registry: every file it returns passed the walk of
    docs/spec.md (trusted signature, pinned digests, agreement between documents).

    Use it as a context manager (or call `close`) so its HTTP sessions are closed. The
    snapshot is fetched and verified on first use and then kept; call `refresh` to
    fetch a newer one.

    Args:
        location: The registry's base URL (`http(s)://...`) or a folder holding a
            built registry.
        keys: The public keys to trust, from `trusted_keys`; never the registry's own
            keys.json, which a compromised host could rewrite.
        allow_dev_key: Allow the well-known development key among `keys` (local
            testing only: anyone can sign with it).
        state_dir: Where the rollback-protection state lives; default
            `$APPSHELF_STATE_DIR`, else `$XDG_STATE_HOME/appshelf`, else
            `~/.local/state/appshelf`.
        clock: Returns the current time (UTC) for expiry checks; injectable for tests.
        limits: Size, time and retry limits; default `Limits()`.
        transport: Read files through this instead of opening `location` (tests,
            other storage).
        expected_registry: The registry URL the snapshot must name; default the URL in
            `location` (a folder has none: then any registry signed by `keys`).
        ca_file: A PEM file (or hashed folder) of CA certificates to trust for HTTPS;
            default `$APPSHELF_CA_FILE`, the requests/OpenSSL variables, else the
            system trust store.
        require_publisher: Refuse every version whose manifest names no publisher
            (`PublisherMissingError`); a named publisher's statement is always checked.

    Raises:
        UntrustedKeyConfigError: `keys` holds the development key without `allow_dev_key`.
        ClientUsageError: No keys, a `location` that is neither a URL nor a folder, or
            an unusable `ca_file`.
    """

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
        require_publisher: bool = False,
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
        self.require_publisher = require_publisher
        self._publishers: PublishersDocument | None = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP sessions (a no-op for a folder); the client is unusable after."""
        self.transport.close()
        if self._external is not None:
            self._external.close()

    # -- step 1 ------------------------------------------------------------------
    def refresh(self) -> t.TrustedSnapshot:
        """Fetch and verify the snapshot; remember its version (rollback protection) and its
        release-log head (fork protection).

        Forgets the app.json files read so far, since the new snapshot may pin others.

        Returns:
            The verified snapshot, now the one every other method reads through.

        Raises:
            RepositoryError: The snapshot fails verification: `BadSignatureError`,
                `UntrustedSignatureError`, `ExpiredError`, `RollbackError` (older than one
                seen before), `InconsistentMetadataError` (signed for another registry),
                `MalformedError`, `LengthExceededError` or `LogInconsistentError` (its
                release log does not extend the one accepted before: a rewritten or forked
                history).
            TransportError: It could not be read (`NotFoundError`, `RegistryTimeoutError`,
                `ConnectionFailedError`, `TooManyRedirectsError`).
            StateError: The rollback state cannot be read or written.
        """
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
        self._publishers = None
        return trusted

    @property
    def snapshot(self) -> t.TrustedSnapshot:
        """The verified snapshot; fetched by `refresh` on first use.

        Raises:
            RepositoryError: The snapshot fails verification (see `refresh`).
            TransportError: It could not be read.
            StateError: The rollback state cannot be read or written.
        """
        return self._snapshot if self._snapshot is not None else self.refresh()

    # -- step 2 ------------------------------------------------------------------
    def read_pinned(self, relpath: str) -> bytes:
        """Read a file the snapshot pins, checked against that pin.

        Args:
            relpath: Its path relative to the registry root, e.g. `index.json`.

        Returns:
            Its bytes, equal in SHA-256 and length to the snapshot's pin.

        Raises:
            MalformedError: The snapshot does not pin `relpath`.
            DigestMismatchError: The file differs from its pin.
            LengthExceededError: It is longer than its pin.
            RepositoryError: The snapshot (if not yet fetched) or the file fails
                verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        self.read_bins(self.snapshot.missing_bins([relpath]))
        pin = self.snapshot.pin(relpath)
        if pin is None:
            raise MalformedError(f"{relpath}: not pinned by the snapshot, so it cannot be trusted")
        return self._read(relpath, pin)

    def _read(self, relpath: str, pin: FileDigest) -> bytes:
        # Read at most the pinned length: one byte more is refused as LengthExceededError.
        where = self.snapshot.location(relpath, pin)
        data = read_all(self.transport, where, pin.length, relpath)
        t.check_digest(data, pin, relpath)
        return data

    def read_bins(self, bins: list[str] | None = None) -> None:
        """Read and verify bins (docs/spec.md 4.8), each once per snapshot.

        Args:
            bins: Bin paths, e.g. `["bins/3f.json"]` (`snapshot.missing_bins(files)`
                names those that pin some files); None for every bin (a full audit,
                or a list of every app).

        Raises:
            RepositoryError: The snapshot (if not yet fetched) or a bin fails
                verification (`MalformedError`, `DigestMismatchError`,
                `LengthExceededError`, `InconsistentMetadataError`: a bin of another
                build, position or registry).
            TransportError: A file could not be read.
        """
        snap = self.snapshot
        for relpath in snap.missing_bins() if bins is None else bins:
            if relpath in snap.bins:
                continue
            pin = snap.snapshot.meta.get(relpath)
            if pin is None:
                raise MalformedError(f"{relpath}: not a bin the snapshot pins")
            t.verify_bin(snap, relpath, self._read(relpath, pin))

    def index(self) -> RegistryIndex:
        """`index.json`, the search index, verified.

        Returns:
            The parsed index: one entry per app, as `appshelf search` reads it.

        Raises:
            RepositoryError: The snapshot (if not yet fetched) or the file fails
                verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        return t.parse_document(
            self.snapshot, "index.json", RegistryIndex, self.read_pinned("index.json")
        )

    def templates(self) -> TemplatesIndex:
        """`templates.json`, verified: every starter template version (docs/spec.md 15).

        Returns:
            The parsed listing; empty when the registry has no template (no file).

        Raises:
            RepositoryError: The snapshot (if not yet fetched) or the file fails
                verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        if TEMPLATES_PATH not in self.snapshot.snapshot.meta:
            return TemplatesIndex(registry=self.snapshot.registry, templates=[])
        return t.parse_document(
            self.snapshot, TEMPLATES_PATH, TemplatesIndex, self.read_pinned(TEMPLATES_PATH)
        )

    def keys_document(self) -> KeysDocument:
        """`keys.json`, verified: the keys the registry publishes (informational; trust comes
        from `keys`, never from this file).

        Returns:
            The parsed keys document.

        Raises:
            RepositoryError: The snapshot (if not yet fetched) or the file fails
                verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        return t.parse_document(
            self.snapshot, "keys.json", KeysDocument, self.read_pinned("keys.json")
        )

    def flows_registry(self) -> FlowsRegistry:
        """`registry.json`, the Spacelift Flows view of the registry, verified.

        Returns:
            The parsed Flows registry document.

        Raises:
            RepositoryError: The snapshot (if not yet fetched) or the file fails
                verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        return t.parse_document(
            self.snapshot, "registry.json", FlowsRegistry, self.read_pinned("registry.json")
        )

    def app_keys(self) -> list[str]:
        """The keys of every app the snapshot pins an app.json for.

        Returns:
            The app keys, sorted.

        Raises:
            RepositoryError: The snapshot fails verification.
            TransportError: It could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        self.read_bins()
        return self.snapshot.app_keys()

    def app(self, key: str) -> AppDetail:
        """An app's `app.json`, verified; read once per snapshot.

        Args:
            key: The app key, e.g. `kv-store`.

        Returns:
            The app with every version, each pinning its manifest.

        Raises:
            UnknownAppError: The snapshot pins no app `key`.
            InconsistentMetadataError: The app.json describes another app.
            RepositoryError: The snapshot (if not yet fetched) or the file fails
                verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        if key not in self._apps:
            self.read_bins(self.snapshot.missing_bins([t.app_path(key)]))
            relpath = t.require_app(self.snapshot, key)
            self._apps[key] = t.parse_app(self.snapshot, key, self.read_pinned(relpath))
        return self._apps[key]

    def channel(self, key: str, channel: str) -> str:
        """The version a channel (dist-tag) of an app names, checked against the log.

        Args:
            key: The app key.
            channel: The channel name, e.g. `beta`.

        Returns:
            The version, once its `channel` log entry is proven (client/channels.py).

        Raises:
            UnknownAppError: The snapshot pins no app `key`.
            UnknownChannelError: The app has no such channel.
            RepositoryError: app.json or the log entry fails verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        return checked_channel(self.transport, self.snapshot, self.app(key), channel)

    def flows_versions(self, key: str) -> FlowsVersions:
        """The Flows `versions.json` of an app, verified and checked against app.json.

        Args:
            key: The app key.

        Returns:
            The parsed versions document.

        Raises:
            UnknownAppError: The snapshot pins no app `key`.
            InconsistentMetadataError: versions.json does not list exactly app.json's
                versions and artifacts.
            RepositoryError: The snapshot (if not yet fetched) or the file fails
                verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        self.read_bins(self.snapshot.missing_bins([t.app_path(key)]))
        t.require_app(self.snapshot, key)
        relpath = t.versions_path(key)
        versions = t.parse_document(
            self.snapshot, relpath, FlowsVersions, self.read_pinned(relpath)
        )
        t.check_versions_file(self.app(key), versions)
        return versions

    def entry(self, key: str, version: str) -> VersionEntry:
        """One version's entry in app.json.

        Args:
            key: The app key, e.g. `kv-store`.
            version: The exact version, e.g. `1.2.0`.

        Returns:
            The entry, with its artifact and the pin of its manifest.

        Raises:
            UnknownAppError: The snapshot pins no app `key`.
            UnknownVersionError: The app has no such version (the message lists those it has).
            RepositoryError: The snapshot (if not yet fetched) or the file fails
                verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        for entry in self.app(key).versions:
            if entry.version == version:
                return entry
        known = ", ".join(v.version for v in self.app(key).versions) or "none"
        raise UnknownVersionError(f"{key} has no version {version!r} (published: {known})")

    # -- step 3 ------------------------------------------------------------------
    def manifest(self, key: str, version: str) -> t.TrustedManifest:
        """A version's signed manifest: pinned by app.json, signed by a trusted key, and in
        agreement with app.json.

        Args:
            key: The app key, e.g. `kv-store`.
            version: The exact version.

        Returns:
            The verified manifest, the id of the key that signed it, and (when the
            manifest names one) the verified publisher (`PublisherVerified`).

        Raises:
            UnknownAppError: The snapshot pins no app `key`.
            UnknownVersionError: The app has no such version.
            BadSignatureError: The manifest's signature does not verify.
            UntrustedSignatureError: It is signed only by keys not in `keys`.
            InconsistentMetadataError: It disagrees with app.json, or its publisher's
                statement disagrees with it.
            PublisherMissingError: `require_publisher` is set and it names no publisher.
            RepositoryError: The snapshot (if not yet fetched), the file, the
                publisher's statement.json or publishers.json fails verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        entry = self.entry(key, version)
        relpath = t.manifest_relpath(key, entry)
        where = self.snapshot.location(relpath, entry.manifest)
        data = read_all(self.transport, where, entry.manifest.length, relpath)
        trusted = t.verify_manifest(self.snapshot, key, entry, data, self.keys)
        publisher = check_publisher(
            trusted.manifest,
            lambda path, limit: read_all(self.transport, path, limit, path),
            self.publishers,
            self.require_publisher,
        )
        return dataclasses.replace(trusted, publisher=publisher) if publisher else trusted

    def publishers(self) -> PublishersDocument:
        """`publishers.json`, verified: the publishers and their keys, as the registry
        vouches for them (the second signature on each version is checked with these).

        Returns:
            The parsed publishers document (read once per snapshot).

        Raises:
            MalformedError: the snapshot does not pin it, or it is malformed.
            RepositoryError: The snapshot (if not yet fetched) or the file fails
                verification.
            TransportError: A file could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        if self._publishers is None:
            data = self.read_pinned(PUBLISHERS_FILE)
            self._publishers = parse_publishers(data, self.snapshot.registry)
        return self._publishers

    # -- step 4 ------------------------------------------------------------------
    def artifact_chunks(
        self, trusted: t.TrustedManifest
    ) -> tuple[Iterator[bytes], t.ArtifactCheck]:
        """Stream an artifact from the registry or its external `https://` URL.

        Nothing is verified until the caller feeds every chunk to the check and calls
        its `finish()`: use the bytes only after that, as `download_manifest` does.

        Args:
            trusted: The verified manifest that pins the artifact.

        Returns:
            The chunks (read lazily, at most the manifest's size in all) and the
            `ArtifactCheck` to feed them to.

        Raises:
            MalformedError: An external artifact URL that is not `https://`.
            TransportError: The artifact could not be read (also while iterating).
            LengthExceededError: More bytes arrive than the manifest's size (while
                iterating).
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
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
        """Download and verify an artifact without keeping it (as `verify --artifacts`).

        Args:
            trusted: The verified manifest that pins the artifact.

        Returns:
            The artifact's SHA-256, equal to the manifest's.

        Raises:
            DigestMismatchError: The artifact's SHA-256 or size differs from the manifest.
            LengthExceededError: It is larger than the manifest's size.
            MalformedError: An external artifact URL that is not `https://`.
            TransportError: It could not be read.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        chunks, check = self.artifact_chunks(trusted)
        for chunk in chunks:
            check.update(chunk)
        return check.finish()

    def download(self, key: str, version: str, folder: Path) -> Download:
        """Download one version's artifact into `folder`, verified; see `download_manifest`.

        Args:
            key: The app key.
            version: The exact version (resolve a range with `resolve` first).
            folder: The folder to write into; created if missing.

        Returns:
            Where the artifact is and whether an identical file was kept.

        Raises:
            UnknownAppError: The snapshot pins no app `key`.
            UnknownVersionError: The app has no such version.
            RepositoryError: The snapshot, app.json, manifest or artifact fails
                verification (`DigestMismatchError` for an altered artifact).
            TransportError: A file could not be read.
            OSError: `folder` cannot be created or written.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        return self.download_manifest(self.manifest(key, version), folder)

    def download_manifest(self, trusted: t.TrustedManifest, folder: Path) -> Download:
        """Write the verified artifact to `folder/<filename>`: temp file, fsync, rename.

        The bytes are checked while they stream; a failed or refused download leaves no
        partial file. An identical, verified file already there is kept. The file gets
        mode 0666 less the umask, as with curl and pip.

        Args:
            trusted: The verified manifest (from `manifest`, or a lock file's check).
            folder: The folder to write into; created if missing.

        Returns:
            Where the artifact is and whether an identical file was kept.

        Raises:
            MalformedError: The manifest's filename is unsafe (a path, or a reserved name).
            DigestMismatchError: The artifact differs from the manifest.
            LengthExceededError: It is larger than the manifest's size.
            TransportError: It could not be read.
            OSError: `folder` cannot be created or written.
            StateError: The rollback state cannot be read or written (when this call
                is the first to need the snapshot).
        """
        manifest = trusted.manifest
        artifact = manifest.artifact
        name = artifact.filename
        if not ARTIFACT_NAME_RE.fullmatch(name) or name in RESERVED_ARTIFACT_NAMES:
            raise MalformedError(
                f"{manifest.app} {manifest.version}: unsafe artifact filename {name!r}"
            )
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
