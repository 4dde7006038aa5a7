"""Complexity gate: no function in src/ above cyclomatic complexity 15 (radon's measure).

    .venv/bin/python scripts/complexity_gate.py            # src/, scripts/complexity-allow.txt
    .venv/bin/python scripts/complexity_gate.py --max 10 --allow other.txt src/appshelf/x.py

xenon, radon's CI wrapper, only takes a rank (C is 11 to 20), so this reads radon's own
measure directly. Closures and methods of nested classes count as functions of their own.

The allow-list names the functions still to be refactored, one per line as
`path qualified.name complexity` (`#` starts a comment; the path relative to the
repository; no file: an empty list). It may only shrink: the gate
fails on a function above the limit that it does not name, on a named function that
rose above its listed complexity, and on a name that is no longer above the limit (or no
longer exists), so that its line is removed. Exit status 1 on any failure, else 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from radon.complexity import add_inner_blocks, cc_visit
from radon.visitors import Function

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ALLOW = REPO / "scripts" / "complexity-allow.txt"
DEFAULT_MAX = 15


@dataclass(frozen=True, order=True)
class Measured:
    path: str  # relative to the repository when inside it (shown_path)
    line: int
    name: str  # Class.method, outer.closure
    complexity: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.name}:{self.complexity}"


class AllowListError(ValueError):
    """A line of the allow-list that is not `path name complexity`."""


def python_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if p.is_file())
        else:
            yield path


def shown_path(path: Path) -> str:
    """Relative to the repository when inside it (as the allow-list names it), so the
    gate gives the same answer from any working folder."""
    resolved = path.resolve()
    if resolved.is_relative_to(REPO):
        return resolved.relative_to(REPO).as_posix()
    return path.as_posix()


def measure(path: Path) -> list[Measured]:
    """Every function, method and closure of one file with its complexity.

    Raises:
        SyntaxError: the file is not Python radon can parse.
    """
    shown = shown_path(path)
    try:
        blocks = add_inner_blocks(cc_visit(path.read_text(encoding="utf-8")))
    except SyntaxError as exc:
        raise SyntaxError(f"{shown}: radon cannot parse it ({exc})") from None
    functions = (block for block in blocks if isinstance(block, Function))
    return sorted(Measured(shown, b.lineno, b.fullname, b.complexity) for b in functions)


def read_allow_list(text: str, where: str) -> dict[tuple[str, str], int]:
    """(path, qualified name) -> the complexity it may have at most.

    Raises:
        AllowListError: a malformed or repeated line (named by its line number).
    """
    allowed: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 3 or not fields[2].isdigit():
            raise AllowListError(f"{where}:{number}: expected `path name complexity`: {raw!r}")
        key = (fields[0], fields[1])
        if key in allowed:
            raise AllowListError(f"{where}:{number}: {fields[0]} {fields[1]} is listed twice")
        allowed[key] = int(fields[2])
    return allowed


def problems(
    measured: Iterable[Measured], allowed: dict[tuple[str, str], int], limit: int
) -> list[str]:
    """Why the gate fails (empty: it passes); see the module docstring."""
    found: list[str] = []
    over: set[tuple[str, str]] = set()
    for item in measured:
        if item.complexity <= limit:
            continue
        key = (item.path, item.name)
        over.add(key)
        cap = allowed.get(key)
        if cap is None:
            found.append(f"{item}: above {limit}")
        elif item.complexity > cap:
            found.append(f"{item}: rose above its allow-listed {cap}; bring it down")
    for path, name in sorted(set(allowed) - over):
        found.append(
            f"{path}:{name}: allow-listed but not above {limit} (or gone); remove its line"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: src)")
    parser.add_argument("--max", type=int, default=DEFAULT_MAX, help="highest complexity allowed")
    parser.add_argument("--allow", type=Path, default=DEFAULT_ALLOW, help="the allow-list file")
    args = parser.parse_args(argv)
    try:
        allowed = {}
        if args.allow.exists():  # none: nothing is allowed above the limit
            allowed = read_allow_list(args.allow.read_text(encoding="utf-8"), str(args.allow))
        files = python_files(args.paths or [REPO / "src"])
        measured = [item for path in files for item in measure(path)]
    except (OSError, UnicodeDecodeError, SyntaxError, AllowListError) as exc:
        print(f"complexity gate: {exc}", file=sys.stderr)
        return 1
    found = problems(measured, allowed, args.max)
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(
            f"complexity gate: {len(found)} problem(s), limit {args.max} (split a function"
            f" into well-named helpers; the allow-list only shrinks: {args.allow})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
