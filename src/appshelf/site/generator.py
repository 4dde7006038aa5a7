"""The HTML browse site, planned in memory like every other output (pure: no writes).

Every page links relatively (`../../static/site.css`), so the same bytes work under a
base_url with a sub-path, from a preview server, and from any mirror; only the feed,
the sitemap and 404.html (served at any depth) need absolute addresses. Output is a
pure function of the plan and the theme: same input, same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import semver
from markupsafe import Markup

from appshelf import __version__
from appshelf.builder.outputs import OutputFile, OutputFiles, url_for
from appshelf.builder.plan import (
    AppSummary,
    PlannedApp,
    PlannedVersion,
    PlanStart,
    RegistryPlan,
    ReleaseSummary,
)
from appshelf.errors import SiteBuildError
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import Manifest, PublicKey, Signature
from appshelf.formats.log import (
    CHECKPOINT,
    EVENT_LABELS,
    ChannelEntry,
    LifecycleEntry,
    ReleaseEntry,
)
from appshelf.formats.publishers import PUBLISHERS_FILE
from appshelf.signing.releaselog import LoggedRelease, LogState
from appshelf.site.markdown import render_markdown
from appshelf.site.stub import version_stub
from appshelf.site.theme import Theme, read_static, registry_theme
from appshelf.site.workers import MIN_APPS, Page, PagePool, default_jobs
from appshelf.source.models import RegistryConfig, RegistrySection

PAGE_SIZE = 100  # app cards per listing page (the page readable without JavaScript)
FEED_ENTRIES = 50
SITEMAP_LIMIT = 50_000  # URLs per sitemap file (sitemaps.org)
# What "verify with appshelf" and "install with appshelf" show; `{trust}` is
# TRUST_KEY, or TRUST_DEV_KEY: the client refuses the public development key unless
# told to trust it explicitly.
VERIFY_COMMAND = "appshelf verify {base} {trust} --artifacts"
FETCH_COMMAND = "appshelf fetch -r {base} {trust} {app}@{version} -d vendor/"
TRUST_KEY = "--key {public}"
TRUST_DEV_KEY = "--allow-dev-key"
_SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*\Z")
# Bumped when the pages' layout changes in a way the theme files do not show, so that
# reused app records (builder/memo.py) and lazy pages are not the old layout's.
# 2: versions are sections of the app page; version folders hold a small page to them.
SITE_LAYOUT = 2
# Templates the built-in theme no longer has: an override of one is not used any more.
RETIRED_TEMPLATES = {
    "version.html": "version details are sections of app.html (templates/_version.html)",
}


@dataclass(frozen=True)
class SiteOptions:
    live_reload: bool = False  # `appshelf serve`: pages load its reload script


@dataclass(frozen=True)
class VersionView:
    """One version as the pages show it."""

    planned: PlannedVersion
    app_key: str
    version: str
    published: str
    yanked: str | None
    deprecated: str | None
    replacement: str | None  # deprecated: the version to use instead
    prerelease: bool
    filename: str
    sha256: str
    size: int
    external: bool
    download: str  # relative to the app page (apps/<key>/), or absolute if external
    signed_url: str
    takedown: None = None  # the status macros ask every version they list

    @property
    def folder(self) -> str:
        return quote(self.version, safe="")

    @property
    def anchor(self) -> str:
        """The id of this version's section on the app page (docs/site.md)."""
        return version_anchor(self.version)

    @property
    def manifest(self) -> Manifest:
        return self.planned.manifest

    @property
    def manifest_json(self) -> str:
        data = self.planned.envelope.model_dump(mode="json", exclude_none=True)
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)

    @property
    def signatures(self) -> list[Signature]:
        return list(self.planned.envelope.signatures)

    def download_from(self, depth: str) -> str:
        """Download link from the app page (`depth` "") or a version page ("../")."""
        return self.download if self.external else depth + self.download


