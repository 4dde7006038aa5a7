"""Read a registry source tree into typed objects, collecting every problem at once.

Nothing here writes; nothing here hashes. The result is what the build pipeline
plans from. Hostile input is expected: symlinks that leave the tree, unreadable or
huge config files, odd names. Each becomes a `Problem` naming the file and field.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import unquote

import pydantic
import semver
from pydantic_core import ErrorDetails

from appshelf.errors import (
    BundleError,
    IconError,
    InputFileError,
    Problem,
    SourceTreeError,
    TemplateError,
)
from appshelf.filestat import StatKey, parallel_map, stat_key
from appshelf.formats.layout import is_active_document
from appshelf.formats.mpk import MAX_MPK_BYTES
from appshelf.formats.mpkverify import VerifiedBundle, verify_bundle
from appshelf.formats.publishers import PublishersDocument
from appshelf.formats.statement import MAX_STATEMENT_BYTES, OWNERS_DIR, STATEMENT_FILE
from appshelf.inputfile import check_regular, read_input_file
from appshelf.source.fingerprint import AppEntries, app_entries
from appshelf.source.icons import check_png, check_svg
from appshelf.source.models import (
    APP_KEY_RE,
    ARTIFACT_NAME_RE,
    RESERVED_ARTIFACT_NAMES,
    AppConfig,
    RegistryConfig,
    ReleaseConfig,
)
from appshelf.source.publishers import read_identities
from appshelf.source.rotations import read_statement_folder
from appshelf.source.templates import MAX_PAYLOAD, TemplateSummary, check_template
from appshelf.source.text import internal_host_problem, url_without_userinfo

MAX_CONFIG_BYTES = 1 << 20  # registry.toml, app.toml, release.toml
MAX_README_BYTES = 1 << 20
MAX_ICON_BYTES = 1 << 20
ICON_NAMES = ("icon.svg", "icon.png")
# apps/<key>/versions/: where the Flows core registry keeps its artifacts. Not a version
# (never SemVer); its objects are published by whoever put them in the bucket and are
# referenced by artifact_url, so the build skips the folder instead of refusing it.
FLOWS_ARTIFACT_FOLDER = "versions"
ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


class SourceMemo(Protocol):
    """What an earlier build read, keyed by path and stat key (builder/cache.py keeps it).

    A hit must only ever save work: the payload is the validated config as JSON (parsed
    again by pydantic, never unpickled) or a folder's listing, and it is used only while
    the file's size, mtime, inode, ctime and device are all unchanged."""

    def recall(self, name: str, key: StatKey) -> bytes | None: ...

    def remember(self, name: str, key: StatKey, payload: bytes) -> None: ...


@dataclass(frozen=True)
class UnchangedApp:
    """An app whose folder is exactly as when an earlier build planned it, so it is not
    read again: the build reuses what it planned then (builder/memo.py)."""

    key: str
    folder: Path
    versions: int
    dependencies: tuple[tuple[str, str], ...]  # (depended-on app, version declaring it)


class AppReuse(Protocol):
    """Picks the app folders that are unchanged since an earlier build."""

    def unchanged_apps(
        self, config: RegistryConfig, folders: list[Path]
    ) -> dict[Path, UnchangedApp]: ...


