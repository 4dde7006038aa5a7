"""The record of what `build --deploy` took from the S3 inbox, and restoring it.

An ingested version folder exists only in the source tree of the build that ingested it,
and the inbox objects are gone once deployed. So that a later build from a checkout that
never got the folder committed is not refused, the ingesting build records each version
in `.appshelf/ingested.json` (docs/spec.md section 11.4), and a later build fetches a
recorded version that its source lacks back from the published registry, checked against
the record and the published release log entry. The record and every object are hostile
input: bounded, parsed with the bounded JSON reader, and compared byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semver

from appshelf.deploy.files import CHECKPOINT
from appshelf.deploy.s3 import S3Store
from appshelf.deploy.state import RemoteObject
from appshelf.errors import (
    IngestedError,
    JsonRejectedError,
    LogFormatError,
    RemoteAccessError,
    StatementError,
)
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import Signed
from appshelf.formats.log import ReleaseEntry, decode_bundle, decode_entry, parse_note, tiles_for
from appshelf.formats.statement import MAX_STATEMENT_BYTES, STATEMENT_FILE, ReleaseStatement
from appshelf.signing.statement import read_statement

INGESTED = ".appshelf/ingested.json"
INGESTED_TYPE = "appshelf.ingested"
MAX_RECORDED = 10_000  # versions kept in the record (the oldest go first)
MAX_RECORD_BYTES = 4 << 20
MAX_RESTORE_ARTIFACT = 1 << 30
MAX_BUNDLE_BYTES = 256 * (65_535 + 2)
_APP_RE = r"[a-z0-9][a-z0-9_-]{0,63}"
_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}"
_HEX_RE = r"[0-9a-f]{64}"
_FIELDS = ("app", "version", "statement_sha256", "statement_length")
_ARTIFACT_FIELDS = ("filename", "sha256", "size")


@dataclass(frozen=True)
class Recorded:
    app: str
    version: str
    statement_sha256: str
    statement_length: int
    filename: str
    sha256: str
    size: int

    def json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "statement": {"sha256": self.statement_sha256, "length": self.statement_length},
            "artifact": {"filename": self.filename, "sha256": self.sha256, "size": self.size},
        }


@dataclass
class Restored:
    """A recorded version fetched back and checked; `artifact` None: external."""

    record: Recorded
    statement: bytes
    envelope: Signed[ReleaseStatement]
    artifact: Path | None


def recorded(statement: bytes, body: ReleaseStatement) -> Recorded:
    """The record of one ingested version."""
    art = body.artifact
    return Recorded(
        body.app,
        body.version,
        sha256_hex(statement),
        len(statement),
        art.filename,
        art.sha256,
        art.size,
    )


def _matches(pattern: str) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, str) and re.fullmatch(pattern, value) is not None


# Each field of a `Recorded`, in order: its place in the record and what it may hold.
_VALID: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("app", _matches(_APP_RE)),
    ("version", lambda value: isinstance(value, str) and semver.Version.is_valid(value)),
    ("statement.sha256", _matches(_HEX_RE)),
    ("statement.length", lambda value: type(value) is int and 0 < value <= MAX_STATEMENT_BYTES),
    ("artifact.filename", _matches(_NAME_RE)),
    ("artifact.sha256", _matches(_HEX_RE)),
    ("artifact.size", lambda value: type(value) is int and value >= 0),
)


def _object(raw: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    """`raw` as a JSON object with exactly these keys."""
    if not isinstance(raw, dict) or set(raw) != set(keys):
        raise IngestedError(f"{where}: not {{{', '.join(keys)}}}")
    return raw


def _entry(raw: Any, where: str) -> Recorded:
    raw = _object(raw, ("app", "version", "statement", "artifact"), where)
    st = _object(raw["statement"], ("sha256", "length"), f"{where}.statement")
    art = _object(raw["artifact"], _ARTIFACT_FIELDS, f"{where}.artifact")
    values = (
        raw["app"],
        raw["version"],
        st["sha256"],
        st["length"],
        art["filename"],
        art["sha256"],
        art["size"],
    )
    for (name, valid), value in zip(_VALID, values, strict=True):
        if not valid(value):
            raise IngestedError(f"{where}.{name}: not a valid value")
    return Recorded(*values)


def read_record(store: S3Store, listed: RemoteObject | None) -> list[Recorded]:
    """The versions the record names (empty when there is none).

    Raises:
        IngestedError: the record is too large or not the format of section 11.4.
        RemoteAccessError: S3 failed.
    """
    if listed is None:
        return []
    where = f"{store.target.key(INGESTED)}"
    fetched = store.get(INGESTED, MAX_RECORD_BYTES)
    if fetched is None:
        return []
    try:
        raw = loads_bounded(fetched[0], max_bytes=MAX_RECORD_BYTES)
    except JsonRejectedError as exc:
        raise IngestedError(f"{where}: not valid JSON ({exc})") from None
    if (
        not isinstance(raw, dict)
        or raw.get("type") != INGESTED_TYPE
        or set(raw)
        != {
            "type",
            "versions",
        }
    ):
        raise IngestedError(f'{where}: not {{"type": "{INGESTED_TYPE}", "versions"}}')
    versions = raw["versions"]
    if not isinstance(versions, list) or len(versions) > MAX_RECORDED:
        raise IngestedError(f"{where}: versions: not a list of at most {MAX_RECORDED}")
    return [_entry(v, f"{where}: versions[{i}]") for i, v in enumerate(versions)]


def write_record(store: S3Store, before: list[Recorded], added: list[Recorded]) -> None:
    """Add `added` to the record (replacing the same versions), newest last, bounded."""
    keys = {(r.app, r.version) for r in added}
    versions = [r for r in before if (r.app, r.version) not in keys] + added
    body = {"type": INGESTED_TYPE, "versions": [r.json() for r in versions[-MAX_RECORDED:]]}
    data = (json.dumps(body, indent=1, sort_keys=True) + "\n").encode()
    store.put(INGESTED, data, sha256_hex(data), "application/json", "no-store")


def published_release(store: S3Store, app: str, version: str) -> ReleaseEntry | None:
    """The published log's `release` entry of (app, version), read within bounds (the
    build verifies the log against the signed checkpoint before it uses anything).

    Raises:
        IngestedError: the checkpoint or an entry bundle is not in the format of section 9.
        RemoteAccessError: S3 failed.
    """
    note = store.get(CHECKPOINT, 1 << 16)
    if note is None:
        return None
    try:
        size = parse_note(note[0])[0].size
        for ref in (r for r in tiles_for(size) if r.level == "entries"):
            bundle = store.get(ref.path, MAX_BUNDLE_BYTES)
            if bundle is None:
                raise IngestedError(f"{store.target.key(ref.path)}: missing from the log")
            for data in decode_bundle(bundle[0], ref.width):
                entry = decode_entry(data)
                if isinstance(entry, ReleaseEntry) and (entry.app, entry.version) == (
                    app,
                    version,
                ):
                    return entry
    except LogFormatError as exc:
        raise IngestedError(f"{store.target}: the published release log: {exc}") from None
    return None


def _check_log(store: S3Store, rec: Recorded, body: ReleaseStatement, where: str) -> None:
    entry = published_release(store, rec.app, rec.version)
    if entry is None:
        raise IngestedError(f"{where}: {rec.app} {rec.version} is not in the published release log")
    logged = (
        entry.statement.sha256 if entry.statement else None,
        entry.statement.length if entry.statement else None,
        entry.artifact.filename,
        entry.artifact.sha256,
        entry.artifact.size,
    )
    wanted = (rec.statement_sha256, rec.statement_length, rec.filename, rec.sha256, rec.size)
    if logged != wanted:
        raise IngestedError(
            f"{where}: the published release log entry of {rec.app} {rec.version} records "
            f"statement {logged[0]} ({logged[1]} bytes), artifact {logged[2]} {logged[3]} "
            f"({logged[4]} bytes); the record of what was ingested says otherwise"
        )
    if body.artifact.url is not None and entry.artifact.url != body.artifact.url:
        raise IngestedError(f"{where}: artifact.url: is not the logged {entry.artifact.url}")


def _fetch_statement(store: S3Store, rec: Recorded) -> tuple[bytes, Signed[ReleaseStatement]]:
    relpath = f"apps/{rec.app}/{rec.version}/{STATEMENT_FILE}"
    where = store.target.key(relpath)
    fetched = store.get(relpath, MAX_STATEMENT_BYTES)
    if fetched is None:
        raise IngestedError(f"{where}: missing from the published registry")
    data = fetched[0]
    if (sha256_hex(data), len(data)) != (rec.statement_sha256, rec.statement_length):
        raise IngestedError(
            f"{where}: is not the statement that was ingested (sha256 {sha256_hex(data)}, "
            f"{len(data)} bytes; recorded: {rec.statement_sha256}, {rec.statement_length} bytes)"
        )
    try:
        envelope = read_statement(data, where)
    except StatementError as exc:
        raise IngestedError(str(exc)) from None
    art = envelope.signed.artifact
    if (envelope.signed.app, envelope.signed.version, art.filename, art.sha256, art.size) != (
        rec.app,
        rec.version,
        rec.filename,
        rec.sha256,
        rec.size,
    ):
        raise IngestedError(f"{where}: does not sign the recorded app, version and artifact")
    return data, envelope


def _fetch_artifact(
    store: S3Store, listed: RemoteObject | None, rec: Recorded, folder: Path
) -> Path:
    relpath = f"apps/{rec.app}/{rec.version}/{rec.filename}"
    where = store.target.key(relpath)
    if listed is not None and listed.size != rec.size:
        raise IngestedError(
            f"{where}: is not the artifact that was ingested ({listed.size} bytes; "
            f"recorded: {rec.size} bytes)"
        )
    if rec.size > MAX_RESTORE_ARTIFACT:
        raise IngestedError(f"{where}: larger than {MAX_RESTORE_ARTIFACT} bytes")
    path = Path(tempfile.mkdtemp(dir=folder)) / rec.filename
    with path.open("wb") as handle:
        try:
            size = store.download(relpath, handle, rec.size)
        except RemoteAccessError as exc:
            raise IngestedError(f"{where}: {exc}") from None
    if size is None:
        raise IngestedError(f"{where}: missing from the published registry")
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if (digest, size) != (rec.sha256, rec.size):
        raise IngestedError(
            f"{where}: is not the artifact that was ingested (sha256 {digest}, {size} bytes; "
            f"recorded: {rec.sha256}, {rec.size} bytes)"
        )
    return path


def fetch_recorded(
    store: S3Store, objects: Mapping[str, RemoteObject], rec: Recorded, folder: Path
) -> Restored:
    """Fetch one recorded version back from the published registry, checked against the
    record and the published release log; artifacts are downloaded into `folder`
    (`objects`: the bucket's listing, whose sizes are checked before anything is read).

    Raises:
        IngestedError: an object is missing or differs; the message names it.
        RemoteAccessError: S3 failed.
    """
    statement, envelope = _fetch_statement(store, rec)
    _check_log(store, rec, envelope.signed, store.target.key(f"apps/{rec.app}/{rec.version}/"))
    external = envelope.signed.artifact.url is not None
    artifact = (
        None
        if external
        else _fetch_artifact(
            store, objects.get(f"apps/{rec.app}/{rec.version}/{rec.filename}"), rec, folder
        )
    )
    return Restored(rec, statement, envelope, artifact)