@dataclass(frozen=True)
class EventView:
    """One release-log entry about an app, as its History section shows it."""

    index: int
    logged: str
    action: str  # "release", a lifecycle action ("yank", ... "takedown"), "channel"[-removed]
    version: str
    reason: str
    replacement: str | None

    @property
    def label(self) -> str:
        return EVENT_LABELS.get(self.action, EVENT_LABELS["release"])

    @property
    def folder(self) -> str:
        return quote(self.version, safe="")


@dataclass(frozen=True)
class TakedownView:
    """A version taken down: gone from app.json, explained by its log entry."""

    version: str
    takedown: str  # the reason
    logged: str
    index: int
    yanked: None = None
    deprecated: None = None
    prerelease: bool = False

    @property
    def folder(self) -> str:
        return quote(self.version, safe="")

    @property
    def anchor(self) -> str:
        return f"takedown-{self.version}"


@dataclass(frozen=True)
class AppLog:
    """What the release log says about one app. `digest` covers the bytes of all its
    entries: the app's pages show them, so their fingerprints include it."""

    history: list[EventView] = field(default_factory=list)  # newest first
    takedowns: list[TakedownView] = field(default_factory=list)  # newest version first
    digest: str | None = None


@dataclass(frozen=True)
class AppView:
    planned: PlannedApp
    key: str
    name: str
    description: str
    color: str
    icon: str | None  # relative to the site root
    homepage: str | None
    repository: str | None
    license: str | None
    tags: list[str]
    category: str | None
    readme_html: Markup | None
    versions: list[VersionView]
    latest: VersionView | None
    log: AppLog = field(default_factory=AppLog)

    @property
    def history(self) -> list[EventView]:
        return self.log.history

    @property
    def takedowns(self) -> list[TakedownView]:
        return self.log.takedowns

    @property
    def channels(self) -> list[tuple[str, VersionView | None, int]]:
        """(name, the version it names, its log entry), by name, from app.json."""
        by_version = {v.version: v for v in self.versions}
        refs = self.planned.detail.channels or {}
        return [(name, by_version.get(r.version), r.log_index) for name, r in sorted(refs.items())]

    @property
    def listed(self) -> list[VersionView | TakedownView]:
        """Published and taken-down versions together, newest first (version lists)."""
        found: list[VersionView | TakedownView] = [*self.versions, *self.takedowns]
        return sorted(found, key=lambda v: semver.Version.parse(v.version), reverse=True)

    @property
    def license_url(self) -> str | None:
        """The SPDX page for a plain SPDX identifier (not for expressions like "A OR B")."""
        if self.license and _SPDX_ID.match(self.license):
            return f"https://spdx.org/licenses/{self.license}.html"
        return None

    @property
    def initial(self) -> str:
        return _initial(self.name, self.key)

    def version_href(self, version: str) -> str:
        """Where a link to `version` from the app page goes: its section, its takedown
        notice, or (neither: not listed here) its folder."""
        if any(v.version == version for v in self.versions):
            return "#" + version_anchor(version)
        if any(t.version == version for t in self.takedowns):
            return f"#takedown-{version}"
        return quote(version, safe="") + "/index.html"

    def newer_than(self, version: VersionView) -> VersionView | None:
        """The latest version if it is newer than `version`: an old version's page
        says so and links to it (as PyPI does)."""
        latest = self.latest
        if latest is None or latest.version == version.version:
            return None
        if semver.Version.parse(latest.version) > semver.Version.parse(version.version):
            return latest
        return None


def version_anchor(version: str) -> str:
    """`v-` + the version, as written: SemVer's characters ([0-9A-Za-z.+-]) are all valid
    in an HTML id and in a URL fragment, and ids are case-sensitive, so every version
    string has its own anchor (`#v-1.2.3-rc.1+build.5`)."""
    return f"v-{version}"


