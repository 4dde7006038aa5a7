"""`appshelf sync TREE`: mirror federated apps' new versions, and pin external artifacts.

A federated app (app.toml `upstream = "<versions.json URL>"`) publishes its versions
from its own repository; sync reads that versions.json again and adds each version
the tree does not have yet as `apps/<key>/<version>/release.toml`, pinned by the
upstream's checksum and the size found (HEAD, else download and hash). A version the
tree already has must be listed exactly as it was imported: an upstream that changed
an imported version's URL or checksum is refused (published versions never change).

Sync also fills in what an `artifact_url` release.toml leaves out (`size`, `sha256`),
so the build itself never touches the network: it stays deterministic and offline,
and what it pins is what was committed after `appshelf sync`.

Everything is fetched and checked before anything is written; a refusal writes nothing.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import semver

from appshelf.client.transport import HttpTransport, Limits
from appshelf.errors import AppshelfError, FlowsImportError, InputFileError
from appshelf.importer.errors import problems_of
from appshelf.importer.fetch import Fetcher, MiB, url_policy
from appshelf.importer.flows import FlowsVersion, parse_versions
from appshelf.importer.run import measure_versions, versions_refused
from appshelf.importer.writing import (
    make_staging,
    remove_staging,
    render_release_toml,
    replace_file,
    safe_join,
    toml_string,
    write_new,
)
from appshelf.inputfile import read_input_file
from appshelf.source.models import APP_KEY_RE, AppConfig, RegistryConfig, ReleaseConfig
from appshelf.source.tree import MAX_CONFIG_BYTES, artifact_url_refusal, read_registry_config


@dataclass(frozen=True)
class SyncOptions:
    """What to sync, and the limits on what an upstream can make us read.

    Attributes:
        apps: Only these app keys (default: every app).
        fill: Fill in a missing `size`/`sha256` of artifact_url releases.
        verify: Download and hash every artifact added (else HEAD for sizes).
        max_json_bytes: Largest versions.json read.
        max_artifact_bytes: Largest artifact measured or downloaded.
        max_versions: Most versions in one versions.json.
        limits: The HTTP transport's timeouts and retries.
        ca_file: Extra CA bundle for HTTPS.
    """

    apps: tuple[str, ...] = ()
    fill: bool = True
    verify: bool = False
    max_json_bytes: int = 16 * MiB
    max_artifact_bytes: int = 1024 * MiB
    max_versions: int = 10_000
    limits: Limits | None = None
    ca_file: Path | None = None


@dataclass
class SyncReport:
    """What sync added and filled in."""

    added: list[tuple[str, str]] = field(default_factory=list)
    filled: list[tuple[str, str]] = field(default_factory=list)
    upstreams: int = 0
    warnings: list[str] = field(default_factory=list)
    heads: int = 0
    downloads: int = 0


@dataclass
class _Fill:
    key: str
    version: str
    path: Path
    text: str
    url: str
    sha256: str | None
    size: int | None
    missing: tuple[str, ...]  # the keys release.toml leaves out: sha256, size


@dataclass
class _Plan:
    new: dict[str, list[FlowsVersion]] = field(default_factory=dict)
    fills: list[_Fill] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def sync_tree(tree: Path, options: SyncOptions) -> SyncReport:
    """Mirror upstream versions into `tree` and fill in missing artifact pins.

    Args:
        tree: An appshelf source tree (registry.toml, apps/).
        options: What to sync, and limits.

    Raises:
        SourceTreeError: registry.toml has problems.
        FlowsImportError: a refusal (every problem listed); nothing was written.
    """
    config = read_registry_config(tree)
    check = url_policy(config.registry.allow_internal_artifact_hosts)
    transport = HttpTransport("http://127.0.0.1/", options.limits, options.ca_file, url_check=check)
    fetcher = Fetcher(transport)
    report = SyncReport()
    try:
        plan = _plan(tree, config, fetcher, options, report)
        sizes = _measure(fetcher, plan, options)
        if plan.problems:
            raise FlowsImportError(plan.problems)
    finally:
        transport.close()
    _write(tree, plan, sizes, report)
    report.heads, report.downloads = fetcher.counts["head"], fetcher.counts["download"]
    return report


def _app_folders(tree: Path, wanted: tuple[str, ...]) -> list[Path]:
    apps = tree / "apps"
    if apps.is_symlink() or not apps.is_dir():
        raise FlowsImportError([f"{apps}: missing, or not a real folder"])
    found = sorted(
        entry
        for entry in apps.iterdir()
        if APP_KEY_RE.fullmatch(entry.name) and stat.S_ISDIR(entry.lstat().st_mode)
    )
    unknown = sorted(set(wanted) - {f.name for f in found})
    if unknown:
        raise FlowsImportError([f"{apps}: no app {key!r}" for key in unknown])
    return [f for f in found if not wanted or f.name in wanted]


def _read_toml(path: Path, tree: Path) -> tuple[dict[str, Any] | None, str, str | None]:
    """The TOML table in `path` (a regular file, bounded), its text, or a problem."""
    where = path.relative_to(tree).as_posix()
    try:
        raw, _, _ = read_input_file(path, MAX_CONFIG_BYTES)
        text = raw.decode("utf-8")
        return tomllib.loads(text), text, None
    except InputFileError as exc:
        return None, "", f"{where}: {exc}"
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        return None, "", f"{where}: not valid UTF-8 TOML ({exc})"


def _versions(folder: Path) -> dict[semver.Version, Path]:
    """The app's version folders (real folders with SemVer names), by precedence."""
    found: dict[semver.Version, Path] = {}
    for entry in sorted(folder.iterdir()):
        if semver.Version.is_valid(entry.name) and stat.S_ISDIR(entry.lstat().st_mode):
            found.setdefault(semver.Version.parse(entry.name), entry)
    return found


