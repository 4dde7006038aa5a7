"""`[mirrors]` in registry.toml: static copies of the registry in other read APIs.

Each mirror keeps its keys in its own settings class so that mirrors added side by
side merge as one more base class of `MirrorsSection`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from appshelf.source.anip_options import AnipMirrorOptions


class ApprMirrorSettings(BaseModel):
    """The appr/CNR mirror under `cnr/` (docs/spec.md section 14)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    appr: bool = False
    # Packages are `<appr_namespace>/<app key>` to an appr client.
    appr_namespace: Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,64}$")] = "appshelf"


class MirrorsSection(ApprMirrorSettings, AnipMirrorOptions):
    """`[mirrors]`: every mirror is off unless asked for."""
