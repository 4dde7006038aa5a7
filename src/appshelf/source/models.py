"""The configuration files of a registry source tree, as strict pydantic models.

Unknown keys are errors (a typo must not pass silently) and values are not coerced
(TOML already gives real types): what the author wrote is what the build uses.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from appshelf.errors import InvalidRangeError
from appshelf.formats.canonical import check_timestamp_range, parse_timestamp
from appshelf.formats.deploysettings import DeploySection as DeploySection
from appshelf.formats.frozen import FrozenModel

# The names' rules are the spec layer's (formats/layout.py), re-exported here.
from appshelf.formats.layout import APP_KEY_RE as APP_KEY_RE
from appshelf.formats.layout import ARTIFACT_NAME_RE as ARTIFACT_NAME_RE
from appshelf.formats.layout import RESERVED_ARTIFACT_NAMES as RESERVED_ARTIFACT_NAMES
from appshelf.formats.mpk import PACKAGE_RE
from appshelf.source.mirrors import MirrorsSection
from appshelf.source.text import artifact_url_problem, free_text, name_text, url_without_userinfo
from appshelf.versions import parse_range

INTERFACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,127}\Z")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9+._-]{0,31}\Z")
COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}\Z")
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
# Python's `$` also matches before a final newline: every pattern ends in \Z instead.
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
# A name-like field is one line without control or bidi characters; free text may have
# line breaks and tabs (source/text.py says which characters and why).
Name = Annotated[str, AfterValidator(name_text)]
FreeText = Annotated[str, AfterValidator(free_text)]


def _http_url(value: str | None, field: str, https_only: bool = False) -> str | None:
    if value is None:
        return None
    allowed = ("https://",) if https_only else ("https://", "http://")
    if not value.startswith(allowed) or len(value) > 2048 or any(c.isspace() for c in value):
        kinds = "an https:// URL" if https_only else "an http(s):// URL"
        raise ValueError(f"must be {kinds}, got {url_without_userinfo(value)!r}")
    name_text(value)
    if "@" in urlsplit(value).netloc:  # never echo it: a password may follow the name
        raise ValueError("must not contain a user name or password")
    return value


class _Config(FrozenModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RegistrySection(_Config):
    name: Annotated[Name, Field(min_length=1, max_length=200)]
    base_url: str
    description: FreeText = ""
    # Allow artifact_url hosts on loopback, private or link-local networks (see spec 7).
    allow_internal_artifact_hosts: bool = False

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        checked = _http_url(value, "base_url")
        assert checked is not None
        if "?" in checked or "#" in checked:
            raise ValueError(f"must not contain a query or fragment, got {value!r}")
        return checked if checked.endswith("/") else checked + "/"


class SigningSection(_Config):
    key_id: str | None = None  # when set, the loaded key must have this id
    key_file: Name | None = None  # relative to registry.toml
    key_env: str = "APPSHELF_SIGNING_KEY"
    production: bool = False  # refuse the development key
    snapshot_lifetime_days: Annotated[int, Field(ge=1, le=366)] = 30
    retired_keys: list[str] = Field(default_factory=list)  # hex public keys

    @field_validator("key_id")
    @classmethod
    def _key_id(cls, value: str | None) -> str | None:
        if value is not None and not SHA256_RE.fullmatch(value):
            raise ValueError(f"must be 64 lowercase hex digits, got {value!r}")
        return value

    @field_validator("key_env")
    @classmethod
    def _key_env(cls, value: str) -> str:
        if not ENV_NAME_RE.match(value):
            raise ValueError(f"must be an environment variable name like MY_KEY, got {value!r}")
        return value

    @field_validator("retired_keys")
    @classmethod
    def _retired(cls, value: list[str]) -> list[str]:
        for item in value:
            if not SHA256_RE.fullmatch(item):
                raise ValueError(f"each must be a 64-hex-digit public key, got {item!r}")
        return value


_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?\Z"
)


class SiteSection(_Config):
    """`[site]`: the HTML browse site."""

    overrides: Name | None = None  # folder (relative to registry.toml) with templates/static
    cname: str | None = None  # custom domain for GitHub Pages: written to CNAME

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.replace("\\", "/").split("/")
        if not value.strip() or value.startswith(("/", "~")) or ".." in parts:
            raise ValueError(
                f"must be a folder inside the source tree, relative to registry.toml, got {value!r}"
            )
        return value

    @field_validator("cname")
    @classmethod
    def _cname(cls, value: str | None) -> str | None:
        if value is not None and not _HOSTNAME_RE.fullmatch(value):
            raise ValueError(f"must be a lowercase host name like apps.example.com, got {value!r}")
        return value


class PublishersSection(_Config):
    """`[publishers]`: whether every new version needs its publisher's signature."""

    required: bool = False


