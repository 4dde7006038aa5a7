"""Read a registry source tree into typed objects, collecting every problem at once.

Nothing here writes; nothing here hashes. The result is what the build pipeline
plans from. Hostile input is expected: symlinks that leave the tree, unreadable or
huge config files, odd names. Each becomes a `Problem` naming the file and field.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pydantic
import semver
from pydantic_core import ErrorDetails

from appshelf.errors import Problem, SourceTreeError
from appshelf.source.models import (
    APP_KEY_RE,
    ARTIFACT_NAME_RE,
    RESERVED_ARTIFACT_NAMES,
    AppConfig,
    RegistryConfig,
    ReleaseConfig,
)

MAX_CONFIG_BYTES = 1 << 20  # registry.toml, app.toml, release.toml
MAX_README_BYTES = 1 << 20
MAX_ICON_BYTES = 1 << 20
ICON_NAMES = ("icon.svg", "icon.png")
_SVG_ACTIVE_CONTENT = re.compile(
    rb"<\s*script|<\s*foreignObject|\son[a-z]+\s*=|javascript:", re.IGNORECASE
)
ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


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


@dataclass(frozen=True)
class SourceTree:
    root: Path
    config: RegistryConfig
    apps: list[SourceApp]  # sorted by key

    @property
    def version_count(self) -> int:
        return sum(len(app.versions) for app in self.apps)


@dataclass
class _Reader:
    """Walks the tree; every check appends to `problems` instead of raising."""

    root: Path
    problems: list[Problem] = field(default_factory=list)

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def problem(self, path: Path, fieldname: str, message: str) -> None:
        self.problems.append(Problem(self.rel(path), fieldname, message))

    def inside(self, path: Path) -> bool:
        """True when `path` (following symlinks) stays in the tree; else records why not."""
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            self.problem(path, "", f"cannot resolve path ({getattr(exc, 'strerror', exc)})")
            return False
        if resolved != self.root and self.root not in resolved.parents:
            self.problem(path, "", "symlink points outside the source tree")
            return False
        return True

    def read_bytes(self, path: Path, limit: int) -> bytes | None:
        if not self.inside(path):
            return None
        try:
            size = path.stat().st_size
            if size > limit:
                self.problem(path, "", f"file is {size} bytes; the limit is {limit}")
                return None
            with path.open("rb") as handle:
                return handle.read(limit + 1)
        except OSError as exc:
            self.problem(path, "", f"cannot read ({exc.strerror})")
            return None

    def read_model(self, path: Path, model: type[ModelT]) -> ModelT | None:
        raw = self.read_bytes(path, MAX_CONFIG_BYTES)
        if raw is None:
            return None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.problem(path, "", "not UTF-8 text")
            return None
        except tomllib.TOMLDecodeError as exc:
            self.problem(path, "", f"invalid TOML ({exc})")
            return None
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                self.problem(path, _field_name(error["loc"]), _message(error))
            return None

    def list_dir(self, folder: Path) -> list[Path]:
        try:
            return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        except OSError as exc:
            self.problem(folder, "", f"cannot list folder ({exc.strerror})")
            return []


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


def load_source_tree(root: Path, base_url: str | None = None) -> SourceTree:
    """Read and validate the whole tree; raise `SourceTreeError` listing every problem.

    `base_url` replaces registry.toml's (for a preview server or a Pages demo)."""
    root = root.resolve()
    reader = _Reader(root)
    if not root.is_dir():
        raise SourceTreeError([Problem(str(root), "", "source folder does not exist")])
    config_path = root / "registry.toml"
    if not config_path.is_file():
        raise SourceTreeError([Problem("registry.toml", "", "missing: every registry needs one")])
    config = reader.read_model(config_path, RegistryConfig)
    if config is not None and base_url is not None:
        config = _with_base_url(reader, config, base_url)
    apps_folder = root / "apps"
    apps: list[SourceApp] = []
    if not apps_folder.is_dir():
        reader.problem(apps_folder, "", "missing: put each app in apps/<app-key>/")
    else:
        for folder in reader.list_dir(apps_folder):
            app = _read_app(reader, folder)
            if app is not None:
                apps.append(app)
    if reader.problems or config is None:
        raise SourceTreeError(reader.problems)
    _check_dependencies(reader, apps)
    if reader.problems:
        raise SourceTreeError(reader.problems)
    return SourceTree(root=root, config=config, apps=sorted(apps, key=lambda a: a.key))


def _with_base_url(reader: _Reader, config: RegistryConfig, base_url: str) -> RegistryConfig | None:
    data = config.model_dump()
    data["registry"]["base_url"] = base_url
    try:
        return RegistryConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            reader.problems.append(Problem("--base-url", "", _message(error)))
        return None


