"""The appr and ANIP mirrors at scale: one build with both on, no site, then a no-op.

    python benchmarks/generate.py small SRC --apps 10000 --versions 10
    printf '\\n[mirrors]\\nappr = true\\nanip = true\\n' >> SRC/registry.toml
    python benchmarks/mirrors_100k.py SRC OUT

Prints each build's wall time and the time spent in each mirror's planning
(`mirror_files`, `anip_files`, timed by wrapping them), then the files and bytes under
cnr/ and registry-api/ and the sizes of the pin files.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import appshelf.builder.pipeline as pipeline
from appshelf.builder import BuildOptions, build_registry

SPENT = {"anip_files": 0.0, "mirror_files": 0.0}


def _timed(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - start

    return wrapper


def _size(paths: Iterable[Path]) -> tuple[int, int]:
    files = [p for p in paths if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main(source: Path, output: Path) -> None:
    for name in SPENT:
        setattr(pipeline, name, _timed(name, getattr(pipeline, name)))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for label in ("cold", "no-op"):
        SPENT.update(dict.fromkeys(SPENT, 0.0))
        start = time.perf_counter()
        report = build_registry(source, output, BuildOptions(now=now, environ={}))
        wall = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{label}: {wall:.1f} s wall, versions {report.versions}, "
            f"in anip_files {SPENT['anip_files']:.1f} s, "
            f"in appr mirror_files {SPENT['mirror_files']:.1f} s, peak RSS so far {rss:.0f} MB",
            flush=True,
        )
    for folder in ("cnr", "registry-api"):
        count, size = _size((output / folder).rglob("*"))
        print(f"{folder}/: {count} files, {size} bytes")
    for name in ("cnr/files.json", "mirrors/anip.json", "registry-api/v1/publications"):
        path = output / name
        print(f"{name}: {path.stat().st_size if path.exists() else 'absent'} bytes")
    print(f"snapshot.json: {(output / 'snapshot.json').stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