class TufSection(_Config):
    """`[tuf]`: a TUF repository of the whole site (builder/tufrepo.py, docs/spec.md §16)."""

    enabled: bool = False
    # Hashed bins (TUF succinct delegation): a power of two; fixed once published, since
    # a TUF client refuses a snapshot that drops a metadata file it knew.
    bins: int = 256
    root_lifetime_days: Annotated[int, Field(ge=1, le=3660)] = 365
    targets_lifetime_days: Annotated[int, Field(ge=1, le=3660)] = 365

    @field_validator("bins")
    @classmethod
    def _bins(cls, value: int) -> int:
        if not 2 <= value <= 65536 or value & (value - 1):
            raise ValueError(f"must be a power of two from 2 to 65536, got {value}")
        return value


class RegistryConfig(_Config):
    """`registry.toml`."""

    registry: RegistrySection
    signing: SigningSection = Field(default_factory=SigningSection)
    deploy: DeploySection = Field(default_factory=DeploySection)
    site: SiteSection = Field(default_factory=SiteSection)
    publishers: PublishersSection = Field(default_factory=PublishersSection)
    mirrors: MirrorsSection = Field(default_factory=MirrorsSection)
    tuf: TufSection = Field(default_factory=TufSection)


def check_identities(value: list[str]) -> list[str]:
    """Publisher or organisation ids: the app-key alphabet, each once."""
    for item in value:
        if not APP_KEY_RE.fullmatch(item):
            raise ValueError(f"each must be a publisher or organisation id, got {item!r}")
    if len(set(value)) != len(value):
        raise ValueError("must not repeat")
    return value


