"""`[mirrors]` keys of the ANIP read mirror (docs/spec.md section 15), in a class of
their own so that each mirror adds its keys without touching the others'."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from appshelf.source.text import name_text

_Name = Annotated[str, AfterValidator(name_text), Field(min_length=1, max_length=200)]


class AnipMirrorOptions(BaseModel):
    """`anip = true` writes `registry-api/v1/`; the publisher is what ANIP records in
    receipts (its ANIP_REGISTRY_PUBLISHER_ID and _TYPE settings)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    anip: bool = False
    anip_publisher_id: _Name | None = None
    anip_publisher_type: _Name | None = None
