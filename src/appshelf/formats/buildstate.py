"""`log/state.json`: the build state that travels with the registry (docs/spec.md 9.7).

Published beside the release log and pinned by the snapshot, so a build that starts
from a published registry (`--previous-url`, `--deploy`) with no local cache verifies it
with everything else, then takes each artifact's digest from it instead of reading the
artifact, wherever git vouches that the source file is a listed blob.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from appshelf.formats.canonical import canonical_json
from appshelf.formats.layout import APP_KEY_RE

STATE_FILE: Final = "log/state.json"
STATE_FORMAT: Final = 1
MAX_STATE_BYTES: Final = 64 << 20
GitOid = Annotated[str, StringConstraints(pattern=r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")]
AppKey = Annotated[str, StringConstraints(pattern=APP_KEY_RE.pattern.removesuffix("\\Z") + "$")]


class BlobDigest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class BuildState(BaseModel):
    """Per app its git tree id, per local artifact its blob id -> digest and size."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal[1]
    registry: str
    apps: dict[AppKey, GitOid]  # app key -> git tree id of apps/<key>
    artifacts: dict[GitOid, BlobDigest]  # git blob id -> the artifact's SHA-256 and size


def encode_state(
    registry: str, apps: dict[str, str], artifacts: dict[str, tuple[str, int]]
) -> bytes:
    """The file's bytes: canonical JSON (sorted keys, no spaces), so that two builds of the
    same source and log write the same bytes."""
    return canonical_json(
        {
            "format": STATE_FORMAT,
            "registry": registry,
            "apps": apps,
            "artifacts": {
                oid: {"sha256": sha, "size": size} for oid, (sha, size) in artifacts.items()
            },
        }
    )