@dataclass(frozen=True)
class SourceArtifact:
    """A local file to hash and copy, or an external URL pinned by digest and size."""

    filename: str
    path: Path | None = None
    url: str | None = None
    sha256: str | None = None
    size: int | None = None

    @property
    def external(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class SourceVersion:
    app_key: str
    version: str
    folder: Path
    release: ReleaseConfig
    artifact: SourceArtifact
    statement: bytes | None = None  # statement.json: the publisher's signed statement
    template: TemplateSummary | None = None  # a template's checked bundle (templates.py)
    bundle: VerifiedBundle | None = None  # a verified Calimero .mpk artifact (spec 12)

    @property
    def semver(self) -> semver.Version:
        return semver.Version.parse(self.version)


@dataclass(frozen=True)
class SourceApp:
    key: str
    folder: Path
    config: AppConfig
    icon: Path | None
    readme: str | None
    versions: list[SourceVersion]  # newest first
    entries: AppEntries | None = None  # app_entries(), taken before the folder was read
    icon_data: bytes | None = None  # the icon's bytes as checked: published as they are

    @property
    def calimero_package(self) -> str:
        """The package id its .mpk bundles must name: app.toml's, else the app key."""
        return self.config.calimero_package or self.key


@dataclass(frozen=True)
class SourceTree:
    root: Path
    config: RegistryConfig
    apps: list[SourceApp]  # sorted by key: the apps that were read
    unchanged: list[UnchangedApp] = field(default_factory=list)  # sorted; not read again
    identities: PublishersDocument | None = None  # publishers/ and orgs/, when declared
    owner_changes: list[bytes] = field(default_factory=list)  # owners/*.json, by name
    # registry.toml's base_url, when --base-url (a preview, a demo) replaced it in `config`
    declared_base_url: str | None = None
    _keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _versions: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Counted once: `take_apps` empties `apps`, and the report still needs them.
        keys = sorted([app.key for app in self.apps] + [app.key for app in self.unchanged])
        versions = sum(len(app.versions) for app in self.apps)
        object.__setattr__(self, "_keys", tuple(keys))
        object.__setattr__(self, "_versions", versions + sum(a.versions for a in self.unchanged))

    @property
    def version_count(self) -> int:
        """Versions in the source: those of the apps read and of the unchanged ones."""
        return self._versions

    @property
    def app_count(self) -> int:
        return len(self._keys)

    @property
    def app_keys(self) -> tuple[str, ...]:
        """Every app's key, read or unchanged, sorted."""
        return self._keys

    def take_apps(self) -> Iterator[SourceApp]:
        """The apps read, in order, each let go of as it is handed over: a build that
        plans one app at a time then holds one app's source at a time. `apps` is empty
        afterwards (the counts and keys stay)."""
        self.apps.reverse()
        while self.apps:
            yield self.apps.pop()


@dataclass
class _Reader:
    """Walks the tree; every check appends to `problems` instead of raising."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    # What listing a folder told for free (d_type): path -> (is_symlink, is_dir, is_file)
    # (the last two false for symlinks: those are followed when asked). With it,
    # only symlinks need the costly resolve(); a plain entry of a folder known to be
    # inside the tree is inside too. 100,000 versions made resolve() a top hotspot.
    # (dicts, not sets, for their order: `app_scope` drops what one app added, last first)
    kinds: dict[Path, tuple[bool, bool, bool]] = field(default_factory=dict)
    listed: dict[Path, None] = field(default_factory=dict)
    dirs_inside: dict[Path, None] = field(default_factory=dict)
    memo: SourceMemo | None = None
    allow_internal_hosts: bool = False  # [registry] allow_internal_artifact_hosts
    base_url: str | None = None  # artifact URLs under it are the registry's own

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def problem(self, path: Path, fieldname: str, message: str) -> None:
        self.problems.append(Problem(self.rel(path), fieldname, message))

    def inside(self, path: Path) -> bool:
        """True when `path` (following symlinks) stays in the tree; else records why not."""
        kind = self.kinds.get(path)
        if kind is not None and not kind[0] and path.parent in self.dirs_inside:
            if kind[1]:
                self.dirs_inside[path] = None
            return True
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            self.problem(path, "", f"cannot resolve path ({getattr(exc, 'strerror', exc)})")
            return False
        if resolved != self.root and self.root not in resolved.parents:
            self.problem(path, "", "symlink points outside the source tree")
            return False
        if resolved.is_dir():
            self.dirs_inside[path] = None
        return True

    @contextlib.contextmanager
    def app_scope(self) -> Iterator[None]:
        """Forget, afterwards, what reading one app folder added to the listings known:
        nothing looks inside an app folder once it is read, and a cold read of 100,000
        versions kept a `Path` and a tuple for every file of every app to the end.
        Nothing else removes entries, so those after the marks are exactly the app's."""
        marks = [(found, len(found)) for found in (self.kinds, self.listed, self.dirs_inside)]
        try:
            yield
        finally:
            for found, mark in marks:
                while len(found) > mark:
                    found.popitem()  # the last added first (dicts keep insertion order)

    def present(self, path: Path) -> bool:
        """Exists, or is a symlink (even a dangling one, which must be reported, not skipped)."""
        if path.parent in self.listed:
            return path in self.kinds
        return path.exists() or path.is_symlink()

    def is_dir(self, path: Path) -> bool:
        kind = self.kinds.get(path)
        if kind is not None and not kind[0]:
            return kind[1]
        return path.is_dir()

    def read_bytes(self, path: Path, limit: int) -> bytes | None:
        return self._read_bytes(path, limit)[0]

    def target(self, path: Path) -> Path:
        """What to open for `path`, already known to stay `inside()`: the path itself, or
        for a symlink the file it resolves to. Either is opened without following a
        symlink, so one swapped in after the check is refused, not followed."""
        kind = self.kinds.get(path)
        if kind is not None and not kind[0]:
            return path
        return path.resolve() if path.is_symlink() else path

    def _read_bytes(self, path: Path, limit: int) -> tuple[bytes | None, StatKey | None]:
        if not self.inside(path):
            return None, None
        try:
            data, st, stable = read_input_file(self.target(path), limit)
        except (InputFileError, OSError, RuntimeError) as exc:
            self.problem(path, "", str(exc))
            return None, None
        return data, (stat_key(st) if stable else None)

    def regular_stat(self, path: Path) -> os.stat_result | None:
        """stat() of a file (inside the tree) that is regular and singly linked, else None
        with the reason recorded."""
        try:
            st = os.stat(self.target(path), follow_symlinks=False)
            check_regular(st)
        except (InputFileError, OSError, RuntimeError) as exc:
            message = f"cannot read ({exc.strerror})" if isinstance(exc, OSError) else str(exc)
            self.problem(path, "", message)
            return None
        return st

    def read_model(self, path: Path, model: type[ModelT]) -> ModelT | None:
        if self.memo is not None and self.inside(path):
            st = self.regular_stat(path)
            if st is None:
                return None
            key: StatKey | None = stat_key(st)
            payload = self.memo.recall(self.rel(path), key) if key is not None else None
            if payload is not None:
                try:
                    return model.model_validate_json(payload, strict=False)
                except pydantic.ValidationError:
                    pass  # not what this model stores: read the file as if never seen
        raw, key = self._read_bytes(path, MAX_CONFIG_BYTES)
        if raw is None:
            return None
        parsed = self._parse_model(path, raw, model)
        if parsed is not None and self.memo is not None and key is not None:
            self.memo.remember(self.rel(path), key, parsed.model_dump_json().encode())
        return parsed

    def _parse_model(self, path: Path, raw: bytes, model: type[ModelT]) -> ModelT | None:
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.problem(path, "", "not UTF-8 text")
            return None
        except tomllib.TOMLDecodeError as exc:
            self.problem(path, "", f"invalid TOML ({exc})")
            return None
        except RecursionError:
            self.problem(path, "", "invalid TOML (nested too deeply)")
            return None
        try:
            return model.model_validate(data)
        except RecursionError:
            self.problem(path, "", "nested too deeply")
            return None
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                self.problem(path, _field_name(error["loc"]), _message(error))
            return None

    def list_dir(self, folder: Path) -> list[Path]:
        """Sorted entries, dotfiles left out. With a memo, a folder whose stat key is
        unchanged (adding, removing or renaming an entry moves its mtime) is not read."""
        key: StatKey | None = None
        if self.memo is not None:
            try:
                key = stat_key(folder.stat())
            except OSError:
                key = None
            payload = self.memo.recall(self.rel(folder) + "/", key) if key else None
            if payload is not None:
                try:
                    rows = json.loads(payload)
                    found = []
                    for name, symlink, plain_dir, plain_file in rows:
                        path = folder / name
                        self.kinds[path] = (bool(symlink), bool(plain_dir), bool(plain_file))
                        found.append(path)
                    self.listed[folder] = None
                    return found
                except (ValueError, TypeError):
                    pass  # a damaged row: list the folder
        found = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    path = folder / entry.name
                    symlink = entry.is_symlink()
                    self.kinds[path] = (
                        symlink,
                        not symlink and entry.is_dir(follow_symlinks=False),
                        not symlink and entry.is_file(follow_symlinks=False),
                    )
                    found.append(path)
        except OSError as exc:
            self.problem(folder, "", f"cannot list folder ({exc.strerror})")
            return []
        self.listed[folder] = None
        found.sort()
        if self.memo is not None and key is not None:
            rows = [[p.name, *self.kinds[p]] for p in found]
            self.memo.remember(self.rel(folder) + "/", key, json.dumps(rows).encode())
        return found


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


def _message(error: ErrorDetails) -> str:
    text = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see docs/spec.md for the allowed keys)"
    if error["type"] == "missing":
        return "required"
    return text


