"""Turn a validated source tree into the registry's JSON documents (pure: no I/O).

Reads top to bottom in the order of the verification walk, backwards: artifacts,
signed manifests, per-app files, the top-level indexes, and last the snapshot that
pins them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

import semver
from pydantic import BaseModel, ConfigDict

from appshelf.build.hashing import FileHash
from appshelf.build.outputs import OutputFile, OutputFiles, app_dir, url_for, version_dir
from appshelf.build.previous import SNAPSHOT_FILE, PreviousOutput
from appshelf.errors import Problem, SourceTreeError
from appshelf.formats.canonical import format_timestamp, model_to_json, parse_timestamp
from appshelf.formats.documents import (
    AppDetail,
    AppMetadata,
    ArtifactRef,
    FileDigest,
    IndexEntry,
    KeysDocument,
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
    FlowsRegistry,
    FlowsVersion,
    FlowsVersions,
)
from appshelf.signing.envelope import sign_body, signed_envelope_json
from appshelf.signing.keys import RegistryKey, key_id
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


class ReleaseSummary(BaseModel):
    """One version as the cross-app pages (listing, feed, sitemap) need it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    published: str
    yanked: str | None
    notes: str | None
    sha256: str
    size: int

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
class ReusedApp:
    """An unchanged app (build/memo.py): its summary, the files the snapshot pins
    (app.json and versions.json, digest and size only), and the paths of all its output
    files, which the caller checked are still on disk as the last build wrote them."""

    summary: AppSummary
    pinned: OutputFiles
    paths: list[str]


@dataclass
class RegistryPlan:
    """Everything the build will write, plus the typed documents the site renders from."""

    tree: SourceTree
    files: OutputFiles
    apps: list[PlannedApp]  # the apps planned in full by this build
    index: RegistryIndex
    keys: KeysDocument
    summaries: list[AppSummary] = field(default_factory=list)  # every app, by key
    reused: set[str] = field(default_factory=set)  # every output path of unchanged apps
    warnings: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None


@dataclass
class _Planning:
    """What every planning step reads (inputs) or adds to (files, problems)."""

    tree: SourceTree
    hashes: dict[tuple[str, str], FileHash]
    previous: PreviousOutput
    key: RegistryKey
    now: datetime
    files: OutputFiles = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.tree.config.registry.base_url


def default_color(key: str) -> str:
    """A stable colour per app when app.toml gives none (Flows requires one)."""
    return _PALETTE[hashlib.sha256(key.encode()).digest()[0] % len(_PALETTE)]


def plan_registry(
    tree: SourceTree,
    hashes: dict[tuple[str, str], FileHash],
    previous: PreviousOutput,
    key: RegistryKey,
    now: datetime,
    reused: Sequence[ReusedApp] = (),
) -> RegistryPlan:
    """Plan every JSON document; raise `SourceTreeError` on immutability violations.

    `reused` apps are not planned again: their files are taken as they are, and their
    summaries go into the shared files, which are always rebuilt from every app."""
    ctx = _Planning(tree, hashes, previous, key, now)
    base, files = ctx.base, ctx.files
    warnings: list[str] = []
    planned_apps = [_plan_app(ctx, app) for app in tree.apps]
    if ctx.problems:
        raise SourceTreeError(ctx.problems)
    current = {(a.source.key, v.source.version) for a in planned_apps for v in a.versions}
    same = {app.summary.key for app in reused}
    for app_key, version in sorted(set(previous.versions) - current):
        if app_key not in same:
            warnings.append(
                f"{app_key} {version} was published before and is no longer in the source; "
                "it is dropped from the indexes (yank it instead to keep existing pins working)"
            )
    summaries = sorted(
        [app_summary(base, planned) for planned in planned_apps] + [app.summary for app in reused],
        key=lambda summary: summary.key,
    )
    reused_paths: set[str] = set()
    for app in reused:
        files.update(app.pinned)
        reused_paths.update(app.paths)

    flows_registry = FlowsRegistry(apps={summary.key: summary.flows for summary in summaries})
    files["registry.json"] = OutputFile.from_bytes(model_to_json(flows_registry))
    index = RegistryIndex(
        registry=base,
        name=tree.config.registry.name,
        description=tree.config.registry.description,
        apps=[summary.index for summary in summaries],
    )
    files["index.json"] = OutputFile.from_bytes(model_to_json(index))
    keys = _keys_document(tree, key, previous)
    files["keys.json"] = OutputFile.from_bytes(model_to_json(keys))
    return RegistryPlan(tree, files, planned_apps, index, keys, summaries, reused_paths, warnings)


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
            )
            for v in planned.versions
        ],
    )


def _plan_app(ctx: _Planning, app: SourceApp) -> PlannedApp:
    base, files = ctx.base, ctx.files
    config = app.config
    icon_path: str | None = None
    if app.icon is not None and app.icon_data is not None:
        icon_path = f"{app_dir(app.key)}/icon{app.icon.suffix}"
        files[icon_path] = OutputFile.from_bytes(app.icon_data)  # the bytes that were checked
    metadata = AppMetadata(
        name=config.name,
        description=config.description,
        color=config.color or default_color(app.key),
        icon_url=url_for(base, icon_path) if icon_path else None,
        homepage=config.homepage,
        repository=config.repository,
        license=config.license,
        tags=list(config.tags),
        category=config.category,
    )
    versions: list[PlannedVersion] = []
    for source in app.versions:
        planned = _plan_version(ctx, source, metadata)
        if planned is not None:
            versions.append(planned)
    detail = AppDetail(key=app.key, metadata=metadata, versions=[v.entry for v in versions])
    files[f"{app_dir(app.key)}/app.json"] = OutputFile.from_bytes(model_to_json(detail))
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
    files[f"{app_dir(app.key)}/versions.json"] = OutputFile.from_bytes(
        model_to_json(flows_versions)
    )
    return PlannedApp(app, detail, versions, icon_path)