def _plan(
    tree: Path, config: RegistryConfig, fetcher: Fetcher, options: SyncOptions, report: SyncReport
) -> _Plan:
    plan = _Plan()
    for folder in _app_folders(tree, options.apps):
        data, _, problem = _read_toml(folder / "app.toml", tree)
        if problem is not None or data is None:
            plan.problems.append(problem or f"apps/{folder.name}/app.toml: unreadable")
            continue
        try:
            app = AppConfig.model_validate(data)
        except pydantic.ValidationError as exc:
            plan.problems.append(f"apps/{folder.name}/app.toml: {exc.errors()[0]['msg']}")
            continue
        existing = _versions(folder)
        if app.upstream is not None:
            report.upstreams += 1
            _plan_upstream(
                tree, config, fetcher, options, folder, app.upstream, existing, plan, report
            )
        if options.fill:
            for version_folder in existing.values():
                _plan_fill(tree, config, folder.name, version_folder, plan)
    return plan


def _plan_upstream(
    tree: Path,
    config: RegistryConfig,
    fetcher: Fetcher,
    options: SyncOptions,
    folder: Path,
    upstream: str,
    existing: dict[semver.Version, Path],
    plan: _Plan,
    report: SyncReport,
) -> None:
    key = folder.name
    try:
        data = fetcher.json(upstream, options.max_json_bytes, f"apps/{key}: upstream")
    except AppshelfError as exc:
        plan.problems += problems_of(exc)
        return
    versions, problems = parse_versions(data, upstream, options.max_versions)
    plan.problems += problems
    listed: set[semver.Version] = set()
    new: list[FlowsVersion] = []
    for version in versions:
        parsed = semver.Version.parse(version.version)
        listed.add(parsed)
        local = existing.get(parsed)
        if local is None:
            new.append(version)
        else:
            plan.problems += _changed(tree, key, local, version, upstream)
    plan.problems += versions_refused(config, upstream, new)
    if new:
        plan.new[key] = new
    gone = sorted(str(v) for v in set(existing) - listed)
    if gone:
        report.warnings.append(
            f"apps/{key}: upstream {upstream} no longer lists {', '.join(gone)}; kept "
            "(a published version stays published: yank or take it down to withdraw it)"
        )


def _changed(tree: Path, key: str, local: Path, version: FlowsVersion, upstream: str) -> list[str]:
    """Why the upstream entry for a version the tree has differs from it, if it does."""
    where = f"apps/{key}/{local.name}/release.toml"
    data: dict[str, Any] | None = {}
    if os.path.lexists(local / "release.toml"):
        data, _, problem = _read_toml(local / "release.toml", tree)
        if problem is not None or data is None:
            return [problem or f"{where}: unreadable"]
    assert data is not None
    ours = {
        "version": local.name,
        "artifactUrl": data.get("artifact_url"),
        "artifactChecksum": f"sha256:{data['sha256']}" if "sha256" in data else None,
    }
    theirs = {
        "version": version.version,
        "artifactUrl": version.artifact_url,
        "artifactChecksum": f"sha256:{version.sha256}",
    }
    problems = []
    for name, was in ours.items():
        if (was is not None or name == "artifactUrl") and was != theirs[name]:
            problems.append(
                f"{where}: upstream {upstream} changed version {local.name}: {name} is "
                f"{was!r} in the tree and {theirs[name]!r} upstream; a published version "
                "never changes, so the sync is refused (the app's publisher must publish a "
                "new version instead)"
            )
    return problems