def read_registry_config(root: Path) -> RegistryConfig:
    """Just `root/registry.toml`, read and validated under the same rules as a build
    (regular file, size cap, nesting), for commands that need only the settings.

    Raises:
        SourceTreeError: it is missing or has problems (all of them are listed).
    """
    root = root.resolve()
    reader = _Reader(root)
    path = root / "registry.toml"
    if not reader.present(path):
        raise SourceTreeError([Problem("registry.toml", "", "missing: every registry needs one")])
    config = reader.read_model(path, RegistryConfig)
    if config is None:
        raise SourceTreeError(reader.problems)
    return config


def load_source_tree(
    root: Path,
    base_url: str | None = None,
    memo: SourceMemo | None = None,
    reuse: AppReuse | None = None,
) -> SourceTree:
    """Read and validate the whole tree; raise `SourceTreeError` listing every problem.

    `base_url` replaces registry.toml's (for a preview server or a Pages demo). `memo`
    lets unchanged config files and folders be taken from an earlier build; `reuse`
    lets whole unchanged app folders be skipped (they land in `SourceTree.unchanged`)."""
    root = root.resolve()
    reader = _Reader(root, memo=memo)
    if not root.is_dir():
        raise SourceTreeError([Problem(str(root), "", "source folder does not exist")])
    config_path = root / "registry.toml"
    if not (config_path.exists() or config_path.is_symlink()):
        raise SourceTreeError([Problem("registry.toml", "", "missing: every registry needs one")])
    config = reader.read_model(config_path, RegistryConfig)
    declared = config.registry.base_url if config is not None else None
    if config is not None and base_url is not None:
        config = _with_base_url(reader, config, base_url)
    if config is not None:
        reader.allow_internal_hosts = config.registry.allow_internal_artifact_hosts
        reader.base_url = config.registry.base_url
    identities = read_identities(reader, root, config.registry.base_url) if config else None
    owner_changes = _read_owner_changes(reader, root)
    apps, unchanged = _read_apps(reader, root / "apps", config, reuse)
    if reader.problems or config is None:
        raise SourceTreeError(reader.problems)
    _check_dependencies(reader, apps, unchanged)
    _check_packages(reader, apps)
    if reader.problems:
        raise SourceTreeError(reader.problems)
    return SourceTree(
        root=root,
        config=config,
        apps=sorted(apps, key=lambda a: a.key),
        unchanged=sorted(unchanged, key=lambda a: a.key),
        identities=identities,
        owner_changes=owner_changes,
        declared_base_url=declared,
    )


