"""Registry-wide verification: every signature, pin and checksum a client could check.

Unlike the client's lazy walk, this reads everything the snapshot covers, keeps going
after a failure so one run lists every problem, and (for folders) looks for files under
apps/ that nothing pins. Run it after each deploy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import unquote

from appshelf.client import log, mirrors
from appshelf.client import trusted as t
from appshelf.client.client import RegistryClient
from appshelf.client.transport import FolderTransport, read_all
from appshelf.errors import (
    AppshelfError,
    DigestMismatchError,
    NotFoundError,
)
from appshelf.formats.anip import ANIP_PINS, MirrorPins
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.consistent import plain_path
from appshelf.formats.documents import AppDetail, KeysDocument, Manifest, RegistryIndex
from appshelf.formats.flows import FlowsRegistry
from appshelf.formats.statement import STATEMENT_FILE

SITE_SUFFIXES = (".html", ".css", ".js", ".webmanifest", ".txt", ".xml")


@dataclass
class VerifyReport:
    location: str
    registry: str | None = None
    snapshot_version: int | None = None
    snapshot_expires: str | None = None
    keyid: str | None = None
    pinned_files: int = 0
    manifests: int = 0
    artifacts_checked: int = 0
    artifact_bytes: int = 0
    log_entries: int = 0  # release log entries hashed to the signed head and replayed
    log_versions: int = 0  # published versions checked against their release entries
    log_bytes: int = 0
    publisher_signatures: int = 0  # publisher statements re-verified (docs/spec.md 10)
    mirror_files: int = 0  # files of the ANIP read mirror checked against their pins
    external_skipped: list[str] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)  # site pages, icons: informational
    uncovered: list[str] = field(default_factory=list)  # unexpected files under apps/
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def verify_registry(
    client: RegistryClient, artifacts: bool = False, external: bool = False
) -> VerifyReport:
    started = time.perf_counter()
    report = VerifyReport(location=client.location)
    try:
        _verify(client, report, artifacts, external)
    finally:
        report.seconds = round(time.perf_counter() - started, 3)
    return report


def _verify(client: RegistryClient, report: VerifyReport, artifacts: bool, external: bool) -> None:
    try:
        snap = client.refresh()
    except AppshelfError as exc:
        message = str(exc)
        prefixed = message.startswith(t.SNAPSHOT_PATH)
        report.failures.append(message if prefixed else f"{t.SNAPSHOT_PATH}: {message}")
        return
    report.registry = snap.registry
    report.snapshot_version = snap.snapshot.version
    report.snapshot_expires = snap.snapshot.expires
    report.keyid = snap.keyid
    walk = _Walk(client, report, snap, artifacts, external)
    report.pinned_files = _read_pinned_files(client, walk.attempt)
    walk.mirror()
    app_keys = walk.documents()
    walk.expected |= {t.SNAPSHOT_PATH, *snap.pins()}  # with the bins' pins, read by now
    for key in sorted(app_keys):
        walk.app(key)
    _verify_log(
        client, report, walk.details, walk.manifests, frozenset(app_keys - set(walk.details))
    )
    if isinstance(client.transport, FolderTransport):
        _plain_names(client, report)
        _uncovered(client.transport, report, walk.expected, walk.icons)
    else:
        report.notes.append("uncovered files are only detected for folders (HTTP has no listing)")
    if artifacts and report.external_skipped:
        report.notes.append(
            f"{len(report.external_skipped)} external artifact(s) skipped; pass --external "
            "to download them too"
        )


@dataclass
class _Walk:
    """One verification's reading of the registry: what it found so far, and the files
    the snapshot's chain of pins covers (for the folder's uncovered files)."""

    client: RegistryClient
    report: VerifyReport
    snap: t.TrustedSnapshot
    artifacts: bool
    external: bool
    expected: set[str] = field(default_factory=set)
    icons: set[str] = field(default_factory=set)
    details: dict[str, AppDetail] = field(default_factory=dict)
    manifests: dict[tuple[str, str], Manifest] = field(default_factory=dict)

    def attempt(self, what: str, action: Callable[[], object]) -> object | None:
        """The action's result, or None with its failure reported (named by `what`)."""
        try:
            return action()
        except AppshelfError as exc:
            message = str(exc)
            message = message if message.startswith(what) else f"{what}: {message}"
            if message not in self.report.failures:  # a file read twice fails the same way once
                self.report.failures.append(message)
            return None

    def mirror(self) -> None:
        """The ANIP read mirror (spec 15): each file against its pin."""
        pins = self.attempt(ANIP_PINS, partial(mirrors.anip_pins, self.client))
        if not isinstance(pins, MirrorPins):
            return
        for relpath in sorted(pins.files):
            read = partial(mirrors.read_mirror_file, self.client, pins, relpath)
            if self.attempt(relpath, read) is not None:
                self.report.mirror_files += 1

    def documents(self) -> set[str]:
        """index.json, registry.json and keys.json against the snapshot; the app keys it
        pins (a bin that failed is reported)."""
        client, report = self.client, self.report
        keys = app_keys = set(t.app_keys_in(self.snap.pins()))
        index = self.attempt("index.json", client.index)
        if isinstance(index, RegistryIndex) and {a.key for a in index.apps} != keys:
            report.failures.append("index.json: its apps differ from the apps the snapshot pins")
        flows = self.attempt("registry.json", client.flows_registry)
        if isinstance(index, RegistryIndex):  # templates are not in registry.json (spec 15)
            keys = keys - {a.key for a in index.apps if a.kind == "template"}
        if isinstance(flows, FlowsRegistry) and set(flows.apps) != keys:
            report.failures.append("registry.json: its apps differ from the apps the snapshot pins")
        keys_doc = self.attempt("keys.json", client.keys_document)
        if isinstance(keys_doc, KeysDocument) and self.snap.keyid not in {
            k.keyid for k in keys_doc.keys
        }:
            report.notes.append("keys.json does not list the key that signed the snapshot")
        return app_keys

    def app(self, key: str) -> None:
        """One app's app.json, versions.json and every version it lists."""
        detail = self.attempt(t.app_path(key), partial(self.client.app, key))
        if not isinstance(detail, AppDetail):
            return
        self.details[key] = detail
        icon_url, registry = detail.metadata.icon_url, self.snap.registry
        if icon_url and icon_url.startswith(registry):
            self.icons.add(unquote(icon_url[len(registry) :]))
        self.attempt(t.versions_path(key), partial(self.client.flows_versions, key))
        for entry in detail.versions:
            self.version(key, entry.version)

    def version(self, key: str, version: str) -> None:
        """One version's manifest (and publisher statement), then its artifact."""
        what = f"apps/{key}/{version}/manifest.json"
        self.expected.add(what)
        trusted = self.attempt(what, partial(self.client.manifest, key, version))
        if not isinstance(trusted, t.TrustedManifest):
            return
        self.report.manifests += 1
        self.manifests[(key, version)] = trusted.manifest
        if trusted.manifest.publisher is not None:
            self.expected.add(f"apps/{key}/{version}/{STATEMENT_FILE}")
            self.report.publisher_signatures += 1
        local = self.attempt(what, partial(t.local_artifact_path, self.snap, trusted.manifest))
        self.artifact(trusted, None if local is None else str(local))

    def artifact(self, trusted: t.TrustedManifest, local: str | None) -> None:
        """A version's artifact: stat'ed in a folder, downloaded with --artifacts (an
        external one only with --external too)."""
        client, url = self.client, trusted.manifest.artifact.url
        if local is not None and _elsewhere(client, local, trusted, self.report):
            return
        if local is not None:
            self.expected.add(local)
            if not self.artifacts and isinstance(client.transport, FolderTransport):
                self.attempt(url, partial(_stat, client, local, trusted))
        elif not url.startswith(self.snap.registry) and not self.external:
            self.report.external_skipped.append(url)
            return
        if self.artifacts and self.attempt(url, partial(client.check_artifact, trusted)):
            self.report.artifacts_checked += 1
            self.report.artifact_bytes += trusted.manifest.artifact.size


