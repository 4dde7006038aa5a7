"""`build --deploy` and the S3 inbox: take the publishers' verified releases into the
source tree, let the build log and countersign them, and clear them once deployed.

Order (docs/spec.md section 11.3): read and check the inbox; write each good item into
the source tree as `apps/<app>/<version>/`; build; deploy; only then delete exactly the
inbox objects that were ingested. If the build or the deploy fails, the folders written
here are removed again and the inbox is left as it was, so nothing is half-ingested.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nacl.signing

from appshelf.deploy import S3Store
from appshelf.deploy.files import SNAPSHOT
from appshelf.deploy.inbox import InboxItem, InboxScan, TrustedFor, clear_ingested, read_inbox
from appshelf.deploy.ingested import Restored, fetch_recorded, read_record, recorded, write_record
from appshelf.deploy.state import RemoteState
from appshelf.errors import AppshelfError, IngestedError, InputFileError, PublishError
from appshelf.formats.statement import STATEMENT_FILE
from appshelf.inputfile import read_input_file
from appshelf.source.tree import load_source_tree
from appshelf.source.versionfolder import WrittenVersion, remove_version, write_version


@dataclass
class Ingest:
    """What this build took from the inbox."""

    scan: InboxScan
    written: list[WrittenVersion] = field(default_factory=list)
    items: list[InboxItem] = field(default_factory=list)  # written, or already in the source
    cleared: int = 0

    def line(self) -> str:
        taken = ", ".join(f"{i.app} {i.version}" for i in self.items) or "nothing"
        return f"  inbox    ingested {taken}; cleared {self.cleared} object(s)"

    def json(self) -> dict[str, object]:
        return {
            "inbox": {
                "ingested": [{"app": i.app, "version": i.version} for i in self.items],
                "refused": self.scan.refused,
                "waiting": self.scan.waiting,
                "cleared": self.cleared,
            }
        }


def owner_keys(source: Path) -> TrustedFor:
    """The keys that may sign a release of an app as a publisher: the publisher's active
    keys, when app.toml and publishers/ (and orgs/) make the publisher an owner; else
    why not. The build then checks the same against the owners its log records."""
    tree = load_source_tree(source)
    identities = tree.identities
    apps = {app.key: sorted(app.config.owners) for app in tree.apps}

    def trusted(app: str, publisher_id: str) -> Mapping[str, nacl.signing.VerifyKey] | str:
        owners = apps.get(app)
        if owners is None:
            return f"the app {app!r} is not in this registry"
        publisher = identities.publisher(publisher_id) if identities is not None else None
        if publisher is None:
            return f"publisher {publisher_id!r} is not declared in publishers/ (unknown signer)"
        if identities is None or not identities.may_publish(publisher_id, owners):
            return f"{publisher_id!r} is not an owner of {app}; its owners are {owners or 'none'}"
        return {
            key.keyid: nacl.signing.VerifyKey(bytes.fromhex(key.public))
            for key in publisher.keys
            if key.status == "active"
        }

    return trusted


def _in_source(source: Path, item: InboxItem) -> bytes | None:
    """The statement of the item's version already in the source tree (None: no folder)."""
    folder = source / "apps" / item.app / item.version
    if not folder.exists() and not folder.is_symlink():
        return None
    try:
        return read_input_file(folder / STATEMENT_FILE, 1 << 20)[0]
    except InputFileError:
        return b""


def _take(source: Path, base_urls: frozenset[str], ingest: Ingest, item: InboxItem) -> None:
    where = next(r for r in item.relpaths if r.endswith(STATEMENT_FILE))
    present = _in_source(source, item)
    if present == item.statement:
        ingest.items.append(item)  # ingested by a build whose inbox clean-up did not finish
        return
    if present is not None:
        ingest.scan.refused.append(
            f"{where}: {item.app} {item.version} is already in the source tree "
            "with another statement; a published version never changes"
        )
        return
    if item.envelope.signed.registry not in base_urls:
        ingest.scan.refused.append(
            f"{where}: signed.registry: is {item.envelope.signed.registry}, not "
            f"this registry ({' or '.join(sorted(base_urls))})"
        )
        return
    try:
        written = write_version(source, item.statement, item.envelope, item.artifact, where)
    except PublishError as exc:
        ingest.scan.refused.append(f"{where}: {exc}")
        return
    ingest.written.append(written)
    ingest.items.append(item)