def _read_owner_changes(reader: _Reader, root: Path) -> list[bytes]:
    """owners/*.json, with its problems added to the reader's rather than raised."""
    try:
        return read_statement_folder(root, OWNERS_DIR)
    except SourceTreeError as exc:
        reader.problems.extend(exc.problems)
        return []


def _read_apps(
    reader: _Reader, apps_folder: Path, config: RegistryConfig | None, reuse: AppReuse | None
) -> tuple[list[SourceApp], list[UnchangedApp]]:
    """Every app folder under apps/: read, or taken as unchanged when `reuse` says so."""
    apps: list[SourceApp] = []
    unchanged: list[UnchangedApp] = []
    if not apps_folder.is_symlink():
        reader.dirs_inside.update(dict.fromkeys((reader.root, apps_folder)))
    if not apps_folder.is_dir():
        reader.problem(apps_folder, "", "missing: put each app in apps/<app-key>/")
        return apps, unchanged
    folders = reader.list_dir(apps_folder)
    plain = [f for f in folders if reader.kinds[f][1] and APP_KEY_RE.fullmatch(f.name)]
    reused: dict[Path, UnchangedApp] = {}
    if reuse is not None and config is not None:
        reused = reuse.unchanged_apps(config, plain)
    entries: dict[Path, AppEntries | None] = {}
    if reuse is not None:  # what the next build compares against
        fresh = [f for f in plain if f not in reused]
        entries = dict(zip(fresh, parallel_map(app_entries, fresh, workers=2), strict=True))
    for folder in folders:
        if folder in reused:
            unchanged.append(reused[folder])
            continue
        with reader.app_scope():
            app = _read_app(reader, folder, entries.get(folder))
        if app is not None:
            apps.append(app)
    return apps, unchanged