def _plan_fill(
    tree: Path, config: RegistryConfig, key: str, version_folder: Path, plan: _Plan
) -> None:
    path = version_folder / "release.toml"
    if not path.is_file() or path.is_symlink():
        return
    data, text, problem = _read_toml(path, tree)
    if problem is not None or data is None:
        plan.problems.append(problem or f"{path}: unreadable")
        return
    url = data.get("artifact_url")
    if not isinstance(url, str) or ("size" in data and "sha256" in data):
        return
    where = path.relative_to(tree).as_posix()
    try:
        ReleaseConfig.model_validate({"sha256": "0" * 64, "size": 0, **data})
    except pydantic.ValidationError as exc:
        plan.problems.append(f"{where}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}")
        return
    refusal = artifact_url_refusal(config, url)
    if refusal is not None:
        plan.problems.append(f"{where}: artifact_url: {refusal}")
        return
    missing = tuple(name for name in ("sha256", "size") if name not in data)
    plan.fills.append(
        _Fill(
            key, version_folder.name, path, text, url, data.get("sha256"), data.get("size"), missing
        )
    )


def _measure(fetcher: Fetcher, plan: _Plan, options: SyncOptions) -> dict[str, dict[str, int]]:
    """Sizes of the new versions (by app, version); fills get their missing pins."""
    if plan.problems:
        return {}
    sizes: dict[str, dict[str, int]] = {}
    for key, versions in plan.new.items():
        sizes[key] = {}
        plan.problems += measure_versions(
            fetcher, key, versions, sizes[key], options.max_artifact_bytes, options.verify
        )
    for fill in plan.fills:
        what = f"apps/{fill.key}/{fill.version} artifact"
        try:
            measured = fetcher.measure(
                fill.url, options.max_artifact_bytes, what, download=fill.sha256 is None
            )
        except AppshelfError as exc:
            plan.problems += problems_of(exc)
            continue
        problem = _fill_mismatch(fill, measured.size, measured.sha256, what)
        if problem is not None:
            plan.problems.append(problem)
            continue
        fill.size = measured.size
        fill.sha256 = fill.sha256 or measured.sha256
    return sizes


def _fill_mismatch(fill: _Fill, size: int, sha256: str | None, what: str) -> str | None:
    if fill.size is not None and fill.size != size:
        return f"{what}: release.toml says size {fill.size}, {fill.url} has {size} bytes"
    if fill.sha256 is not None and sha256 is not None and fill.sha256 != sha256:
        return (
            f"{what}: release.toml says sha256 {fill.sha256}, the bytes at {fill.url} hash to "
            f"{sha256}; refusing it"
        )
    return None


def _write(tree: Path, plan: _Plan, sizes: dict[str, dict[str, int]], report: SyncReport) -> None:
    if plan.new:
        staging = make_staging(tree, "sync")
        try:
            for key, versions in plan.new.items():
                _add_versions(tree, staging, key, versions, sizes[key], report)
        finally:
            remove_staging(staging)
    for fill in plan.fills:
        assert fill.sha256 is not None and fill.size is not None
        lines = ["# Pinned by `appshelf sync`."]
        if "sha256" in fill.missing:
            lines.append(f"sha256 = {toml_string(fill.sha256)}")
        if "size" in fill.missing:
            lines.append(f"size = {fill.size}")
        # Top-level keys must come before any [table], so they go first.
        replace_file(fill.path, ("\n".join(lines) + "\n" + fill.text).encode())
        report.filled.append((fill.key, fill.version))


def _add_versions(
    tree: Path,
    staging: Path,
    key: str,
    versions: list[FlowsVersion],
    sizes: dict[str, int],
    report: SyncReport,
) -> None:
    app_folder = safe_join(tree / "apps", key)
    for version in versions:
        staged = safe_join(staging, f"{key}-{version.version}")
        os.mkdir(staged)
        text = render_release_toml(version.artifact_url, version.sha256, sizes[version.version])
        write_new(staged / "release.toml", text.encode())
        target = safe_join(app_folder, version.version)
        if os.path.lexists(target):
            raise FlowsImportError([f"apps/{key}/{version.version}: appeared during the sync"])
        os.rename(staged, target)
        report.added.append((key, version.version))
