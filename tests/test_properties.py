"""Property tests: whatever values a source file, a version range or a JSON document holds,
the parsers answer with a result or appshelf's own error, never anything else (an
exception that escapes becomes a traceback in the CLI)."""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pydantic
import rfc8785
import semver
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appshelf.errors import (
    AppshelfError,
    CanonicalJSONError,
    InvalidRangeError,
    InvalidVersionError,
    Problem,
)
from appshelf.formats.canonical import (
    EARLIEST_TIME,
    LATEST_TIME,
    canonical_json,
    format_timestamp,
    parse_timestamp,
)
from appshelf.source.models import AppConfig, RegistryConfig, ReleaseConfig
from appshelf.source.tree import _Reader
from appshelf.versions import parse_range, parse_version

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Strings a parser is likelier to trip on than random text.
TRICKY = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "x\n",
        "#FFFFFF\n",
        "\u202e",
        "\x00",
        "a" * 64 + "\n",
        "https://files.example.com/a.tar.gz",
        "https://localhost/a",
        "https://[::1]/a",
        "https://u:p@h/a",
        "https://h:0/a",
        "https://h:99999/a",
        "https://[zz]/a",
        "https://h/%2e%2e/a",
        "http://",
        "https://",
        "2024-05-01T12:00:00Z",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "^1.2.3",
        "1.2.3 - 2",
        ">=1 <2 || 3.x",
        "~>0.0",
        "*",
        "v1.2.3-rc.1+b",
        "1.2.3-",
        "99999999999999999999999.0.0",
    ]
)
TEXT = st.one_of(st.text(max_size=40), TRICKY)
OFFSETS = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23.99), max_value=timedelta(hours=23.99))
)
EDGE_TIMES = st.sampled_from(
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59),
    ]
)
TIMES = EDGE_TIMES | st.datetimes(timezones=st.none() | st.just(UTC) | OFFSETS)
SCALARS = st.one_of(
    TEXT,
    st.integers(),
    st.floats(),
    st.booleans(),
    TIMES,
    st.dates(),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


FIELD_VALUES = st.one_of(
    TRICKY, EDGE_TIMES, TIMES, VALUES, st.lists(TEXT, max_size=3), st.dictionaries(TEXT, TEXT)
)
BASES: dict[type[pydantic.BaseModel], dict[str, Any]] = {
    RegistryConfig: {"registry": {"name": "r", "base_url": "https://r.example.com/"}},
    AppConfig: {"name": "App", "description": "An app."},
    ReleaseConfig: {},
}


def field_paths(model: type[pydantic.BaseModel]) -> list[tuple[str, ...]]:
    """Every key of the model, nested sections' keys too, and one unknown key."""
    paths: list[tuple[str, ...]] = [("unknown",)]
    for name, info in model.model_fields.items():
        paths.append((name,))
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            paths.extend((name, *sub) for sub in field_paths(annotation))
    return paths


def with_changes(base: dict[str, Any], changes: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(base))
    for path, value in changes.items():
        target = data
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[path[-1]] = value
    return data


def config_dicts(model: type[pydantic.BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid file with up to three keys set to any TOML-ish value: what a hand-edited
    file may hold, close enough to valid that what is accepted gets checked too."""
    changes = st.dictionaries(st.sampled_from(field_paths(model)), FIELD_VALUES, max_size=3)
    return changes.map(lambda c: with_changes(BASES[model], c))


def toml_text(value: Any) -> str:
    """A TOML spelling of a TOML-ish value (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_text(v)}" for k, v in value.items()) + "}"
    return value.isoformat()


def parse_as_the_reader_does(model: type[pydantic.BaseModel], raw: bytes) -> list[Problem]:
    """What the source reader makes of a file's bytes: a model or problems, never a raise."""
    reader = _Reader(Path("/registry"))
    parsed = reader._parse_model(Path("/registry/apps/x/app.toml"), raw, model)
    assert (parsed is None) == bool(reader.problems)
    for problem in reader.problems:
        str(problem)
    return reader.problems


FREE_TEXT = {"description", "notes"}
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def strings(value: Any, path: tuple[str, ...] = ("",)) -> list[tuple[tuple[str, ...], str]]:
    """Every string in a dumped model (keys too), with the field it is found under."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, list):
        return [found for item in value for found in strings(item, path)]
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            for found in [(path, key), *strings(item, (*path, key))]
        ]
    return []


def check_model(model: type[pydantic.BaseModel], data: dict[str, Any]) -> None:
    """Refused with ValidationError (which the reader turns into problems), or accepted
    with values the build can use: JSON-serialisable, canonicalisable, and times it can
    format."""
    try:
        parsed = model.model_validate(data)
    except pydantic.ValidationError:
        pass
    else:
        dumped = parsed.model_dump(mode="json")
        canonical_json(dumped)
        for path, text in strings(dumped):
            if path[-1] not in FREE_TEXT:
                assert not any(unicodedata.category(c) == "Cc" or c in BIDI for c in text), path
        published = getattr(parsed, "published", None)
        if published is not None:
            assert EARLIEST_TIME <= parse_timestamp(format_timestamp(published)) <= LATEST_TIME
    body = "\n".join(f"{json.dumps(k)} = {toml_text(v)}" for k, v in data.items())
    parse_as_the_reader_does(model, body.encode("utf-8", "surrogatepass"))


# Each @example is a case the random search can miss that once escaped or was accepted.
@FAST
@given(config_dicts(RegistryConfig))
@example(
    {"registry": {"name": "r", "base_url": "https://r/"}, "signing": {"key_id": "a" * 64 + "\n"}}
)
@example({"registry": {"name": "r\u202e", "base_url": "https://r/"}})
def test_registry_toml_values_never_escape(data: dict[str, Any]) -> None:
    check_model(RegistryConfig, data)


@FAST
@given(config_dicts(AppConfig))
@example({"name": "App", "description": "d", "tags": ["kv\n"]})
@example({"name": "App\u202eexe", "description": "d"})
def test_app_toml_values_never_escape(data: dict[str, Any]) -> None:
    check_model(AppConfig, data)


@FAST
@given(config_dicts(ReleaseConfig))
@example({"published": "9999-12-31T23:59:59-01:00"})
@example({"published": datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-1)))})
def test_release_toml_values_never_escape(data: dict[str, Any]) -> None:
    check_model(ReleaseConfig, data)


@FAST
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8")))
@example(b"a = " + b"[" * 100_000 + b"]" * 100_000)
def test_any_bytes_in_a_config_file_never_escape(raw: bytes) -> None:
    parse_as_the_reader_does(ReleaseConfig, raw)


PARTS = st.one_of(
    st.integers(0, 3).map(str),
    st.sampled_from(["x", "X", "*", "00", "01", "99999999999999999999", ""]),
)
PARTIALS = st.builds(
    lambda v, parts, pre, build: v + ".".join(parts) + pre + build,
    st.sampled_from(["", "v", "V", "="]),
    st.lists(PARTS, min_size=1, max_size=4),
    st.sampled_from(["", "-0", "-alpha.1", "-", "-01", "-a..b"]),
    st.sampled_from(["", "+b.1", "+", "+_"]),
)
COMPARATORS = st.builds(
    lambda op, space, partial: op + space + partial,
    st.sampled_from(["", "^", "~", "~>", ">", ">=", "<", "<=", "=", "==", "!", ">=="]),
    st.sampled_from(["", " ", "  "]),
    PARTIALS,
)
RANGES = st.one_of(
    st.text(max_size=60),
    st.lists(
        st.lists(COMPARATORS, min_size=0, max_size=3).map(" ".join)
        | st.builds(lambda a, b: f"{a} - {b}", PARTIALS, PARTIALS),
        min_size=1,
        max_size=3,
    ).map(" || ".join),
)
VERSIONS = st.one_of(
    st.text(max_size=20),
    st.builds(
        lambda a, b, c, pre: f"{a}.{b}.{c}{pre}",
        st.integers(0, 3),
        st.integers(0, 3),
        st.integers(0, 3),
        st.sampled_from(["", "-0", "-alpha", "-alpha.1", "-rc.1"]),
    ),
)


@FAST
@given(RANGES, VERSIONS, st.booleans())
def test_version_ranges_parse_or_raise_invalid_range(
    text: str, version: str, include_prerelease: bool
) -> None:
    try:
        parsed = parse_range(text)
    except InvalidRangeError:
        return
    assert isinstance(parsed.test(version, include_prerelease), bool)
    parsed.normalized  # noqa: B018
    parsed.exact  # noqa: B018


@FAST
@given(VERSIONS)
def test_versions_parse_or_raise_invalid_version(text: str) -> None:
    try:
        version = parse_version(text)
    except InvalidVersionError:
        return
    assert isinstance(version, semver.Version)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(alphabet=st.characters(codec=None), max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(codec=None), max_size=6), inner, max_size=4
        )
    ),
    max_leaves=16,
)


@FAST
@given(JSON_VALUES)
@example({"\ud800": None})
@example(float("nan"))
@example(2**64)
def test_canonical_json_equals_rfc8785_or_raises_its_own_error(value: Any) -> None:
    try:
        ours = canonical_json(value)
    except CanonicalJSONError as exc:
        assert isinstance(exc, AppshelfError)
        return
    assert ours == rfc8785.dumps(value)


def test_canonical_json_refuses_nesting_deeper_than_it_can_encode() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    try:
        canonical_json(value)
    except CanonicalJSONError:
        return
    raise AssertionError("accepted a 100,000-deep document")


def test_timestamps_near_the_edges_are_reader_errors() -> None:
    """The shrunk cases Hypothesis first found, kept as plain examples."""
    for published in (
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-1))),
        datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=1))),
    ):
        body = f"published = {published.isoformat()}\n".encode()
        problems = parse_as_the_reader_does(ReleaseConfig, body)
        assert [p.field for p in problems] == ["published"]