def _with_base_url(reader: _Reader, config: RegistryConfig, base_url: str) -> RegistryConfig | None:
    data = config.model_dump()
    data["registry"]["base_url"] = base_url
    try:
        return RegistryConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            reader.problems.append(Problem("--base-url", "", _message(error)))
        return None


def _read_app(reader: _Reader, folder: Path, entries: AppEntries | None) -> SourceApp | None:
    key = folder.name
    if not _is_app_folder(reader, folder):
        return None
    listing = reader.list_dir(folder)
    app_toml = folder / "app.toml"
    if not reader.present(app_toml):
        reader.problem(app_toml, "", "missing: every app folder needs an app.toml")
        return None
    config = reader.read_model(app_toml, AppConfig)
    icon, icon_data = _find_icon(reader, folder, config) or (None, None)
    readme = _read_readme(reader, folder / "README.md")
    package = (config.calimero_package or key) if config else None
    versions = _read_versions(reader, key, listing, package)
    if config is None:
        return None
    versions.sort(key=lambda v: v.semver, reverse=True)
    if config.kind == "template":
        versions = [v for v in map(partial(_template_version, reader), versions) if v]
    return SourceApp(key, folder, config, icon, readme, versions, entries, icon_data)


def _is_app_folder(reader: _Reader, folder: Path) -> bool:
    """An entry of apps/ that is a folder inside the tree named by a valid app key."""
    if not reader.inside(folder):
        return False
    if not reader.is_dir(folder):
        reader.problem(folder, "", "not a folder: apps/ holds one folder per app")
        return False
    if not APP_KEY_RE.fullmatch(folder.name):
        reader.problem(
            folder,
            "",
            f"invalid app key {folder.name!r}: use 1-64 of a-z 0-9 _ - starting with a "
            "letter or digit",
        )
        return False
    return True


def _read_readme(reader: _Reader, readme_path: Path) -> str | None:
    """README.md as text, when present and UTF-8 (else None, the problem recorded)."""
    if not reader.present(readme_path):
        return None
    raw = reader.read_bytes(readme_path, MAX_README_BYTES)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        reader.problem(readme_path, "", "not UTF-8 text")
        return None


def _is_version_entry(reader: _Reader, entry: Path) -> bool:
    """An app folder's entry to read as a version: a folder (or a symlink to one inside
    the tree), other than the Flows artifact folder. Files beside the versions are not."""
    symlink, plain_dir, _ = reader.kinds[entry]
    if not plain_dir and not symlink:
        return False  # app.toml, icon, README and other files beside the versions
    if entry.name == FLOWS_ARTIFACT_FOLDER:
        return False  # the Flows core layout's artifacts, referenced by artifact_url
    if not reader.inside(entry):
        return False
    return not symlink or entry.is_dir()


def _read_versions(
    reader: _Reader, key: str, listing: list[Path], package: str | None
) -> list[SourceVersion]:
    """The app's versions in listing order, refusing two of the same SemVer precedence.
    `package` is None when app.toml is broken (then .mpk bundles are not verified)."""
    versions: list[SourceVersion] = []
    seen: dict[semver.Version, str] = {}
    for entry in listing:
        if not _is_version_entry(reader, entry):
            continue
        version = _read_version(reader, key, entry, package)
        if version is None:
            continue
        parsed = version.semver
        if parsed in seen:
            reader.problem(
                entry,
                "",
                f"duplicate version: {version.version!r} has the same precedence as "
                f"{seen[parsed]!r} (build metadata does not distinguish versions)",
            )
            continue
        seen[parsed] = version.version
        versions.append(version)
    return versions