def _initial(name: str, key: str) -> str:
    """The letter an app's icon shows when it has no icon."""
    return (name.strip()[:1] or key[:1]).upper()


@dataclass(frozen=True)
class LatestView:
    version: str


@dataclass(frozen=True)
class CardView:
    """One app as the listing, the feed and the sitemap show it."""

    key: str
    name: str
    description: str
    color: str
    icon: str | None
    tags: list[str]
    category: str | None
    latest: LatestView | None
    releases: list[ReleaseSummary]  # newest first

    @property
    def initial(self) -> str:
        return _initial(self.name, self.key)


def _card_view(summary: AppSummary) -> CardView:
    entry = summary.index
    return CardView(
        key=summary.key,
        name=entry.name,
        description=entry.description,
        color=entry.color,
        icon=entry.icon,
        tags=list(entry.tags),
        category=entry.category,
        latest=LatestView(entry.latest) if entry.latest else None,
        releases=summary.releases,
    )


@dataclass(frozen=True)
class _PageState:
    """What every page's rendering needs besides its own context: picklable, sent once
    to each worker process (site/workers.py), which makes its own environment."""

    theme: Theme
    registry: RegistrySection
    live_reload: bool
    static_hashes: dict[str, str]  # filled before any page renders

    @property
    def base(self) -> str:
        return self.registry.base_url

    def environment(self) -> jinja2.Environment:
        return _environment(self.theme)

    def render(
        self, env: jinja2.Environment, template: str, path: str, root: str, context: dict[str, Any]
    ) -> bytes:
        def static(name: str) -> str:
            digest = self.static_hashes.get(name)
            if digest is None:
                raise SiteBuildError(f"template {template}: no static file {name!r}")
            return f"{root}static/{name}?v={digest[:10]}"

        try:
            text = env.get_template(template).render(
                registry=self.registry,
                root=root,
                static=static,
                url=url_for(self.base, path) if path.endswith(".html") else self.base,
                path=path,
                live_reload=self.live_reload,
                **context,
            )
        except jinja2.TemplateSyntaxError as exc:
            raise SiteBuildError(
                f"{exc.filename or exc.name}: line {exc.lineno}: {exc.message}"
            ) from None
        except jinja2.TemplateError as exc:
            raise SiteBuildError(f"template {template} (for {path}): {exc}") from None
        return text.encode("utf-8")


@dataclass
class _Site:
    start: PlanStart  # the tree, the log, keys.json and the publishers file
    options: SiteOptions
    theme: Theme
    env: jinja2.Environment
    pages: _PageState
    salt: str  # the theme, the options and the registry's config (lazy pages)
    trust: _Trust
    files: OutputFiles = field(default_factory=dict)
    pool: PagePool | None = None  # app pages rendered in worker processes

    @property
    def base(self) -> str:
        return self.start.tree.config.registry.base_url

    @property
    def keys_digest(self) -> str:
        return self.start.files["keys.json"].sha256

    @property
    def static_hashes(self) -> dict[str, str]:
        return self.pages.static_hashes

    def render(
        self, template: str, path: str, root: str, inputs: object = None, **context: Any
    ) -> None:
        """Render `template` to `path`. With `inputs` (plain JSON data covering all the
        context), the page is lazy: rendered only when the output does not already hold
        what these inputs, the theme and the options gave (the listing and sitemap of a
        large registry change rarely, but cost seconds to render)."""
        if inputs is None:
            self.files[path] = OutputFile.from_bytes(self._render(template, path, root, context))
            return
        self.files[path] = OutputFile.lazy(
            self._fingerprint(template, path, root, inputs),
            lambda: self._render(template, path, root, context),
        )

    def render_app_page(
        self, template: str, path: str, root: str, inputs: object, **context: Any
    ) -> None:
        """A lazy app page (`render`), rendered in a worker process when the site has
        a pool: its context is the app's own data, small and picklable."""
        if self.pool is None:
            self.render(template, path, root, inputs, **context)
            return
        self.pool.add(Page(template, path, root, context))
        self.files[path] = OutputFile.lazy(
            self._fingerprint(template, path, root, inputs), partial(self.pool.render, path)
        )

    def render_local(self, page: Page) -> bytes:
        return self._render(page.template, page.path, page.root, page.context)

    def _fingerprint(self, template: str, path: str, root: str, inputs: object) -> str:
        return hashlib.sha256(
            json.dumps([self.salt, template, path, root, inputs], sort_keys=True).encode()
        ).hexdigest()

    def _render(self, template: str, path: str, root: str, context: dict[str, Any]) -> bytes:
        return self.pages.render(self.env, template, path, root, context)


