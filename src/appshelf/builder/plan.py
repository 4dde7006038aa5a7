"""Turn a validated source tree into the registry's JSON documents (pure: no I/O).

Reads top to bottom in the order of the verification walk, backwards: artifacts,
signed manifests, per-app files, the top-level indexes, and last the snapshot that
pins them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import quote

import semver
from pydantic import BaseModel, ConfigDict

from appshelf.builder.channelplan import channel_refs, log_channels
from appshelf.builder.logplan import Release, check_release, log_release, log_standing
from appshelf.builder.outputs import OutputFile, OutputFiles, app_dir, url_for, version_dir
from appshelf.builder.previous import SNAPSHOT_FILE, PreviousOutput
from appshelf.builder.publishing import (
    Countersigned,
    check_bundle_signer,
    check_statement,
    plan_owners,
    signed_published,
)
from appshelf.builder.templates import MIRROR_PINS, TEMPLATES_FILE, templates_document
from appshelf.errors import Problem, SourceTreeError
from appshelf.filehash import FileHash
from appshelf.formats.appr import PINS as APPR_PINS
from appshelf.formats.bins import bin_prefix, bits_for, names_in, split_pins
from appshelf.formats.buildstate import STATE_FILE
from appshelf.formats.canonical import (
    canonical_array,
    canonical_json,
    canonical_object,
    format_timestamp,
    model_to_json,
    parse_timestamp,
)
from appshelf.formats.documents import (
    AppDetail,
    AppMetadata,
    ArtifactRef,
    BinDocument,
    BinsRef,
    FileDigest,
    IndexEntry,
    KeysDocument,
    LogHead,
    Manifest,
    PublicKey,
    RegistryIndex,
    Signature,
    Signed,
    Snapshot,
    VersionEntry,
)
from appshelf.formats.flows import (
    BlockStyle,
    FlowsApp,
    FlowsVersion,
    FlowsVersions,
)
from appshelf.formats.frozen import FrozenModel
from appshelf.formats.log import CHECKPOINT, LoggedArtifact
from appshelf.formats.publishers import PUBLISHERS_FILE
from appshelf.formats.statement import STATEMENT_FILE
from appshelf.mirrors.calimero import is_pinned as mirror_pinned
from appshelf.signing.envelope import sign_body, signed_envelope_json
from appshelf.signing.keys import RegistryKey, key_id
from appshelf.signing.releaselog import LoggedRelease, LogState
from appshelf.source.fingerprint import AppEntries
from appshelf.source.lifecycle import LifecycleFile, WantedStanding, wanted_standing
from appshelf.source.templates import TemplateSummary
from appshelf.source.tree import SourceApp, SourceTree, SourceVersion

_PALETTE = ("#2563EB", "#7C3AED", "#DB2777", "#DC2626", "#EA580C", "#16A34A", "#0891B2", "#4F46E5")


@dataclass(frozen=True)
class PlannedVersion:
    source: SourceVersion
    manifest: Manifest
    envelope: Signed[Manifest]
    entry: VersionEntry


@dataclass(frozen=True)
class PlannedApp:
    source: SourceApp
    detail: AppDetail
    versions: list[PlannedVersion]  # newest first
    icon_path: str | None  # relative output path


class ReleaseSummary(FrozenModel):
    """One version as the cross-app pages (listing, feed, sitemap) need it."""

    version: str
    published: str
    yanked: str | None
    notes: str | None
    sha256: str
    size: int
    template: TemplateSummary | None = None  # a template's bundle, as checked

    @property
    def folder(self) -> str:
        """The version's folder as one URL path segment (`+` in build metadata)."""
        return quote(self.version, safe="")


