"""Reading a Flows `registry.json` and `versions.json` that may be hostile.

Flows defines these files loosely (docs: "App registries"), and the official
registries show what turns up in practice: the core index writes `sha256:unknown`
when a bucket object lacks its checksum metadata, the community index writes
`artifactChecksum: null` for a GitHub release without a digest, and an app without an
icon has no `iconUrl`. Everything is checked against what an appshelf source tree
accepts (source/models.py), with whole-value patterns, and refused with a message
naming the file and the field: the importer never guesses a checksum or renames a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pydantic
import semver

from appshelf.source.models import APP_KEY_RE, AppConfig

CHECKSUM_RE = re.compile(r"sha256:([0-9a-f]{64})")
# A version becomes a folder name: strict SemVer, and only these characters.
VERSION_CHARS_RE = re.compile(r"[0-9A-Za-z.+-]{1,128}")
ICON_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(svg|png)")
# app.toml field -> where it comes from in registry.json
_FLOWS_FIELD = {
    "name": "name",
    "description": "description",
    "color": "blockStyle.color",
    "icon": "blockStyle.iconUrl",
    "upstream": "appMetadataUrl",
}


@dataclass(frozen=True)
class FlowsApp:
    """One `apps.<key>` entry, as the app.toml it becomes (`config`) plus its URLs."""

    key: str
    config: AppConfig  # name, description, color and icon name; upstream not yet decided
    icon_url: str | None
    metadata_url: str


@dataclass(frozen=True)
class FlowsVersion:
    version: str
    artifact_url: str
    sha256: str


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_registry(data: Any, where: str, max_apps: int) -> tuple[list[FlowsApp], list[str]]:
    """The apps of a registry.json, sorted by key, and the problems found (each names
    `where` and the field).

    Args:
        data: The parsed JSON (bounded reader).
        where: The file's URL or path, for messages.
        max_apps: Most apps accepted.
    """
    apps = data.get("apps") if isinstance(data, dict) else None
    if not isinstance(apps, dict):
        return [], [f"{where}: not a Flows registry: the top level must be an object with 'apps'"]
    if len(apps) > max_apps:
        return [], [f"{where}: apps: {len(apps):,} apps, more than the {max_apps:,} allowed"]
    found: list[FlowsApp] = []
    problems: list[str] = []
    for key in sorted(apps):
        app, app_problems = _parse_app(key, apps[key], where)
        problems += app_problems
        if app is not None:
            found.append(app)
    return found, problems


def _parse_app(key: str, entry: Any, where: str) -> tuple[FlowsApp | None, list[str]]:
    at = f"{where}: apps.{_short(key)}"
    if not APP_KEY_RE.fullmatch(key):
        return None, [
            f"{at}: app key {_short(key)} is not an appshelf app key (1-64 of a-z 0-9 _ -, "
            "starting with a letter or digit); appshelf does not rename apps, since the key "
            "is what installs refer to: rename it upstream"
        ]
    if not isinstance(entry, dict):
        return None, [f"{at}: must be an object"]
    style = entry.get("blockStyle", {})
    if not isinstance(style, dict):
        return None, [f"{at}.blockStyle: must be an object"]
    problems: list[str] = []
    icon_url, icon = _icon(style.get("iconUrl"), f"{at}.blockStyle.iconUrl", problems)
    metadata_url = entry.get("appMetadataUrl")
    if not isinstance(metadata_url, str) or not metadata_url.startswith(("https://", "http://")):
        problems.append(f"{at}.appMetadataUrl: must be an http(s) URL, got {_short(metadata_url)}")
    fields = {
        "name": entry.get("name"),
        "description": entry.get("description"),
        "color": style.get("color"),
        "icon": icon,
        "upstream": metadata_url if isinstance(metadata_url, str) else None,
    }
    try:
        config = AppConfig.model_validate({k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            field = _FLOWS_FIELD.get(str(error["loc"][0]), str(error["loc"][0]))
            message = "required" if error["type"] == "missing" else error["msg"]
            problems.append(f"{at}.{field}: {message.removeprefix('Value error, ')}")
        return None, problems
    if problems:
        return None, problems
    assert isinstance(metadata_url, str)
    return FlowsApp(key, config.model_copy(update={"upstream": None}), icon_url, metadata_url), []


def _icon(value: Any, at: str, problems: list[str]) -> tuple[str | None, str | None]:
    """The icon's URL and file name (its last path segment, kept as given)."""
    if value is None:
        return None, None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        problems.append(f"{at}: must be an http(s) URL, got {_short(value)}")
        return None, None
    name = urlsplit(value).path.rsplit("/", 1)[-1]
    if not ICON_NAME_RE.fullmatch(name):
        problems.append(
            f"{at}: the icon's file name {_short(name)} is kept as the published name, so it "
            "must be a plain .svg or .png name ([A-Za-z0-9._-]); appshelf publishes no other "
            "image format: convert the icon upstream"
        )
        return None, None
    return value, name


def parse_versions(
    data: Any, where: str, max_versions: int
) -> tuple[list[FlowsVersion], list[str]]:
    """The versions of one versions.json and the problems found (each names `where`).

    Args:
        data: The parsed JSON (bounded reader).
        where: The file's URL or path, for messages.
        max_versions: Most versions accepted.
    """
    entries = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return [], [
            f"{where}: not a Flows versions.json: the top level must be an object with "
            "a 'versions' list"
        ]
    if len(entries) > max_versions:
        return [], [
            f"{where}: versions: {len(entries):,} versions, more than the {max_versions:,} allowed"
        ]
    found: list[FlowsVersion] = []
    problems: list[str] = []
    seen: dict[semver.Version, str] = {}
    for index, entry in enumerate(entries):
        version, problem = _parse_version(entry, f"{where}: versions[{index}]")
        if problem is not None:
            problems.append(problem)
            continue
        assert version is not None
        parsed = semver.Version.parse(version.version)
        if parsed in seen:
            problems.append(
                f"{where}: versions[{index}]: version {version.version!r} is listed twice "
                f"(as {seen[parsed]!r} before; build metadata does not tell versions apart)"
            )
            continue
        seen[parsed] = version.version
        found.append(version)
    return found, problems


def _parse_version(entry: Any, at: str) -> tuple[FlowsVersion | None, str | None]:
    if not isinstance(entry, dict):
        return None, f"{at}: must be an object"
    version, url, checksum = (
        entry.get("version"),
        entry.get("artifactUrl"),
        entry.get("artifactChecksum"),
    )
    if not (
        isinstance(version, str)
        and VERSION_CHARS_RE.fullmatch(version)
        and semver.Version.is_valid(version)
    ):
        return None, f"{at}.version: {_short(version)} is not a SemVer 2.0.0 version"
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None, f"{at}.artifactUrl: must be an http(s) URL, got {_short(url)}"
    match = CHECKSUM_RE.fullmatch(checksum) if isinstance(checksum, str) else None
    if match is None:
        return None, (
            f"{at}.artifactChecksum: {_short(checksum)} is not 'sha256:' and 64 lowercase hex "
            f"digits, so version {version} has no checksum to pin (Flows writes "
            "'sha256:unknown' or null when it lost one); appshelf does not trust an artifact "
            "whose digest its registry does not know: fix the entry upstream"
        )
    return FlowsVersion(version, url, match.group(1)), None
