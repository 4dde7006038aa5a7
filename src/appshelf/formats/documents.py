"""appshelf's own documents: manifests, the snapshot, keys, per-app details, the index.

Signed documents (manifest, snapshot) are wrapped in `Signed[...]`: the signature
covers the RFC 8785 bytes of `signed`, and `signed.type` names the kind of document so
a signature over one kind can never be passed off as another. docs/spec.md is the
prose version of this file.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from appshelf.formats.canonical import TIMESTAMP_PATTERN
from appshelf.formats.frozen import FrozenModel

SPEC_VERSION: Final = "1"
HEX64 = r"^[0-9a-f]{64}$"
HEX128 = r"^[0-9a-f]{128}$"
# A channel (dist-tag) name: lowercase, starts with a letter; a name that is also an npm
# range (`x`) is refused by versions.channels, so `app@<spec>` is never ambiguous.
CHANNEL_PATTERN: Final = r"[a-z][a-z0-9-]{0,31}"
ChannelName = Annotated[str, Field(pattern=f"^{CHANNEL_PATTERN}$")]

MANIFEST_TYPE: Final = "appshelf.manifest"
SNAPSHOT_TYPE: Final = "appshelf.snapshot"
KEYS_TYPE: Final = "appshelf.keys"
APP_TYPE: Final = "appshelf.app"
INDEX_TYPE: Final = "appshelf.index"
BIN_TYPE: Final = "appshelf.bin"
# Hashed bins (docs/spec.md section 4.8): at most 2^16 bins, room for 4 billion apps at
# the builder's sqrt rule, and a prefix of at most 4 hex digits.
MAX_BIN_BITS: Final = 16
BIN_PREFIX_PATTERN: Final = r"^[0-9a-f]{1,4}$"


class _Document(FrozenModel):
    pass


class FileDigest(_Document):
    """Pins one file: its SHA-256 and exact length in bytes."""

    sha256: str = Field(pattern=HEX64)
    length: int = Field(ge=0)


class ArtifactRef(_Document):
    url: str
    sha256: str = Field(pattern=HEX64)
    size: int = Field(ge=0)
    filename: str


class AppMetadata(_Document):
    name: str
    description: str
    color: str
    icon_url: str | None = None
    homepage: str | None = None
    repository: str | None = None
    license: str | None = None
    tags: list[str] = Field(default_factory=list)
    category: str | None = None
    kind: Literal["template"] | None = None  # an ANIP starter template (spec section 15)


class ManifestPublisher(_Document):
    """The registry's countersignature of a publisher's release statement: who signed
    it, with which key, and the statement.json beside the manifest, pinned."""

    id: str
    keyid: str = Field(pattern=HEX64)
    statement: FileDigest


class Manifest(_Document):
    """The full, signed truth about one version of one app."""

    type: Literal["appshelf.manifest"] = MANIFEST_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str  # base_url: binds the manifest to one registry
    app: str
    version: str
    artifact: ArtifactRef
    metadata: AppMetadata
    provides: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)
    dependencies: dict[str, str] = Field(default_factory=dict)
    published: str = Field(pattern=TIMESTAMP_PATTERN)
    yanked: str | None = None  # the reason; absent when not yanked
    deprecated: str | None = None  # the reason; absent when not deprecated
    replacement: str | None = None  # with deprecated: the version to use instead
    notes: str | None = None
    publisher: ManifestPublisher | None = None  # absent in registries without publishers


class LogHead(_Document):
    """The release log as this snapshot knows it: its size and Merkle root (hex)."""

    size: int = Field(ge=0)
    root: str = Field(pattern=HEX64)


class BinsRef(_Document):
    """How a snapshot splits the per-app files into hashed bins (section 4.8)."""

    bits: int = Field(ge=0, le=MAX_BIN_BITS)


class Snapshot(_Document):
    """The signed root of one build: pins every index file by digest and length, and
    names the release log's tree head, so a reader knows the log's size and root from
    the one signed file even if the checkpoint beside it was replaced."""

    type: Literal["appshelf.snapshot"] = SNAPSHOT_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str
    version: int = Field(ge=1)
    issued: str = Field(pattern=TIMESTAMP_PATTERN)
    expires: str = Field(pattern=TIMESTAMP_PATTERN)
    meta: dict[str, FileDigest]
    log: LogHead | None = None  # absent only in registries built before the release log
    # True: every pinned file (and manifest) is also at its content-addressed name
    # (formats/consistent.py); absent in snapshots from before consistent snapshots.
    consistent: bool | None = None
    # Present: `meta` pins the registry-wide files and every bin file, and the bins pin
    # the per-app files (section 4.8); absent in snapshots from before bins.
    bins: BinsRef | None = None


class BinDocument(_Document):
    """`bins/<prefix>.json`: the per-app files of the apps whose key hashes to `prefix`.
    Unsigned: the snapshot pins it (digest and length)."""

    type: Literal["appshelf.bin"] = BIN_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str
    bits: int = Field(ge=0, le=MAX_BIN_BITS)
    prefix: str = Field(pattern=BIN_PREFIX_PATTERN)
    meta: dict[str, FileDigest]


class Signature(_Document):
    keyid: str = Field(pattern=HEX64)
    sig: str = Field(pattern=HEX128)


# Any signed document type (manifest, snapshot, a publisher's release statement).
DocumentT = TypeVar("DocumentT", bound=BaseModel)


class Signed(_Document, Generic[DocumentT]):
    signed: DocumentT
    signatures: list[Signature] = Field(min_length=1)


class PublicKey(_Document):
    keyid: str = Field(pattern=HEX64)
    algorithm: Literal["ed25519"] = "ed25519"
    public: str = Field(pattern=HEX64)
    status: Literal["active", "retired", "revoked"]
    development: bool = False  # the well-known development key: never trust in production


class KeysDocument(_Document):
    """`keys.json`: the registry's public keys. Informational: trust comes from the client."""

    type: Literal["appshelf.keys"] = KEYS_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str
    keys: list[PublicKey]


