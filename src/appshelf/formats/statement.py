"""A publisher's release statement: the version as its publisher signed it.

The publisher (not the registry) signs this body with their own Ed25519 key, in the
app's repository (`appshelf sign-release`); the registry build checks it against the
app's logged owners and countersigns it in the manifest (docs/spec.md section 10).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from appshelf.formats.canonical import TIMESTAMP_PATTERN
from appshelf.formats.documents import HEX64, SPEC_VERSION

STATEMENT_TYPE: Final = "appshelf.release-statement"
OWNERS_CHANGE_TYPE: Final = "appshelf.owners-change"
OWNERS_DIR: Final = "owners"  # owners-change statements in the source tree
STATEMENT_FILE: Final = "statement.json"
MAX_STATEMENT_BYTES: Final = 256 << 10
# Publisher and organisation ids: the app-key alphabet, so they are safe in URLs and paths.
IDENTITY_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatementArtifact(_Body):
    """The artifact the publisher vouches for: its bytes by SHA-256 and size."""

    filename: str = Field(min_length=1, max_length=255)
    sha256: str = Field(pattern=HEX64)
    size: int = Field(ge=0)
    url: str | None = Field(default=None, max_length=2048)  # absent: shipped in the tree


class ReleaseStatement(_Body):
    """Every field the publisher signs; the manifest must agree with each of them."""

    type: Literal["appshelf.release-statement"] = STATEMENT_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str = Field(min_length=1, max_length=2048)  # base_url of the target registry
    publisher: str = Field(pattern=IDENTITY_PATTERN)
    app: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=256)
    artifact: StatementArtifact
    dependencies: dict[str, str] = Field(default_factory=dict)
    provides: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)
    notes: str | None = Field(default=None, max_length=20000)
    published: str = Field(pattern=TIMESTAMP_PATTERN)


class OwnersChange(_Body):
    """An app's owners hand it to new owners: signed by a key of a current owner."""

    type: Literal["appshelf.owners-change"] = OWNERS_CHANGE_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str = Field(min_length=1, max_length=2048)
    app: str = Field(min_length=1, max_length=64)
    previous: list[str] = Field(min_length=1, max_length=32)  # the owners it replaces
    owners: list[str] = Field(min_length=1, max_length=32)  # the new owners
    signer: str = Field(pattern=IDENTITY_PATTERN)  # the publisher whose key signs
    issued: str = Field(pattern=TIMESTAMP_PATTERN)
