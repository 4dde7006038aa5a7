"""The ANIP read mirror and templates at scale: size and build time.

    python benchmarks/anip_bench.py --apps 1000 --versions 10 --templates 20

Generates a `small` tree (benchmarks/generate.py; --apps x --versions versions) plus
--templates template apps of one version each (the bundle of tests/anip), in --workdir
(default a temporary folder), then builds it in this process, each build into a fresh
output without the site: once without the mirror, once with `[mirrors] anip = true`,
each followed by a no-op rebuild. Prints the wall time of each build, the time
spent in the mirror's planning (anip_files) alone, and the mirror's files and bytes
(raw and gzipped), with the snapshot's size either way.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "anip"))
sys.path.insert(0, str(HERE.parent / "tests"))

import generate  # noqa: E402
from anip_support import add_template  # noqa: E402

import appshelf.builder.pipeline as pipeline  # noqa: E402
from appshelf.builder import BuildOptions, build_registry  # noqa: E402

NOW = datetime(2026, 2, 1, tzinfo=UTC)


def _tree(work: Path, apps: int, versions: int, templates: int) -> Path:
    source = work / "source"
    if not source.exists():
        generate.generate_small(source, apps, versions, 1)
        for i in range(templates):
            add_template(source, key=f"template-{i:03d}")
    return source


def _build(source: Path, output: Path) -> float:
    started = time.perf_counter()
    build_registry(source, output, BuildOptions(now=NOW, environ={}, cache=True))
    return time.perf_counter() - started


def _mirror_bytes(output: Path) -> tuple[int, int, int]:
    files = [p for p in (output / "registry-api").rglob("*") if p.is_file()]
    files.append(output / "mirrors" / "anip.json")
    raw = sum(p.stat().st_size for p in files)
    zipped = sum(len(gzip.compress(p.read_bytes(), 6)) for p in files)
    return len(files), raw, zipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--templates", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="anip-bench-"))
    source = _tree(work, args.apps, args.versions, args.templates)
    plain, mirrored = work / "out-plain", work / "out-anip"
    for out in (plain, mirrored):
        shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / ".appshelf-cache", ignore_errors=True)
    spent = [0.0]
    original = pipeline.anip_files

    def timed(*a, **k):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            spent[0] += time.perf_counter() - started

    pipeline.anip_files = timed  # type: ignore[assignment]
    config = source / "registry.toml"
    text = config.read_text().replace("\n[mirrors]\nanip = true\n", "")
    config.write_text(text)
    cold_plain = _build(source, plain)
    noop_plain = _build(source, plain)
    config.write_text(text + "\n[mirrors]\nanip = true\n")
    cold_anip = _build(source, mirrored)
    cold_spent, spent[0] = spent[0], 0.0
    noop = _build(source, mirrored)
    files, raw, zipped = _mirror_bytes(mirrored)
    snapshot = json.loads((mirrored / "snapshot.json").read_bytes())["signed"]
    result = {
        "versions": args.apps * args.versions + args.templates,
        "packages": args.apps * args.versions,
        "templates": args.templates,
        "cold_build_without_mirror_s": round(cold_plain, 2),
        "noop_rebuild_without_mirror_s": round(noop_plain, 2),
        "cold_build_with_mirror_s": round(cold_anip, 2),
        "anip_files_s_cold": round(cold_spent, 2),
        "noop_rebuild_with_mirror_s": round(noop, 2),
        "anip_files_s_noop": round(spent[0], 2),
        "mirror_files": files,
        "mirror_bytes": raw,
        "mirror_bytes_gzip": zipped,
        "publications_bytes": (mirrored / "registry-api/v1/publications").stat().st_size,
        "pins_bytes": (mirrored / "mirrors/anip.json").stat().st_size,
        "templates_json_bytes": (mirrored / "templates.json").stat().st_size,
        "snapshot_bytes_without_mirror": (plain / "snapshot.json").stat().st_size,
        "snapshot_bytes_with_mirror": (mirrored / "snapshot.json").stat().st_size,
        "snapshot_meta_entries": len(snapshot["meta"]),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
