"""What is in the bucket, as plain data: the listing, known digests, the deployed indexes.

`RemoteState` is filled by the S3 layer and read by the pure planner. The deploy record
(`.appshelf/deploy-state.json`) remembers each object's sha256 and headers by ETag, so a
later deploy learns every digest from one GET instead of one HEAD per object; an object
whose ETag changed since is simply HEADed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from appshelf.deploy.files import SNAPSHOT
from appshelf.errors import DeployRefusedError
from appshelf.formats.documents import HEX64, Signed, Snapshot


@dataclass(frozen=True)
class RemoteObject:
    etag: str
    size: int
    sha256: str | None = None  # None: not known (no record, no metadata)
    content_type: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None


@dataclass
class RemoteState:
    objects: dict[str, RemoteObject] = field(default_factory=dict)  # relpath -> object
    snapshot_bytes: bytes | None = None
    snapshot_etag: str | None = None
    documents: dict[str, bytes] = field(default_factory=dict)  # fetched index files by relpath
    document_etags: dict[str, str] = field(default_factory=dict)  # the ETag each was read at
    record: DeployRecord | None = None
    # .appshelf/inbox/... objects (publishers' uploads, deploy/inbox.py): not the site's
    inbox: dict[str, RemoteObject] = field(default_factory=dict)
    # .appshelf/ingested.json (deploy/ingested.py): what builds took from the inbox
    ingested: RemoteObject | None = None

    def snapshot(self) -> Signed[Snapshot] | None:
        if self.snapshot_bytes is None:
            return None
        try:
            return Signed[Snapshot].model_validate_json(self.snapshot_bytes)
        except pydantic.ValidationError as exc:
            raise DeployRefusedError(
                f"the deployed {SNAPSHOT} is not a valid appshelf snapshot ({exc}); "
                "this bucket prefix holds something else: deploy elsewhere"
            ) from None


class RecordedObject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    etag: str
    sha256: str = Field(pattern=HEX64)
    content_type: str
    cache_control: str
    content_disposition: str | None = None  # absent in records written before it was set


class DeployRecord(BaseModel):
    """`.appshelf/deploy-state.json`: a cache of digests, trusted only while ETags match."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["appshelf.deploy-state"] = "appshelf.deploy-state"
    objects: dict[str, RecordedObject]


def parse_record(data: bytes) -> DeployRecord | None:
    try:
        return DeployRecord.model_validate_json(data)
    except pydantic.ValidationError:
        return None  # a damaged cache only costs HEAD requests
