"""The Spacelift Flows app-registry files: `registry.json` and `apps/<key>/versions.json`.

These carry exactly the fields Flows defines and nothing more, so a strict Flows
parser accepts them. Everything appshelf adds lives in its own files (documents.py).
"""

from __future__ import annotations

from pydantic import Field

from appshelf.formats.frozen import FrozenModel

CHECKSUM_PATTERN = r"^sha256:[0-9a-f]{64}$"
COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}$"


class _FlowsModel(FrozenModel):
    pass


class BlockStyle(_FlowsModel):
    iconUrl: str | None = None  # omitted when the app has no icon
    color: str = Field(pattern=COLOR_PATTERN)


class FlowsApp(_FlowsModel):
    name: str
    description: str
    blockStyle: BlockStyle
    appMetadataUrl: str


class FlowsRegistry(_FlowsModel):
    """`registry.json`: every app by key."""

    apps: dict[str, FlowsApp]


class FlowsVersion(_FlowsModel):
    version: str
    artifactUrl: str
    artifactChecksum: str = Field(pattern=CHECKSUM_PATTERN)


class FlowsVersions(_FlowsModel):
    """`apps/<key>/versions.json`: one app's versions, newest first."""

    versions: list[FlowsVersion]
