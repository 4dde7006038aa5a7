"""Canonical JSON (RFC 8785 / JCS) and digests: the bytes that get hashed and signed."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785
from pydantic import BaseModel

from appshelf.errors import CanonicalJSONError

_SAFE_INT = 2**53 - 1


_NON_BMP = re.compile(rb"[\xf0-\xf4]")  # lead bytes of 4-byte UTF-8 sequences


def _stdlib_is_exact(value: Any) -> bool:
    """Only strings, bools, None, safe integers, lists and string-keyed objects: for these
    the stdlib encoder writes what RFC 8785 does (floats and big integers are not)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if not all(type(k) is str for k in item):
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is int:
            if not -_SAFE_INT <= item <= _SAFE_INT:
                return False
        elif not (kind is str or kind is bool or item is None):
            return False
    return True


def canonical_json(value: Any) -> bytes:
    """Serialise plain JSON data (dicts, lists, str, int, bool, None) per RFC 8785.

    For data of only strings, safe integers, bools and null, with no character outside
    the BMP (all of appshelf's own documents), RFC 8785 output equals the stdlib's
    sorted, compact, non-ASCII-escaping encoding, which is several times faster than the
    pure-Python `rfc8785`. (Outside the BMP the two sort keys differently: UTF-16 code
    units against code points.) Anything else goes to `rfc8785` itself.
    tests/test_canonical_fast.py proves the equality on the JCS vectors and more.
    """
    if _stdlib_is_exact(value):
        try:
            data = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            encoded = data.encode("utf-8")
        except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
            pass  # e.g. a lone surrogate: let the reference implementation decide
        else:
            if encoded.isascii() or not _NON_BMP.search(encoded):
                return encoded
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, UnicodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CanonicalJSONError(f"cannot be written as canonical JSON: {reason}") from None


def model_to_json(model: BaseModel) -> bytes:
    """The exact bytes appshelf writes for a document: JCS of the model, nulls omitted."""
    return canonical_json(model.model_dump(mode="json", exclude_none=True, by_alias=True))


def canonical_object(members: Mapping[str, bytes]) -> bytes:
    """The RFC 8785 object of members whose values are already canonical bytes.

    JCS encodes a value the same wherever it stands, so an object is its members sorted
    by the UTF-16 code units of their names (section 3.2.3), each `name:value`, joined
    by commas: a document is spliced from stored fragments byte for byte as a full
    encoding would write it, without decoding or encoding them again.

    Args:
        members: member name -> the canonical bytes of its value.

    Raises:
        CanonicalJSONError: a name has no canonical form (a lone surrogate).
    """
    ordered = sorted(members.items(), key=lambda m: m[0].encode("utf-16-be", "surrogatepass"))
    return b"{" + b",".join(canonical_json(name) + b":" + value for name, value in ordered) + b"}"


def canonical_array(items: Iterable[bytes]) -> bytes:
    """The RFC 8785 array of values that are already canonical bytes, in their order."""
    return b"[" + b",".join(items) + b"]"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z` and whole seconds: one spelling per instant."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Every instant appshelf reads or writes lies in this range, so that adding a snapshot
# lifetime, converting to UTC or formatting never leaves what datetime can represent.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)


def check_timestamp_range(moment: datetime) -> datetime:
    """`moment` in UTC, or ValueError when it is outside EARLIEST_TIME..LATEST_TIME."""
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        utc = None  # within a day of year 1 or 9999: far outside the range anyway
    if utc is None or not EARLIEST_TIME <= utc <= LATEST_TIME:
        raise ValueError(
            f"must lie between {format_timestamp(EARLIEST_TIME)} and "
            f"{format_timestamp(LATEST_TIME)}, got {moment.isoformat()}"
        )
    return utc


def parse_timestamp(text: str) -> datetime:
    """Inverse of `format_timestamp`; accepts any RFC 3339 offset. ValueError when the
    text is not one, or when it cannot be represented in UTC (year 9999 -01:00)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp {text!r} is out of range") from None
