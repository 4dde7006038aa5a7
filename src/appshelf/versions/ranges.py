"""npm-style version ranges over strict SemVer 2.0.0, with node-semver's semantics.

A range is a set of comparator sets joined by `||`; a version matches when it passes
every comparator of at least one set. Sugar (`^`, `~`, `~>`, x-ranges, hyphen ranges) is
desugared exactly as node-semver does, including its `-0` upper bounds, so `^1.2.3`
means `>=1.2.3 <2.0.0-0`.

Prereleases follow node-semver: a prerelease version only matches a set if some
comparator in that set names a prerelease of the same [major, minor, patch], so `^1.2.0`
never picks `1.3.0-beta` but `>=1.3.0-alpha <2` does. Callers opt out with
`include_prerelease=True`.

Parsing is strict: versions are SemVer 2.0.0 (no loose spellings such as `1.2.3beta`);
only node-semver's non-loose conveniences (`v` prefix, spaces after an operator) are
accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Final, Literal

import semver

from appshelf.errors import InvalidRangeError, InvalidVersionError

Operator = Literal["=", "<", "<=", ">", ">="]

_NR = r"0|[1-9][0-9]*"
_XR = rf"[xX*]|{_NR}"
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_PRERELEASE = rf"{_IDENT}(?:\.{_IDENT})*"
_BUILD = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_PARTIAL = (
    rf"v?(?P<major>{_XR})(?:\.(?P<minor>{_XR})(?:\.(?P<patch>{_XR})"
    rf"(?:-(?P<pre>{_PRERELEASE}))?(?:\+(?P<build>{_BUILD}))?)?)?"
)
_PARTIAL_RE: Final = re.compile(rf"^{_PARTIAL}\Z")
_TOKEN_RE: Final = re.compile(r"^(?P<op>~>|~|\^|>=|<=|>|<|=)?(?P<rest>.*)\Z", re.DOTALL)
_HYPHEN_RE: Final = re.compile(r"^(?P<low>\S+)\s+-\s+(?P<high>\S+)\Z")
# Operators may be followed by spaces (`>= 1.0.0`, `~ 1.0`, `^ 1`): glue them on.
_OP_SPACE_RE: Final = re.compile(r"(~>|~|\^|>=|<=|>|<|=)\s+")
MAX_RANGE_LENGTH: Final = 1024


def parse_version(text: str) -> semver.Version:
    """A strict SemVer 2.0.0 version (no `v`, no missing parts, no leading zeros)."""
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        raise InvalidVersionError(f"{text!r} is not a SemVer 2.0.0 version (like 1.2.3)") from None


@dataclass(frozen=True)
class Comparator:
    op: Operator
    version: semver.Version
    # node-semver lowers some desugared floors (`1.x` -> `>=1.0.0-0`) when prereleases
    # are included; this marks them so one parsed range serves both modes.
    floor: bool = False

    def test(self, version: semver.Version, include_prerelease: bool = False) -> bool:
        bound = self.version
        if self.floor and include_prerelease:
            bound = bound.replace(prerelease="0")
        cmp = version.compare(bound)
        if self.op == "=":
            return cmp == 0
        if self.op == "<":
            return cmp < 0
        if self.op == "<=":
            return cmp <= 0
        if self.op == ">":
            return cmp > 0
        return cmp >= 0

    def __str__(self) -> str:
        return f"{self.op if self.op != '=' else ''}{self.version}"


# One `||` alternative: every comparator must pass. An empty set matches everything.
ComparatorSet = tuple[Comparator, ...]


@dataclass(frozen=True)
class Range:
    """A parsed range; `text` is what the author wrote, `sets` its desugared form."""

    text: str
    sets: tuple[ComparatorSet, ...]

    def test(self, version: semver.Version | str, include_prerelease: bool = False) -> bool:
        if isinstance(version, str):
            try:
                version = parse_version(version)
            except InvalidVersionError:
                return False  # an invalid version never satisfies, as in node-semver
        return any(_test_set(s, version, include_prerelease) for s in self.sets)

    @cached_property
    def exact(self) -> semver.Version | None:
        """The version when the range pins exactly one (`1.2.3`, `=1.2.3`), else None."""
        if len(self.sets) == 1 and len(self.sets[0]) == 1 and self.sets[0][0].op == "=":
            return self.sets[0][0].version
        return None

    @property
    def normalized(self) -> str:
        """The desugared form, as node-semver prints it (`>=1.2.3 <2.0.0-0`)."""
        return "||".join(" ".join(str(c) for c in s) or "*" for s in self.sets)

    def __str__(self) -> str:
        return self.text


def _test_set(comparators: ComparatorSet, version: semver.Version, include_pre: bool) -> bool:
    if not all(c.test(version, include_pre) for c in comparators):
        return False
    if version.prerelease and not include_pre:
        # node-semver: a prerelease is only allowed when some comparator in this set
        # is a prerelease of the very same [major, minor, patch].
        return any(
            c.version.prerelease
            and (c.version.major, c.version.minor, c.version.patch)
            == (version.major, version.minor, version.patch)
            for c in comparators
        )
    return True


def parse_range(text: str) -> Range:
    """Parse an npm range such as `^1.2.0`, `~1.2 || >=3`, `1.2.3 - 2.0.0`, `1.x`, `*`."""
    if not isinstance(text, str):
        raise InvalidRangeError(f"expected a version range string, got {type(text).__name__}")
    if len(text) > MAX_RANGE_LENGTH:
        raise InvalidRangeError(f"version range is longer than {MAX_RANGE_LENGTH} characters")
    sets = tuple(_parse_set(part.strip(), text) for part in text.split("||"))
    return Range(text=text, sets=sets)


def _parse_set(part: str, whole: str) -> ComparatorSet:
    hyphen = _HYPHEN_RE.match(part)
    if hyphen:
        return _hyphen(_partial(hyphen["low"], whole), _partial(hyphen["high"], whole))
    comparators: list[Comparator] = []
    for token in _OP_SPACE_RE.sub(r"\1", part).split():
        comparators.extend(_desugar(token, whole))
    return tuple(comparators)


@dataclass(frozen=True)
class _Partial:
    """`1`, `1.2`, `1.x`, `1.2.3-pre`: missing or wildcard parts are None."""

    major: int | None
    minor: int | None
    patch: int | None
    pre: str | None

    def version(self, pre: str | None = None) -> semver.Version:
        return semver.Version(self.major or 0, self.minor or 0, self.patch or 0, pre)


def _partial(text: str, whole: str) -> _Partial:
    match = _PARTIAL_RE.match(text)
    if not match:
        raise InvalidRangeError(
            f"invalid version range {whole!r}: {text!r} is not a version or partial version "
            "(expected forms like 1.2.3, 1.2, 1.x, ^1.2.0, ~1.2, >=1 <2, 1.2.3 - 2.0.0)"
        )

    def part(name: str) -> int | None:
        value = match[name]
        return None if value is None or value in ("x", "X", "*") else int(value)

    major, minor, patch = part("major"), part("minor"), part("patch")
    # Once a part is a wildcard, everything after it is too (`1.x.3` means `1.x`).
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    if match["pre"] is not None and patch is None:
        raise InvalidRangeError(
            f"invalid version range {whole!r}: a prerelease needs a full version in {text!r}"
        )
    return _Partial(major, minor, patch, match["pre"])


def _cmp(
    op: Operator, major: int, minor: int, patch: int, pre: str | None = None, floor: bool = False
) -> Comparator:
    return Comparator(op, semver.Version(major, minor, patch, pre), floor)


def _desugar(token: str, whole: str) -> list[Comparator]:
    head = _TOKEN_RE.match(token)
    assert head is not None  # the pattern matches any string
    op, rest = head["op"] or "", head["rest"]
    if rest.startswith("="):  # `>==1.2.3` is nonsense; `=1.2.3` alone is handled by op
        raise InvalidRangeError(f"invalid version range {whole!r}: unexpected {token!r}")
    p = _partial(rest, whole)
    if op in ("~", "~>"):
        return _tilde(p)
    if op == "^":
        return _caret(p)
    return _primitive(op, p)


def _tilde(p: _Partial) -> list[Comparator]:
    if p.major is None:
        return []
    if p.minor is None:
        return [_cmp(">=", p.major, 0, 0), _cmp("<", p.major + 1, 0, 0, "0")]
    if p.patch is None:
        return [_cmp(">=", p.major, p.minor, 0), _cmp("<", p.major, p.minor + 1, 0, "0")]
    return [
        _cmp(">=", p.major, p.minor, p.patch, p.pre),
        _cmp("<", p.major, p.minor + 1, 0, "0"),
    ]


def _caret(p: _Partial) -> list[Comparator]:
    if p.major is None:
        return []
    if p.minor is None:
        return [_cmp(">=", p.major, 0, 0, floor=True), _cmp("<", p.major + 1, 0, 0, "0")]
    if p.patch is None:
        upper = (
            _cmp("<", 0, p.minor + 1, 0, "0") if p.major == 0 else _cmp("<", p.major + 1, 0, 0, "0")
        )
        return [_cmp(">=", p.major, p.minor, 0, floor=True), upper]
    low = _cmp(">=", p.major, p.minor, p.patch, p.pre, floor=p.major == 0 and p.pre is None)
    if p.major == 0 and p.minor == 0:
        return [low, _cmp("<", 0, 0, p.patch + 1, "0")]
    if p.major == 0:
        return [low, _cmp("<", 0, p.minor + 1, 0, "0")]
    return [low, _cmp("<", p.major + 1, 0, 0, "0")]


def _primitive(op: str, p: _Partial) -> list[Comparator]:
    """A plain version or an x-range, optionally after a comparison operator."""
    if p.major is None:
        # `*`, `x`, `>=*`: anything; `<*` and `>*`: nothing at all.
        return [_cmp("<", 0, 0, 0, "0")] if op in ("<", ">") else []
    if p.patch is not None:  # a full version
        return [Comparator(_as_operator(op), p.version(p.pre))]
    if op in ("", "="):
        if p.minor is None:
            return [_cmp(">=", p.major, 0, 0, floor=True), _cmp("<", p.major + 1, 0, 0, "0")]
        return [
            _cmp(">=", p.major, p.minor, 0, floor=True),
            _cmp("<", p.major, p.minor + 1, 0, "0"),
        ]
    major, minor = p.major, p.minor if p.minor is not None else 0
    if op == ">":  # `>1.2` means `>=1.3.0`, `>1` means `>=2.0.0`
        if p.minor is None:
            return [_cmp(">=", major + 1, 0, 0, floor=True)]
        return [_cmp(">=", major, minor + 1, 0, floor=True)]
    if op == "<=":  # `<=1.2` means `<1.3.0-0`
        if p.minor is None:
            return [_cmp("<", major + 1, 0, 0, "0")]
        return [_cmp("<", major, minor + 1, 0, "0")]
    if op == "<":
        return [_cmp("<", major, minor, 0, "0")]
    return [_cmp(">=", major, minor, 0, floor=True)]


def _hyphen(low: _Partial, high: _Partial) -> ComparatorSet:
    out: list[Comparator] = []
    if low.major is not None:
        out.append(Comparator(">=", low.version(low.pre), floor=low.patch is None))
    if high.major is None:
        pass
    elif high.minor is None:
        out.append(_cmp("<", high.major + 1, 0, 0, "0"))
    elif high.patch is None:
        out.append(_cmp("<", high.major, high.minor + 1, 0, "0"))
    else:
        out.append(Comparator("<=", high.version(high.pre)))
    return tuple(out)


def _as_operator(op: str) -> Operator:
    if op in ("", "="):
        return "="
    assert op in ("<", "<=", ">", ">=")
    return op  # type: ignore[return-value]
