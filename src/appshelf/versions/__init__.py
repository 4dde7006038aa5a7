"""Strict SemVer versions and npm-style ranges (node-semver semantics)."""

from appshelf.versions.ranges import Comparator, Range, parse_range, parse_version

__all__ = ["Comparator", "Range", "parse_range", "parse_version"]
