"""The release log at scale (issue 10): its size on disk, the bytes a one-version build
reads from it, and the time a build spends on it.

    python benchmarks/log_bench.py --workdir /tmp/bench-log            # 10,000 x 10
    python benchmarks/log_bench.py --apps 2000 --workdir /tmp/bench-2k  # a quick look

Builds run in this process (no HTML site: the log is what is measured) so that the log's
functions can be timed where the pipeline calls them: reading and verifying the previous
log (read_previous: checkpoint, entry bundles, Merkle root, consistency with the cached
checkpoint), the per-version checks and appends the planner makes (check_release,
log_release, log_standing), building the checkpoint and tiles (log_files), and the local
cache of the last log seen (load_seen, store_seen). Steps:

1. cold build into out/;
2. add one version, build out/ again (same output folder);
3. serve out/ over HTTP on 127.0.0.1 and build a fresh folder ci/ with --previous-url and
   no local cache for it (a CI runner's first run);
4. add one more version, build out/, then ci/ again over HTTP, now with the cache that
   step 3 left (only the tail of the log is read);
5. (--again, a later run) add one more version and build out/ again.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

import appshelf.builder.pipeline as pipeline  # noqa: E402
import appshelf.builder.plan as plan  # noqa: E402
import appshelf.builder.previous as previous  # noqa: E402
from appshelf.builder import BuildOptions, BuildReport, build_registry  # noqa: E402
from appshelf.deploy.http import HttpSource  # noqa: E402

SECONDS: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)
TIMED = (
    (pipeline, "read_previous"),
    (previous, "verify_log"),
    (previous, "_read_entries"),
    (pipeline, "load_seen"),
    (pipeline, "store_seen"),
    (pipeline, "start_log"),
    (plan, "check_release"),
    (plan, "log_release"),
    (plan, "log_standing"),
    (pipeline, "log_files"),
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timer(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SECONDS[name] += time.perf_counter() - started
            CALLS[name] += 1

    return wrapper


def install_timers() -> None:
    for module, name in TIMED:
        setattr(module, name, timer(name, getattr(module, name)))


def folder_size(root: Path) -> tuple[int, int]:
    total = count = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(folder, name)).st_size
            count += 1
    return total, count


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def build(source: Path, output: Path, label: str, **options: Any) -> BuildReport:
    SECONDS.clear()
    CALLS.clear()
    environ = {"SOURCE_DATE_EPOCH": "1767225600"}
    log(f"{label}: building")
    report = build_registry(source, output, BuildOptions(environ=environ, **options))
    print(f"\n## {label}")
    print(
        f"  build {report.seconds:.1f} s, {report.versions} versions, log {report.log_entries} "
        f"entries (+{report.log_appended}), log_bytes_read {report.log_bytes_read}, "
        f"files written {report.files_written}"
    )
    spent = SECONDS["read_previous"] + SECONDS["start_log"] + SECONDS["log_files"]
    spent += sum(SECONDS[n] for n in ("check_release", "log_release", "log_standing"))
    spent += SECONDS["load_seen"] + SECONDS["store_seen"]
    for _module, name in TIMED:
        if CALLS[name]:
            print(f"  {name:15} {SECONDS[name]:8.3f} s  ({CALLS[name]} calls)")
    print(f"  on the log in total {spent:.3f} s of {report.seconds:.1f} s", flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument(
        "--again",
        action="store_true",
        help="only add one more version to an earlier run's out/ and build it again",
    )
    args = parser.parse_args()
    install_timers()
    work = args.workdir
    if args.again:
        key, patch = generate.app_key(args.apps // 2), 3
        while (work / "small/apps" / key / f"99.{patch}.0").exists():
            patch += 1
        generate.add_version(work / "small", key, f"99.{patch}.0")
        build(work / "small", work / "out", "5. add one more version, same output folder")
        return
    work.mkdir(parents=True, exist_ok=True)
    source = work / "small"
    if not (source / "registry.toml").exists():
        log(f"generating {args.apps} apps x {args.versions} versions in {source}")
        shutil.rmtree(source, ignore_errors=True)
        generate.generate_small(source, args.apps, args.versions, seed=1)
    out, ci = work / "out", work / "ci"
    for folder in (out, ci, work / ".appshelf-cache"):
        shutil.rmtree(folder, ignore_errors=True)
    key = generate.app_key(args.apps // 2)
    for stale in (source / "apps" / key).glob("99.*"):
        shutil.rmtree(stale)

    build(source, out, "1. cold build")
    size, count = folder_size(out / "log")
    print(f"  log/ on disk: {size} bytes in {count} files; checkpoint:")
    print("    " + (out / "log/checkpoint").read_text().replace("\n", "\n    "))

    generate.add_version(source, key, "99.1.0")
    build(source, out, "2. add one version, same output folder")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(out)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        build(source, ci, "3. --previous-url, no local cache", previous_source=HttpSource(url))
        generate.add_version(source, key, "99.2.0")
        build(source, out, "4a. add one more version, same output folder")
        build(
            source, ci, "4b. --previous-url, with the local cache", previous_source=HttpSource(url)
        )
    finally:
        httpd.shutdown()
    size, count = folder_size(out / "log")
    print(f"\nlog/ on disk at the end: {size} bytes in {count} files")


if __name__ == "__main__":
    main()
