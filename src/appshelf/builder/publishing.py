"""Publishers in the build: log who owns each app, and check each version's statement
(pure: no I/O; the planner calls it per app and per version).

Rules (docs/spec.md section 10):
- an app's first owners come from app.toml and are logged (`initial`); after that its
  owners change only through an owners-change statement in owners/ signed by an
  active key of a current owner: editing app.toml alone is refused as a takeover;
- a new version's statement.json must be signed by an active key of a publisher who
  owns the app (directly or through an organisation) and agree with release.toml and
  the artifact; `[publishers] required` makes it mandatory for every new version;
- a logged version keeps the very statement it was logged with.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import nacl.signing

from appshelf.builder.logplan import Release
from appshelf.errors import LogError, Problem, StatementError, UnknownSignerError
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import FileDigest, ManifestPublisher, Signed
from appshelf.formats.log import OwnersEntry, OwnersSigner
from appshelf.formats.publishers import Publisher, PublishersDocument
from appshelf.formats.statement import OWNERS_DIR, STATEMENT_FILE, ReleaseStatement
from appshelf.signing.owners import peek_owners_change, verify_owners_change
from appshelf.signing.releaselog import LoggedRelease, LogState
from appshelf.signing.statement import read_statement, statement_signers, verify_statement
from appshelf.source.tree import SourceApp, SourceTree, SourceVersion

SIGN_HINT = "the publisher writes it with `appshelf sign-release`"


@dataclass(frozen=True)
class Countersigned:
    """A verified statement: what the manifest names, and the bytes published beside it."""

    publisher: ManifestPublisher
    data: bytes


def signed_published(data: bytes | None) -> str | None:
    """The statement's `published`, when it parses (the build's date for a version whose
    release.toml gives none; a malformed statement is reported by `check_statement`)."""
    if data is None:
        return None
    try:
        return read_statement(data, STATEMENT_FILE).signed.published
    except StatementError:
        return None


def plan_owners(log: LogState, tree: SourceTree, app: SourceApp, logged: str) -> list[Problem]:
    """Log app.toml's owners when new, or the signed change that makes them so."""
    wanted = sorted(app.config.owners)
    before = log.owners.get(app.key)
    where = f"apps/{app.key}/app.toml"
    if before is not None and wanted == sorted(before):
        return []
    unknown = [o for o in wanted if not _known(tree.identities, o)]
    if unknown:
        return [Problem(where, "owners", f"no publisher or organisation {unknown[0]!r}")]
    registry = tree.config.registry.base_url
    if before is None:
        if wanted:
            log.append(
                OwnersEntry(
                    registry=registry, logged=logged, action="initial", app=app.key, owners=wanted
                )
            )
        return []
    found = _signed_change(tree, app.key, sorted(before), wanted)
    if isinstance(found, Problem):
        return [found]
    signer, statement = found
    try:
        log.append(
            OwnersEntry(
                registry=registry,
                logged=logged,
                action="change",
                app=app.key,
                owners=wanted,
                signer=signer,
                statement=statement,
            )
        )
    except LogError as exc:  # the log's own rules, checked again as a reader would
        return [Problem(OWNERS_DIR, app.key, f"owners change refused: {exc}")]
    return []


def _known(identities: PublishersDocument | None, owner: str) -> bool:
    if identities is None:
        return False
    return identities.publisher(owner) is not None or any(
        org.id == owner for org in identities.organisations
    )


def _signed_change(
    tree: SourceTree, app: str, before: list[str], wanted: list[str]
) -> tuple[OwnersSigner, str] | Problem:
    """The owners-change statement in owners/ that takes `app` from `before` to
    `wanted`, verified; else the problem (a takeover, or a forged statement)."""
    where = f"apps/{app}/app.toml"
    refused: list[str] = []
    for data in tree.owner_changes:
        try:
            change = peek_owners_change(data, f"{OWNERS_DIR}/")
        except StatementError:
            continue
        if (change.registry, change.app) != (tree.config.registry.base_url, app):
            continue
        if change.owners != wanted or change.previous != before:
            continue
        signer = _owner_signer(tree, app, before, change.signer, data)
        if isinstance(signer, str):
            refused.append(signer)
            continue
        return signer, base64.b64encode(data).decode()
    if refused:
        return Problem(OWNERS_DIR, app, "owners change refused: " + "; ".join(refused))
    return Problem(
        where,
        "owners",
        f"{wanted} differ from {app}'s owners in the release log {before}: editing app.toml "
        "alone would hand the app to others (a takeover). A current owner signs the change "
        "with `appshelf change-owners`, which writes owners/<file>.json",
    )


