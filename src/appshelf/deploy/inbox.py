"""The S3 inbox: publishers upload signed releases into it; `build --deploy` ingests it.

Layout (docs/spec.md section 11): `.appshelf/inbox/<app>/<version>/<artifact>` then
`.appshelf/inbox/<app>/<version>/statement.json`, each written with `If-None-Match: *`,
so two publishers never overwrite each other and a version is in the inbox at most
once. The statement is the commit point: a version folder without one is an upload in
progress and is left alone.

The bucket is hostile input: the inbox is read within fixed bounds (objects, versions,
bytes), every name must fullmatch its pattern, and every item is checked whole (its
statement parses, names the folder's app and version, is signed by a key `trusted`
gives for the app, and its artifact has exactly the signed bytes) before anything is
ingested. An item that fails is refused by name and stays in the inbox, untouched.
"""

from __future__ import annotations

import hashlib
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nacl.signing
import semver

from appshelf.deploy.files import INBOX, content_type
from appshelf.deploy.s3 import S3Store
from appshelf.deploy.state import RemoteObject
from appshelf.errors import (
    DeployConflictError,
    InboxError,
    RemoteAccessError,
    StatementError,
    UnknownSignerError,
)
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import Signed
from appshelf.formats.statement import MAX_STATEMENT_BYTES, STATEMENT_FILE, ReleaseStatement
from appshelf.signing.statement import read_statement, verify_statement

MAX_INBOX_OBJECTS = 10_000  # listed under the inbox; more is refused outright
MAX_INBOX_VERSIONS = 200  # ingested by one build; the rest wait for the next
MAX_ARTIFACT_BYTES = 1 << 30  # one artifact
MAX_INBOX_BYTES = 4 << 30  # all artifacts one build downloads
_APP_RE = r"[a-z0-9][a-z0-9_-]{0,63}"
_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}"
_NO_CACHE = "no-store"

# (app key, publisher id) -> the keys that may sign its releases as that publisher, or
# why none may (an unknown app or publisher, not an owner)
TrustedFor = Callable[[str, str], Mapping[str, nacl.signing.VerifyKey] | str]


@dataclass
class InboxItem:
    app: str
    version: str
    statement: bytes
    envelope: Signed[ReleaseStatement]
    artifact: Path | None  # downloaded and checked; None for an external artifact
    relpaths: list[str]  # the inbox objects it came from (deleted once deployed)


@dataclass
class InboxScan:
    items: list[InboxItem] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "<object>: <why>"
    waiting: list[str] = field(default_factory=list)  # notes: uploads in progress, overflow


def inbox_relpath(app: str, version: str, name: str) -> str:
    """The inbox object of one file of a version (relative to the registry's prefix)."""
    return f"{INBOX}{app}/{version}/{name}"


# --- the publisher's side -----------------------------------------------------------


def publish_to_inbox(
    store: S3Store, statement: bytes, envelope: Signed[ReleaseStatement], artifact: Path | None
) -> list[str]:
    """Upload the artifact, then the statement (the commit point), each only if absent.

    A retried identical publish succeeds (the objects already hold these bytes).

    Raises:
        InboxError: the version is published already, or the inbox holds other bytes
            for it (another publish); the message names the object.
    """
    body = envelope.signed
    manifest = f"apps/{body.app}/{body.version}/manifest.json"
    try:
        published = store.head(manifest) is not None
    except RemoteAccessError:
        published = False  # a key that may only write the inbox: the ingest checks it
    if published:
        raise InboxError(
            f"{store.target}: {body.app} {body.version} is already published ({manifest} "
            "exists); a published version never changes: release a new version"
        )
    written = []
    uploads: list[tuple[str, bytes | Path, str]] = []
    if artifact is not None:
        _check_local(artifact, body)
        uploads.append((body.artifact.filename, artifact, body.artifact.sha256))
    uploads.append((STATEMENT_FILE, statement, sha256_hex(statement)))
    for name, data, digest in uploads:
        relpath = inbox_relpath(body.app, body.version, name)
        try:
            store.put(relpath, data, digest, content_type(name), _NO_CACHE, if_none_match=True)
        except DeployConflictError:
            raise InboxError(
                f"{store.target.key(relpath)}: the inbox already holds other bytes for "
                f"{body.app} {body.version} (another publish of this version); nothing of "
                "yours replaced it. Release a new version"
            ) from None
        written.append(store.target.key(relpath))
    return written


