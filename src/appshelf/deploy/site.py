"""Read the local output folder that is about to be deployed, and check it is whole.

A site that does not verify against its own snapshot is never uploaded: what leaves
the machine is exactly what `appshelf build` signed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pydantic

from appshelf.deploy.files import SNAPSHOT, STATE_KEY
from appshelf.errors import BuiltSiteError, LogError, LogFormatError, SignatureError
from appshelf.filehash import hash_files
from appshelf.formats.bins import pins_through_bins
from appshelf.formats.consistent import consistent_path
from appshelf.formats.documents import (
    SNAPSHOT_TYPE,
    AppDetail,
    FileDigest,
    KeysDocument,
    Signed,
    Snapshot,
    VersionEntry,
)
from appshelf.formats.layout import version_dir
from appshelf.formats.log import (
    CHECKPOINT,
    TILE_WIDTH,
    Checkpoint,
    decode_bundle,
    parse_note,
    tile_path,
)
from appshelf.signing.envelope import trusted_keys_from_hex, verify_envelope
from appshelf.signing.releaselog import LogState, verify_log


@dataclass(frozen=True)
class LocalFile:
    relpath: str
    path: Path
    sha256: str
    size: int


@dataclass
class LocalSite:
    root: Path
    files: dict[str, LocalFile]
    snapshot: Snapshot
    snapshot_bytes: bytes
    keys: KeysDocument
    apps: dict[str, AppDetail]  # app key -> apps/<key>/app.json
    log: LogState | None = None  # the release log the build wrote (checked against its root)
    checkpoint: Checkpoint | None = None

    @property
    def base_url(self) -> str:
        return self.snapshot.registry

    def artifact_paths(self) -> dict[str, str]:
        """Local artifact path -> sha256, for every version whose artifact the build wrote
        into this folder (under base_url, in the version's own folder)."""
        return {
            path: entry.artifact.sha256
            for key, entry, path in self._own_artifacts()
            if path == hosted_relpath(key, entry.version, entry.artifact.filename)
        }

    def bucket_artifacts(self) -> dict[str, BucketArtifact]:
        """Artifacts under base_url that the build did not write: objects already in the
        bucket (the Flows core layout, apps/<key>/versions/<v>.tar.gz), never uploaded."""
        return {
            path: BucketArtifact(key, entry.version, entry.artifact.sha256, entry.artifact.size)
            for key, entry, path in self._own_artifacts()
            if path != hosted_relpath(key, entry.version, entry.artifact.filename)
        }

    def referenced(self) -> set[str]:
        """Every path under base_url that an artifact of this build or of a logged release
        not taken down points at: `deploy --delete` never removes one of these."""
        paths = {path for _, _, path in self._own_artifacts()}
        for release in self.log.releases.values() if self.log is not None else ():
            path = artifact_relpath(release.artifact.url, self.base_url)
            if path is not None and release.standing.takedown is None:
                paths.add(path)
        return paths

    def _own_artifacts(self) -> list[tuple[str, VersionEntry, str]]:
        return [
            (key, entry, path)
            for key, detail in self.apps.items()
            for entry in detail.versions
            if (path := artifact_relpath(entry.artifact.url, self.base_url)) is not None
        ]


@dataclass(frozen=True)
class BucketArtifact:
    app: str
    version: str
    sha256: str
    size: int


def hosted_relpath(app: str, version: str, filename: str) -> str:
    """Where the build writes a local artifact (docs/spec.md 1.1)."""
    return f"{version_dir(app, version)}/{filename}"


def artifact_relpath(url: str, base_url: str) -> str | None:
    """The output path of a hosted artifact, or None for an external one."""
    if not url.startswith(base_url):
        return None
    return unquote(url[len(base_url) :])


def _walk(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        for name in [*dirs, *names]:
            path = here / name
            if path.is_symlink():
                raise BuiltSiteError(
                    f"{path}: is a symbolic link; appshelf deploys regular files only "
                    "(build output never contains links)"
                )
        for name in names:
            path = here / name
            relpath = path.relative_to(root).as_posix()
            if relpath == STATE_KEY:
                continue
            found[relpath] = path
    return found


def _read_log(root: Path, snapshot: Snapshot) -> tuple[LogState | None, Checkpoint | None]:
    """The release log of the local build, verified against its pinned checkpoint."""
    if CHECKPOINT not in snapshot.meta:
        return None, None
    try:
        checkpoint, _ = parse_note((root / CHECKPOINT).read_bytes())
        entries: list[bytes] = []
        for n in range(-(-checkpoint.size // TILE_WIDTH)):
            width = min(TILE_WIDTH, checkpoint.size - n * TILE_WIDTH)
            data = (root / tile_path("entries", n, width)).read_bytes()
            entries += decode_bundle(data, width)
        log = verify_log(checkpoint, entries)
    except (OSError, LogFormatError, LogError) as exc:
        raise BuiltSiteError(
            f"{root}: the release log cannot be read ({exc}); rebuild it"
        ) from None
    return log, checkpoint


def _check_copies(
    root: Path,
    files: dict[str, LocalFile],
    snapshot: Snapshot,
    pins: dict[str, FileDigest],
    apps: dict[str, AppDetail],
) -> None:
    """A consistent snapshot promises a content-addressed copy of every pinned file and
    manifest (docs/spec.md 4.1): each must be in the site, or readers would fail."""
    if not snapshot.consistent:
        return
    wanted = [(path, pin.sha256) for path, pin in pins.items()]
    wanted += [(e.manifest_path, e.manifest.sha256) for d in apps.values() for e in d.versions]
    for relpath, sha256 in wanted:
        copy = consistent_path(relpath, sha256)
        local = files.get(copy)
        if local is None or local.sha256 != sha256:
            raise BuiltSiteError(
                f"{root / copy}: missing or not the bytes of {relpath}; rebuild it"
            )


def _local_pins(
    root: Path, files: dict[str, LocalFile], snapshot: Snapshot
) -> dict[str, FileDigest]:
    """Every file the snapshot pins, directly or through its bins (docs/spec.md 4.8):
    a bin that is missing, altered or not the one its path says stops the deploy."""

    def read(relpath: str, pin: FileDigest) -> bytes | None:
        local = files.get(relpath)
        try:
            return local.path.read_bytes() if local is not None else None
        except OSError:
            return None

    pins, failed = pins_through_bins(snapshot, read)
    if failed:
        raise BuiltSiteError(
            f"{root / failed[0]}: missing, or not the bin snapshot.json pins there; the "
            "folder was changed after the build: rebuild it"
        )
    return pins


def read_site(root: Path) -> LocalSite:
    """Hash every file and check the snapshot's pins and signature and each artifact."""
    if not (root / SNAPSHOT).is_file():
        raise BuiltSiteError(
            f"{root}: has no snapshot.json, so it is not an appshelf build output "
            "(run `appshelf build` first, or pass the folder it wrote)"
        )
    paths = _walk(root)
    hashes = hash_files(paths.values())
    files = {
        rel: LocalFile(rel, path, hashes[path].sha256, hashes[path].size)
        for rel, path in sorted(paths.items())
    }
    snapshot_bytes, envelope, keys = _read_signed_snapshot(root)
    pins = _local_pins(root, files, envelope.signed)
    _check_pinned_files(root, files, pins)
    apps = _read_apps(root, pins)
    _check_copies(root, files, envelope.signed, pins, apps)
    log, checkpoint = _read_log(root, envelope.signed)
    site = LocalSite(root, files, envelope.signed, snapshot_bytes, keys, apps, log, checkpoint)
    _check_artifacts(site)
    return site


def _read_signed_snapshot(root: Path) -> tuple[bytes, Signed[Snapshot], KeysDocument]:
    """The folder's snapshot.json (its bytes and envelope), verified against the keys its
    keys.json lists."""
    snapshot_bytes = (root / SNAPSHOT).read_bytes()
    try:
        envelope = Signed[Snapshot].model_validate_json(snapshot_bytes)
        keys = KeysDocument.model_validate_json((root / "keys.json").read_bytes())
    except (OSError, pydantic.ValidationError) as exc:
        raise BuiltSiteError(f"{root}: snapshot.json or keys.json cannot be read: {exc}") from None
    try:
        verify_envelope(
            snapshot_bytes,
            SNAPSHOT_TYPE,
            trusted_keys_from_hex([k.public for k in keys.keys]),
            what=f"{root / SNAPSHOT}",
        )
    except SignatureError as exc:
        raise BuiltSiteError(f"{exc}; rebuild the site") from None
    return snapshot_bytes, envelope, keys


def _check_pinned_files(
    root: Path, files: dict[str, LocalFile], pins: dict[str, FileDigest]
) -> None:
    """Every pinned file is in the folder with the pinned digest and length."""
    for relpath, pinned in pins.items():
        local = files.get(relpath)
        if local is None or local.sha256 != pinned.sha256 or local.size != pinned.length:
            raise BuiltSiteError(
                f"{root / relpath}: missing or different from the digest in snapshot.json "
                "(or its bin); the folder was changed after the build: rebuild it"
            )


def _read_apps(root: Path, pins: dict[str, FileDigest]) -> dict[str, AppDetail]:
    """Every pinned app.json (already checked against its pin), by app key."""
    apps: dict[str, AppDetail] = {}
    for relpath in pins:
        if relpath.startswith("apps/") and relpath.endswith("/app.json"):
            try:
                detail = AppDetail.model_validate_json((root / relpath).read_bytes())
            except pydantic.ValidationError as exc:
                raise BuiltSiteError(f"{root / relpath}: not a valid app.json: {exc}") from None
            apps[detail.key] = detail
    return apps


def _check_artifacts(site: LocalSite) -> None:
    """Each artifact the site hosts has the sha256 its app.json gives; none that names an
    object already in the bucket is also a file of the site."""
    root, files = site.root, site.files
    for relpath, sha256 in site.artifact_paths().items():
        local = files.get(relpath)
        if local is None or local.sha256 != sha256:
            raise BuiltSiteError(
                f"{root / relpath}: missing or different from the sha256 its app.json "
                "gives; rebuild the site"
            )
    for relpath, artifact in site.bucket_artifacts().items():
        if relpath in files:
            raise BuiltSiteError(
                f"{root / relpath}: {artifact.app} {artifact.version}'s artifact_url names "
                "this path as an object already in the bucket, but the site has a file "
                "there too; move one of them"
            )
