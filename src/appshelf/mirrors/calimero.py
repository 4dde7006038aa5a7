"""The static Calimero App Registry v1 read mirror (docs/spec.md section 12.6).

Calimero clients read `GET /v1/apps/:id` (the versions), `GET /v1/apps/:id/:version` (the
stored manifest, plus registry-added `_` fields) and `GET /v1/search`. This writes those
answers as files, from the same plan as every other file: only versions whose artifact
is a verified .mpk bundle are in it (a Calimero node installs bundles, nothing else).

`v1/apps/<id>` is both an answer and the folder of `v1/apps/<id>/<version>`, so it is
written as `v1/apps/<id>/index.json` and `index.html` (same JSON, with `<`, `>`, `&`
escaped so that a browser never runs it as HTML): hosts that answer a folder path with a
redirect to `<path>/` and its index file (GitHub Pages: index.html; nginx with
`index index.json index.html` or `try_files`) serve it; the S3 REST endpoint does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appshelf.builder.outputs import OutputFile, OutputFiles, url_for
from appshelf.formats.canonical import canonical_json

if TYPE_CHECKING:  # builder/plan.py imports is_pinned from here
    from appshelf.builder.plan import PlannedApp, PlannedVersion, RegistryPlan

PREFIX = "v1"
SEARCH_FILE = f"{PREFIX}/search"
INDEX_NAMES = ("index.json", "index.html")


def app_folder(package: str) -> str:
    return f"{PREFIX}/apps/{package}"


def is_pinned(path: str) -> bool:
    """The mirror files the snapshot pins: the search document and each versions file
    (which pins its manifests in `_manifests`)."""
    if path == SEARCH_FILE:
        return True
    parts = path.split("/")
    return len(parts) == 4 and parts[:2] == [PREFIX, "apps"] and parts[3] in INDEX_NAMES


def html_safe(data: bytes) -> bytes:
    """The same JSON with <, > and & as \\u escapes: safe to serve as text/html."""
    return data.replace(b"&", b"\\u0026").replace(b"<", b"\\u003c").replace(b">", b"\\u003e")


def mirror_manifest(version: PlannedVersion) -> dict[str, Any]:
    """The bundle's manifest as signed, plus the registry's `_` fields (unsigned by rule)."""
    bundle = version.source.bundle
    assert bundle is not None
    artifact = version.manifest.artifact
    document = {k: v for k, v in bundle.manifest.items() if not k.startswith("_")}
    document["_artifact"] = {
        "uri": artifact.url,
        "digest": f"sha256:{artifact.sha256}",
        "size": artifact.size,
    }
    document["_bundleHash"] = bundle.bundle_hash
    document["_published"] = version.manifest.published
    if version.manifest.yanked is not None:
        document["_yanked"] = version.manifest.yanked
    return document


def _app_files(base: str, app: PlannedApp, files: OutputFiles) -> dict[str, Any] | None:
    bundled = [v for v in app.versions if v.source.bundle is not None]
    if not bundled:
        return None
    package = app.source.calimero_package
    folder = app_folder(package)
    pins: dict[str, dict[str, Any]] = {}
    for version in bundled:
        out = OutputFile.from_bytes(canonical_json(mirror_manifest(version)))
        files[f"{folder}/{version.source.version}"] = out
        pins[version.source.version] = {"sha256": out.sha256, "length": out.size}
    versions = [v.source.version for v in bundled]  # newest first
    index = canonical_json({"id": package, "versions": versions, "_manifests": pins})
    files[f"{folder}/index.json"] = OutputFile.from_bytes(index)
    files[f"{folder}/index.html"] = OutputFile.from_bytes(html_safe(index))
    live = [v for v in bundled if v.manifest.yanked is None] or bundled
    latest = live[0]
    metadata = latest.source.bundle.manifest.get("metadata") if latest.source.bundle else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return {
        "id": package,
        "version": latest.source.version,
        "name": name if isinstance(name, str) else app.detail.metadata.name,
        "provides": latest.manifest.provides,
        "requires": latest.manifest.requires,
        "url": url_for(base, f"{folder}/{latest.source.version}"),
    }


def calimero_files(plan: RegistryPlan) -> OutputFiles:
    """Every mirror file, or none when `[mirrors] calimero` is off.

    Args:
        plan: the planned registry (every app planned in full: the build turns app
            reuse off while the mirror is on).

    Returns:
        Output path -> file.
    """
    if not plan.tree.config.mirrors.calimero:
        return {}
    base = plan.tree.config.registry.base_url
    files: OutputFiles = {}
    entries = [entry for app in plan.apps if (entry := _app_files(base, app, files))]
    entries.sort(key=lambda entry: str(entry["id"]))
    files[SEARCH_FILE] = OutputFile.from_bytes(canonical_json(entries))
    return files
