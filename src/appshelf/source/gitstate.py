"""What git says about `apps/`, so that a fresh clone of an unchanged registry is seen as
unchanged: stat keys (source/fingerprint.py) all change in a clone, git's ids do not.

When the source root is in a git work tree and `git` is on PATH, these commands (after
`git rev-parse` finds the work tree, and `git config` reads `core.autocrlf`), each run
once for the whole tree with a timeout, tell per app folder:
- `git ls-tree -r -t HEAD:<prefix>apps`: the tree id of every `apps/<key>`, the blob id
  and mode of every file below it, and its folders;
- `git ls-files -v`: index entries marked assume-unchanged or skip-worktree (git status
  does not look at those);
- `git check-attr -a`: attributes that make the work tree differ from the blob
  (text, eol, crlf, filter, ident, working-tree-encoding); with `core.autocrlf` set to
  anything but false, nothing is used;
- `git status --porcelain -z --untracked-files=all --ignored=matching`: every modified,
  staged, deleted, untracked or ignored path (ignored files count: the reader would read
  them, and the tree id does not cover them). It runs last, and not at all when a
  `filter` attribute applies anywhere under apps/ (Git LFS, for one): git status would
  run that filter's program, and the work tree does not hold the blobs anyway.

An app is vouched for only when all of it is plain: every entry a folder or a regular
file (no symlink, no submodule), no path of it dirty, flagged or converted. Its work tree
then holds exactly the blobs of HEAD's tree, byte for byte, except for what git cannot
see, which the caller checks: empty folders (`folders_match`). Assumed and not checked:
permission bits other than the executable bit, and hard links (the reader refuses a file
with several links; git does not notice one). Anything odd (git missing or failing, a
timeout, output that does not parse, a source root that is not where git says) means no
git information at all, and the build falls back to stat keys. Git's output is input
like any other: each line is matched in full and the total size is capped. Repository
discovery is not redirected by the caller's GIT_DIR and the like (a build run from a git
hook), and `core.fsmonitor` is off (it would run a program of the repository's config).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("appshelf.build.git")

GIT_TIMEOUT_SECONDS = 60.0
MAX_GIT_OUTPUT = 256 << 20  # bytes of one command's output
_OID = r"(?:[0-9a-f]{40}|[0-9a-f]{64})"
_TREE_LINE = re.compile(rf"(\d{{6}}) (blob|tree|commit) ({_OID})\t([^\0]+)", re.DOTALL)
_STATUS_LINE = re.compile(r"[ MTADRCU?!]{2} ([^\0]+)", re.DOTALL)
_FLAG_LINE = re.compile(r"([A-Za-z?]) ([^\0]+)", re.DOTALL)
_PREFIX = re.compile(r"(?:[^\0\n]+/)?")
_PLAIN_MODES = {"100644", "100755"}
# Attributes that make a checked-out file differ from its blob (or run a program).
_CONVERTING = {"text", "eol", "crlf", "filter", "ident", "working-tree-encoding"}
_AUTOCRLF_OFF = {"false", "no", "off", "0"}
# Repository discovery of a git hook's environment, which must not redirect ours.
_LOCATING_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_SAFE_OPTIONS = (
    "--literal-pathspecs",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.untrackedCache=false",
    "-c",
    "core.checkStat=default",
    "-c",
    "core.trustctime=true",
)


@dataclass(frozen=True)
class GitApps:
    """Per app folder that git vouches for: what HEAD holds and the work tree matches."""

    trees: dict[str, str]  # app key -> tree id of apps/<key> in HEAD
    blobs: dict[str, str]  # "apps/<key>/..." (relative to the source root) -> blob id
    folders: dict[str, frozenset[str]]  # app key -> its folders below it ("1.0.0", ...)
    refused: dict[str, str] = field(default_factory=dict)  # app key -> why not vouched for
    known: frozenset[str] = frozenset()  # every blob id under apps/ in HEAD


class _GitFailed(Exception):
    """A git command failed, timed out or said something unexpected."""


@dataclass
class _App:
    tree: str
    blobs: dict[str, str] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)
    refused: str = ""


def read_git_apps(root: Path, timeout: float = GIT_TIMEOUT_SECONDS) -> GitApps | None:
    """What git vouches for under `root/apps`, or None when `root` is not in a git work
    tree, git is missing, or anything about git's answers is odd (logged at debug level).

    Args:
        root: the source root (registry.toml and apps/), resolved.
        timeout: seconds each git command may take.
    """
    git = shutil.which("git")
    if git is None:
        log.debug("no git on PATH: change detection by stat keys only")
        return None
    try:
        return _read(_Git(git, root, timeout), root)
    except _GitFailed as exc:
        log.debug("no git information for %s: %s", root, exc)
        return None


@dataclass(frozen=True)
class _Git:
    executable: str
    cwd: Path
    timeout: float

    def __call__(self, *args: str, stdin: bytes | None = None, ok: Iterable[int] = (0,)) -> str:
        env = {k: v for k, v in os.environ.items() if k not in _LOCATING_ENV}
        env.update(LC_ALL="C", GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0")
        argv = [self.executable, *_SAFE_OPTIONS, *args]
        try:
            code, out = _run(argv, self.cwd, env, stdin, self.timeout)
        except (OSError, subprocess.SubprocessError) as exc:
            raise _GitFailed(f"git {args[0]}: {exc}") from None
        if code not in ok:
            raise _GitFailed(f"git {args[0]} exited with {code}")
        try:
            return out.decode("utf-8", "surrogateescape")
        except UnicodeDecodeError:  # pragma: no cover - surrogateescape decodes anything
            raise _GitFailed(f"git {args[0]}: output is not text") from None


def _run(
    argv: list[str], cwd: Path, env: dict[str, str], stdin: bytes | None, timeout: float
) -> tuple[int, bytes]:
    """Run `argv`; its exit code and stdout, read up to MAX_GIT_OUTPUT (then killed)."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as process:
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout, expire)
        timer.start()
        feeder = None
        if stdin is not None:
            feeder = threading.Thread(target=_feed, args=(process, stdin), daemon=True)
            feeder.start()
        try:
            assert process.stdout is not None
            parts, size = [], 0
            while chunk := process.stdout.read(1 << 20):
                parts.append(chunk)
                size += len(chunk)
                if size > MAX_GIT_OUTPUT:
                    process.kill()
                    raise subprocess.SubprocessError(f"more than {MAX_GIT_OUTPUT} bytes of output")
            out = b"".join(parts)
            code = process.wait()
        finally:
            timer.cancel()
            if feeder is not None:
                feeder.join()
        if expired.is_set():
            raise subprocess.TimeoutExpired(argv, timeout)
        return code, out


