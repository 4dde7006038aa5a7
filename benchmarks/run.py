"""Run every speed scenario of issues 6 and 12 and print one table (medians of --repeat runs).

    python benchmarks/run.py                   # full size: 100,000 versions + 2 GB
    python benchmarks/run.py --versions 20000 --workdir /tmp/bench20k
    python benchmarks/run.py --versions 2000 --large-bytes 200M   # a quick look (~1-2 min)

Each build runs as its own `appshelf build` process (so the site generator and anything
else the CLI wires in is measured too); its peak RSS comes from wait4(), and the files it
wrote are counted independently by comparing (inode, mtime_ns, size) of every output file
before and after. The peer is dumb-pypi 1.15, installed into benchmarks/.venv, run on a
package list with as many files as the registry has versions, in the same run.
Generated trees live under --workdir (default: a temp folder), never in the repository.

Issue 12 adds two scenarios. `clone`: the source tree is committed to git and cloned
into a new folder (every file gets a new inode and mtime, as on a CI runner), and the
clone is built into an empty output with no local cache, starting from the last build's
output served over HTTP on 127.0.0.1 (`appshelf build CLONE -o OUT --previous-url URL`):
once unchanged, once with one added version committed in the clone. `fetch`: the
registry is built with its base URL on a recording HTTP server on 127.0.0.1, and one
`appshelf fetch` of one app (no dependencies) with a fresh client state is run against
it; every response that is not the artifact counts as metadata (bytes as served,
uncompressed). `kept`: the same fresh clone (always at one path, as on a CI runner
whose workspace path is fixed), built into an output folder that persists between runs
with its cache beside it (a self-hosted runner, or an actions/cache of the output):
once unchanged, once with one added version.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402
import served  # noqa: E402

SCENARIOS = ("cold", "noop", "add", "clone", "kept", "fetch", "large", "hash")
EPOCH_ENV = {"SOURCE_DATE_EPOCH": "1767225600"}  # 2026-01-01: reproducible
PEER_VENV = HERE / ".venv"
PEER_VERSION = "1.15.0"
FileState = dict[str, tuple[int, int, int]]


@dataclass
class Run:
    seconds: float
    rss_mb: float
    written: int


@dataclass
class Row:
    scenario: str
    ours: list[Run] = field(default_factory=list)
    peer: list[Run] = field(default_factory=list)
    note: str = ""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def snapshot_files(root: Path) -> FileState:
    """(inode, mtime_ns, size) of every file: a rewritten file changes at least one."""
    state: FileState = {}
    if not root.exists():
        return state
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            state[path[len(str(root)) :]] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return state


def written_between(before: FileState, after: FileState) -> int:
    return sum(1 for path, stat in after.items() if before.get(path) != stat)


def timed(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a process; return wall seconds, its own peak RSS in MB, and its stdout."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout


def appshelf_build(
    source: Path,
    output: Path,
    extra: Sequence[str] = (),
    epoch: dict[str, str] = EPOCH_ENV,
) -> tuple[Run, dict[str, object]]:
    """One `appshelf build` process; `epoch={}` signs with the real clock (a client
    refuses a snapshot that expired: SOURCE_DATE_EPOCH's is a year old)."""
    before = snapshot_files(output)
    env = {**os.environ, **epoch}
    env.pop("APPSHELF_SIGNING_KEY", None)
    if not epoch:
        env.pop("SOURCE_DATE_EPOCH", None)
    argv = [sys.executable, "-m", "appshelf", "build", str(source), "-o", str(output), "--json"]
    seconds, rss, stdout = timed([*argv, *extra], env)
    report = json.loads(stdout)
    written = written_between(before, snapshot_files(output))
    if written != report["files_written"]:
        log(f"note: report says {report['files_written']} files written, disk shows {written}")
    log(f"  appshelf: {seconds:.2f} s, {rss:.0f} MB, {written} files written")
    return Run(seconds, rss, written), report


def ensure_peer() -> Path:
    exe = PEER_VENV / "bin" / "dumb-pypi"
    if not exe.exists():
        log(f"installing dumb-pypi=={PEER_VERSION} into {PEER_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(PEER_VENV / "bin" / "pip"), "install", "-q", f"dumb-pypi=={PEER_VERSION}"],
            check=True,
        )
    return exe


def peer_build(exe: Path, packages: Path, output: Path, previous: Path | None = None) -> Run:
    before = snapshot_files(output)
    argv = [
        str(exe),
        "--package-list",
        str(packages),
        "--output-dir",
        str(output),
        "--packages-url",
        "https://registry.example.com/packages/",
        "--no-generate-timestamp",
    ]
    if previous is not None:
        argv += ["--previous-package-list", str(previous)]
    seconds, rss, _ = timed(argv)
    written = written_between(before, snapshot_files(output))
    log(f"  dumb-pypi: {seconds:.2f} s, {rss:.0f} MB, {written} files written")
    return Run(seconds, rss, written)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def openssl_sha256(multi: int) -> float:
    """Bytes per second of `openssl speed -evp sha256` on 1 MiB buffers (wall clock)."""
    argv = [
        "openssl",
        "speed",
        "-evp",
        "sha256",
        "-bytes",
        "1048576",
        "-seconds",
        "3",
        "-elapsed",
        "-mr",
    ]
    if multi > 1:
        argv += ["-multi", str(multi)]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    finals = [line for line in output.splitlines() if line.startswith("+F:")]
    return float(finals[-1].rsplit(":", 1)[1])


HASH_PROBE = """
import sys, time
from pathlib import Path
from appshelf.filehash import hash_files
paths = [Path(p) for p in sys.argv[2:]]
hash_files(paths, workers=1)  # warm the page cache: we measure hashing, not the disk
started = time.perf_counter()
result = hash_files(paths, workers=int(sys.argv[1]))
print(sum(h.size for h in result.values()) / (time.perf_counter() - started))
"""


def appshelf_hash_rate(paths: list[Path], workers: int) -> float:
    output = subprocess.run(
        [sys.executable, "-c", HASH_PROBE, str(workers), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(output.strip())


def size_line(path: Path) -> str:
    if not path.exists():
        return f"{path.name}: (not produced)"
    data = path.read_bytes()
    return (
        f"{path.name}: {len(data) / 1e6:.2f} MB raw, "
        f"{len(gzip.compress(data, 6)) / 1e6:.2f} MB gzipped"
    )


def run_repeated(count: int, action: Callable[[int], tuple[Run, Run | None]], row: Row) -> None:
    for attempt in range(count):
        ours, peer = action(attempt)
        row.ours.append(ours)
        if peer is not None:
            row.peer.append(peer)


def git(cwd: Path, *argv: str) -> str:
    """Run git with a fixed identity and no user or system configuration."""
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    result = subprocess.run(
        ["git", *argv], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"git {' '.join(argv)} in {cwd} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def commit_all(tree: Path, message: str) -> None:
    """Commit everything in `tree` (a git work tree, created if need be)."""
    if not (tree / ".git").exists():
        git(tree, "init", "-q", "-b", "main")
    git(tree, "add", "-A")
    if git(tree, "status", "--porcelain"):
        git(tree, "commit", "-q", "-m", message)


def fresh_clone_rows(source: Path, published: Path, work: Path, repeat: int) -> list[Row]:
    """A CI runner's builds: a new clone, an empty output, no cache, and the state of
    `published` (the last build's output) over HTTP, first unchanged, then + one version."""
    started = time.perf_counter()
    commit_all(source, "generated source tree")
    log(f"git add + commit of the source: {time.perf_counter() - started:.1f} s")
    if not (published / "log" / "state.json").is_file():
        # As a CI build of that commit publishes it: log/state.json is written only by a
        # build from a git work tree, and it is what the clone's build starts from.
        log("rebuilding the published output from the commit (not timed)")
        appshelf_build(source, published)
    clone, fresh = work / "clone", work / "fresh"  # fresh/out, fresh/.appshelf-cache
    key = generate.app_key(0)
    noop = Row("fresh clone, no-op (--previous-url)")
    plus = Row("fresh clone, add one version")
    clone_seconds: list[float] = []
    fetched: list[tuple[int, int]] = []
    with served.serve(published) as (url, records):
        for attempt in range(repeat):
            for folder in (clone, fresh):
                shutil.rmtree(folder, ignore_errors=True)
            started = time.perf_counter()
            git(work, "clone", "-q", str(source), str(clone))
            clone_seconds.append(time.perf_counter() - started)
            for row, label in ((noop, "no-op"), (plus, "+1")):
                if row is plus:
                    shutil.rmtree(fresh)  # no output, no cache: only the published state
                    generate.add_version(clone, key, "98.0.0")
                    commit_all(clone, "one more version")
                log(f"fresh clone {label} {attempt + 1}/{repeat}")
                records.clear()
                ours, report = appshelf_build(clone, fresh / "out", ["--previous-url", url])
                row.ours.append(ours)
                answered = served.settle(records)
                fetched.append((len(answered), sum(r.body_bytes for r in answered)))
                same = (fresh / "out" / "snapshot.json").read_bytes() == (
                    published / "snapshot.json"
                ).read_bytes()
                log(
                    f"  {report['artifacts_hashed']} artifacts hashed, {report['apps_reused']} "
                    f"apps reused, log +{report['log_appended']}, snapshot "
                    f"{'identical to' if same else 'differs from'} the published one"
                )
    noop.note = (
        f"git clone {median(clone_seconds):.1f} s (not timed); the build read "
        f"{median([n for n, _ in fetched[0::2]]):.0f} responses, "
        f"{median([b for _, b in fetched[0::2]]) / 1e6:.2f} MB from --previous-url"
    )
    plus.note = (
        f"{median([n for n, _ in fetched[1::2]]):.0f} responses, "
        f"{median([b for _, b in fetched[1::2]]) / 1e6:.2f} MB from --previous-url"
    )
    return [noop, plus]


def kept_output_rows(source: Path, work: Path, repeat: int) -> list[Row]:
    """A new clone (new inodes and mtimes, same path) built into a kept output + cache."""
    clone, kept = work / "kept-clone", work / "kept" / "out"
    key = generate.app_key(1)
    commit_all(source, "generated source tree")
    shutil.rmtree(kept.parent, ignore_errors=True)
    shutil.rmtree(clone, ignore_errors=True)
    git(work, "clone", "-q", str(source), str(clone))
    log("kept output: first build of the clone (not timed)")
    appshelf_build(clone, kept)
    noop = Row("fresh clone, kept output, no-op")
    plus = Row("fresh clone, kept output, add one version")
    for attempt in range(repeat):
        for row, label in ((noop, "no-op"), (plus, "+1")):
            if row is plus:  # committed upstream, so every later clone has it too
                generate.add_version(source, key, f"97.0.{attempt}")
                commit_all(source, "one more version")
            shutil.rmtree(clone)
            git(work, "clone", "-q", str(source), str(clone))
            log(f"kept output {label} {attempt + 1}/{repeat}")
            ours, report = appshelf_build(clone, kept)
            row.ours.append(ours)
            log(f"  {report['artifacts_hashed']} artifacts hashed, {report['apps_reused']} reused")
    return [noop, plus]


def fetch_metadata(source: Path, work: Path, key: str) -> list[str]:
    """Bytes of every non-artifact response of one `appshelf fetch KEY`, fresh client."""
    site, state, dest = work / "fetch-out", work / "fetch-state", work / "fetch-dest"
    for folder in (site, state, dest):
        shutil.rmtree(folder, ignore_errors=True)
    for stale in (work / ".appshelf-cache").glob(f"{site.name}.*"):  # an earlier run's log
        stale.unlink()
    with served.serve(site) as (url, records):
        log("build with the recording server's base URL (--no-site, real clock)")
        built, _ = appshelf_build(source, site, ["--base-url", url, "--no-site"], epoch={})
        records.clear()
        argv = [sys.executable, "-m", "appshelf", "fetch", "-r", url, "--allow-dev-key"]
        seconds, rss, _ = timed([*argv, "--state-dir", str(state), "-d", str(dest), key])
        responses = served.settle(records)
    artifacts = {path.name for path in dest.rglob("*") if path.is_file()}
    metadata = [r for r in responses if r.path.rsplit("/", 1)[-1] not in artifacts]
    downloads = [r for r in responses if r.path.rsplit("/", 1)[-1] in artifacts]
    lines = [
        f"Client metadata for one `appshelf fetch {key}` (no dependencies; fresh state):",
        f"  {len(metadata)} metadata responses, {sum(r.body_bytes for r in metadata):,} bytes"
        f" of body ({sum(r.wire_bytes for r in metadata):,} with headers); "
        f"{len(downloads)} artifact response(s), {sum(r.body_bytes for r in downloads):,} bytes",
        f"  fetch took {seconds:.2f} s, peak RSS {rss:.0f} MB (setup build {built.seconds:.1f} s)",
    ]
    lines += [f"    {r.status} {r.body_bytes:>10,}  {r.method} {r.path}" for r in metadata]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--versions", type=int, default=100_000, help="versions in the registry (total)"
    )
    parser.add_argument("--per-app", type=int, default=10, help="versions per app")
    parser.add_argument("--large-apps", type=int, default=20)
    parser.add_argument(
        "--large-bytes", type=generate.parse_size, default=generate.parse_size("2G")
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (median shown)")
    parser.add_argument("--workdir", type=Path, help="keep the generated trees here")
    parser.add_argument("--no-peer", action="store_true", help="skip dumb-pypi")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default=set(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (no-op and add need an "
        "earlier cold build in the same --workdir)",
    )
    args = parser.parse_args()
    args.apps = max(1, args.versions // args.per_app)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="appshelf-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    small, large = work / "small", work / "large"
    if not (small / "registry.toml").exists():
        log(f"generating {args.apps} apps x {args.per_app} versions in {small}")
        shutil.rmtree(small, ignore_errors=True)
        generate.generate_small(small, args.apps, args.per_app, seed=1)
    if not (large / "registry.toml").exists() and args.only & {"large", "hash"}:
        log(f"generating {args.large_apps} apps, {args.large_bytes} bytes in {large}")
        shutil.rmtree(large, ignore_errors=True)
        generate.generate_large(large, args.large_apps, args.large_bytes, seed=1)
    peer = None if args.no_peer else ensure_peer()
    packages = small / "dumb-pypi-packages.txt"
    versions = args.apps * args.per_app
    rows: list[Row] = []
    out, peer_out = work / "out", work / "peer-out"
    cache = work / ".appshelf-cache"

    # Cold build: empty output, no cache.
    cold = Row(f"cold build, {versions} versions")

    def cold_run(attempt: int) -> tuple[Run, Run | None]:
        for folder in (out, peer_out, cache):
            shutil.rmtree(folder, ignore_errors=True)
        log(f"cold build {attempt + 1}/{args.repeat}")
        ours, _ = appshelf_build(small, out)
        theirs = peer_build(peer, packages, peer_out) if peer else None
        return ours, theirs

    if "cold" in args.only:
        run_repeated(args.repeat, cold_run, cold)
        rows.append(cold)

    noop = Row("no-op rebuild")

    def noop_run(attempt: int) -> tuple[Run, Run | None]:
        log(f"no-op rebuild {attempt + 1}/{args.repeat}")
        ours, _ = appshelf_build(small, out)
        theirs = peer_build(peer, packages, peer_out, previous=packages) if peer else None
        return ours, theirs

    if "noop" in args.only:
        run_repeated(args.repeat, noop_run, noop)
        rows.append(noop)

    add = Row("add one version")

    def add_run(attempt: int) -> tuple[Run, Run | None]:
        log(f"add one version {attempt + 1}/{args.repeat}")
        key = generate.app_key(args.apps // 2)
        patch = attempt
        while (small / "apps" / key / f"99.0.{patch}").exists():  # an earlier run's
            patch += 1
        generate.add_version(small, key, f"99.0.{patch}")
        ours, _ = appshelf_build(small, out)
        theirs = None
        if peer:
            before = packages.read_text()
            bigger = work / "packages-plus-one.txt"
            bigger.write_text(before + f"{key.replace('-', '_')}-99.0.{patch}.tar.gz\n")
            theirs = peer_build(peer, bigger, peer_out, previous=packages)
            packages.write_text(bigger.read_text())
        return ours, theirs

    if "add" in args.only:
        run_repeated(args.repeat, add_run, add)
    add.note = (
        "expected files: artifact, manifest, app.json, versions.json, top-level indexes, snapshot"
    )
    if "add" in args.only:
        rows.append(add)

    if "clone" in args.only:
        rows += fresh_clone_rows(small, out, work, args.repeat)
    if "kept" in args.only:
        rows += kept_output_rows(small, work, args.repeat)

    # Large artifacts: memory must not grow with artifact size.
    large_row = Row(
        f"cold build, {args.large_apps} large artifacts ({args.large_bytes / 1e9:.1f} GB)"
    )
    large_out = work / "large-out"

    def large_run(attempt: int) -> tuple[Run, Run | None]:
        shutil.rmtree(large_out, ignore_errors=True)
        for stale in cache.glob(f"{large_out.name}.sqlite*"):  # cold: no cached digests
            stale.unlink()
        log(f"large cold build {attempt + 1}/{args.repeat}")
        ours, _ = appshelf_build(large, large_out)
        return ours, None

    if "large" in args.only:
        run_repeated(args.repeat, large_run, large_row)
        rows.append(large_row)

    print_table(rows)
    if "fetch" in args.only:
        print()
        print("\n".join(fetch_metadata(small, work, generate.app_key(0))))
    if "hash" in args.only:
        print()
        log("hashing throughput")
        artifacts = sorted(large.glob("apps/*/*/*.bin"))
        one = median([appshelf_hash_rate(artifacts, 1) for _ in range(args.repeat)])
        two = median([appshelf_hash_rate(artifacts, 2) for _ in range(args.repeat)])
        ssl_one, ssl_two = openssl_sha256(1), openssl_sha256(2)

        print("Hashing (SHA-256, large files from the page cache, MB/s;")
        print("  1 worker = one file at a time, with its read-ahead thread while a core is idle):")
        print(
            f"  appshelf 1 worker : {one / 1e6:8.0f}   openssl speed -evp sha256          : "
            f"{ssl_one / 1e6:8.0f}   ratio {one / ssl_one:.2f}"
        )
        print(
            f"  appshelf 2 workers: {two / 1e6:8.0f}   openssl speed -evp sha256 -multi 2 : "
            f"{ssl_two / 1e6:8.0f}   ratio {two / ssl_two:.2f}   (2 vs 1 thread: {two / one:.2f}x)"
        )
    print()
    print(f"Top-level files for {args.apps} apps:")
    print("  " + size_line(out / "registry.json"))
    print("  " + size_line(out / "index.json"))
    for extra in sorted(out.glob("search*.json")) + sorted(out.glob("site/search*.json")):
        print("  " + size_line(extra))
    print(f"\ntrees and outputs in {work}")


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'scenario':44} {'appshelf s':>10} {'peer s':>8} {'ratio':>6} {'peak RSS MB':>11} "
        f"{'files written':>14} {'peer files':>10} {'peer RSS MB':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ours = median([r.seconds for r in row.ours])
        theirs = median([r.seconds for r in row.peer])
        ratio = ours / theirs if row.peer else float("nan")
        rss = median([r.rss_mb for r in row.ours])
        written = median([r.written for r in row.ours])
        peer_written = median([r.written for r in row.peer])
        peer_text = f"{theirs:8.2f}" if row.peer else f"{'-':>8}"
        ratio_text = f"{ratio:6.2f}" if row.peer else f"{'-':>6}"
        peer_files = f"{peer_written:10.0f}" if row.peer else f"{'-':>10}"
        peer_rss = f"{median([r.rss_mb for r in row.peer]):11.0f}" if row.peer else f"{'-':>11}"
        print(
            f"{row.scenario:44} {ours:10.2f} {peer_text} {ratio_text} {rss:11.0f} "
            f"{written:14.0f} {peer_files} {peer_rss}"
        )
        if row.note:
            print(f"  ({row.note})")
    if rows:
        print(f"(medians of {len(rows[0].ours)} runs each; peer = dumb-pypi {PEER_VERSION})")


if __name__ == "__main__":
    main()
