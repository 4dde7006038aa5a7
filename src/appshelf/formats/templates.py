"""`templates.json`: the registry's ANIP starter templates, apart from its apps.

docs/spec.md section 15 is the prose version of this file.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from appshelf.formats.canonical import TIMESTAMP_PATTERN
from appshelf.formats.documents import SPEC_VERSION, ArtifactRef

TEMPLATES_TYPE: Final = "appshelf.templates"


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemplateEntry(_Document):
    """One version of one template: what a project creator picks from."""

    key: str
    version: str
    name: str
    description: str
    published: str = Field(pattern=TIMESTAMP_PATTERN)
    yanked: str | None = None
    deprecated: str | None = None
    anip_spec_version: str
    project_type: str
    industries: list[str]
    domains: list[str]
    documents: list[str]  # paths of the bundle's Markdown documents
    connections: int = Field(ge=0)
    discovery: int = Field(ge=0)
    capabilities: int = Field(ge=0)
    log_index: int = Field(ge=0)
    manifest_path: str
    artifact: ArtifactRef


class TemplatesIndex(_Document):
    """Every template version, newest publication first, then by key, then newest version."""

    type: Literal["appshelf.templates"] = TEMPLATES_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str
    templates: list[TemplateEntry]


TEMPLATES_PATH: Final = "templates.json"