def _feed(process: subprocess.Popen[bytes], data: bytes) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(data)
        process.stdin.close()
    except OSError:
        pass  # git stopped reading: its exit code tells


def _read(git: _Git, root: Path) -> GitApps:
    prefix = git("rev-parse", "--show-prefix").removesuffix("\n")
    toplevel = git("rev-parse", "--show-toplevel").removesuffix("\n")
    if not _PREFIX.fullmatch(prefix) or "\n" in toplevel:
        raise _GitFailed(f"unexpected rev-parse output {prefix[:80]!r}")
    top = Path(toplevel)
    if not top.is_absolute() or (top / prefix).resolve() != root:
        raise _GitFailed(f"the work tree {toplevel[:200]!r} does not hold {root} at {prefix!r}")
    git = _Git(git.executable, top, git.timeout)
    autocrlf = git("config", "--get", "core.autocrlf", ok=(0, 1)).strip().lower()
    if autocrlf and autocrlf not in _AUTOCRLF_OFF:
        raise _GitFailed(f"core.autocrlf={autocrlf[:20]}: checked-out files are not the blobs")
    apps = _tree(git, prefix)
    _flags(git, prefix, apps)
    _attributes(git, prefix, apps)
    _dirty(git, prefix, apps)
    return _vouched(apps)


def _vouched(apps: dict[str, _App]) -> GitApps:
    vouched = {key: app for key, app in apps.items() if not app.refused}
    return GitApps(
        trees={key: app.tree for key, app in vouched.items()},
        blobs={path: oid for key, app in vouched.items() for path, oid in app.blobs.items()},
        folders={key: frozenset(app.folders) for key, app in vouched.items()},
        refused={key: app.refused for key, app in apps.items() if app.refused},
        known=frozenset(oid for app in apps.values() for oid in app.blobs.values()),
    )


def _entries(text: str, pattern: re.Pattern[str], what: str) -> Iterable[re.Match[str]]:
    if text and not text.endswith("\0"):
        raise _GitFailed(f"{what}: output does not end in NUL")
    for line in text.split("\0")[:-1]:
        match = pattern.fullmatch(line)
        if match is None:
            raise _GitFailed(f"{what}: unexpected line {line[:80]!r}")
        yield match


_ODD_PATH = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")  # an empty, "." or ".." component


