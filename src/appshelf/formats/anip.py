"""The ANIP Registry read API, as static files under `registry-api/v1/` (pure spec layer).

The ANIP Registry (../shared/seeds/002) serves `GET /registry-api/v1/keys`,
`/publications`, `/packages/{id}/{version}` with `/lock` and `/receipt`, and `/templates`.
appshelf writes the same reads as files, from the same data as the rest of the registry;
`mirrors/anip.json` pins every one of them and the snapshot pins it. Field names are
ANIP's camelCase. docs/spec.md section 15 is the prose version of this file.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from appshelf.formats.canonical import TIMESTAMP_PATTERN
from appshelf.formats.documents import HEX64, SPEC_VERSION, ArtifactRef, FileDigest

ANIP_ROOT: Final = "registry-api/v1/"
ANIP_PINS: Final = "mirrors/anip.json"
# A path that is also a folder is written as <path>/index.html (served for <path>/, and
# <path> redirects there, on GitHub Pages, nginx and S3 website endpoints).
INDEX_FILE: Final = "index.html"
RECEIPT_TYPE: Final = "appshelf.anip.receipt"
MIRROR_TYPE: Final = "appshelf.mirror"
DIGEST = r"^sha256:[0-9a-f]{64}$"
Status = Literal["active", "yanked", "deprecated"]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnipKey(_Document):
    keyId: str = Field(pattern=HEX64)
    algorithm: Literal["ed25519"] = "ed25519"
    publicKey: str  # standard base64 of the raw 32 bytes, as ANIP_REGISTRY_EXTRA_PUBLIC_KEYS
    publicKeyHex: str = Field(pattern=HEX64)
    status: Literal["active", "retired", "revoked"]
    development: bool


class AnipKeys(_Document):
    """`keys`: the public signing keys and which one is active."""

    activeKeyId: str = Field(pattern=HEX64)
    mode: Literal["production", "dev"]  # dev: signed with the well-known development key
    keys: list[AnipKey]


class AnipLock(_Document):
    """`packages/<id>/<version>/lock`: the package identity a consumer expects."""

    packageId: str
    version: str
    manifestDigest: str = Field(pattern=DIGEST)
    serviceDefinitionDigest: str = Field(pattern=DIGEST)
    registryKeyId: str = Field(pattern=HEX64)


class AnipLineage(_Document):
    logIndex: int = Field(ge=0)
    dependencies: dict[str, str]
    provides: list[str]
    requires: list[str]


class AnipPublication(_Document):
    """One entry of `publications`."""

    packageId: str
    version: str
    name: str
    publishedAt: str = Field(pattern=TIMESTAMP_PATTERN)
    status: Status
    manifestDigest: str = Field(pattern=DIGEST)
    serviceDefinitionDigest: str = Field(pattern=DIGEST)
    url: str  # the package version's detail


class AnipPublications(_Document):
    registry: str
    publications: list[AnipPublication]  # newest first, then packageId, then newest version


class AnipPackage(_Document):
    """`packages/<id>/<version>`: one package version."""

    packageId: str
    version: str
    name: str
    description: str
    publishedAt: str = Field(pattern=TIMESTAMP_PATTERN)
    status: Status
    yanked: str | None = None
    deprecated: str | None = None
    replacement: str | None = None
    manifestDigest: str = Field(pattern=DIGEST)
    serviceDefinitionDigest: str = Field(pattern=DIGEST)
    lockDigest: str = Field(pattern=DIGEST)
    registryKeyId: str = Field(pattern=HEX64)
    manifestUrl: str
    lockUrl: str
    receiptUrl: str
    artifact: ArtifactRef
    lineage: AnipLineage
    lock: AnipLock


class AnipPublisher(_Document):
    id: str
    type: str | None = None


class AnipReceipt(_Document):
    """The signed body of `packages/<id>/<version>/receipt` (an envelope, spec section 3)."""

    type: Literal["appshelf.anip.receipt"] = RECEIPT_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str
    packageId: str
    version: str
    publishedAt: str = Field(pattern=TIMESTAMP_PATTERN)
    manifestDigest: str = Field(pattern=DIGEST)
    serviceDefinitionDigest: str = Field(pattern=DIGEST)
    lockDigest: str = Field(pattern=DIGEST)
    registryKeyId: str = Field(pattern=HEX64)
    logIndex: int = Field(ge=0)
    publisher: AnipPublisher | None = None


class AnipTemplate(_Document):
    """One entry of `templates`, and (with its URLs) `templates/<id>/<version>`."""

    templateId: str
    version: str
    name: str
    description: str
    publishedAt: str = Field(pattern=TIMESTAMP_PATTERN)
    status: Status
    anipSpecVersion: str
    projectType: str
    industries: list[str]
    domains: list[str]
    documents: list[str]
    connections: int = Field(ge=0)
    discovery: int = Field(ge=0)
    capabilities: int = Field(ge=0)
    payloadDigest: str = Field(pattern=DIGEST)
    artifact: ArtifactRef
    manifestUrl: str
    url: str  # the template version's detail


class AnipTemplates(_Document):
    registry: str
    templates: list[AnipTemplate]  # newest publication first, then templateId


class MirrorPins(_Document):
    """`mirrors/anip.json`: pins every mirror file; the snapshot pins this file."""

    type: Literal["appshelf.mirror"] = MIRROR_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str
    mirror: Literal["anip"] = "anip"
    root: Literal["registry-api/v1/"] = ANIP_ROOT
    files: dict[str, FileDigest]  # path (section 1.1) -> digest