def _read_app(reader: _Reader, folder: Path) -> SourceApp | None:
    key = folder.name
    if not reader.inside(folder):
        return None
    if not folder.is_dir():
        reader.problem(folder, "", "not a folder: apps/ holds one folder per app")
        return None
    if not APP_KEY_RE.match(key):
        reader.problem(
            folder,
            "",
            f"invalid app key {key!r}: use 1-64 of a-z 0-9 _ - starting with a letter or digit",
        )
        return None
    app_toml = folder / "app.toml"
    if not _present(app_toml):
        reader.problem(app_toml, "", "missing: every app folder needs an app.toml")
        return None
    config = reader.read_model(app_toml, AppConfig)
    icon = _find_icon(reader, folder, config)
    readme_path = folder / "README.md"
    readme: str | None = None
    if _present(readme_path):
        raw = reader.read_bytes(readme_path, MAX_README_BYTES)
        if raw is not None:
            try:
                readme = raw.decode("utf-8")
            except UnicodeDecodeError:
                reader.problem(readme_path, "", "not UTF-8 text")
    versions: list[SourceVersion] = []
    seen: dict[semver.Version, str] = {}
    for entry in reader.list_dir(folder):
        if not entry.is_dir() and not entry.is_symlink():
            continue  # app.toml, icon, README and other files beside the versions
        if not reader.inside(entry):
            continue
        if not entry.is_dir():
            continue
        version = _read_version(reader, key, entry)
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
    if config is None:
        return None
    versions.sort(key=lambda v: v.semver, reverse=True)
    return SourceApp(key, folder, config, icon, readme, versions)


def _present(path: Path) -> bool:
    """Exists, or is a symlink (even a dangling one, which must be reported, not skipped)."""
    return path.exists() or path.is_symlink()


def _find_icon(reader: _Reader, folder: Path, config: AppConfig | None) -> Path | None:
    if config is not None and config.icon is not None:
        candidates = [folder / config.icon]
        if not _present(candidates[0]):
            reader.problem(folder / "app.toml", "icon", f"file {config.icon!r} not found")
            return None
    else:
        candidates = [folder / n for n in ICON_NAMES if _present(folder / n)]
        if len(candidates) > 1:
            reader.problem(folder, "icon", "both icon.svg and icon.png exist; keep one")
            return None
        if not candidates:
            return None
    icon = candidates[0]
    data = reader.read_bytes(icon, MAX_ICON_BYTES)
    if data is None:
        return None
    if icon.suffix == ".svg" and _SVG_ACTIVE_CONTENT.search(data):
        reader.problem(icon, "", "SVG icon contains script or event handlers; remove them")
        return None
    if icon.suffix == ".png" and not data.startswith(b"\x89PNG\r\n\x1a\n"):
        reader.problem(icon, "", "not a PNG file")
        return None
    return icon


def _read_version(reader: _Reader, app_key: str, folder: Path) -> SourceVersion | None:
    name = folder.name
    if not semver.Version.is_valid(name):
        v_prefixed = name[:1] in "vV" and semver.Version.is_valid(name[1:])
        hint = " (drop the leading 'v')" if v_prefixed else ""
        reader.problem(folder, "", f"folder name {name!r} is not a SemVer 2.0.0 version{hint}")
        return None
    release_path = folder / "release.toml"
    if _present(release_path):
        release = reader.read_model(release_path, ReleaseConfig)
        if release is None:
            return None
    else:
        release = ReleaseConfig()
    files: list[Path] = []
    refused = False
    for entry in reader.list_dir(folder):
        if entry.name == "release.toml":
            continue
        if not reader.inside(entry):
            refused = True
        elif entry.is_dir():
            reader.problem(entry, "", "unexpected folder inside a version folder")
            refused = True
        else:
            files.append(entry)
    if refused:
        return None  # already reported; guessing the artifact now would only add noise
    if release.artifact_url is not None:
        if files:
            reader.problem(
                folder, "", "has both artifact_url in release.toml and a local file; keep one"
            )
            return None
        assert release.sha256 is not None and release.size is not None
        filename = release.artifact_url.rstrip("/").rsplit("/", 1)[-1] or f"{app_key}-{name}"
        artifact = SourceArtifact(
            filename=filename, url=release.artifact_url, sha256=release.sha256, size=release.size
        )
        return SourceVersion(app_key, name, folder, release, artifact)
    if release.artifact is not None:
        chosen = folder / release.artifact
        if chosen not in files:
            reader.problem(release_path, "artifact", f"file {release.artifact!r} not found")
            return None
    elif not files:
        reader.problem(folder, "", "no artifact file (or set artifact_url in release.toml)")
        return None
    elif len(files) > 1:
        names = ", ".join(p.name for p in files)
        reader.problem(
            folder, "", f"several files ({names}); name one with `artifact` in release.toml"
        )
        return None
    else:
        chosen = files[0]
    if not ARTIFACT_NAME_RE.match(chosen.name) or chosen.name in RESERVED_ARTIFACT_NAMES:
        reader.problem(chosen, "", "artifact file name must be [A-Za-z0-9._+-] and not reserved")
        return None
    if not os.access(chosen, os.R_OK) or not chosen.is_file():
        reader.problem(chosen, "", "cannot read the artifact (check its permissions)")
        return None
    return SourceVersion(app_key, name, folder, release, SourceArtifact(chosen.name, path=chosen))


def _check_dependencies(reader: _Reader, apps: list[SourceApp]) -> None:
    """A dependency on an app the registry does not have can never resolve."""
    keys = {app.key for app in apps}
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