def _uncovered(
    transport: FolderTransport, report: VerifyReport, expected: set[str], icons: set[str]
) -> None:
    """Files under a folder's apps/ that nothing pins: site pages and icons are listed as
    unpinned; anything else fails, unless a build is committing into the folder."""
    committing = _committing(transport.root)
    for relpath in transport.files_under("apps"):
        if relpath in expected or _content_addressed(relpath):
            continue
        if relpath in icons or relpath.endswith(SITE_SUFFIXES):
            report.unpinned.append(relpath)
            continue
        report.uncovered.append(relpath)
        if not committing:
            report.failures.append(
                f"{relpath}: under apps/ but not covered by the snapshot's chain of "
                "pins (a leftover, or an injected file)"
            )
    if committing and report.uncovered:
        report.notes.append(
            f"{len(report.uncovered)} file(s) under apps/ are not covered by the snapshot: "
            f"a build is committing its next version ({committing.name} is beside the "
            "folder; the next build finishes a killed one); verify again after it"
        )


def _read_pinned_files(
    client: RegistryClient, attempt: Callable[[str, Callable[[], object]], object | None]
) -> int:
    """Every file the snapshot pins, then every file its bins pin (a bin that fails is
    reported, and the apps of its range are not read); how many verified."""
    snap = client.snapshot
    verified = 0
    unread = set(snap.missing_bins())
    for relpath in sorted(snap.snapshot.meta):
        if relpath in unread:  # a bin: its pin, position and range
            attempt(relpath, partial(client.read_bins, [relpath]))
            verified += relpath in snap.bins
        else:
            verified += attempt(relpath, partial(client.read_pinned, relpath)) is not None
    for relpath in sorted(set(snap.pins()) - set(snap.snapshot.meta)):  # through bins
        verified += attempt(relpath, partial(client.read_pinned, relpath)) is not None
    return verified