@dataclass(frozen=True)
class SiteGenerator:
    """A `BuildOptions.generators` entry that adds the site to a build."""

    options: SiteOptions = SiteOptions()
    # Processes rendering the app pages (site/workers.py); 1: all in this process. Not
    # in the memo salt: the pages are the same bytes whatever it is.
    jobs: int = field(default_factory=default_jobs)
    min_apps: int | None = None  # fewer apps than this: all in this process (MIN_APPS)

    def __call__(self, plan: RegistryPlan) -> OutputFiles:
        return generate_site(plan, self.options, jobs=self.jobs, min_apps=self.min_apps)

    def stream(self, start: PlanStart) -> SiteStream | None:
        """The site one app at a time (builder/pipeline.py), or None when its app pages
        are to be rendered in worker processes (those take every page at once)."""
        if self.jobs > 1:
            return None
        return SiteStream(_start_site(start, self.options))

    def memo_salt(self, root: Path, config: RegistryConfig) -> str:
        """What an app's pages depend on besides the app itself (builder/memo.py): the
        options and every file of the theme's search path."""
        return _site_salt(registry_theme(root, config.site.overrides), self.options, config)


class SiteStream:
    """The site of a build that plans, renders and hands on one app at a time: `app`
    adds an app's pages to its files, `finish` gives the pages made from every app's
    summary (the listing, feed and sitemap) and the static files. The bytes are those
    `generate_site` gives."""

    def __init__(self, site: _Site) -> None:
        self._site = site
        self._logged: dict[str, list[str]] = {}  # app -> versions logged before this build
        for app, version in site.start.log.releases if site.start.log is not None else ():
            self._logged.setdefault(app, []).append(version)

    def app(self, planned: PlannedApp, files: OutputFiles) -> OutputFiles:
        """The app's pages; `files` are its other files (its app.json is read)."""
        log, key = self._site.start.log, planned.source.key
        versions = {*self._logged.get(key, ()), *(v.version for v in planned.source.versions)}
        found = [(v, r) for v in sorted(versions) if log and (r := log.releases.get((key, v)))]
        shared, self._site.files = self._site.files, {}
        try:
            _site_app(self._site, planned, _app_log(log, key, found) if found else AppLog(), files)
            return self._site.files
        finally:
            self._site.files = shared

    def finish(self, plan: RegistryPlan) -> OutputFiles:
        """The pages made from every app's summary, the static files, and the rest."""
        return _finish_site(self._site, plan)


def _site_salt(theme: Theme, options: SiteOptions, config: RegistryConfig) -> str:
    """A digest of the options, the registry's config and every file of the theme's
    search path: with the page's own data, all that a page's bytes depend on."""
    digest = hashlib.sha256(
        f"{__version__}\0{SITE_LAYOUT}\0{options!r}\0{config.model_dump_json()}".encode()
    )
    for theme_dir in theme.dirs:
        for folder, dirnames, filenames in os.walk(theme_dir):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(folder) / name
                digest.update(f"{path.relative_to(theme_dir)}\0".encode())
                with contextlib.suppress(OSError):
                    digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def site_generator(options: SiteOptions | None = None, jobs: int | None = None) -> SiteGenerator:
    """The site generator; `jobs`: worker processes rendering the app pages (default 1:
    all in this process; site/workers.py)."""
    return SiteGenerator(options or SiteOptions(), jobs=default_jobs() if jobs is None else jobs)