def _owner_signer(
    tree: SourceTree, app: str, before: list[str], signer: str, data: bytes
) -> OwnersSigner | str:
    identities = tree.identities
    publisher = identities.publisher(signer) if identities is not None else None
    if identities is None or publisher is None:
        return f"signed as {signer!r}, who is not a publisher of this registry"
    via = None
    if signer not in before:
        orgs = [o.id for o in identities.organisations if o.id in before and signer in o.members]
        if not orgs:
            return f"{signer!r} is not one of {app}'s owners {before}"
        via = orgs[0]
    for key in publisher.keys:
        if key.status != "active":
            continue
        try:
            verify_owners_change(data, key.public, "owners-change statement")
        except StatementError:
            continue
        return OwnersSigner(publisher=signer, via=via, keyid=key.keyid, public=key.public)
    return f"not signed by an active key of {signer!r} (a forged or altered statement)"


def check_statement(
    tree: SourceTree,
    log: LogState,
    source: SourceVersion,
    release: Release,
    earlier: LoggedRelease | None,
) -> Countersigned | Problem | None:
    """The version's verified statement, None when it has none and needs none, or the
    problem, naming the app, version, signer and owners."""
    where = f"{source.folder.relative_to(tree.root).as_posix()}/{STATEMENT_FILE}"
    ident = f"{source.app_key} {source.version}"
    data = source.statement
    if data is None:
        return _missing_statement(tree, earlier, where, ident)
    try:
        envelope = read_statement(data, where)
    except StatementError as exc:
        return Problem(where, "", str(exc).removeprefix(f"{where}: "))
    digest = FileDigest(sha256=sha256_hex(data), length=len(data))
    if earlier is not None and earlier.entry.statement != digest:
        was = "another" if earlier.entry.statement else "no"
        return Problem(
            where,
            "",
            f"{ident} was published (log entry {earlier.index}) with {was} statement; "
            "published versions never change: restore it, or release a new version",
        )
    statement = envelope.signed
    publisher = _statement_publisher(tree, log, source, statement, earlier is None, where)
    if isinstance(publisher, Problem):
        return publisher
    keyid = _signing_key(envelope, publisher, new=earlier is None, where=where, ident=ident)
    if isinstance(keyid, Problem):
        return keyid
    mismatch = _disagreement(statement, release, source, _registry_for(tree, statement))
    if mismatch is not None:
        return Problem(where, mismatch[0], f"{ident}: {mismatch[1]}")
    return Countersigned(ManifestPublisher(id=publisher.id, keyid=keyid, statement=digest), data)


def _missing_statement(
    tree: SourceTree, earlier: LoggedRelease | None, where: str, ident: str
) -> Problem | None:
    """A version without a statement: refused if it was published with one, or if it is
    new and the registry requires one."""
    if earlier is not None and earlier.entry.statement is not None:
        return Problem(where, "", f"{ident} was published with it (log entry {earlier.index})")
    if earlier is None and tree.config.publishers.required:
        return Problem(
            where,
            "",
            f"missing: registry.toml requires a publisher's signature on every new version "
            f"([publishers] required = true), and {ident} has none; {SIGN_HINT}",
        )
    return None


