"""A JSON reader for untrusted bytes: every input is either a plain value or `JsonRejectedError`.

`json.loads` alone lets hostile bytes crash or mislead a verifier: 100,000 nested
brackets raise RecursionError, a 5,000-digit integer trips Python's int-size guard,
NaN/Infinity/1e999 are not JSON, a lone surrogate ("\\ud800") cannot be re-encoded to
check a signature, and duplicate keys let two parsers see two different documents.
`loads_bounded` refuses all of these with one exception type, so callers wrap it in
their own error naming the file. The limits are the ones docs/spec.md asks of every
verifier ("JSON limits").
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from appshelf.errors import JsonRejectedError

MAX_DEPTH: Final = 64
# I-JSON (RFC 7493): integers a double holds exactly, so every language reads one value.
MAX_INT: Final = 2**53 - 1
_MAX_INT_DIGITS: Final = len(str(MAX_INT))
# A string literal: unescaped runs and escape pairs (unrolled, so no backtracking).
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS: Final = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def loads_bounded(data: bytes, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `data` as strict, bounded JSON: dicts, lists, str, int, finite float, bool, None."""
    if max_bytes is not None and len(data) > max_bytes:
        raise JsonRejectedError(f"{len(data):,} bytes, more than the {max_bytes:,} allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRejectedError(f"not valid UTF-8 (byte {exc.start})") from None
    _check_depth(text, max_depth)
    try:
        value = json.loads(
            text,
            parse_int=_integer,
            parse_float=_finite,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except JsonRejectedError:
        raise
    except RecursionError:  # unreachable after _check_depth; kept as a last guard
        raise JsonRejectedError(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise JsonRejectedError(f"not valid JSON ({exc})") from None
    if _SURROGATE_ESCAPE.search(text):
        _check_surrogates(value)
    return value


def _check_depth(text: str, max_depth: int) -> None:
    """Count brackets outside string literals; refuse before the parser recurses."""
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise JsonRejectedError(f"nested deeper than {max_depth} levels")
        else:
            depth -= 1


def _integer(literal: str) -> int:
    digits = literal.lstrip("-")
    if len(digits) > _MAX_INT_DIGITS or abs(int(literal)) > MAX_INT:
        shown = literal if len(literal) <= 24 else f"{literal[:20]}... ({len(literal)} digits)"
        raise JsonRejectedError(f"integer {shown} is outside ±(2**53-1)")
    return int(literal)


def _finite(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise JsonRejectedError(f"number {literal[:24]} is out of range")
    return number


def _no_constant(name: str) -> Any:
    raise JsonRejectedError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRejectedError(f"duplicate key {key[:64]!r}")
            seen.add(key)
    return result


def _check_surrogates(value: Any) -> None:
    """Valid pairs were joined by the parser; any surrogate left is a lone one."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            strings = [item]
        elif isinstance(item, dict):
            strings = list(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            strings = []
            stack.extend(item)
        else:
            continue
        if any(_SURROGATE.search(s) for s in strings):
            raise JsonRejectedError("a string holds a lone UTF-16 surrogate (not Unicode text)")
