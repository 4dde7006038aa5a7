"""Ranges against node-semver's published fixtures and the shared SemVer vectors."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from appshelf.errors import InvalidRangeError, InvalidVersionError
from appshelf.versions import parse_range, parse_version

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def _unescape(text: str) -> str:
    return text.replace("\\t", "\t").replace("\\\\", "\\")


def _node_cases() -> list[tuple[str, str, bool, bool]]:
    cases = []
    for line in (VECTORS / "node-semver" / "ranges.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        range_text, version, expect, options = line.split("\t")
        cases.append(
            (_unescape(range_text), _unescape(version), expect == "include", options != "-")
        )
    return cases


NODE_CASES = _node_cases()


def test_fixture_counts() -> None:
    assert sum(1 for c in NODE_CASES if c[2]) == 107
    assert sum(1 for c in NODE_CASES if not c[2]) == 69


@pytest.mark.parametrize(("range_text", "version", "included", "include_pre"), NODE_CASES)
def test_node_semver_fixture(
    range_text: str, version: str, included: bool, include_pre: bool
) -> None:
    assert parse_range(range_text).test(version, include_prerelease=include_pre) is included


def _lines(name: str) -> list[str]:
    return (VECTORS / "semver" / name).read_text().splitlines()


@pytest.mark.parametrize("text", _lines("valid.txt"))
def test_valid_versions_parse_and_pin_exactly(text: str) -> None:
    version = parse_version(text)
    pinned = parse_range(text)
    assert pinned.exact is not None and pinned.exact.compare(version) == 0
    assert pinned.test(version)


@pytest.mark.parametrize("text", _lines("invalid.txt"))
def test_invalid_versions_are_refused(text: str) -> None:
    with pytest.raises(InvalidVersionError):
        parse_version(text)
    # Not a version, hence never inside a range either.
    assert not parse_range("*").test(text)


def test_precedence_chain_drives_comparators() -> None:
    chain = _lines("precedence.txt")
    for lower, higher in itertools.pairwise(chain):
        assert parse_range(f"<{higher}").test(lower, include_prerelease=True)
        assert parse_range(f">{lower}").test(higher, include_prerelease=True)
        assert not parse_range(f">={higher}").test(lower, include_prerelease=True)


@pytest.mark.parametrize("line", _lines("greater_than_pairs.tsv"))
def test_greater_than_pairs(line: str) -> None:
    greater, lesser = line.split("\t")
    assert parse_range(f">{lesser}").test(greater, include_prerelease=True)
    assert not parse_range(f">{greater}").test(lesser, include_prerelease=True)


@pytest.mark.parametrize("line", _lines("equal_precedence_pairs.tsv"))
def test_equal_precedence_pairs(line: str) -> None:
    left, right = line.split("\t")
    assert parse_range(f"={left}").test(right, include_prerelease=True)
    assert parse_range(f"={right}").test(left, include_prerelease=True)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("^1.2.0", ">=1.2.0 <2.0.0-0"),
        ("~1.2", ">=1.2.0 <1.3.0-0"),
        ("1.x", ">=1.0.0 <2.0.0-0"),
        ("*", "*"),
        (">=1 <2", ">=1.0.0 <2.0.0-0"),
        ("1.2.3 - 2.0.0", ">=1.2.3 <=2.0.0"),
        ("^0.0.3 || ~2", ">=0.0.3 <0.0.4-0||>=2.0.0 <3.0.0-0"),
    ],
)
def test_desugaring_matches_node_semver(text: str, normalized: str) -> None:
    assert parse_range(text).normalized == normalized


@pytest.mark.parametrize(
    "text",
    ["1.2.3.4", ">=>1", "^01.2.3", "1.2.3-", "1.2.x-beta", "latest", "1.2.3 -", "==1.2.3", "~^1"],
)
def test_invalid_ranges_say_what_is_wrong(text: str) -> None:
    with pytest.raises(InvalidRangeError, match=r"invalid version range"):
        parse_range(text)


def test_exact_pins() -> None:
    assert str(parse_range("=1.1.0").exact) == "1.1.0"
    assert str(parse_range("1.1.0").exact) == "1.1.0"
    assert parse_range("^1.1.0").exact is None
    assert parse_range("1.1").exact is None


def test_build_refuses_an_invalid_dependency_range(example_source: Path, tmp_path: Path) -> None:
    from appshelf.errors import SourceTreeError
    from conftest import build

    release = example_source / "apps/slack-notify/1.0.0/release.toml"
    release.write_text(release.read_text().replace("^1.0.0", "^1..0"))
    with pytest.raises(SourceTreeError) as info:
        build(example_source, tmp_path / "out")
    assert (
        "apps/slack-notify/1.0.0/release.toml: dependencies: http-client: invalid version range"
        in str(info.value)
    )