def _plan_version(
    ctx: _Planning, source: SourceVersion, metadata: AppMetadata
) -> PlannedVersion | None:
    tree, hashes, previous, key, now = ctx.tree, ctx.hashes, ctx.previous, ctx.key, ctx.now
    base, files, problems = ctx.base, ctx.files, ctx.problems
    folder = version_dir(source.app_key, source.version)
    where = source.folder.relative_to(tree.root).as_posix()
    artifact = source.artifact
    if artifact.external:
        assert artifact.url and artifact.sha256 and artifact.size is not None
        ref = ArtifactRef(
            url=artifact.url, sha256=artifact.sha256, size=artifact.size, filename=artifact.filename
        )
    else:
        assert artifact.path is not None
        digest = hashes[(source.app_key, source.version)]
        relpath = f"{folder}/{artifact.filename}"
        files[relpath] = OutputFile.copy_of(artifact.path, digest.sha256, digest.size)
        ref = ArtifactRef(
            url=url_for(base, relpath),
            sha256=digest.sha256,
            size=digest.size,
            filename=artifact.filename,
        )
    earlier = previous.versions.get((source.app_key, source.version))
    published = _published(source, earlier, now, where, problems)
    if earlier is not None and earlier.artifact.sha256 != ref.sha256:
        problems.append(
            Problem(
                f"{where}/{artifact.filename}",
                "",
                f"{source.app_key} {source.version} is already published with artifact "
                f"sha256:{earlier.artifact.sha256}, but the source now has "
                f"sha256:{ref.sha256}; published versions are immutable, release a new version",
            )
        )
        return None
    manifest = Manifest(
        registry=base,
        app=source.app_key,
        version=source.version,
        artifact=ref,
        metadata=metadata,
        provides=source.release.provides,
        requires=source.release.requires,
        dependencies=dict(sorted(source.release.dependencies.items())),
        published=published,
        yanked=source.release.yanked_reason,
        notes=source.release.notes,
    )
    # Encode and sign the body once; the envelope is built around its bytes, and its
    # model is assembled from parts that are already valid (no second validation).
    envelope_json, signature = signed_envelope_json(model_to_json(manifest), key)
    envelope = Signed[Manifest].model_construct(
        signed=manifest, signatures=[Signature.model_construct(keyid=key.keyid, sig=signature)]
    )
    manifest_path = f"{folder}/manifest.json"
    manifest_file = OutputFile.from_bytes(envelope_json)
    files[manifest_path] = manifest_file
    entry = VersionEntry(
        version=source.version,
        published=published,
        yanked=manifest.yanked,
        manifest_path=manifest_path,
        manifest=FileDigest(sha256=manifest_file.sha256, length=manifest_file.size),
        artifact=ref,
        provides=manifest.provides,
        requires=manifest.requires,
        dependencies=manifest.dependencies,
    )
    return PlannedVersion(source, manifest, envelope, entry)


def _published(
    source: SourceVersion,
    earlier: VersionEntry | None,
    now: datetime,
    where: str,
    problems: list[Problem],
) -> str:
    """The author's date, else the first build's: once emitted it never changes."""
    stated = source.release.published
    if stated is not None:
        assert isinstance(stated, datetime)
        text = format_timestamp(stated)
        if earlier is not None and parse_timestamp(earlier.published) != stated:
            problems.append(
                Problem(
                    f"{where}/release.toml",
                    "published",
                    f"was {earlier.published} when first published; it cannot change",
                )
            )
        return text
    return earlier.published if earlier is not None else format_timestamp(now)


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
    )


def _keys_document(tree: SourceTree, key: RegistryKey, previous: PreviousOutput) -> KeysDocument:
    """The active key, then every retired key: configured ones and earlier active ones."""
    entries = {
        key.keyid: PublicKey(
            keyid=key.keyid, public=key.public_hex, status="active", development=key.development
        )
    }
    retired = list(tree.config.signing.retired_keys)
    if previous.keys is not None:
        retired += [k.public for k in previous.keys.keys if not k.development]
    for public in retired:
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
    top = {"registry.json", "index.json", "keys.json"}
    return sorted(
        path
        for path in files
        if path in top
        or (
            path.startswith("apps/")
            and path.count("/") == 2
            and path.endswith(("/versions.json", "/app.json"))
        )
    )


def plan_snapshot(
    plan: RegistryPlan,
    previous: PreviousOutput,
    key: RegistryKey,
    now: datetime,
    force_new: bool = False,
) -> None:
    """Add snapshot.json: reuse the previous one when nothing it pins changed and it is
    fresh (so a no-op rebuild rewrites nothing); otherwise sign version + 1."""
    base = plan.tree.config.registry.base_url
    lifetime = timedelta(days=plan.tree.config.signing.snapshot_lifetime_days)
    # Built from digests this build computed itself: no need to validate 20,000 of them.
    meta = {
        path: FileDigest.model_construct(
            sha256=plan.files[path].sha256, length=plan.files[path].size
        )
        for path in index_files(plan.files)
    }
    old = previous.snapshot
    if (
        old is not None
        and previous.snapshot_bytes is not None
        and not force_new
        and old.meta == meta
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
    )
    envelope = sign_body(snapshot.model_dump(mode="json", exclude_none=True), key)
    signed = Signed[Snapshot](
        signed=snapshot, signatures=[Signature(**s) for s in envelope["signatures"]]
    )
    plan.snapshot = snapshot
    plan.files[SNAPSHOT_FILE] = OutputFile.from_bytes(model_to_json(signed))
