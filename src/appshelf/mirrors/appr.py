"""The appr/CNR mirror: the registry as the stock appr 0.7.4 client reads it, as static
files under `cnr/` (docs/spec.md section 14), from the same plan as everything else.

Every package is `<[mirrors] appr_namespace>/<app key>` with one media type,
`appshelf`; a release's blob is a deterministic tar.gz holding the artifact
(formats/appr.py). `cnr/files.json` pins every other mirror file and is itself pinned
by the snapshot. Versions whose artifact is external (`artifact_url`) or larger than
`MAX_ARTIFACT` are left out, with a warning: the build has no bytes to pack for the
first and would write several base64 copies of the second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from appshelf.builder.outputs import OutputFile, OutputFiles, url_for
from appshelf.builder.plan import PlannedApp, PlannedVersion, RegistryPlan
from appshelf.errors import InputFileError, OutputError
from appshelf.formats import appr as f
from appshelf.formats.canonical import canonical_json, model_to_json, parse_timestamp
from appshelf.formats.documents import FileDigest
from appshelf.inputfile import read_input_file

MAX_ARTIFACT: Final = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Release:
    version: str
    published: str
    blob: bytes
    digest: str
    data: dict[str, Any]  # appr's package data (show)


def mirror_files(plan: RegistryPlan) -> OutputFiles:
    """The mirror's files (none unless `[mirrors] appr = true`).

    Raises:
        OutputError: an artifact changed since it was hashed, or apps were reused
            without being planned (the build plans every app when the mirror is on).
    """
    config = plan.tree.config
    if not config.mirrors.appr:
        return {}
    if plan.reused:
        raise OutputError("the appr mirror needs every app planned (app reuse must be off)")
    namespace = config.mirrors.appr_namespace
    latest = {entry.key: entry.latest for entry in plan.index.apps}
    files: OutputFiles = {}
    _put(files, {"appr-api": f.APPR_API}, f"{f.ROOT}/version")
    listing = []
    for app in plan.apps:  # one app's blobs in memory at a time, then only their files
        releases = _releases(plan, app, f"{namespace}/{app.source.key}")
        if releases:
            listing.append(_app_docs(files, app, namespace, releases, latest.get(app.source.key)))
    _put(files, listing, f.document_path(f.packages_path()))
    pins = f.MirrorFiles(
        registry=config.registry.base_url,
        files={p: FileDigest(sha256=o.sha256, length=o.size) for p, o in sorted(files.items())},
    )
    files[f.PINS] = OutputFile.from_bytes(model_to_json(pins))
    return files


def _put(files: OutputFiles, doc: object, *paths: str) -> None:
    """Encode `doc` once and give its bytes to every path (the copies share them)."""
    encoded = OutputFile.from_bytes(canonical_json(doc))
    for path in paths:
        files[path] = encoded


def _releases(plan: RegistryPlan, app: PlannedApp, package: str) -> list[_Release]:
    found = []
    for planned in app.versions:
        blob = _blob(plan, planned)
        if blob is None:
            continue
        data, digest = blob
        manifest = planned.manifest
        channels = sorted(
            n for n, c in (app.detail.channels or {}).items() if c.version == manifest.version
        )
        found.append(
            _Release(
                manifest.version,
                manifest.published,
                data,
                digest,
                {
                    "channels": channels,
                    "content": {
                        "digest": digest,
                        "mediaType": f.content_media_type(),
                        "size": len(data),
                        "urls": [],
                    },
                    "created_at": manifest.published,
                    "mediaType": f.manifest_media_type(),
                    "metadata": {
                        "artifact": manifest.artifact.model_dump(),
                        "manifest": url_for(
                            plan.tree.config.registry.base_url, planned.entry.manifest_path
                        ),
                    },
                    "package": package,
                    "release": manifest.version,
                },
            )
        )
    return found


def _blob(plan: RegistryPlan, planned: PlannedVersion) -> tuple[bytes, str] | None:
    artifact = planned.manifest.artifact
    what = f"{planned.manifest.app} {planned.manifest.version}"
    local = plan.files.get(f"{planned.entry.manifest_path.rsplit('/', 1)[0]}/{artifact.filename}")
    if local is None or local.source is None:
        plan.warnings.append(f"appr mirror: {what} left out (its artifact is external)")
        return None
    if artifact.size > MAX_ARTIFACT:
        plan.warnings.append(
            f"appr mirror: {what} left out (its artifact is larger than {MAX_ARTIFACT} bytes)"
        )
        return None
    try:
        data, _, stable = read_input_file(local.source, artifact.size, follow_symlinks=True)
    except InputFileError as exc:
        raise OutputError(f"{local.source}: {exc}") from None
    if not stable or hashlib.sha256(data).hexdigest() != artifact.sha256:
        raise OutputError(f"{local.source}: changed while the registry was built; build again")
    mtime = int(parse_timestamp(planned.manifest.published).timestamp())
    return f.package_blob(artifact.filename, data, mtime)


def _app_docs(
    files: OutputFiles,
    app: PlannedApp,
    namespace: str,
    releases: list[_Release],
    latest: str | None,
) -> dict[str, Any]:
    """Add one package's documents; return its entry of the package list."""
    key = app.source.key
    package = f"{namespace}/{key}"
    base = f.packages_path(namespace, key)
    _put(files, [r.data for r in releases], f.document_path(base))
    by_version = {r.version: r for r in releases}
    default = by_version.get(latest or "") or releases[0]
    for release in releases:
        _release_docs(files, package, base, release, release is default)
    _channel_docs(files, app, base, by_version)
    return {
        "created_at": min(r.published for r in releases),
        "default": default.version,
        "manifests": [f.MEDIA_TYPE],
        "name": package,
        "releases": [r.version for r in releases],
        "visibility": "public",
    }


def _release_docs(
    files: OutputFiles, package: str, base: str, release: _Release, default: bool
) -> None:
    """One release's show and pull documents (the default's also as `default`) and its blob."""
    _put(files, [release.data], f.document_path(f"{base}/{release.version}"))
    pull = f.pull_document(
        package, release.version, release.blob, _filename(package, release.version)
    )
    folders = [release.version] + ([f.DEFAULT_RELEASE] if default else [])
    _put(
        files,
        pull,
        *(f"{base}/{v}/{m}/pull" for v in folders for m in (f.MEDIA_TYPE, f.ANY_MEDIA_TYPE)),
    )
    blob_doc = {
        "blob": f.b64(release.blob),
        "filename": _filename(package, release.digest[:8]),
        "package": package,
        "release": release.digest,
    }
    _put(files, blob_doc, f"{base}/blobs/sha256/{release.digest}")


def _channel_docs(
    files: OutputFiles, app: PlannedApp, base: str, by_version: dict[str, _Release]
) -> None:
    """The package's channel list and each channel, for the channels on a mirrored release."""
    channels = [
        {"current": ref.version, "name": name, "releases": [ref.version]}
        for name, ref in sorted((app.detail.channels or {}).items())
        if ref.version in by_version
    ]
    if channels:
        _put(files, channels, f.document_path(f"{base}/channels"))
        for channel in channels:
            _put(files, channel, f"{base}/channels/{channel['name']}")


def _filename(package: str, release: str) -> str:
    return f"{package.replace('/', '_')}_{release}.tar.gz"