def _find_icon(
    reader: _Reader, folder: Path, config: AppConfig | None
) -> tuple[Path, bytes] | None:
    """The icon and its bytes, checked by content (source/icons.py)."""
    if config is not None and config.icon is not None:
        candidates = [folder / config.icon]
        if not reader.present(candidates[0]):
            reader.problem(folder / "app.toml", "icon", f"file {config.icon!r} not found")
            return None
    else:
        candidates = [folder / n for n in ICON_NAMES if reader.present(folder / n)]
        if len(candidates) > 1:
            reader.problem(folder, "icon", "both icon.svg and icon.png exist; keep one")
            return None
        if not candidates:
            return None
    icon = candidates[0]
    data = reader.read_bytes(icon, MAX_ICON_BYTES)
    if data is None:
        return None
    try:
        (check_svg if icon.suffix == ".svg" else check_png)(data)
    except IconError as exc:
        reader.problem(icon, "", f"{icon.suffix[1:].upper()} icon refused: {exc}")
        return None
    return icon, data


def _read_version(
    reader: _Reader, app_key: str, folder: Path, package: str | None
) -> SourceVersion | None:
    name = folder.name
    if not _is_version_name(reader, folder):
        return None
    listing = reader.list_dir(folder)
    release_path = folder / "release.toml"
    release = _read_release(reader, release_path)
    if release is None:
        return None
    files, statement, refused = _version_files(reader, listing)
    if refused:
        return None  # already reported; guessing the artifact now would only add noise
    if release.artifact_url is not None:
        if files:
            reader.problem(
                folder, "", "has both artifact_url in release.toml and a local file; keep one"
            )
            return None
        artifact = _external_artifact(reader, release_path, release, f"{app_key}-{name}")
        if artifact is None:
            return None
        return SourceVersion(app_key, name, folder, release, artifact, statement)
    chosen = _chosen_artifact(reader, folder, release, files)
    if chosen is None or not _local_artifact_ok(reader, chosen):
        return None
    bundle = None
    if chosen.name.endswith(".mpk"):
        if package is None:
            return None  # app.toml is broken (reported): no package to check against
        bundle = _verify_mpk(reader, chosen, package, name)
        if bundle is None:
            return None
    artifact = SourceArtifact(chosen.name, path=chosen)
    return SourceVersion(app_key, name, folder, release, artifact, statement, bundle=bundle)


def _is_version_name(reader: _Reader, folder: Path) -> bool:
    """A version folder is named by its SemVer 2.0.0 version (no leading 'v')."""
    name = folder.name
    if semver.Version.is_valid(name):
        return True
    v_prefixed = name[:1] in "vV" and semver.Version.is_valid(name[1:])
    hint = " (drop the leading 'v')" if v_prefixed else ""
    reader.problem(folder, "", f"folder name {name!r} is not a SemVer 2.0.0 version{hint}")
    return False


def _read_release(reader: _Reader, release_path: Path) -> ReleaseConfig | None:
    """release.toml, or the defaults when there is none; None when it has problems."""
    if reader.present(release_path):
        return reader.read_model(release_path, ReleaseConfig)
    return ReleaseConfig()


def _version_files(reader: _Reader, listing: list[Path]) -> tuple[list[Path], bytes | None, bool]:
    """A version folder's candidate artifact files, its statement.json, and whether an
    entry was refused (a folder, a symlink leaving the tree, an unreadable statement)."""
    files: list[Path] = []
    refused = False
    statement: bytes | None = None
    for entry in listing:
        if entry.name == "release.toml":
            continue
        if entry.name == STATEMENT_FILE:
            statement = reader.read_bytes(entry, MAX_STATEMENT_BYTES)
            refused = refused or statement is None
            continue
        if not reader.inside(entry):
            refused = True
        elif reader.is_dir(entry):
            reader.problem(entry, "", "unexpected folder inside a version folder")
            refused = True
        else:
            files.append(entry)
    return files, statement, refused