def generate_site(
    plan: RegistryPlan,
    options: SiteOptions | None = None,
    *,
    jobs: int = 1,
    min_apps: int | None = None,
) -> OutputFiles:
    """Every page, feed and static file of the browse site, by output path. With `jobs`
    over 1 and at least `min_apps` apps, the app pages are rendered in `jobs` worker
    processes (site/workers.py): the same bytes, in the same order."""
    start = PlanStart(plan.tree, plan.log, plan.keys, plan.files)
    site = _start_site(start, options or SiteOptions())
    site.pool = _page_pool(site, len(plan.apps), jobs, MIN_APPS if min_apps is None else min_apps)
    logs = app_logs(plan.log, {planned.source.key for planned in plan.apps})
    for planned in plan.apps:
        _site_app(site, planned, logs.get(planned.source.key, AppLog()), plan.files)
    return _finish_site(site, plan)


def _start_site(start: PlanStart, options: SiteOptions) -> _Site:
    """The theme, its static files (whose digests the pages link with), and the keys."""
    config = start.tree.config
    theme = registry_theme(start.tree.root, config.site.overrides)
    pages = _PageState(theme, config.registry, options.live_reload, {})
    trust = _Trust.of(config.registry.base_url, start.keys.keys)
    salt = _site_salt(theme, options, config)
    site = _Site(start, options, theme, pages.environment(), pages, salt, trust)
    for relpath, source in theme.static_files().items():
        data = read_static(source, relpath)
        site.files[f"static/{relpath}"] = OutputFile.from_bytes(data)
        site.static_hashes[relpath] = sha256_hex(data)
    return site


def _site_app(site: _Site, planned: PlannedApp, log: AppLog, files: OutputFiles) -> None:
    """One app's pages; `files` holds its app.json."""
    app_json = files[f"apps/{planned.source.key}/app.json"].sha256
    _render_app(site, _app_view(planned, log), app_json)


def _finish_site(site: _Site, plan: RegistryPlan) -> OutputFiles:
    """Every page made from all the apps' summaries, and the files every site has."""
    trust = site.trust
    plan.warnings.extend(retired_overrides(site.theme, plan.tree.root))
    cards = [_card_view(summary) for summary in plan.summaries]
    templates = [s for s in plan.summaries if s.index.kind == "template"]
    _render_listing(
        site,
        [c for c, s in zip(cards, plan.summaries, strict=True) if s.index.kind is None],
        len(templates),
    )
    if templates:  # their own section (docs/spec.md section 15)
        site.render(
            "templates.html", "templates/index.html", "../", templates=_template_cards(templates)
        )
    site.render(
        "keys.html",
        "keys/index.html",
        "../",
        [site.keys_digest, trust.flag],
        keys=trust.keys,
        active=trust.active,
        trust=trust,
    )
    base_path = urlsplit(site.base).path or "/"
    site.render("404.html", "404.html", base_path)
    site.render(
        "feed.xml", "feed.xml", "", releases=_releases(cards, FEED_ENTRIES), updated=_newest(cards)
    )
    urls = _sitemap_urls(site, cards)
    site.render("sitemap.xml", "sitemap.xml", "", urls, urls=urls)
    site.render("robots.txt", "robots.txt", "")
    site.files[".nojekyll"] = OutputFile.from_bytes(b"")
    if plan.tree.config.site.cname:
        site.files["CNAME"] = OutputFile.from_bytes(plan.tree.config.site.cname.encode() + b"\n")
    return site.files


def _page_pool(site: _Site, apps: int, jobs: int, min_apps: int) -> PagePool | None:
    """Worker processes for the app pages: with `jobs` over 1 and enough apps."""
    if jobs > 1 and apps >= min_apps:
        return PagePool(site.pages, jobs, site.render_local)
    return None


