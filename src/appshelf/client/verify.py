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

    def attempt(what: str, action: Callable[[], object]) -> object | None:
        try:
            return action()
        except AppshelfError as exc:
            message = str(exc)
            message = message if message.startswith(what) else f"{what}: {message}"
            if message not in report.failures:  # a file read twice fails the same way once
                report.failures.append(message)
            return None

    report.pinned_files = _read_pinned_files(client, attempt)
    pins = attempt(ANIP_PINS, partial(mirrors.anip_pins, client))
    if isinstance(pins, MirrorPins):  # the ANIP read mirror (spec 15): each file's pin
        for relpath in sorted(pins.files):
            if (
                attempt(relpath, partial(mirrors.read_mirror_file, client, pins, relpath))
                is not None
            ):
                report.mirror_files += 1
    keys = app_keys = set(t.app_keys_in(snap.pins()))  # a bin that failed is reported
    index = attempt("index.json", client.index)
    if isinstance(index, RegistryIndex) and {a.key for a in index.apps} != keys:
        report.failures.append("index.json: its apps differ from the apps the snapshot pins")
    flows = attempt("registry.json", client.flows_registry)
    if isinstance(index, RegistryIndex):  # templates are not in registry.json (spec 15)
        keys = keys - {a.key for a in index.apps if a.kind == "template"}
    if isinstance(flows, FlowsRegistry) and set(flows.apps) != keys:
        report.failures.append("registry.json: its apps differ from the apps the snapshot pins")
    keys_doc = attempt("keys.json", client.keys_document)
    if isinstance(keys_doc, KeysDocument) and snap.keyid not in {k.keyid for k in keys_doc.keys}:
        report.notes.append("keys.json does not list the key that signed the snapshot")

    expected = {t.SNAPSHOT_PATH, *snap.pins()}
    icons: set[str] = set()
    details: dict[str, AppDetail] = {}
    manifests: dict[tuple[str, str], Manifest] = {}
    for key in sorted(app_keys):
        detail = attempt(t.app_path(key), partial(client.app, key))
        if not isinstance(detail, AppDetail):
            continue
        details[key] = detail
        if detail.metadata.icon_url and detail.metadata.icon_url.startswith(snap.registry):
            icons.add(unquote(detail.metadata.icon_url[len(snap.registry) :]))
        attempt(t.versions_path(key), partial(client.flows_versions, key))
        for entry in detail.versions:
            what = f"apps/{key}/{entry.version}/manifest.json"
            expected.add(what)
            trusted = attempt(what, partial(client.manifest, key, entry.version))
            if not isinstance(trusted, t.TrustedManifest):
                continue
            report.manifests += 1
            manifests[(key, entry.version)] = trusted.manifest
            if trusted.manifest.publisher is not None:
                expected.add(f"apps/{key}/{entry.version}/{STATEMENT_FILE}")
                report.publisher_signatures += 1
            local = attempt(what, partial(t.local_artifact_path, snap, trusted.manifest))
            url = trusted.manifest.artifact.url
            if local is not None and _elsewhere(client, str(local), trusted, report):
                continue
            if local is not None:
                expected.add(str(local))
                if not artifacts and isinstance(client.transport, FolderTransport):
                    attempt(url, partial(_stat, client, str(local), trusted))
            elif not url.startswith(snap.registry) and not external:
                report.external_skipped.append(url)
                continue
            if artifacts and attempt(url, partial(client.check_artifact, trusted)):
                report.artifacts_checked += 1
                report.artifact_bytes += trusted.manifest.artifact.size
    _verify_log(client, report, details, manifests, frozenset(app_keys - set(details)))
    if isinstance(client.transport, FolderTransport):
        _plain_names(client, report)
        committing = _committing(client.transport.root)
        for relpath in client.transport.files_under("apps"):
            if relpath in expected or _content_addressed(relpath):
                continue
            if relpath in icons or relpath.endswith(SITE_SUFFIXES):
                report.unpinned.append(relpath)
            else:
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
    else:
        report.notes.append("uncovered files are only detected for folders (HTTP has no listing)")
    if artifacts and report.external_skipped:
        report.notes.append(
            f"{len(report.external_skipped)} external artifact(s) skipped; pass --external "
            "to download them too"
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