@contextmanager
def ingest_inbox(
    store: S3Store, state: RemoteState, source: Path, base_urls: frozenset[str]
) -> Iterator[Ingest]:
    """Write the inbox's good items into `source` for the build inside the `with`.

    The body runs the build and the deploy; when it raises before the deploy replaced
    the snapshot, the folders written are removed again (the inbox is untouched). Call
    `finish` after a deploy that happened.
    """
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="appshelf-inbox-")))
        scan = (
            read_inbox(store, state.inbox, owner_keys(source), folder)
            if state.inbox
            else InboxScan()
        )
        ingest = Ingest(scan)
        for item in scan.items:
            _take(source, base_urls, ingest, item)
        try:
            yield ingest
        except BaseException:
            if not _deployed(store, state):
                rollback(ingest)
            raise


def _deployed(store: S3Store, state: RemoteState) -> bool:
    """Did the failed deploy get as far as its new snapshot (after which only the deploy
    record or a CDN invalidation can fail)? Then the versions are published and stay in
    the source; when the bucket cannot tell, they stay too (the next build takes them as
    ingested: the inbox still holds the same statements)."""
    try:
        head = store.head(SNAPSHOT)
    except AppshelfError:
        return True
    return (head.etag if head is not None else None) != state.snapshot_etag


def rollback(ingest: Ingest) -> None:
    """Remove the folders this build wrote (its deploy failed, or was a dry run)."""
    for written in ingest.written:
        remove_version(written)
    ingest.written.clear()
    ingest.items.clear()


def finish(store: S3Store, state: RemoteState, ingest: Ingest) -> None:
    """After the deploy: record the ingested items in the bucket (so a source that never
    got them committed can be restored), then delete exactly their inbox objects."""
    if ingest.items:
        added = [recorded(item.statement, item.envelope.signed) for item in ingest.items]
        write_record(store, read_record(store, state.ingested), added)
    ingest.cleared = clear_ingested(store, ingest.items)


def restore_ingested(
    store: S3Store, state: RemoteState, source: Path
) -> tuple[list[str], list[WrittenVersion]]:
    """Write back into `source` each recorded ingested version it lacks, fetched from the
    published registry and checked (deploy/ingested.py); the warnings to show, and the
    folders written (a dry run removes them again).

    Raises:
        AppshelfError: the record or a published object does not match (named); nothing
            is written.
    """
    missing = [
        rec
        for rec in read_record(store, state.ingested)
        if not os.path.lexists(source / "apps" / rec.app / rec.version)
    ]
    if not missing:
        return [], []
    with tempfile.TemporaryDirectory(prefix="appshelf-restore-") as tmp:
        fetched = [fetch_recorded(store, state.objects, rec, Path(tmp)) for rec in missing]
        written = _write_restored(store, source, fetched)
    warnings = [
        f"restored apps/{r.record.app}/{r.record.version} from the published registry (it "
        "was ingested from the inbox but is not in the source); commit it"
        for r in fetched
    ]
    return warnings, written


def _write_restored(store: S3Store, source: Path, fetched: list[Restored]) -> list[WrittenVersion]:
    written: list[WrittenVersion] = []
    try:
        for r in fetched:
            where = store.target.key(f"apps/{r.record.app}/{r.record.version}/{STATEMENT_FILE}")
            written.append(write_version(source, r.statement, r.envelope, r.artifact, where))
    except PublishError as exc:
        for done in written:
            remove_version(done)
        raise IngestedError(str(exc)) from None
    return written