def retired_overrides(theme: Theme, root: Path) -> list[str]:
    """A warning for each override of a template the site no longer renders (the build
    would otherwise ignore a registry's customisation without a word)."""
    found = []
    for folder in theme.dirs[:-1]:  # the last is the built-in theme
        for name, instead in sorted(RETIRED_TEMPLATES.items()):
            path = folder / name
            if path.is_file():
                shown = os.path.relpath(path, root.resolve()).replace(os.sep, "/")
                found.append(f"{shown}: no longer used: {instead} (docs/site.md)")
    return found


@dataclass(frozen=True)
class _Trust:
    """How the commands the pages show trust the registry's active key."""

    base: str
    keys: list[PublicKey]
    active: PublicKey | None

    @classmethod
    def of(cls, base: str, keys: list[PublicKey]) -> _Trust:
        return cls(base, keys, next((k for k in keys if k.status == "active"), None))

    @property
    def flag(self) -> str:
        if self.active is None or self.active.development:
            return TRUST_DEV_KEY
        return TRUST_KEY.format(public=self.active.public)

    @property
    def verify_command(self) -> str:
        return VERIFY_COMMAND.format(base=self.base, trust=self.flag)

    def fetch_command(self, version: VersionView) -> str:
        """What to paste to download this version, verified (exact versions are pins)."""
        return FETCH_COMMAND.format(
            base=self.base, trust=self.flag, app=version.app_key, version=version.version
        )


def _render_app(site: _Site, app: AppView, app_json: str) -> None:
    """An app's page, with a section per version, and the small page that leads from
    each version's folder to its section. Everything the app page shows is pinned by its
    app.json (metadata, which version is latest, and each version's manifest digest),
    its README, keys.json and the log; the site salt covers the theme, the options and
    the registry's config. So the page renders lazily."""
    readme = app.planned.source.readme
    trust, keys_digest, start = site.trust, site.keys_digest, site.start
    inputs = [
        app_json,
        sha256_hex(readme.encode()) if readme else None,
        keys_digest,
        trust.flag,
        [[v.version, v.external, v.download] for v in app.versions],
        app.log.digest,
    ]
    identities = start.tree.identities
    publishers = {p.id: p for p in identities.publishers} if identities is not None else {}
    owners = start.log.owners.get(app.key, []) if start.log is not None else []
    if PUBLISHERS_FILE in start.files:  # the names shown beside each publisher
        inputs += [start.files[PUBLISHERS_FILE].sha256, ",".join(owners)]
    site.render_app_page(
        "app.html",
        f"apps/{app.key}/index.html",
        "../../",
        inputs,
        app=app,
        checkpoint=CHECKPOINT,
        owners=[(o, publishers[o].name if o in publishers else o) for o in owners],
        publishers=publishers,
        keys={k.keyid: k for k in trust.keys},
        verify_command=trust.verify_command,
        fetch_command=trust.fetch_command,
    )
    for gone in app.takedowns:
        site.render_app_page(
            "takedown.html",
            f"apps/{app.key}/{gone.version}/index.html",
            "../../../",
            [inputs, gone.version],
            app=app,
            gone=gone,
            checkpoint=CHECKPOINT,
        )
    canonical = url_for(site.base, f"apps/{app.key}/index.html")
    css = f"../../../static/site.css?v={site.static_hashes.get('site.css', '')[:10]}"
    for version in app.versions:
        page = version_stub(
            registry=start.tree.config.registry.name,
            app=app.name,
            version=version.version,
            anchor=version.anchor,
            canonical=canonical,
            css=css,
        )
        site.files[f"apps/{app.key}/{version.version}/index.html"] = OutputFile.from_bytes(page)