def _check_local(path: Path, body: ReleaseStatement) -> None:
    """The file is a regular file holding exactly the signed bytes."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise InboxError(f"{path}: not a regular file")
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise InboxError(f"{path}: cannot read ({exc.strerror})") from None
    if (info.st_size, digest) != (body.artifact.size, body.artifact.sha256):
        raise InboxError(
            f"{path}: is not the artifact the statement signs (sha256 {body.artifact.sha256}, "
            f"{body.artifact.size} bytes)"
        )


# --- the registry's side ------------------------------------------------------------


def _split(relpath: str) -> tuple[str, str, str] | None:
    parts = relpath[len(INBOX) :].split("/")
    if len(parts) != 3:
        return None
    app, version, name = parts
    if not re.fullmatch(_APP_RE, app) or not re.fullmatch(_NAME_RE, name):
        return None
    return (app, version, name) if semver.Version.is_valid(version) else None


def _group(
    objects: Mapping[str, RemoteObject], scan: InboxScan
) -> dict[tuple[str, str], list[str]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for relpath in sorted(objects):
        parts = _split(relpath)
        if parts is None:
            scan.refused.append(
                f"{relpath}: not .appshelf/inbox/<app key>/<SemVer version>/<file name>"
            )
            continue
        groups.setdefault(parts[:2], []).append(parts[2])
    return groups


def check_signer(envelope: Signed[ReleaseStatement], trusted_for: TrustedFor, where: str) -> None:
    """The statement's publisher may publish its app, and one of their keys signed it.

    Raises:
        StatementError: not so; the message names `where`, the publisher and the app.
    """
    body = envelope.signed
    trusted = trusted_for(body.app, body.publisher)
    if isinstance(trusted, str):
        raise StatementError(f"{where}: {trusted}")
    try:
        verify_statement(envelope, trusted)
    except UnknownSignerError as exc:
        raise StatementError(
            f"{where}: publisher {body.publisher!r}: {exc}; only an active key of an owner "
            f"of {body.app} may sign its releases"
        ) from None
    except StatementError as exc:
        raise StatementError(f"{where}: {exc}") from None


def _check_item(
    app: str,
    version: str,
    names: list[str],
    objects: Mapping[str, RemoteObject],
    trusted_for: TrustedFor,
    statement: bytes,
) -> tuple[Signed[ReleaseStatement], str | None]:
    """The parsed, verified statement and the artifact's object (None: external)."""
    where = inbox_relpath(app, version, STATEMENT_FILE)
    envelope = read_statement(statement, where)
    body = envelope.signed
    if (body.app, body.version) != (app, version):
        raise StatementError(
            f"{where}: signed.app/version: says {body.app} {body.version}, but lies in the "
            f"inbox folder of {app} {version}"
        )
    check_signer(envelope, trusted_for, where)
    others = sorted(set(names) - {STATEMENT_FILE})
    wanted = [] if body.artifact.url is not None else [body.artifact.filename]
    if others != wanted:
        raise StatementError(
            f"{where}: its folder holds {others or 'no artifact'}, but the statement signs "
            f"{wanted or 'an external artifact'}"
        )
    if not wanted:
        return envelope, None
    artifact = inbox_relpath(app, version, wanted[0])
    if objects[artifact].size != body.artifact.size:
        raise StatementError(
            f"{artifact}: {objects[artifact].size} bytes; the statement signs {body.artifact.size}"
        )
    if body.artifact.size > MAX_ARTIFACT_BYTES:
        raise StatementError(f"{artifact}: larger than {MAX_ARTIFACT_BYTES} bytes")
    return envelope, artifact


def _download(store: S3Store, relpath: str, body: ReleaseStatement, folder: Path) -> Path:
    path = Path(tempfile.mkdtemp(dir=folder)) / body.artifact.filename
    with path.open("wb") as handle:
        size = store.download(relpath, handle, body.artifact.size)
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if size != body.artifact.size or digest != body.artifact.sha256:
        raise StatementError(
            f"{relpath}: is not the artifact the statement signs (sha256 {digest}, "
            f"{size} bytes; signed: {body.artifact.sha256}, {body.artifact.size} bytes)"
        )
    return path


def _read_item(
    store: S3Store,
    key: tuple[str, str],
    names: list[str],
    objects: Mapping[str, RemoteObject],
    trusted_for: TrustedFor,
    folder: Path,
) -> InboxItem:
    app, version = key
    relpath = inbox_relpath(app, version, STATEMENT_FILE)
    if objects[relpath].size > MAX_STATEMENT_BYTES:
        raise StatementError(f"{relpath}: larger than {MAX_STATEMENT_BYTES} bytes")
    fetched = store.get(relpath, MAX_STATEMENT_BYTES)
    if fetched is None:
        raise StatementError(f"{relpath}: listed, but gone when read")
    envelope, artifact_rel = _check_item(app, version, names, objects, trusted_for, fetched[0])
    artifact = None
    if artifact_rel is not None:
        artifact = _download(store, artifact_rel, envelope.signed, folder)
    relpaths = [inbox_relpath(app, version, n) for n in sorted(names)]
    return InboxItem(app, version, fetched[0], envelope, artifact, relpaths)


def read_inbox(
    store: S3Store, objects: Mapping[str, RemoteObject], trusted_for: TrustedFor, folder: Path
) -> InboxScan:
    """Check every complete inbox item (see the module docstring); artifacts are
    downloaded into `folder`.

    Raises:
        RemoteAccessError: the inbox holds more than MAX_INBOX_OBJECTS objects (read
            nothing rather than a part chosen by whoever filled it), or S3 fails.
    """
    if len(objects) > MAX_INBOX_OBJECTS:
        raise RemoteAccessError(
            f"{store.target}: the inbox {INBOX} holds {len(objects)} objects, more than "
            f"{MAX_INBOX_OBJECTS}; clear it by hand"
        )
    scan = InboxScan()
    budget = MAX_INBOX_BYTES
    for key, names in _group(objects, scan).items():
        where = f"{INBOX}{key[0]}/{key[1]}/"
        if STATEMENT_FILE not in names:
            scan.waiting.append(f"{where}: no {STATEMENT_FILE} yet (an upload in progress?)")
            continue
        size = sum(objects[inbox_relpath(*key, n)].size for n in names)
        if len(scan.items) >= MAX_INBOX_VERSIONS or size > budget:
            scan.waiting.append(f"{where}: left for the next build (this one took its share)")
            continue
        try:
            item = _read_item(store, key, names, objects, trusted_for, folder)
        except StatementError as exc:
            scan.refused.append(str(exc))
            continue
        except RemoteAccessError as exc:
            scan.refused.append(f"{where}: {exc}")
            continue
        budget -= size
        scan.items.append(item)
    return scan


def clear_ingested(store: S3Store, items: list[InboxItem]) -> int:
    """Delete exactly the inbox objects the ingested items came from; their count."""
    relpaths = [r for item in items for r in item.relpaths]
    if relpaths:
        store.delete(relpaths)
    return len(relpaths)
