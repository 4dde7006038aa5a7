"""The deploy planner: local site + what the bucket holds -> an ordered plan (pure, no I/O).

It refuses (raising, so nothing is uploaded) when a published version would get other
artifact bytes or would vanish, or when the build is older than what is deployed. The
plan it returns is ordered so that no reader ever sees a file naming one not yet there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import pydantic

from appshelf.deploy.errors import REBUILD_HINT
from appshelf.deploy.files import (
    STATE_KEY,
    Kind,
    cache_control,
    content_disposition,
    content_type,
    is_copy,
    kind_of,
)
from appshelf.deploy.site import LocalSite, artifact_relpath
from appshelf.deploy.state import RemoteObject, RemoteState
from appshelf.errors import DeployRefusedError, SignatureError, UnknownKeyError
from appshelf.formats.bins import is_bin_path, pins_through_bins
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.consistent import consistent_path
from appshelf.formats.deploysettings import DeploySection
from appshelf.formats.documents import (
    SNAPSHOT_TYPE,
    AppDetail,
    FileDigest,
    Signed,
    Snapshot,
    VersionEntry,
)
from appshelf.formats.log import Checkpoint, tiles_for
from appshelf.formats.merkle import root_of
from appshelf.signing.envelope import trusted_keys_from_hex, verify_envelope
from appshelf.signing.keys import development_key

Operation = Literal["upload", "skip", "delete"]


@dataclass(frozen=True)
class Action:
    relpath: str
    op: Operation
    reason: str  # new, changed, headers, unchanged, not in the site
    kind: Kind
    size: int = 0
    sha256: str = ""
    content_type: str = ""
    cache_control: str = ""
    content_disposition: str | None = None
    if_match: str | None = None  # overwrite only the object read at plan time
    if_none_match: bool = False  # create only: fail if someone else created it meanwhile


@dataclass
class DeployPlan:
    uploads: list[Action]  # in safe order: phase by phase
    skips: list[Action]
    deletes: list[Action]
    notes: list[str] = field(default_factory=list)
    snapshot_etag: str | None = None  # what the final conditional write expects

    @property
    def changed(self) -> bool:
        return bool(self.uploads or self.deletes)

    def phases(self) -> list[list[Action]]:
        groups: dict[int, list[Action]] = {}
        for action in self.uploads:
            groups.setdefault(action.kind.phase, []).append(action)
        return [groups[phase] for phase in sorted(groups)]

    def short_cache_paths(self) -> list[str]:
        """Changed or removed paths a CDN may still serve stale (everything but artifacts)."""
        return sorted(
            a.relpath
            for a in [*self.uploads, *self.deletes]
            if a.kind not in (Kind.ARTIFACT, Kind.LOG_TILE, Kind.COPY)
        )


@dataclass
class Deployed:
    """The deployed registry as far as it can be trusted."""

    published: dict[tuple[str, str], VersionEntry]
    base_url: str | None
    version: int | None
    notes: list[str]


def documents_to_fetch(site: LocalSite | None, state: RemoteState) -> list[str]:
    """The deployed index files the planner must read: app.json files that differ from
    the local ones (an equal one needs no reading), or all of them when building."""
    wanted = _deployed_index_files(state, building=site is None)
    if site is not None:
        wanted = {rel for rel in wanted if _differs(site, state, rel)}
    return sorted(rel for rel in wanted if rel in state.objects)


def _deployed_index_files(state: RemoteState, building: bool) -> set[str]:
    """Every deployed app.json, the bins the deployed snapshot pins, and (when building,
    to carry the deployed keys over) keys.json."""
    envelope = state.snapshot()
    wanted = {
        rel
        for rel in state.objects
        if rel.startswith("apps/") and rel.endswith("/app.json") and rel.count("/") == 2
    }
    if envelope is not None:  # the deployed bins name the deployed app.json pins
        wanted |= {rel for rel in envelope.signed.meta if is_bin_path(rel)}
        if building:
            wanted.add("keys.json")
    return wanted


def _differs(site: LocalSite, state: RemoteState, rel: str) -> bool:
    """The deployed file is not the local one (or one of them is missing)."""
    if rel not in site.files or rel not in state.objects:
        return True
    return state.objects[rel].sha256 != site.files[rel].sha256


def read_deployed(site: LocalSite, state: RemoteState) -> Deployed:
    """Authenticate the deployed snapshot and collect every published version."""
    notes: list[str] = []
    envelope = state.snapshot()
    meta = deployed_pins(site, state)[0]
    if envelope is not None and state.snapshot_bytes is not None:
        _check_deployed_signature(site, envelope, state.snapshot_bytes, notes)
    published = _published_by_documents(state, meta, notes)
    _add_unchanged_apps(site, state, published)
    return Deployed(
        published=published,
        base_url=envelope.signed.registry if envelope else None,
        version=envelope.signed.version if envelope else None,
        notes=notes,
    )


def _check_deployed_signature(
    site: LocalSite, envelope: Signed[Snapshot], snapshot_bytes: bytes, notes: list[str]
) -> None:
    """The deployed snapshot must be signed by a key the build lists; one signed by the
    development key is replaced, with a note."""
    trusted = trusted_keys_from_hex([k.public for k in site.keys.keys])
    dev = development_key()
    try:
        verify_envelope(snapshot_bytes, SNAPSHOT_TYPE, trusted, what="deployed snapshot.json")
    except UnknownKeyError:
        if envelope.signatures[0].keyid != dev.keyid:
            raise DeployRefusedError(
                "the deployed snapshot.json is signed by a key this build does not list "
                f"(key id {envelope.signatures[0].keyid[:16]}...). If you rotated keys, "
                "list the old public key in registry.toml [signing] retired_keys, or "
                "build with `--deploy`, which carries the deployed keys over"
            ) from None
        notes.append("the deployed registry was signed with the DEVELOPMENT key; it is replaced")
    except SignatureError as exc:
        raise DeployRefusedError(
            f"{exc}: the bucket was altered outside appshelf; restore it before deploying"
        ) from None


def _published_by_documents(
    state: RemoteState, meta: dict[str, FileDigest], notes: list[str]
) -> dict[tuple[str, str], VersionEntry]:
    """The versions each fetched deployed app.json lists. One the snapshot does not pin
    still counts (an interrupted deploy wrote it), with a note; an unreadable one is
    refused when pinned, else ignored with a note."""
    published: dict[tuple[str, str], VersionEntry] = {}
    for relpath, data in sorted(state.documents.items()):
        if not relpath.endswith("/app.json"):
            continue
        pinned = meta.get(relpath)
        authentic = pinned is not None and sha256_hex(data) == pinned.sha256
        try:
            detail = AppDetail.model_validate_json(data)
        except pydantic.ValidationError as exc:
            if authentic:
                raise DeployRefusedError(f"the deployed {relpath} cannot be read: {exc}") from None
            notes.append(f"ignored the deployed {relpath}: unreadable and not in the snapshot")
            continue
        if not authentic:
            notes.append(
                f"the deployed {relpath} does not match the deployed snapshot (an interrupted "
                "or losing deploy wrote it); its versions are treated as published"
            )
        for entry in detail.versions:
            published[(detail.key, entry.version)] = entry
    return published


def _add_unchanged_apps(
    site: LocalSite, state: RemoteState, published: dict[tuple[str, str], VersionEntry]
) -> None:
    """Apps whose deployed app.json equals the local one (so it was not fetched): the
    local one says it all."""
    for detail in site.apps.values():
        rel = f"apps/{detail.key}/app.json"
        remote = state.objects.get(rel)
        if (
            rel not in state.documents
            and remote is not None
            and remote.sha256 == site.files[rel].sha256
        ):
            for entry in detail.versions:
                published.setdefault((detail.key, entry.version), entry)


def check_log_prefix(site: LocalSite, state: RemoteState) -> None:
    """The bucket's release log must be a prefix of the one being deployed: a deploy never
    rewrites or forks published history (checked by the Merkle root of the first entries).

    The deployed log's size and root come from the deployed snapshot (signed, checked
    above), not from log/checkpoint, which an interrupted deploy may have replaced.

    Raises:
        DeployRefusedError: it is not; nothing is uploaded then.
    """
    envelope = state.snapshot()
    head = envelope.signed.log if envelope is not None else None
    if head is None:
        return  # an empty bucket, or a registry from before the log: nothing to extend
    deployed = Checkpoint("", head.size, bytes.fromhex(head.root))
    local = site.log
    if (
        local is None
        or deployed.size > local.size
        or root_of(local.leaves[: deployed.size]) != deployed.root
    ):
        raise DeployRefusedError(
            f"the bucket's release log ({deployed.size} entries) is not a prefix of the one "
            f"being deployed ({local.size if local else 0} entries): this build did not start "
            "from the deployed registry, or its history was rewritten. Nothing was uploaded; "
            "rebuild with `appshelf build --deploy` to start from what is deployed"
        )


def check_published(site: LocalSite, deployed: Deployed) -> None:
    """Every published version must be in the build, with the same artifact bytes."""
    problems: list[str] = []
    for (app, version), entry in sorted(deployed.published.items()):
        logged = site.log.releases.get((app, version)) if site.log is not None else None
        if logged is not None and logged.standing.takedown is not None:
            continue  # taken down (the log says why): it leaves the site on purpose
        local = site.apps.get(app)
        mine = next((e for e in local.versions if e.version == version), None) if local else None
        if mine is None:
            problems.append(
                f"{app} {version} is deployed but not in this build: a deploy that left it "
                "out would lose it (add it back to the source, e.g. pull the latest commit; "
                "yank it rather than deleting it)"
            )
        elif mine.artifact.sha256 != entry.artifact.sha256:
            problems.append(
                f"{app} {version} is deployed with artifact sha256:{entry.artifact.sha256} "
                f"but this build has sha256:{mine.artifact.sha256}; published versions are "
                "immutable: release a new version instead"
            )
    if problems:
        raise DeployRefusedError(
            "refusing to deploy, nothing was uploaded:\n" + "\n".join(f"  {p}" for p in problems)
        )


def check_bucket_artifacts(site: LocalSite, state: RemoteState) -> None:
    """An artifact under base_url that the build did not write must already be in the
    bucket, with the size (and, when known, the sha256) its release pins: appshelf never
    uploads it, so a deploy without it would publish a version nobody can download.

    Raises:
        DeployRefusedError: one is missing or different; nothing is uploaded then.
    """
    problems: list[str] = []
    for relpath, artifact in sorted(site.bucket_artifacts().items()):
        what = f"{artifact.app} {artifact.version}: its artifact_url names {relpath}"
        remote = state.objects.get(relpath)
        if remote is None:
            problems.append(f"{what}, which is not in the bucket")
        elif remote.size != artifact.size:
            problems.append(
                f"{what}, which has {remote.size:,} bytes in the bucket; release.toml pins "
                f"{artifact.size:,}"
            )
        elif remote.sha256 is not None and remote.sha256 != artifact.sha256:
            problems.append(
                f"{what}, whose sha256 in the bucket is {remote.sha256}; release.toml pins "
                f"{artifact.sha256}"
            )
    if problems:
        raise DeployRefusedError(
            "refusing to deploy, nothing was uploaded: appshelf does not upload artifacts "
            "that live in the bucket, so they must be there first:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


def check_snapshot(site: LocalSite, state: RemoteState, deployed: Deployed) -> None:
    if deployed.version is None or state.snapshot_bytes == site.snapshot_bytes:
        return
    if site.snapshot.version <= deployed.version:
        raise DeployRefusedError(
            f"this build's snapshot is version {site.snapshot.version} but the deployed one "
            f"is version {deployed.version}: the build does not start from the deployed "
            f"state (another deploy happened since); {REBUILD_HINT}"
        )


def _decide(
    relpath: str,
    kind: Kind,
    sha256: str,
    size: int,
    remote: RemoteObject | None,
    config: DeploySection,
) -> Action:
    skip = Action(
        relpath,
        "skip",
        "unchanged",
        kind,
        size=size,
        sha256=sha256,
        content_type=content_type(relpath),
        cache_control=cache_control(kind, config, relpath),
        content_disposition=content_disposition(relpath, kind),
    )
    if remote is None:
        return replace(skip, op="upload", reason="new", if_none_match=True)
    if remote.sha256 != sha256 or remote.size != size:
        return replace(skip, op="upload", reason="changed", if_match=remote.etag)
    headers = (skip.content_type, skip.cache_control, skip.content_disposition)
    if (remote.content_type, remote.cache_control, remote.content_disposition) != headers:
        return replace(skip, op="upload", reason="headers", if_match=remote.etag)
    return skip


def _protected(site: LocalSite, deployed: Deployed) -> set[str]:
    """Paths no release that stays published may lose: what this build and its log point
    at, and the artifacts of deployed versions that are not being taken down."""
    protected = site.referenced()
    if deployed.base_url is None:
        return protected
    log = site.log
    for ident, entry in deployed.published.items():
        logged = log.releases.get(ident) if log is not None else None
        if logged is not None and logged.standing.takedown is not None:
            continue  # a takedown is what may remove an artifact
        if (rel := artifact_relpath(entry.artifact.url, deployed.base_url)) is not None:
            protected.add(rel)
    return protected


def deployed_pins(site: LocalSite, state: RemoteState) -> tuple[dict[str, FileDigest], set[str]]:
    """Every file the deployed snapshot pins, directly or through the deployed bins
    (docs/spec.md 4.8), as fetched, or the site's own when the bucket holds the same
    bytes; and the folders whose pins are unknown because a bin could not be read (every
    per-app folder then: which apps a bin held is not known)."""
    envelope = state.snapshot()
    if envelope is None:
        return {}, set()

    def read(relpath: str, pin: FileDigest) -> bytes | None:
        data = state.documents.get(relpath)
        local = site.files.get(relpath)
        if data is None and local is not None and local.sha256 == pin.sha256:
            try:
                return local.path.read_bytes()
            except OSError:
                return None
        return data

    pins, failed = pins_through_bins(envelope.signed, read)
    return pins, {"apps/", "v1/apps/"} if failed else set()


def deployed_copies(site: LocalSite, state: RemoteState) -> tuple[set[str], set[str]]:
    """The content-addressed copies and partial log tiles the deployed snapshot pins (a
    reader may have just fetched it), and the app folders whose pinned manifests cannot
    be told (an app.json the bucket no longer holds as pinned): every copy under those
    stays."""
    envelope = state.snapshot()
    if envelope is None or not envelope.signed.consistent:
        return set(), set()
    meta, unknown = deployed_pins(site, state)  # a bin not read: every copy there stays
    head = envelope.signed.log
    pinned = {ref.path for ref in tiles_for(head.size)} if head is not None else set()
    pinned |= {consistent_path(path, pin.sha256) for path, pin in meta.items()}
    for relpath, pin in meta.items():
        if not relpath.endswith("/app.json"):
            continue
        data = state.documents.get(relpath)
        local = site.files.get(relpath)
        if data is None and local is not None and local.sha256 == pin.sha256:
            continue  # the site's own app.json: its manifests' copies are in the site
        try:
            if data is None or sha256_hex(data) != pin.sha256:
                raise ValueError(relpath)
            detail = AppDetail.model_validate_json(data)
        except (ValueError, pydantic.ValidationError):
            unknown.add(relpath.rpartition("/")[0] + "/")
            continue
        pinned |= {consistent_path(e.manifest_path, e.manifest.sha256) for e in detail.versions}
    return pinned, unknown


def _plan_deletes(
    site: LocalSite, state: RemoteState, deployed: Deployed, only_copies: bool = False
) -> tuple[list[Action], list[str]]:
    """`--delete`: objects the site lacks that appshelf wrote itself (its deploy record
    lists them, at the ETag it wrote) and that nothing still published refers to. Every
    deploy (`only_copies`): the content-addressed copies that neither the site nor the
    snapshot deployed before it pins."""
    protected = _protected(site, deployed)
    spared, unknown = deployed_copies(site, state)
    written = state.record.objects if state.record is not None else {}
    deletes: list[Action] = []
    referenced: list[str] = []
    foreign: list[str] = []
    for relpath, remote in sorted(state.objects.items()):
        if relpath in site.files or relpath == STATE_KEY:
            continue
        if relpath in spared or (is_copy(relpath) and relpath.startswith(tuple(unknown))):
            continue  # the deployed snapshot's: kept for one more deploy
        if only_copies and not is_copy(relpath):
            continue
        if relpath in protected:
            referenced.append(relpath)
            continue
        mine = written.get(relpath)
        if mine is None or mine.etag != remote.etag:
            foreign.append(relpath)
            continue
        deletes.append(
            Action(
                relpath,
                "delete",
                "not in the site",
                kind_of(relpath, frozenset()),
                size=remote.size,
                if_match=remote.etag,
            )
        )
    notes: list[str] = []
    if referenced:
        notes.append(
            f"kept {len(referenced)} object(s) that published versions still refer to: "
            + _listed(referenced)
        )
    if foreign:
        notes.append(
            f"kept {len(foreign)} object(s) appshelf did not write (not in its deploy record, "
            "or changed since): " + _listed(foreign)
        )
    return deletes, notes


def _listed(paths: list[str], limit: int = 20) -> str:
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def plan_deploy(
    site: LocalSite, state: RemoteState, config: DeploySection, delete: bool = False
) -> DeployPlan:
    deployed = read_deployed(site, state)
    check_log_prefix(site, state)
    check_published(site, deployed)
    check_snapshot(site, state, deployed)
    check_bucket_artifacts(site, state)

    local_artifacts = frozenset(site.artifact_paths())
    uploads: list[Action] = []
    skips: list[Action] = []
    for relpath, local in site.files.items():
        kind = kind_of(relpath, local_artifacts)
        action = _decide(
            relpath, kind, local.sha256, local.size, state.objects.get(relpath), config
        )
        if kind is Kind.MANIFEST and action.op == "upload" and action.reason != "new":
            action = replace(action, kind=Kind.MANIFEST_REPLACED)
        if kind is Kind.SNAPSHOT and action.op == "upload":
            # The commit point: it replaces exactly the snapshot read at plan time.
            action = replace(
                action,
                if_match=state.snapshot_etag,
                if_none_match=state.snapshot_etag is None,
            )
        (uploads if action.op == "upload" else skips).append(action)
    uploads.sort(key=lambda a: (a.kind.phase, a.relpath))
    deletes, notes = _plan_deletes(site, state, deployed, only_copies=not delete)
    notes = [*deployed.notes, *notes]
    if deployed.base_url is not None and deployed.base_url != site.base_url:
        notes.append(
            f"the deployed registry's base URL was {deployed.base_url}; this build uses "
            f"{site.base_url}"
        )
    return DeployPlan(uploads, skips, deletes, notes, state.snapshot_etag)