def _environment(theme: Theme) -> jinja2.Environment:
    env = theme.environment()
    env.filters["filesize"] = filesize
    env.filters["day"] = lambda stamp: str(stamp)[:10]
    env.filters["urlpart"] = lambda text: quote(str(text), safe="")
    env.filters["key_label"] = key_label
    env.filters["markdown"] = lambda text: Markup(render_markdown(str(text)))
    return env


def filesize(size: int) -> str:
    """Human-readable size: 169 B, 12.3 KB, 4.0 MB (powers of 1024, one decimal)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _version_view(app_key: str, planned: PlannedVersion) -> VersionView:
    manifest = planned.manifest
    artifact = planned.source.artifact
    folder = quote(planned.source.version, safe="")
    download = (
        manifest.artifact.url
        if artifact.external
        else f"{folder}/{quote(artifact.filename, safe='')}"
    )
    return VersionView(
        planned=planned,
        app_key=app_key,
        version=planned.source.version,
        published=manifest.published,
        yanked=manifest.yanked,
        deprecated=manifest.deprecated,
        replacement=manifest.replacement,
        prerelease=bool(semver.Version.parse(planned.source.version).prerelease),
        filename=manifest.artifact.filename,
        sha256=manifest.artifact.sha256,
        size=manifest.artifact.size,
        external=artifact.external,
        download=download,
        signed_url=manifest.artifact.url,
    )


def app_logs(log: LogState | None, apps: set[str]) -> dict[str, AppLog]:
    """The release log's entries about each of `apps` (one pass over the log)."""
    if log is None:
        return {}
    found: dict[str, list[tuple[str, LoggedRelease]]] = {}
    for (app, version), release in log.releases.items():
        if app in apps:
            found.setdefault(app, []).append((version, release))
    return {app: _app_log(log, app, releases) for app, releases in found.items()}


def _app_log(log: LogState | None, app: str, releases: list[tuple[str, LoggedRelease]]) -> AppLog:
    """What the log says about `app`, given its logged releases (in any order)."""
    items: list[tuple[int, ReleaseEntry | LifecycleEntry | ChannelEntry]] = []
    takedowns: list[TakedownView] = []
    if log is None:
        return AppLog(history=[], takedowns=[], digest=hashlib.sha256(b"").hexdigest())
    for version, release in releases:
        for index in release.history:
            entry = log.entry_at(index)
            if isinstance(entry, ReleaseEntry | LifecycleEntry):
                items.append((index, entry))
        if release.standing.takedown is not None:
            index = release.history[-1]  # nothing follows a takedown
            logged = log.entry_at(index).logged
            takedowns.append(TakedownView(version, release.standing.takedown, logged, index))
    items += log.channel_history.get(app, [])
    leaves = log.leaves
    return AppLog(
        history=[_event(index, entry) for index, entry in sorted(items, reverse=True)],
        takedowns=sorted(takedowns, key=lambda t: semver.Version.parse(t.version), reverse=True),
        digest=hashlib.sha256(b"".join(leaves[index] for index, _ in sorted(items))).hexdigest(),
    )


def _event(index: int, entry: ReleaseEntry | LifecycleEntry | ChannelEntry) -> EventView:
    if isinstance(entry, ReleaseEntry):
        return EventView(index, entry.logged, "release", entry.version, "", None)
    if isinstance(entry, ChannelEntry):
        action = "channel" if entry.version else "channel-removed"
        return EventView(index, entry.logged, action, entry.version or "", entry.channel, None)
    return EventView(
        index, entry.logged, entry.action, entry.version, entry.reason, entry.replacement
    )


