"""Canonical JSON (RFC 8785 / JCS) and digests: the bytes that get hashed and signed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import rfc8785
from pydantic import BaseModel


def canonical_json(value: Any) -> bytes:
    """Serialise plain JSON data (dicts, lists, str, int, bool, None) per RFC 8785."""
    return rfc8785.dumps(value)


def model_to_json(model: BaseModel) -> bytes:
    """The exact bytes appshelf writes for a document: JCS of the model, nulls omitted."""
    return canonical_json(model.model_dump(mode="json", exclude_none=True, by_alias=True))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z` and whole seconds: one spelling per instant."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of `format_timestamp`; accepts any RFC 3339 offset."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone")
    return moment.astimezone(UTC)