def _statement_publisher(
    tree: SourceTree,
    log: LogState,
    source: SourceVersion,
    statement: ReleaseStatement,
    new: bool,
    where: str,
) -> Publisher | Problem:
    """The declared publisher who signed the statement; a new version's must also be
    allowed to publish for the app's owners."""
    ident = f"{source.app_key} {source.version}"
    publisher = tree.identities.publisher(statement.publisher) if tree.identities else None
    if publisher is None:
        return Problem(
            where,
            "publisher",
            f"{ident} is signed as publisher {statement.publisher!r}, who is not declared in "
            "publishers/ (unknown signer)",
        )
    owners = log.owners.get(source.app_key, [])
    if new and not (tree.identities and tree.identities.may_publish(publisher.id, owners)):
        return Problem(
            where,
            "publisher",
            f"{ident} is signed by {publisher.id!r}, who is not an owner of {source.app_key}; "
            f"its owners are {owners or 'none (set owners in app.toml)'}",
        )
    return publisher


def check_bundle_signer(tree: SourceTree, log: LogState, source: SourceVersion) -> Problem | None:
    """A new Calimero bundle of an app with owners must be signed by an active key of one
    of them, as Calimero's registry gates versions by author or organisation."""
    bundle = source.bundle
    owners = log.owners.get(source.app_key, [])
    if bundle is None or not owners or tree.identities is None:
        return None
    public = bundle.public_key.hex()
    for publisher in tree.identities.publishers:
        if not tree.identities.may_publish(publisher.id, owners):
            continue
        if any(k.public == public and k.status == "active" for k in publisher.keys):
            return None
    assert source.artifact.path is not None  # a bundle is always a local file
    return Problem(
        source.artifact.path.relative_to(tree.root).as_posix(),
        "signature",
        f"{source.app_key} {source.version}: the bundle is signed by {bundle.signer_id}, "
        f"which is not an active key of its owners {owners}; declare the key in "
        "publishers/<id>.toml (`did = \"did:key:...\"`) of an owner",
    )


def _signing_key(
    envelope: Signed[ReleaseStatement], publisher: Publisher, *, new: bool, where: str, ident: str
) -> str | Problem:
    """The key of `publisher` that signed; a new version needs an active one."""
    usable = [k for k in publisher.keys if k.status == "active" or not new]
    trusted = {k.keyid: nacl.signing.VerifyKey(bytes.fromhex(k.public)) for k in usable}
    try:
        return verify_statement(envelope, trusted)
    except UnknownSignerError:
        pass
    except StatementError as exc:
        return Problem(where, "signatures", f"{ident}: {exc}")
    claimed = set(statement_signers(envelope))
    for key in publisher.keys:
        if key.keyid in claimed:
            return Problem(
                where,
                "signatures",
                f"{ident} is signed by key {key.keyid[:16]}... of {publisher.id!r}, which is "
                f"{key.status}: sign with an active key",
            )
    return Problem(
        where,
        "signatures",
        f"{ident} claims publisher {publisher.id!r} but is signed by key(s) "
        f"{', '.join(k[:16] + '...' for k in sorted(claimed))}, none of theirs (unknown signer)",
    )


def _registry_for(tree: SourceTree, statement: ReleaseStatement) -> str:
    """The registry a statement must name: the base URL built for, or registry.toml's
    own when --base-url replaced it (a preview of the real registry's signed versions)."""
    if statement.registry == tree.declared_base_url:
        return statement.registry
    return tree.config.registry.base_url


def _disagreement(
    statement: ReleaseStatement, release: Release, source: SourceVersion, registry: str
) -> tuple[str, str] | None:
    artifact = release.artifact
    pairs: list[tuple[str, object, object]] = [
        ("registry", statement.registry, registry),
        ("app", statement.app, release.app),
        ("version", statement.version, release.version),
        ("artifact.filename", statement.artifact.filename, artifact.filename),
        ("artifact.sha256", statement.artifact.sha256, artifact.sha256),
        ("artifact.size", statement.artifact.size, artifact.size),
        (
            "artifact.url",
            statement.artifact.url,
            artifact.url if source.artifact.external else None,
        ),
        ("dependencies", statement.dependencies, release.dependencies),
        ("provides", statement.provides, release.provides),
        ("requires", statement.requires, release.requires),
        ("notes", statement.notes, source.release.notes),
        ("published", statement.published, release.published),
    ]
    for name, signed, built in pairs:
        if signed != built:
            return name, (
                f"the publisher's statement gives {name} {signed!r}, but release.toml and "
                f"the artifact give {built!r} (statement/release mismatch)"
            )
    return None