class AppConfig(_Config):
    """`apps/<key>/app.toml`."""

    name: Annotated[Name, Field(min_length=1, max_length=200)]
    description: Annotated[FreeText, Field(min_length=1, max_length=2000)]
    color: str | None = None
    icon: str | None = None
    homepage: str | None = None
    repository: str | None = None
    license: Annotated[Name, Field(min_length=1, max_length=100)] | None = None
    tags: list[str] = Field(default_factory=list, max_length=32)
    category: Annotated[Name, Field(min_length=1, max_length=64)] | None = None
    # The versions.json this app's versions are mirrored from (`appshelf sync`, spec 13).
    upstream: str | None = None
    # "template": an ANIP starter template (source/templates.py checks its payload)
    kind: Literal["app", "template"] = "app"

    # Publishers or organisations that may release it; logged (docs/spec.md section 10).
    owners: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("owners")
    @classmethod
    def _owners(cls, value: list[str]) -> list[str]:
        return check_identities(value)
    # The Calimero package id (com.example.app) of the app's .mpk bundles: spec section 12.
    calimero_package: str | None = None

    @field_validator("calimero_package")
    @classmethod
    def _calimero_package(cls, value: str | None) -> str | None:
        if value is not None and (not PACKAGE_RE.fullmatch(value) or len(value) > 128):
            raise ValueError(
                "must be a lowercase package id like com.example.app "
                f"(dot-separated [a-z0-9_-] labels), got {value!r}"
            )
        return value

    @field_validator("color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not COLOR_RE.fullmatch(value):
            raise ValueError(f"must be #RRGGBB, got {value!r}")
        return value  # published as written: an imported Flows colour keeps its case

    @field_validator("homepage", "repository", "upstream")
    @classmethod
    def _links(cls, value: str | None) -> str | None:
        return _http_url(value, "link")

    @field_validator("icon")
    @classmethod
    def _icon(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.(svg|png)", value):
            raise ValueError(
                f"must name a .svg or .png file in the app folder (no sub-folders), got {value!r}"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not TAG_RE.fullmatch(tag):
                raise ValueError(
                    f"each tag must be lowercase [a-z0-9+._-], 1-32 chars, got {tag!r}"
                )
        if len(set(value)) != len(value):
            raise ValueError("tags must not repeat")
        return value


class ReleaseConfig(_Config):
    """`apps/<key>/<version>/release.toml`."""

    notes: Annotated[FreeText, Field(max_length=20000)] | None = None
    published: datetime | str | None = None
    artifact: str | None = None
    artifact_url: str | None = None
    sha256: str | None = None
    size: Annotated[int, Field(ge=0)] | None = None
    provides: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)
    dependencies: dict[str, str] = Field(default_factory=dict)
    yanked: bool | str = False

    @field_validator("published")
    @classmethod
    def _published(cls, value: datetime | str | None) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = parse_timestamp(value)
            except ValueError:
                raise ValueError(f"must be an RFC 3339 date-time, got {value!r}") from None
        if value.tzinfo is None:
            raise ValueError("must include a timezone offset (for example 2024-05-01T12:00:00Z)")
        check_timestamp_range(value)
        return value

    @field_validator("yanked")
    @classmethod
    def _yanked(cls, value: bool | str) -> bool | str:
        return name_text(value) if isinstance(value, str) else value

    @field_validator("artifact")
    @classmethod
    def _artifact(cls, value: str | None) -> str | None:
        if value is not None and (
            not ARTIFACT_NAME_RE.fullmatch(value) or value in RESERVED_ARTIFACT_NAMES
        ):
            raise ValueError(f"must be a plain file name in the version folder, got {value!r}")
        return value

    @field_validator("artifact_url")
    @classmethod
    def _artifact_url(cls, value: str | None) -> str | None:
        # http:// is accepted here only so that tree.py can allow it under an http://
        # base_url (a registry whose artifacts already sit in its bucket); it refuses the rest.
        checked = _http_url(value, "artifact_url")
        problem = artifact_url_problem(checked) if checked is not None else None
        if problem is not None:
            raise ValueError(problem)
        return checked

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not SHA256_RE.fullmatch(value):
            raise ValueError(f"must be 64 lowercase hex digits, got {value!r}")
        return value

    @field_validator("provides", "requires")
    @classmethod
    def _interfaces(cls, value: list[str]) -> list[str]:
        for item in value:
            if not INTERFACE_RE.fullmatch(item):
                raise ValueError(f"each must be an interface name like 'storage.kv', got {item!r}")
        return sorted(set(value))

    @field_validator("dependencies")
    @classmethod
    def _dependencies(cls, value: dict[str, str]) -> dict[str, str]:
        for key, spec in value.items():
            if not APP_KEY_RE.fullmatch(key):
                raise ValueError(f"{key!r} is not a valid app key")
            if not spec.strip() or len(spec) > 256 or not spec.isprintable():
                raise ValueError(f"{key}: version range must be a non-empty line of text")
            try:
                parse_range(spec)
            except InvalidRangeError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _external_needs_pins(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("artifact_url") is not None:
            missing = [name for name in ("sha256", "size") if data.get(name) is None]
            if missing:
                raise ValueError(
                    "an external artifact_url must be pinned: "
                    + " and ".join(missing)
                    + " required (`appshelf sync` records them: docs/import.md)"
                )
            if data.get("artifact") is not None:
                raise ValueError("give either artifact or artifact_url, not both")
        elif isinstance(data, dict):
            stray = [name for name in ("sha256", "size") if data.get(name) is not None]
            if stray:
                raise ValueError(
                    f"{' and '.join(stray)} only apply to an external artifact_url "
                    "(local artifacts are hashed by the build)"
                )
        return data

    @property
    def yanked_reason(self) -> str | None:
        if self.yanked is False:
            return None
        if self.yanked is True:
            return "yanked"
        return self.yanked.strip() or "yanked"