_COPIED = ("/app.json", "/versions.json", "/manifest.json")


def _content_addressed(relpath: str) -> bool:
    """A copy of a pinned file by its digest (formats/consistent.py), this snapshot's or
    the previous one's: read only through a pin, so never a stray file."""
    named = plain_path(relpath)
    return named is not None and named[0].endswith(_COPIED)


def _committing(root: Path) -> Path | None:
    """The journal of a build committing into this folder (docs/spec.md section 8), if
    one is there: files it has moved in already are not pinned until its snapshot is."""
    journal = root.parent / f".appshelf-journal-{root.name}.json"
    return journal if journal.is_file() and not journal.is_symlink() else None


def _plain_names(client: RegistryClient, report: VerifyReport) -> None:
    """A consistent snapshot is verified through the content-addressed copies; the
    plain names (what Flows consumers read) are compared too, as a note: while a build
    is committing, or after one was killed, they may hold the next build's bytes."""
    snap = client.snapshot
    if not snap.snapshot.consistent:
        return
    differ = []
    for relpath, pin in sorted(snap.pins().items()):
        try:
            data = read_all(client.transport, relpath, pin.length + 1, relpath)
        except AppshelfError:
            data = b""
        if len(data) != pin.length or sha256_hex(data) != pin.sha256:
            differ.append(relpath)
    if differ:
        report.notes.append(
            f"{len(differ)} plain-named file(s) differ from the snapshot (a build is being "
            "published, or was interrupted: the next build completes it; verifying clients "
            f"read the content-addressed copies): {', '.join(differ[:10])}"
        )


def _elsewhere(
    client: RegistryClient, relpath: str, trusted: t.TrustedManifest, report: VerifyReport
) -> bool:
    """An artifact under the registry URL that the build did not write (not in its version's
    folder: an object already in the bucket, such as apps/<key>/versions/<v>.tar.gz) and
    that this folder lacks: skipped with a note; over HTTP it is fetched and checked."""
    manifest = trusted.manifest
    hosted = f"apps/{manifest.app}/{manifest.version}/{manifest.artifact.filename}"
    if not isinstance(client.transport, FolderTransport) or relpath == hosted:
        return False
    what = f"{manifest.app} {manifest.version} artifact"
    try:
        if client.transport.path_of(relpath, what).is_file():
            return False
    except NotFoundError:
        return False  # checked (and reported) as before
    report.notes.append(
        f"{what}: {relpath} is not in this folder (it lives where the registry is deployed, "
        "not written by the build); skipped, verify the deployed registry to check it"
    )
    return True


def _verify_log(
    client: RegistryClient,
    report: VerifyReport,
    details: dict[str, AppDetail],
    manifests: dict[tuple[str, str], Manifest],
    unread: frozenset[str],
) -> None:
    """The whole release log against the signed head, then every published version
    against its release entry (and every logged release against app.json)."""
    snap = client.snapshot
    if snap.snapshot.log is None:
        report.notes.append("no release log (a registry built before the log existed)")
        return
    try:
        verified = log.read_log(client.transport, snap, client.keys)
    except AppshelfError as exc:
        report.failures.append(str(exc))
        return
    report.log_entries = verified.state.size
    report.log_bytes = verified.bytes_read
    problems = log.compare_with_log(verified.state, details, manifests, unread)
    report.failures += problems
    report.log_versions = sum(len(d.versions) for d in details.values())


def _stat(client: RegistryClient, relpath: str, trusted: t.TrustedManifest) -> None:
    """Without --artifacts, a folder's artifacts are still checked for presence and size."""
    assert isinstance(client.transport, FolderTransport)
    what = f"{trusted.manifest.app} {trusted.manifest.version} artifact"
    path = client.transport.path_of(relpath, what)
    if not path.is_file():
        raise NotFoundError(f"{what}: {relpath} is missing")
    size = path.stat().st_size
    if size != trusted.manifest.artifact.size:
        raise DigestMismatchError(
            f"{what}: {relpath} has {size:,} bytes, the manifest pins "
            f"{trusted.manifest.artifact.size:,}"
        )