def _tree(git: _Git, prefix: str) -> dict[str, _App]:
    """Every `apps/<key>` tree of HEAD, with its blobs and folders."""
    out = git("ls-tree", "-r", "-t", "-z", "--full-tree", f"HEAD:{prefix}apps")
    apps: dict[str, _App] = {}
    for match in _entries(out, _TREE_LINE, "ls-tree"):
        mode, kind, oid, path = match.groups()
        if _ODD_PATH.search(path):
            raise _GitFailed(f"ls-tree: unexpected path {path[:80]!r}")
        key, _, rest = path.partition("/")
        if not rest:
            if kind == "tree":
                apps[key] = _App(oid)
            continue  # a file beside the app folders: not an app
        app = apps.get(key)
        if app is None:
            raise _GitFailed(f"ls-tree: {path[:80]!r} listed before its app folder")
        if kind == "tree" and mode == "040000":
            app.folders.add(rest)
        elif kind == "blob" and mode in _PLAIN_MODES:
            app.blobs[f"apps/{path}"] = oid
        else:
            app.refused = app.refused or f"{rest} is not a plain file or folder (mode {mode})"
    return apps


def _app_of(path: str, prefix: str, what: str) -> str:
    """The app key of a path relative to the work tree's top ("" when directly in apps/)."""
    inner = path[len(prefix) :] if path.startswith(prefix) else ""
    if not inner.startswith("apps/"):
        raise _GitFailed(f"{what}: path {path[:80]!r} outside {prefix}apps/")
    parts = inner.rstrip("/").split("/")
    return parts[1] if len(parts) > 2 or inner.endswith("/") else ""


def _flags(git: _Git, prefix: str, apps: dict[str, _App]) -> None:
    """Index entries git status would not compare (assume-unchanged, skip-worktree...)."""
    out = git("ls-files", "-v", "-z", "--", f"{prefix}apps/")
    if out.endswith("\0") and ("\0" + out).count("\0H ") == out.count("\0"):
        return  # every entry a plain cached one (the usual case: no line to look at)
    for match in _entries(out, _FLAG_LINE, "ls-files"):
        tag, path = match.groups()
        app = apps.get(_app_of(path, prefix, "ls-files"))
        if tag != "H" and app is not None:
            app.refused = app.refused or f"{path} is marked {tag!r} in the index"


def _attributes(git: _Git, prefix: str, apps: dict[str, _App]) -> None:
    """Files whose checkout is converted (line endings, filters): not their blobs."""
    paths = [f"{prefix}{path}" for app in apps.values() for path in app.blobs]
    if not paths:
        return
    listing = "".join(f"{path}\0" for path in paths).encode("utf-8", "surrogateescape")
    out = git("check-attr", "-a", "-z", "--stdin", stdin=listing)
    fields = out.split("\0")
    if len(fields) % 3 != 1 or fields[-1]:
        raise _GitFailed("check-attr: unexpected output")
    for index in range(0, len(fields) - 1, 3):
        path, name, value = fields[index : index + 3]
        if name == "filter" and value != "unset":
            raise _GitFailed(f"{path} has the attribute filter={value}")
        if name in _CONVERTING and value != "unset":
            app = apps.get(_app_of(path, prefix, "check-attr"))
            if app is not None:
                app.refused = app.refused or f"{path} has the attribute {name}={value}"


def _dirty(git: _Git, prefix: str, apps: dict[str, _App]) -> None:
    """Modified, staged, deleted, untracked and ignored paths."""
    out = git(
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--ignored=matching",
        "--no-renames",
        "--ignore-submodules=all",
        "--",
        f"{prefix}apps/",
    )
    for match in _entries(out, _STATUS_LINE, "status"):
        path = match.group(1)
        key = _app_of(path, prefix, "status")
        app = apps.get(key)
        if app is not None:
            app.refused = app.refused or f"{path} differs from HEAD"
        elif key:
            apps[key] = _App("", refused=f"{path} is not in HEAD")


def folders_match(folder: Path, folders: frozenset[str]) -> bool:
    """Whether the app folder has no folder besides `folders` (relative to it): an empty
    folder is invisible to git, and the reader would refuse some. A folder's link count
    is 2 plus its subfolders on most file systems, which spares listing it; where it is
    not (btrfs says 1), the folder is listed."""
    children: dict[str, int] = {"": 0}
    for name in folders:
        children[name] = 0
        parent = name.rsplit("/", 1)[0] if "/" in name else ""
        children[parent] = children.get(parent, 0) + 1
    base = str(folder)  # strings, not Path objects: 22,000 joins in a 20,000-version tree
    try:
        for name, count in children.items():
            path = f"{base}/{name}" if name else base
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                return False
            if st.st_nlink == 2 + count:
                continue
            with os.scandir(path) as scan:
                for entry in scan:
                    inner = f"{name}/{entry.name}" if name else entry.name
                    if (
                        entry.is_dir(follow_symlinks=False)
                        and not entry.name.startswith(".")
                        and inner not in folders
                    ):
                        return False
    except OSError:
        return False
    return True