def _external_artifact(
    reader: _Reader, release_path: Path, release: ReleaseConfig, fallback_name: str
) -> SourceArtifact | None:
    """The artifact named by release.toml's artifact_url, pinned by its sha256 and size,
    or None with the problem recorded against artifact_url."""
    url = release.artifact_url
    assert url is not None and release.sha256 is not None and release.size is not None
    problem = _own_url_problem(reader.base_url, url)
    if problem is not None:
        reader.problem(release_path, "artifact_url", problem)
        return None
    if not _artifact_host_allowed(reader, release_path, url):
        return None
    filename = url.rstrip("/").rsplit("/", 1)[-1] or fallback_name
    if filename.endswith(".mpk"):
        reader.problem(
            release_path,
            "artifact_url",
            "a Calimero .mpk bundle must be in the version folder, so that the build "
            "can verify its signature and contents (spec section 12)",
        )
        return None
    if not ARTIFACT_NAME_RE.fullmatch(filename) or filename in RESERVED_ARTIFACT_NAMES:
        reader.problem(
            release_path,
            "artifact_url",
            f"the last path segment {filename!r} is the artifact's file name for "
            "consumers, so it must be [A-Za-z0-9._+-] (no query string) and not reserved",
        )
        return None
    return SourceArtifact(filename=filename, url=url, sha256=release.sha256, size=release.size)


def _chosen_artifact(
    reader: _Reader, folder: Path, release: ReleaseConfig, files: list[Path]
) -> Path | None:
    """The local artifact: the file release.toml's `artifact` names, else the only one."""
    if release.artifact is not None:
        chosen = folder / release.artifact
        if chosen not in files:
            reader.problem(
                folder / "release.toml", "artifact", f"file {release.artifact!r} not found"
            )
            return None
        return chosen
    if not files:
        reader.problem(folder, "", "no artifact file (or set artifact_url in release.toml)")
        return None
    if len(files) > 1:
        names = ", ".join(p.name for p in files)
        reader.problem(
            folder, "", f"several files ({names}); name one with `artifact` in release.toml"
        )
        return None
    return files[0]


def _local_artifact_ok(reader: _Reader, chosen: Path) -> bool:
    """A local artifact's name is publishable and not run as a page; the file is a
    regular, singly linked, readable file. Else False with the problem recorded."""
    if not ARTIFACT_NAME_RE.fullmatch(chosen.name) or chosen.name in RESERVED_ARTIFACT_NAMES:
        reader.problem(chosen, "", "artifact file name must be [A-Za-z0-9._+-] and not reserved")
        return False
    if is_active_document(chosen.name):
        reader.problem(
            chosen,
            "",
            "a browser would run this file as a page of the registry's site (its name "
            "ends in an HTML, SVG or XML suffix); publish it packed (.zip, .tar.gz) or "
            "under another name",
        )
        return False
    if reader.regular_stat(chosen) is None:
        return False
    if not os.access(chosen, os.R_OK):
        reader.problem(chosen, "", "cannot read the artifact (check its permissions)")
        return False
    return True


def _template_version(reader: _Reader, version: SourceVersion) -> SourceVersion | None:
    """A template's version with its bundle checked (ANIP's safety limits), or None with
    the problem recorded, naming the file and the field."""
    path = version.artifact.path
    if path is None:
        reader.problem(
            version.folder / "release.toml",
            "artifact_url",
            "a template's bundle must be in the version folder, where the build can check it",
        )
        return None
    st = reader.regular_stat(path)
    if st is None:
        return None
    if st.st_size > MAX_PAYLOAD:
        reader.problem(
            path, "", f"payload is {st.st_size} bytes; ANIP allows at most 1 MiB ({MAX_PAYLOAD})"
        )
        return None
    data = reader.read_bytes(path, MAX_PAYLOAD)
    if data is None:
        return None
    try:
        summary = check_template(data)
    except TemplateError as exc:
        reader.problem(path, exc.field, exc.message)
        return None
    return replace(version, template=summary)


def _verify_mpk(reader: _Reader, path: Path, package: str, version: str) -> VerifiedBundle | None:
    """A Calimero bundle is verified as Calimero does before it is published (spec 12)."""
    data = reader.read_bytes(path, MAX_MPK_BYTES)
    if data is None:
        return None
    try:
        return verify_bundle(data, package=package, app_version=version)
    except BundleError as exc:
        reader.problem(path, exc.field, f"Calimero bundle refused: {exc.reason}")
        return None