class VersionEntry(_Document):
    version: str
    published: str = Field(pattern=TIMESTAMP_PATTERN)
    yanked: str | None = None
    deprecated: str | None = None
    replacement: str | None = None
    log_index: int | None = Field(default=None, ge=0)  # the release's entry in log/
    manifest_path: str  # relative to the registry root
    manifest: FileDigest
    artifact: ArtifactRef
    provides: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)
    dependencies: dict[str, str] = Field(default_factory=dict)


class ChannelRef(_Document):
    """Where one channel of an app points, and the release-log entry that set it."""

    version: str
    log_index: int = Field(ge=0)


class AppDetail(_Document):
    """`apps/<key>/app.json`: one app with every version, pinning each manifest."""

    type: Literal["appshelf.app"] = APP_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    key: str
    metadata: AppMetadata
    versions: list[VersionEntry]  # newest first
    channels: dict[ChannelName, ChannelRef] | None = None  # absent when the app has none


_OMITTED_WHEN_EMPTY = frozenset({"tags", "provides", "requires"})


class IndexEntry(_Document):
    key: str
    name: str
    description: str
    tags: list[str] = Field(default_factory=list)
    category: str | None = None
    latest: str | None = None  # newest non-yanked stable version, else newest
    versions: int = Field(ge=0)
    provides: list[str] = Field(default_factory=list)  # of the latest version
    requires: list[str] = Field(default_factory=list)
    icon: str | None = None  # path relative to the registry root
    color: str
    kind: Literal["template"] | None = None  # an ANIP starter template (spec section 15)

    @model_serializer(mode="wrap")
    def _omit_empty_lists(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """index.json is fetched whole by every search: empty lists are left out (readers
        treat an absent list as empty), about 8% of its size for 10,000 apps."""
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v != [] or k not in _OMITTED_WHEN_EMPTY}


class RegistryIndex(_Document):
    """`index.json`: the compact search index read by the site and the client."""

    type: Literal["appshelf.index"] = INDEX_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str
    name: str
    description: str = ""
    apps: list[IndexEntry]
