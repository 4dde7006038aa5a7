"""Channel (dist-tag) names: which `app@<spec>` texts name a channel, not a range.

A channel name fullmatches `formats.documents.CHANNEL_PATTERN` (lowercase, starting with a
letter) and does not parse as an npm range: `x` (a wildcard range) is refused as a
name, so a spec is a channel exactly when it matches the pattern. Versions and most
ranges start with a digit, an operator or `*`, and never match.
"""

from __future__ import annotations

import re

from appshelf.errors import InvalidRangeError
from appshelf.formats.documents import CHANNEL_PATTERN
from appshelf.versions.ranges import parse_range

_CHANNEL_RE = re.compile(CHANNEL_PATTERN)


def channel_name_problem(name: str) -> str | None:
    """Why `name` cannot be a channel name, or None when it can."""
    if not _CHANNEL_RE.fullmatch(name):
        return (
            f"{name!r} is not a channel name: 1-32 of a-z 0-9 -, starting with a letter "
            "(e.g. stable, beta)"
        )
    try:
        parse_range(name)
    except InvalidRangeError:
        return None
    return f"{name!r} is also a version range, so app@{name} would be ambiguous"


def is_channel_name(spec: str) -> bool:
    """Whether `spec` (the text after `app@`) names a channel rather than a range."""
    return channel_name_problem(spec) is None
