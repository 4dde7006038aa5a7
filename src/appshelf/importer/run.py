"""`appshelf import SOURCE -o TREE`: a Flows registry becomes an appshelf source tree.

All network work and every check happen before anything is written: registry.json,
each app's versions.json (federated ones included), icons, then each artifact's size.
The tree is then written into a staging folder inside TREE, read back with the build's
own source reader (so what import writes is what `appshelf build` accepts), and only
then moved into place. A refusal leaves TREE as it was (or absent).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pydantic

from appshelf.client.transport import Limits
from appshelf.errors import AppshelfError, FlowsImportError, IconError, SourceTreeError
from appshelf.importer.errors import problems_of
from appshelf.importer.fetch import Fetcher, MiB, guess_root, open_fetcher, read_source_registry
from appshelf.importer.flows import FlowsApp, FlowsVersion, parse_registry, parse_versions
from appshelf.importer.writing import (
    make_staging,
    remove_staging,
    render_app_toml,
    render_registry_toml,
    render_release_toml,
    safe_join,
    write_new,
)
from appshelf.source.icons import check_png, check_svg
from appshelf.source.models import AppConfig, RegistryConfig
from appshelf.source.tree import MAX_ICON_BYTES, artifact_url_refusal, load_source_tree


@dataclass(frozen=True)
class ImportOptions:
    """How to import; every limit bounds what a hostile registry can make us read.

    Attributes:
        base_url: The new registry's `[registry] base_url`.
        name: Its `[registry] name` (default: "Flows registry imported from <source>").
        root_url: The URL a Flows registry folder is published at (URLs under it are
            read from the folder); guessed from the apps' appMetadataUrl when absent.
        allow_internal_hosts: Fetch from loopback and private hosts, and write
            `allow_internal_artifact_hosts = true`.
        verify: Download every artifact and check its SHA-256 (else HEAD for sizes).
        max_json_bytes: Largest registry.json or versions.json read.
        max_artifact_bytes: Largest artifact measured or downloaded.
        max_apps: Most apps in registry.json.
        max_versions: Most versions in one versions.json.
        limits: The HTTP transport's timeouts and retries.
        ca_file: Extra CA bundle for HTTPS.
    """

    base_url: str
    name: str | None = None
    root_url: str | None = None
    allow_internal_hosts: bool = False
    verify: bool = False
    max_json_bytes: int = 16 * MiB
    max_artifact_bytes: int = 1024 * MiB
    max_apps: int = 10_000
    max_versions: int = 10_000
    limits: Limits | None = None
    ca_file: Path | None = None


@dataclass
class ImportReport:
    """What the import wrote and what it had to leave out."""

    tree: Path
    apps: int = 0
    versions: int = 0
    icons: int = 0
    federated: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    heads: int = 0
    downloads: int = 0


@dataclass
class _App:
    flows: FlowsApp
    config: AppConfig
    icon: bytes | None = None
    versions: list[FlowsVersion] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


def import_flows(source: str, tree: Path, options: ImportOptions) -> ImportReport:
    """Read the Flows registry at `source` (a folder, a .json file or a URL) into a new
    appshelf source tree at `tree`.

    Args:
        source: Where the Flows registry is.
        tree: The folder to create (it may exist if empty).
        options: Limits and choices.

    Raises:
        FlowsImportError: a refusal (every problem listed); nothing was written.
        TransportError: registry.json could not be read.
    """
    created = _check_target(tree)
    try:
        fetcher, registry_url = open_fetcher(
            source, options.root_url, options.allow_internal_hosts, options.limits, options.ca_file
        )
    except BaseException:
        _undo(tree, created)
        raise
    report = ImportReport(tree)
    try:
        apps = _read_everything(fetcher, registry_url, source, options, report)
        _write_tree(tree, apps[0], apps[1], source)
    except BaseException:
        _undo(tree, created)
        raise
    finally:
        fetcher.transport.close()
    report.heads, report.downloads = fetcher.counts["head"], fetcher.counts["download"]
    return report


def _check_target(tree: Path) -> bool:
    """True when `tree` is created here; refuses a non-empty folder or a link."""
    if tree.is_symlink():
        raise FlowsImportError([f"{tree}: is a symlink; give a real folder"])
    if tree.exists():
        if not tree.is_dir() or any(tree.iterdir()):
            raise FlowsImportError(
                [
                    f"{tree}: already exists and is not an empty folder (to update an imported "
                    "tree, run `appshelf sync` on it)"
                ]
            )
        return False
    if not tree.parent.is_dir():
        raise FlowsImportError([f"{tree.parent}: no such folder"])
    os.mkdir(tree, 0o755)
    return True


def _undo(tree: Path, created: bool) -> None:
    if created and tree.is_dir() and not any(tree.iterdir()):
        tree.rmdir()


def _registry_config(options: ImportOptions, source: str) -> RegistryConfig:
    name = options.name or f"Flows registry imported from {source}"[:200]
    try:
        return RegistryConfig.model_validate(
            {
                "registry": {
                    "name": name,
                    "base_url": options.base_url,
                    "allow_internal_artifact_hosts": options.allow_internal_hosts,
                }
            }
        )
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        option = "--base-url" if "base_url" in error["loc"] else "--name"
        raise FlowsImportError(
            [f"{option}: {error['msg'].removeprefix('Value error, ')}"]
        ) from None


def _read_everything(
    fetcher: Fetcher, registry_url: str, source: str, options: ImportOptions, report: ImportReport
) -> tuple[RegistryConfig, list[_App]]:
    config = _registry_config(options, source)
    data = read_source_registry(fetcher, registry_url, options.max_json_bytes)
    where = registry_url if fetcher.folder is None else str(Path(source))
    flows_apps, problems = parse_registry(data, where, options.max_apps)
    if fetcher.folder is not None and fetcher.root_url is None:
        fetcher.root_url = guess_root({a.key: a.metadata_url for a in flows_apps})
    root = fetcher.root_url if fetcher.folder is not None else registry_url.rsplit("/", 1)[0] + "/"
    apps: list[_App] = []
    for flows in flows_apps:
        federated = root is None or not flows.metadata_url.startswith(root)
        upstream = flows.metadata_url if federated else None
        app = _App(flows, flows.config.model_copy(update={"upstream": upstream}))
        problems += _read_versions(fetcher, app, config, options)
        _read_icon(fetcher, app, report)
        apps.append(app)
        if federated:
            report.federated.append(flows.key)
    if problems:
        raise FlowsImportError(problems)
    for app in apps:
        problems += measure_versions(
            fetcher,
            app.flows.key,
            app.versions,
            app.sizes,
            options.max_artifact_bytes,
            options.verify,
        )
    if problems:
        raise FlowsImportError(problems)
    report.apps = len(apps)
    report.versions = sum(len(a.versions) for a in apps)
    report.icons = sum(a.icon is not None for a in apps)
    return config, apps


def _read_versions(
    fetcher: Fetcher, app: _App, config: RegistryConfig, options: ImportOptions
) -> list[str]:
    url = app.flows.metadata_url
    try:
        data = fetcher.json(url, options.max_json_bytes, f"apps.{app.flows.key}.appMetadataUrl")
    except AppshelfError as exc:
        return problems_of(exc)
    versions, problems = parse_versions(data, url, options.max_versions)
    problems += versions_refused(config, url, versions)
    if app.config.icon is not None and any(v.version == app.config.icon for v in versions):
        problems.append(f"{url}: version {app.config.icon!r} has the icon's name")
    app.versions = versions
    return problems


def versions_refused(config: RegistryConfig, where: str, versions: list[FlowsVersion]) -> list[str]:
    """Versions whose artifactUrl the build would refuse, asked before any is fetched."""
    problems = []
    for version in versions:
        refusal = artifact_url_refusal(config, version.artifact_url)
        if refusal is not None:
            problems.append(f"{where}: version {version.version}: artifactUrl: {refusal}")
    return problems


def _read_icon(fetcher: Fetcher, app: _App, report: ImportReport) -> None:
    """Copy the icon if it is reachable and passes appshelf's icon rules; else say why
    not and import the app without one (its Flows icon is not published by appshelf)."""
    url, name = app.flows.icon_url, app.config.icon
    if url is None or name is None:
        return
    key = app.flows.key
    try:
        data = fetcher.read(url, MAX_ICON_BYTES, f"apps.{key}.blockStyle.iconUrl")
        (check_svg if name.endswith(".svg") else check_png)(data)
    except (AppshelfError, IconError) as exc:
        report.warnings.append(f"apps/{key}: icon {name} not imported: {exc}")
        app.config = app.config.model_copy(update={"icon": None})
        return
    app.icon = data


def measure_versions(
    fetcher: Fetcher,
    key: str,
    versions: list[FlowsVersion],
    sizes: dict[str, int],
    limit: int,
    verify: bool,
) -> list[str]:
    """Find each version's size (into `sizes`); downloads are hashed and checked against
    the checksum the registry gave.

    Args:
        fetcher: Where to read from.
        key: The app, for messages.
        versions: The versions to measure.
        sizes: Filled with version -> size.
        limit: Largest artifact accepted.
        verify: Download and hash every artifact (else HEAD when it tells the size).
    """
    problems = []
    for version in versions:
        what = f"apps/{key} {version.version} artifact"
        try:
            measured = fetcher.measure(version.artifact_url, limit, what, download=verify)
        except AppshelfError as exc:
            problems += problems_of(exc)
            continue
        if measured.sha256 is not None and measured.sha256 != version.sha256:
            problems.append(
                f"{what}: checksum mismatch: the registry says sha256:{version.sha256}, the "
                f"bytes at {version.artifact_url} hash to sha256:{measured.sha256}; refusing it"
            )
            continue
        sizes[version.version] = measured.size
    return problems


def _write_tree(tree: Path, config: RegistryConfig, apps: list[_App], source: str) -> None:
    staging = make_staging(tree, "import")
    try:
        registry = config.registry
        text = render_registry_toml(
            registry.name, registry.base_url, registry.allow_internal_artifact_hosts, source
        )
        write_new(staging / "registry.toml", text.encode())
        os.mkdir(staging / "apps")
        for app in apps:
            _write_app(staging / "apps", app)
        try:
            load_source_tree(staging)
        except SourceTreeError as exc:
            raise FlowsImportError([f"the imported tree would not build: {exc}"]) from None
        os.rename(staging / "apps", tree / "apps")
        try:
            os.rename(staging / "registry.toml", tree / "registry.toml")
        except BaseException:
            os.rename(tree / "apps", staging / "apps")  # undo half a commit
            raise
    except BaseException:
        remove_staging(staging)
        raise
    remove_staging(staging)


def _write_app(apps_folder: Path, app: _App) -> None:
    folder = safe_join(apps_folder, app.flows.key)
    os.mkdir(folder)
    write_new(folder / "app.toml", render_app_toml(app.config).encode())
    if app.icon is not None and app.config.icon is not None:
        write_new(safe_join(folder, app.config.icon), app.icon)
    for version in app.versions:
        version_folder = safe_join(folder, version.version)
        os.mkdir(version_folder)
        release = render_release_toml(
            version.artifact_url, version.sha256, app.sizes[version.version]
        )
        write_new(version_folder / "release.toml", release.encode())
