"""`[deploy]` of registry.toml: the HTTP caching headers a deploy sends (docs/deploy.md).

Part of the spec layer so that deploy/ can take it without importing the source model;
source/models.py re-exports it as a section of `RegistryConfig`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


def header_value(value: str) -> str:
    """A printable ASCII HTTP header value of at most 256 characters.

    Raises:
        ValueError: it is empty, too long, or holds a control or non-ASCII character.
    """
    if not value.strip() or len(value) > 256 or any(ord(c) < 32 or ord(c) > 126 for c in value):
        raise ValueError(f"must be a printable ASCII HTTP header value, got {value!r}")
    return value


class DeploySection(BaseModel):
    """`[deploy]`: HTTP caching of the deployed files (see docs/deploy.md)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Artifacts never change once published.
    immutable_cache_control: str = "public, max-age=31536000, immutable"
    # Indexes, manifests, icons, HTML: they change when a version is added or yanked.
    cache_control: str = "public, max-age=300"
    # The signed snapshot: clients must see a new one promptly.
    snapshot_cache_control: str = "public, max-age=60, must-revalidate"

    @field_validator("immutable_cache_control", "cache_control", "snapshot_cache_control")
    @classmethod
    def _header(cls, value: str) -> str:
        return header_value(value)