def _own_url_problem(base_url: str | None, url: str) -> str | None:
    """Why an artifact URL cannot be used: http:// outside the registry's own base_url, or
    under it a path the build writes itself (the output is uploaded over such a path)."""
    if base_url is None or not url.startswith(base_url):
        if url.startswith("https://"):
            return None
        return (
            f"must be an https:// URL, got {url_without_userinfo(url)!r} (http:// only under "
            "the registry's own base_url)"
        )
    parts = unquote(url[len(base_url) :]).split("/")
    owned = (
        len(parts) < 2
        or parts[0] == "log"
        or (parts[0] == "apps" and (len(parts) < 4 or semver.Version.is_valid(parts[2])))
    )
    if not owned:
        return None
    return (
        "is under base_url at a path appshelf writes itself (top-level files, log/, "
        "apps/<key>/<file>, version folders); put objects already in the bucket elsewhere, "
        f"for example apps/<key>/{FLOWS_ARTIFACT_FOLDER}/<version>.tar.gz"
    )


def artifact_url_refusal(config: RegistryConfig, url: str) -> str | None:
    """Why the build would refuse `url` as an `artifact_url` of a registry with `config`
    (scheme, the paths under base_url the build owns, internal hosts), or None. For
    `appshelf import`/`sync`, which ask before they fetch anything from such a URL."""
    try:
        ReleaseConfig.model_validate({"artifact_url": url, "sha256": "0" * 64, "size": 0})
    except pydantic.ValidationError as exc:
        return _message(exc.errors()[0])
    reader = _Reader(Path("/"), allow_internal_hosts=config.registry.allow_internal_artifact_hosts)
    reader.base_url = config.registry.base_url
    problem = _own_url_problem(reader.base_url, url)
    filename = url.rstrip("/").rsplit("/", 1)[-1]
    if problem is None and (
        not ARTIFACT_NAME_RE.fullmatch(filename) or filename in RESERVED_ARTIFACT_NAMES
    ):
        problem = (
            f"the last path segment {filename!r} is the artifact's file name for consumers, "
            "so it must be [A-Za-z0-9._+-] (no query string) and not reserved"
        )
    if problem is None and not _artifact_host_allowed(reader, Path("release.toml"), url):
        problem = reader.problems[-1].message
    return problem


def _artifact_host_allowed(reader: _Reader, release_path: Path, url: str) -> bool:
    """An artifact on loopback, a private network or a metadata service is refused unless
    the registry allows internal hosts (or it is under the registry's own base_url)."""
    if reader.allow_internal_hosts or (reader.base_url and url.startswith(reader.base_url)):
        return True
    problem = internal_host_problem(url)
    if problem is None:
        return True
    reader.problem(
        release_path,
        "artifact_url",
        f"{problem}; set [registry] allow_internal_artifact_hosts = true in registry.toml "
        "if the registry is only for that network",
    )
    return False


def _check_packages(reader: _Reader, apps: list[SourceApp]) -> None:
    """Two apps with Calimero bundles cannot be the same Calimero package."""
    owners: dict[str, str] = {}
    for app in apps:
        if not any(v.bundle is not None for v in app.versions):
            continue
        other = owners.setdefault(app.calimero_package, app.key)
        if other != app.key:
            reader.problem(
                app.folder / "app.toml",
                "calimero_package",
                f"{app.calimero_package!r} is also the Calimero package of app {other!r}",
            )


def _check_dependencies(
    reader: _Reader, apps: list[SourceApp], unchanged: list[UnchangedApp]
) -> None:
    """A dependency on an app the registry does not have can never resolve."""
    keys = {app.key for app in apps} | {app.key for app in unchanged}
    for same in unchanged:  # its own checks passed when it was read; its targets may be gone
        for dependency, declared_in in same.dependencies:
            if dependency not in keys:
                reader.problem(
                    same.folder / declared_in / "release.toml",
                    f"dependencies.{dependency}",
                    f"no app {dependency!r} in this registry",
                )
    for app in apps:
        for version in app.versions:
            for dependency in version.release.dependencies:
                if dependency not in keys:
                    reader.problem(
                        version.folder / "release.toml",
                        f"dependencies.{dependency}",
                        f"no app {dependency!r} in this registry",
                    )
                elif dependency == app.key:
                    reader.problem(
                        version.folder / "release.toml",
                        f"dependencies.{dependency}",
                        "an app cannot depend on itself",
                    )
