"""Strict SemVer versions and npm-style ranges (node-semver semantics)."""

from appshelf.versions.ranges import (
    Comparator,
    InvalidRange,
    InvalidVersion,
    Range,
    parse_range,
    parse_version,
)

__all__ = ["Comparator", "InvalidRange", "InvalidVersion", "Range", "parse_range", "parse_version"]