def _app_view(planned: PlannedApp, log: AppLog | None = None) -> AppView:
    metadata = planned.detail.metadata
    versions = [_version_view(planned.source.key, v) for v in planned.versions]
    live = [v for v in versions if v.yanked is None]
    stable = [v for v in live if not v.prerelease]
    latest = next(iter(stable or live or versions), None)
    readme = planned.source.readme
    return AppView(
        planned=planned,
        key=planned.source.key,
        name=metadata.name,
        description=metadata.description,
        color=metadata.color,
        icon=planned.icon_path,
        homepage=metadata.homepage,
        repository=metadata.repository,
        license=metadata.license,
        tags=list(metadata.tags),
        category=metadata.category,
        readme_html=Markup(render_markdown(readme)) if readme else None,
        versions=versions,
        latest=latest,
        log=log or AppLog(),
    )


def _template_cards(templates: list[AppSummary]) -> list[tuple[CardView, ReleaseSummary | None]]:
    """Each template with its latest version (whose bundle the page describes)."""
    found = []
    for summary in templates:
        card = _card_view(summary)
        latest = card.latest.version if card.latest else None
        found.append((card, next((r for r in summary.releases if r.version == latest), None)))
    return found


def _render_listing(site: _Site, apps: list[CardView], template_count: int = 0) -> None:
    """index.html, then page/2/index.html... for the no-JavaScript listing."""
    tags = sorted(Counter(t for a in apps for t in a.tags).items())
    categories = sorted(Counter(a.category for a in apps if a.category).items())
    chunks = [apps[i : i + PAGE_SIZE] for i in range(0, len(apps), PAGE_SIZE)] or [[]]
    for number, chunk in enumerate(chunks, start=1):
        path = "index.html" if number == 1 else f"page/{number}/index.html"
        root = "" if number == 1 else "../../"
        inputs = [
            [[a.key, a.name, a.description, a.color, a.icon, a.tags, a.category] for a in chunk],
            [a.latest.version if a.latest else None for a in chunk],
            len(apps),
            tags,
            categories,
            number,
            len(chunks),
            template_count,
        ]
        site.render(
            "index.html",
            path,
            root,
            inputs,
            apps=chunk,
            app_count=len(apps),
            tags=tags,
            categories=categories,
            page=number,
            pages=len(chunks),
            template_count=template_count,
            page_href=lambda n, root=root: (
                f"{root}index.html" if n == 1 else f"{root}page/{n}/index.html"
            ),
        )


def _releases(cards: Iterable[CardView], limit: int) -> list[tuple[CardView, ReleaseSummary]]:
    """The `limit` newest versions: published first, then app key, then version
    precedence, all descending. SemVer is parsed only for the candidates."""
    pairs = [(card, r) for card in cards for r in card.releases]
    newest = heapq.nlargest(limit, pairs, key=lambda p: (p[1].published, p[0].key))
    if len(pairs) > limit:
        cut = (newest[-1][1].published, newest[-1][0].key)
        pairs = [p for p in pairs if (p[1].published, p[0].key) >= cut]
    pairs.sort(
        key=lambda p: (p[1].published, p[0].key, semver.Version.parse(p[1].version)),
        reverse=True,
    )
    return pairs[:limit]


def _newest(cards: Iterable[CardView]) -> str:
    stamps = [r.published for card in cards for r in card.releases]
    return max(stamps) if stamps else "1970-01-01T00:00:00Z"


def _sitemap_urls(site: _Site, cards: list[CardView]) -> list[tuple[str, str | None]]:
    """(absolute URL, last modified) for the listing and app pages. Not the version
    folders: their pages only lead to the app page's sections."""
    urls: list[tuple[str, str | None]] = [
        (url_for(site.base, path), None)
        for path in sorted(site.files)
        if path.endswith("index.html") and not path.startswith("apps/")
    ]
    urls += [
        (
            url_for(site.base, f"apps/{card.key}/index.html"),
            max((r.published for r in card.releases), default=None),
        )
        for card in cards
    ]
    return urls[:SITEMAP_LIMIT]


def key_label(key: PublicKey | None) -> str:
    if key is None:
        return "not listed in keys.json"
    label = key.status
    return f"{label}, DEVELOPMENT key" if key.development else label
