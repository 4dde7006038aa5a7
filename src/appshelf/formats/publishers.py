"""`publishers.json`: who may publish in a registry, with their public keys (pure).

Written by the build from `publishers/*.toml` and `orgs/*.toml` and pinned by the
snapshot, so a client re-verifies each publisher's release statement with keys that
the registry vouches for (docs/spec.md section 10).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from appshelf.formats.documents import HEX64, SPEC_VERSION
from appshelf.formats.statement import IDENTITY_PATTERN

PUBLISHERS_TYPE: Final = "appshelf.publishers"
PUBLISHERS_FILE: Final = "publishers.json"
KeyStatus = Literal["active", "retired", "revoked"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublisherKey(_Model):
    keyid: str = Field(pattern=HEX64)
    public: str = Field(pattern=HEX64)
    status: KeyStatus
    did: str | None = None  # the did:key it was declared as (Calimero signer ids)


class Publisher(_Model):
    id: str = Field(pattern=IDENTITY_PATTERN)
    name: str
    keys: list[PublisherKey] = Field(min_length=1)


class Organisation(_Model):
    id: str = Field(pattern=IDENTITY_PATTERN)
    name: str
    members: list[str] = Field(min_length=1)  # publisher ids


class PublishersDocument(_Model):
    type: Literal["appshelf.publishers"] = PUBLISHERS_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str
    publishers: list[Publisher]  # sorted by id
    organisations: list[Organisation] = Field(default_factory=list)  # sorted by id

    def publisher(self, publisher_id: str) -> Publisher | None:
        return next((p for p in self.publishers if p.id == publisher_id), None)

    def may_publish(self, publisher_id: str, owners: list[str]) -> bool:
        """Is the publisher an owner, directly or as a member of an owning organisation?"""
        if publisher_id in owners:
            return True
        return any(o.id in owners and publisher_id in o.members for o in self.organisations)