class AppSummary(BaseModel):
    """What the files shared by every app (registry.json, index.json, the site's listing,
    feed and sitemap) take from one app: all an unchanged app contributes to a build."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str
    flows: FlowsApp
    index: IndexEntry
    releases: list[ReleaseSummary]  # newest first


@dataclass(frozen=True)
class AppFragments:
    """The exact bytes one app contributes to the shared indexes, as the canonical encoder
    writes them: its member value in registry.json (None for a template: Flows lists no
    templates) and its entry in index.json. Kept with an app's record, so a rebuild
    splices them instead of encoding and validating every app again."""

    flows: bytes | None
    index: bytes


def app_fragments(summary: AppSummary) -> AppFragments:
    """Each fragment is the app's part of the full document, encoded on its own: JCS
    writes a value the same wherever it stands (formats/canonical.py)."""
    flows = model_to_json(summary.flows) if summary.index.kind is None else None
    return AppFragments(flows, model_to_json(summary.index))


@dataclass(frozen=True)
class ReusedApp:
    """An unchanged app (builder/memo.py): its summary and index fragments, the files the
    snapshot pins (app.json and versions.json, digest and size only), and the paths of
    all its output files, which the caller checked are still on disk as the last build
    wrote them."""

    summary: AppSummary
    pinned: OutputFiles
    paths: list[str]
    fragments: AppFragments


@dataclass(frozen=True)
class FinishedApp:
    """What a build keeps of an app it planned in full once the app's files are handed
    on: all that the cache record and the nothing-dropped check still read. Not the
    source app: its models, paths and stat keys (about 6 KB a version) would stay to the
    end of the build."""

    key: str
    versions: tuple[str, ...]  # the versions planned, newest first
    dependencies: tuple[tuple[str, str], ...]  # each dependency, and the first version naming it
    entries: AppEntries | None  # source/fingerprint.py; None: stat cannot vouch for the folder


def finished_app(planned: PlannedApp) -> FinishedApp:
    seen: dict[str, str] = {}
    for version in planned.versions:
        for dependency in version.source.release.dependencies:
            seen.setdefault(dependency, version.source.version)
    return FinishedApp(
        planned.source.key,
        tuple(v.source.version for v in planned.versions),
        tuple(sorted(seen.items())),
        planned.source.entries,
    )


@dataclass(frozen=True)
class PlanStart:
    """What is planned before any app, because no app changes it: keys.json and the
    publishers file. What a generator that takes one app at a time starts from."""

    tree: SourceTree
    log: LogState | None
    keys: KeysDocument
    files: OutputFiles


def plan_start(tree: SourceTree, key: RegistryKey, log: LogState) -> PlanStart:
    """keys.json (the log's keys were all logged before any app is planned) and, when the
    registry has publishers, their file."""
    keys = _keys_document(tree, key, log)
    files = {"keys.json": OutputFile.from_bytes(model_to_json(keys))}
    if tree.identities is not None:  # only registries with publishers have it
        files[PUBLISHERS_FILE] = OutputFile.from_bytes(model_to_json(tree.identities))
    return PlanStart(tree, log, keys, files)


AppFinisher = Callable[[PlannedApp, OutputFiles, list[str]], None]
"""Takes an app as soon as it is planned: the app, every file planned so far (to which it
may add, e.g. the app's pages) and the paths of the app's own files. It hands them on:
the build keeps only their digests afterwards."""


@dataclass
class RegistryPlan:
    """Everything the build will write, plus the typed documents the site renders from."""

    tree: SourceTree
    files: OutputFiles
    apps: list[PlannedApp]  # the apps planned in full, unless handed on one at a time
    index: RegistryIndex
    keys: KeysDocument
    summaries: list[AppSummary] = field(default_factory=list)  # every app, by key
    reused: set[str] = field(default_factory=set)  # every output path of unchanged apps
    warnings: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None
    log: LogState | None = None  # the release log with this build's entries (the site's history)
    # Every pinned file, directly by the snapshot or through a bin (docs/spec.md 4.8).
    pinned: dict[str, FileDigest] = field(default_factory=dict)
    fragments: dict[str, AppFragments] = field(default_factory=dict)  # every app, by key
    finished: list[FinishedApp] = field(default_factory=list)  # every app planned in full


@dataclass
class _Planning:
    """What every planning step reads (inputs) or adds to (files, problems)."""

    tree: SourceTree
    hashes: dict[tuple[str, str], FileHash]
    log: LogState  # appended to as new releases and standings are planned
    lifecycles: Mapping[str, LifecycleFile]
    key: RegistryKey
    now: datetime
    channels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # channels.toml
    files: OutputFiles = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)  # every source version

    @property
    def logged(self) -> str:
        return format_timestamp(self.now)

    @property
    def base(self) -> str:
        return self.tree.config.registry.base_url


def default_color(key: str) -> str:
    """A stable colour per app when app.toml gives none (Flows requires one)."""
    return _PALETTE[hashlib.sha256(key.encode()).digest()[0] % len(_PALETTE)]


def plan_registry(
    tree: SourceTree,
    hashes: dict[tuple[str, str], FileHash],
    log: LogState,
    key: RegistryKey,
    now: datetime,
    reused: Sequence[ReusedApp] = (),
    lifecycles: Mapping[str, LifecycleFile] | None = None,
    channels: Mapping[str, Mapping[str, str]] | None = None,
    start: PlanStart | None = None,
    finish: AppFinisher | None = None,
) -> RegistryPlan:
    """Plan every JSON document and append what is new to `log`.

    `reused` apps are not planned again: their files are taken as they are, and their
    summaries and fragments go into the shared files, which are always rebuilt from
    every app (registry.json and index.json spliced from the fragments).

    Args:
        start: what `plan_start` gives (made here when not given).
        finish: when given, each app is handed to it as soon as it is planned, and only
            its summary and digests are kept (`plan.apps` stays empty); as long as no
            problem was found (the build fails then: the rest is only checked).

    Raises:
        SourceTreeError: every problem, among them each logged release that the source
            no longer builds exactly as logged (builder/logplan.py).
    """
    ctx = _Planning(tree, hashes, log, lifecycles or {}, key, now, channels or {})
    start = start or plan_start(tree, key, log)
    base, files = ctx.base, ctx.files
    warnings: list[str] = []
    planned_apps, planned_summaries, done = _plan_apps(ctx, finish)
    _check_nothing_dropped(ctx, done, {app.summary.key for app in reused})
    if ctx.problems:
        raise SourceTreeError(ctx.problems)
    summaries = sorted(
        planned_summaries + [app.summary for app in reused], key=lambda summary: summary.key
    )
    fragments = {s.key: app_fragments(s) for s in planned_summaries}
    reused_paths: set[str] = set()
    for app in reused:
        files.update(app.pinned)
        reused_paths.update(app.paths)
        fragments[app.summary.key] = app.fragments
    fragments = {s.key: fragments[s.key] for s in summaries}  # by key, as index.json lists

    files["registry.json"] = OutputFile.from_bytes(registry_json(fragments))
    index = RegistryIndex(
        registry=base,
        name=tree.config.registry.name,
        description=tree.config.registry.description,
        apps=[summary.index for summary in summaries],
    )
    files["index.json"] = OutputFile.from_bytes(index_json(index, fragments))
    files.update(start.files)
    listing = templates_document(base, summaries, log)
    if listing is not None:
        files[TEMPLATES_FILE] = OutputFile.from_bytes(model_to_json(listing))
    return RegistryPlan(
        tree,
        files,
        planned_apps,
        index,
        start.keys,
        summaries,
        reused_paths,
        warnings,
        log=log,
        fragments=fragments,
        finished=done,
    )


def _plan_apps(
    ctx: _Planning, finish: AppFinisher | None
) -> tuple[list[PlannedApp], list[AppSummary], list[FinishedApp]]:
    """Every app of the source in turn, its files into `ctx.files`: the apps kept in
    full (none when `finish` takes them), every app's summary, and what is kept of
    each."""
    files = ctx.files
    planned_apps: list[PlannedApp] = []
    summaries: list[AppSummary] = []
    done: list[FinishedApp] = []
    try:
        for app in ctx.tree.take_apps() if finish is not None else ctx.tree.apps:
            ctx.files = {}  # this app's files
            planned = _plan_app(ctx, app)
            summaries.append(app_summary(ctx.base, planned))
            done.append(finished_app(planned))
            files.update(ctx.files)
            if finish is not None and not ctx.problems:
                finish(planned, files, list(ctx.files))
            else:
                planned_apps.append(planned)
            del app, planned  # not held while the next app is planned
    finally:
        ctx.files = files
    return planned_apps, summaries, done


def registry_json(fragments: Mapping[str, AppFragments]) -> bytes:
    """registry.json (`FlowsRegistry`), spliced: `{"apps":{...}}` with each app's member
    in RFC 8785 order, templates left out.

    Args:
        fragments: every app's fragments, by key.
    """
    apps = {key: part.flows for key, part in fragments.items() if part.flows is not None}
    return canonical_object({"apps": canonical_object(apps)})


def index_json(index: RegistryIndex, fragments: Mapping[str, AppFragments]) -> bytes:
    """index.json, spliced: `index` without its apps encoded as usual, and `apps` the
    entries' fragments in the order of `fragments` (by key).

    Args:
        index: the document; its `apps` are not read (the fragments are those bytes).
        fragments: every app's fragments, in index.json's order.
    """
    head = index.model_dump(mode="json", exclude_none=True, by_alias=True, exclude={"apps"})
    members = {name: canonical_json(value) for name, value in head.items()}
    members["apps"] = canonical_array(part.index for part in fragments.values())
    return canonical_object(members)


def _check_nothing_dropped(ctx: _Planning, done: list[FinishedApp], reused: set[str]) -> None:
    """Every logged release that is not taken down must still be in the source."""
    present = {(a.key, version) for a in done for version in a.versions}
    for (app_key, version), logged in sorted(ctx.log.releases.items()):
        if logged.standing.takedown is not None or (app_key, version) in present:
            continue
        if app_key in reused:
            continue  # its folder is exactly as when it was last checked
        if (app_key, version) in ctx.seen:
            continue  # in the source, but refused above (the problem says why)
        ctx.problems.append(
            Problem(
                f"apps/{app_key}/{version}",
                "",
                f"{app_key} {version} is published (release log entry {logged.index}) and is "
                "missing from the source. Published versions stay: restore the folder as it "
                "was; to stop recommending it, `appshelf yank` it (existing pins keep "
                "working); to remove its artifact, `appshelf takedown` it",
            )
        )


def app_summary(base: str, planned: PlannedApp) -> AppSummary:
    metadata = planned.detail.metadata
    return AppSummary(
        key=planned.source.key,
        flows=FlowsApp(
            name=metadata.name,
            description=metadata.description,
            blockStyle=BlockStyle(iconUrl=metadata.icon_url, color=metadata.color),
            appMetadataUrl=url_for(base, f"{app_dir(planned.source.key)}/versions.json"),
        ),
        index=_index_entry(planned),
        releases=[
            ReleaseSummary(
                version=v.source.version,
                published=v.manifest.published,
                yanked=v.manifest.yanked,
                notes=v.manifest.notes,
                sha256=v.manifest.artifact.sha256,
                size=v.manifest.artifact.size,
                template=v.source.template,
            )
            for v in planned.versions
        ],
    )


def _plan_app(ctx: _Planning, app: SourceApp) -> PlannedApp:
    files = ctx.files
    icon_path = _plan_icon(ctx, app)
    metadata = _app_metadata(ctx, app, icon_path)
    versions: list[PlannedVersion] = []
    ctx.problems.extend(plan_owners(ctx.log, ctx.tree, app, ctx.logged))
    lifecycle = ctx.lifecycles.get(app.key, LifecycleFile())
    _check_replacements(ctx, app, lifecycle)
    for source in app.versions:
        planned = _plan_version(ctx, source, metadata, lifecycle)
        if planned is not None:
            versions.append(planned)
    where = f"{app_dir(app.key)}/channels.toml"
    ctx.problems += log_channels(ctx.log, app.key, ctx.channels.get(app.key, {}), ctx.logged, where)
    detail = AppDetail(
        key=app.key,
        metadata=metadata,
        versions=[v.entry for v in versions],
        channels=channel_refs(ctx.log, app.key),
    )
    files[f"{app_dir(app.key)}/app.json"] = OutputFile.from_bytes(model_to_json(detail))
    files[f"{app_dir(app.key)}/versions.json"] = _flows_versions_file(versions)
    return PlannedApp(app, detail, versions, icon_path)


def _plan_icon(ctx: _Planning, app: SourceApp) -> str | None:
    """Publish the app's icon, if it has one, and return its output path."""
    if app.icon is None or app.icon_data is None:
        return None
    # Published under its source name (icon.svg, or what app.toml's `icon` names), so
    # an imported Flows icon such as logo.svg keeps its name (spec 13).
    icon_path = f"{app_dir(app.key)}/{app.icon.name}"
    ctx.files[icon_path] = OutputFile.from_bytes(app.icon_data)  # the bytes that were checked
    return icon_path


def _app_metadata(ctx: _Planning, app: SourceApp, icon_path: str | None) -> AppMetadata:
    config = app.config
    return AppMetadata(
        name=config.name,
        description=config.description,
        color=config.color or default_color(app.key),
        icon_url=url_for(ctx.base, icon_path) if icon_path else None,
        homepage=config.homepage,
        repository=config.repository,
        license=config.license,
        tags=list(config.tags),
        category=config.category,
        kind="template" if config.kind == "template" else None,
    )


def _check_replacements(ctx: _Planning, app: SourceApp, lifecycle: LifecycleFile) -> None:
    """A lifecycle.toml `replacement` must name another version of the same app (in the
    source or in the log). The log's releases are looked through only when a replacement
    is named: scanning them for every app made a cold build quadratic (4.6 s of 60 at
    20,000 versions)."""
    if all(wanted.replacement is None for wanted in lifecycle.versions.values()):
        return
    known = {v.version for v in app.versions} | {v for (a, v) in ctx.log.releases if a == app.key}
    for version, wanted in lifecycle.versions.items():
        if wanted.replacement is not None and wanted.replacement not in known - {version}:
            ctx.problems.append(
                Problem(
                    f"{app_dir(app.key)}/lifecycle.toml",
                    f"versions.{version}.replacement",
                    f"{wanted.replacement!r} is not another version of {app.key}",
                )
            )


def _flows_versions_file(versions: list[PlannedVersion]) -> OutputFile:
    """The app's versions.json in the Flows format."""
    flows_versions = FlowsVersions(
        versions=[
            FlowsVersion(
                version=v.source.version,
                artifactUrl=v.manifest.artifact.url,
                artifactChecksum=f"sha256:{v.manifest.artifact.sha256}",
            )
            for v in versions
        ]
    )
    return OutputFile.from_bytes(model_to_json(flows_versions))


def _plan_version(
    ctx: _Planning, source: SourceVersion, metadata: AppMetadata, lifecycle: LifecycleFile
) -> PlannedVersion | None:
    tree, key, now = ctx.tree, ctx.key, ctx.now
    base, files, problems = ctx.base, ctx.files, ctx.problems
    ident = (source.app_key, source.version)
    ctx.seen.add(ident)
    folder = version_dir(source.app_key, source.version)
    where = source.folder.relative_to(tree.root).as_posix()
    earlier = ctx.log.releases.get(ident)
    wanted = wanted_standing(lifecycle, source.version, source.release.yanked_reason)
    if _taken_down(ctx, source, earlier, wanted):
        return None
    ref = _artifact_ref(ctx, source, folder, where)
    if ref is None:
        return None
    published = _published(
        source,
        earlier.entry.published if earlier else None,
        now,
        signed_published(source.statement),
    )
    release = Release(
        app=source.app_key,
        version=source.version,
        artifact=LoggedArtifact(
            filename=ref.filename, url=ref.url, sha256=ref.sha256, size=ref.size
        ),
        dependencies=dict(sorted(source.release.dependencies.items())),
        provides=list(source.release.provides),
        requires=list(source.release.requires),
        published=published,
        kind=metadata.kind,
    )
    refused, signed = _vet_release(ctx, source, release, earlier, where)
    if refused:
        problems.extend(refused)
        return None
    if signed is not None:
        files[f"{folder}/{STATEMENT_FILE}"] = OutputFile.from_bytes(signed.data)
        release = replace(
            release, publisher=signed.publisher.id, statement=signed.publisher.statement
        )
    manifest = Manifest(
        registry=base,
        app=source.app_key,
        version=source.version,
        artifact=ref,
        metadata=metadata,
        provides=release.provides,
        requires=release.requires,
        dependencies=release.dependencies,
        published=published,
        yanked=wanted.yanked,
        deprecated=wanted.deprecated,
        replacement=wanted.replacement,
        notes=source.release.notes,
        publisher=signed.publisher if signed is not None else None,
    )
    envelope_json, envelope = _signed_manifest(manifest, key)
    manifest_path = f"{folder}/manifest.json"
    manifest_file = OutputFile.from_bytes(envelope_json)
    files[manifest_path] = manifest_file
    pin = FileDigest(sha256=manifest_file.sha256, length=manifest_file.size)
    index = earlier.index if earlier else log_release(ctx.log, release, pin, ctx.logged)
    log_standing(ctx.log, *ident, wanted, ctx.logged)
    entry = VersionEntry(
        version=source.version,
        published=published,
        yanked=manifest.yanked,
        deprecated=manifest.deprecated,
        replacement=manifest.replacement,
        log_index=index,
        manifest_path=manifest_path,
        manifest=pin,
        artifact=ref,
        provides=manifest.provides,
        requires=manifest.requires,
        dependencies=manifest.dependencies,
    )
    return PlannedVersion(source, manifest, envelope, entry)


def _taken_down(
    ctx: _Planning,
    source: SourceVersion,
    earlier: LoggedRelease | None,
    wanted: WantedStanding,
) -> bool:
    """Is the version taken down (nothing to publish)? A takedown asked for a version
    never published is a problem; one asked for a published version is logged."""
    if earlier is not None and earlier.standing.takedown is not None:
        return True  # taken down: the record stays in the log, nothing is published
    if wanted.takedown is None:
        return False
    if earlier is None:
        ctx.problems.append(
            Problem(
                f"{app_dir(source.app_key)}/lifecycle.toml",
                f"versions.{source.version}.takedown",
                "only a published version can be taken down; delete the folder instead",
            )
        )
    else:
        log_standing(ctx.log, source.app_key, source.version, wanted, ctx.logged)
    return True


def _artifact_ref(
    ctx: _Planning, source: SourceVersion, folder: str, where: str
) -> ArtifactRef | None:
    """Where the version's artifact is published (an artifact in the source is copied
    into the output); None, with a problem, if a template bundle changed meanwhile."""
    artifact = source.artifact
    if artifact.external:
        assert artifact.url and artifact.sha256 and artifact.size is not None
        return ArtifactRef(
            url=artifact.url, sha256=artifact.sha256, size=artifact.size, filename=artifact.filename
        )
    assert artifact.path is not None
    digest = ctx.hashes[(source.app_key, source.version)]
    relpath = f"{folder}/{artifact.filename}"
    if source.template is not None and source.template.sha256 != digest.sha256:
        ctx.problems.append(Problem(where, "", "the template bundle changed during the build"))
        return None
    ctx.files[relpath] = OutputFile.copy_of(artifact.path, digest.sha256, digest.size)
    return ArtifactRef(
        url=url_for(ctx.base, relpath),
        sha256=digest.sha256,
        size=digest.size,
        filename=artifact.filename,
    )


def _vet_release(
    ctx: _Planning,
    source: SourceVersion,
    release: Release,
    earlier: LoggedRelease | None,
    where: str,
) -> tuple[list[Problem], Countersigned | None]:
    """Check a release against its log record, its publisher's statement and its bundle
    signer, in that order; return the first check's problems (empty if none) and the
    countersigned statement, if any."""
    if earlier is not None:
        changed = check_release(earlier, release, where)
        if changed:
            return changed, None
    signed = check_statement(ctx.tree, ctx.log, source, release, earlier)
    if signed is not None and not isinstance(signed, Countersigned):
        return [signed], None
    foreign = check_bundle_signer(ctx.tree, ctx.log, source) if earlier is None else None
    if foreign is not None:
        return [foreign], None
    return [], signed


def _signed_manifest(manifest: Manifest, key: RegistryKey) -> tuple[bytes, Signed[Manifest]]:
    """Encode and sign the body once; the envelope is built around its bytes, and its
    model is assembled from parts that are already valid (no second validation)."""
    envelope_json, signature = signed_envelope_json(model_to_json(manifest), key)
    envelope = Signed[Manifest].model_construct(
        signed=manifest, signatures=[Signature.model_construct(keyid=key.keyid, sig=signature)]
    )
    return envelope_json, envelope


def _published(source: SourceVersion, logged: str | None, now: datetime, signed: str | None) -> str:
    """The author's date, else the publisher's statement's, else the first build's: once
    logged it never changes (a different date in release.toml is refused by
    logplan.check_release)."""
    stated = source.release.published
    if stated is not None:
        assert isinstance(stated, datetime)
        text = format_timestamp(stated)
        if logged is not None and parse_timestamp(logged) == stated:
            return logged  # the same instant, written another way: keep the logged text
        return text
    if logged is not None:
        return logged
    return signed if signed is not None else format_timestamp(now)


def _latest(app: PlannedApp) -> PlannedVersion | None:
    live = [v for v in app.versions if v.manifest.yanked is None]
    stable = [v for v in live if not semver.Version.parse(v.source.version).prerelease]
    for group in (stable, live, app.versions):
        if group:
            return group[0]
    return None


def _index_entry(planned: PlannedApp) -> IndexEntry:
    metadata = planned.detail.metadata
    latest = _latest(planned)
    return IndexEntry(
        key=planned.source.key,
        name=metadata.name,
        description=metadata.description,
        tags=metadata.tags,
        category=metadata.category,
        latest=latest.source.version if latest else None,
        versions=len(planned.versions),
        provides=latest.manifest.provides if latest else [],
        requires=latest.manifest.requires if latest else [],
        icon=planned.icon_path,
        color=metadata.color,
        kind=metadata.kind,
    )


def _keys_document(tree: SourceTree, key: RegistryKey, log: LogState) -> KeysDocument:
    """The active key, then every other key: those the release log knows (retired or
    revoked, as it says) and those listed in `[signing] retired_keys`."""
    entries = {
        key.keyid: PublicKey(
            keyid=key.keyid, public=key.public_hex, status="active", development=key.development
        )
    }
    for keyid, (logged, status) in sorted(log.keys.items()):
        if keyid not in entries:
            entries[keyid] = PublicKey(
                keyid=keyid,
                public=logged.public,
                status="revoked" if status == "revoked" else "retired",
                development=logged.development,
            )
    for public in tree.config.signing.retired_keys:
        keyid = key_id(bytes.fromhex(public))
        if keyid not in entries:
            entries[keyid] = PublicKey(keyid=keyid, public=public, status="retired")
    ordered = [
        entries[key.keyid],
        *sorted((v for k, v in entries.items() if k != key.keyid), key=lambda k: k.keyid),
    ]
    return KeysDocument(registry=tree.config.registry.base_url, keys=ordered)


def index_files(files: OutputFiles) -> list[str]:
    """The files the snapshot pins: every JSON index a client reads before a manifest."""
    top = {"registry.json", "index.json", "keys.json", CHECKPOINT, STATE_FILE, TEMPLATES_FILE}
    top |= {APPR_PINS, PUBLISHERS_FILE, *MIRROR_PINS}
    return sorted(
        path
        for path in files
        if path in top
        or mirror_pinned(path)
        or (
            path.startswith("apps/")
            and path.count("/") == 2
            and path.endswith(("/versions.json", "/app.json"))
        )
    )


def plan_bins(plan: RegistryPlan) -> tuple[dict[str, FileDigest], BinsRef]:
    """Add the bin files (docs/spec.md 4.8) and return what the snapshot pins itself:
    the registry-wide files and every bin. Records every pin in `plan.pinned`."""
    # Built from digests this build computed itself: no need to validate 20,000 of them.
    pins = {
        path: FileDigest.model_construct(
            sha256=plan.files[path].sha256, length=plan.files[path].size
        )
        for path in index_files(plan.files)
    }
    bits = bits_for(len(names_in(pins)))
    top, bins = split_pins(pins, bits)
    base = plan.tree.config.registry.base_url
    for index, (path, binned) in enumerate(sorted(bins.items())):
        document = BinDocument.model_construct(
            registry=base, bits=bits, prefix=bin_prefix(index, bits), meta=binned
        )
        plan.files[path] = OutputFile.from_bytes(model_to_json(document))
        top[path] = FileDigest.model_construct(
            sha256=plan.files[path].sha256, length=plan.files[path].size
        )
    plan.pinned = {**pins, **top}
    return top, BinsRef(bits=bits)


def plan_snapshot(
    plan: RegistryPlan,
    previous: PreviousOutput,
    key: RegistryKey,
    now: datetime,
    force_new: bool = False,
    log: LogHead | None = None,
) -> None:
    """Add snapshot.json: reuse the previous one when nothing it pins changed and it is
    fresh (so a no-op rebuild rewrites nothing); otherwise sign version + 1."""
    base = plan.tree.config.registry.base_url
    lifetime = timedelta(days=plan.tree.config.signing.snapshot_lifetime_days)
    meta, bins = plan_bins(plan)
    old = previous.snapshot
    if (
        old is not None
        and previous.snapshot_bytes is not None
        and not force_new
        and old.meta == meta
        and old.bins == bins
        and old.log == log
        and old.consistent  # a snapshot from before consistent snapshots is replaced once
        and old.registry == base
        and parse_timestamp(old.expires) - now > lifetime / 2
        and previous.snapshot_keyids[:1] == (key.keyid,)
    ):
        plan.snapshot = old
        plan.files[SNAPSHOT_FILE] = OutputFile.from_bytes(previous.snapshot_bytes)
        return
    snapshot = Snapshot(
        registry=base,
        version=(old.version + 1) if old is not None else 1,
        issued=format_timestamp(now),
        expires=format_timestamp(now + lifetime),
        meta=meta,
        log=log,
        consistent=True,
        bins=bins,
    )
    envelope = sign_body(snapshot.model_dump(mode="json", exclude_none=True), key)
    signed = Signed[Snapshot](
        signed=snapshot, signatures=[Signature(**s) for s in envelope["signatures"]]
    )
    plan.snapshot = snapshot
    plan.files[SNAPSHOT_FILE] = OutputFile.from_bytes(model_to_json(signed))
