"""`appshelf init`: scaffold a registry repository that publishes itself to GitHub Pages."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click
import pydantic

from appshelf.errors import AppshelfError
from appshelf.source.models import RegistrySection

# Package-data names -> names in the new repository (dot-files do not ship well in wheels).
_RENAMES = {"gitignore": ".gitignore", "github": ".github"}
_SKIP = {"__init__.py", "__pycache__"}
# What a new GitHub repository typically holds already; init writes beside these.
_KEPT = re.compile(r"(?i:(README|LICENSE|LICENCE|COPYING)(\.[A-Za-z0-9]{1,10})?)|\.git")
_GITIGNORE_LIMIT = 1 << 20
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
REPO_RE = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)+/?")
PLACEHOLDER_REPO = "https://github.com/OWNER/appshelf"
PLACEHOLDER_COMMIT = "SET-TO-A-FULL-40-HEX-COMMIT-OF-APPSHELF"


@dataclass
class Scaffolded:
    """What init did: files written, files it found and kept, .gitignore lines appended."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    gitignore_added: list[str] = field(default_factory=list)


def _example_artifact() -> bytes:
    """A small, byte-for-byte reproducible .tar.gz standing in for a real app package."""
    files = {
        "package/app.json": b'{"name": "hello", "version": "1.0.0"}\n',
        "package/main.js": b'export default () => "Hello from appshelf";\n',
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _files(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for item in folder.iterdir():
        if item.name in _SKIP or item.name.endswith(".pyc"):
            continue
        name = _RENAMES.get(item.name, item.name) if not prefix else item.name
        if item.is_dir():
            found.update(_files(item, f"{prefix}{name}/"))
        else:
            found[f"{prefix}{name}"] = item.read_bytes()
    return found


def installed_source() -> tuple[str, str] | None:
    """The https git repository and commit this appshelf was pip-installed from, if any.

    pip records it in the distribution's direct_url.json (PEP 610) for
    `pip install "appshelf @ git+https://...@COMMIT"` and `pipx install git+https://...`.
    """
    try:
        text = metadata.distribution("appshelf").read_text("direct_url.json")
        data = json.loads(text or "null")
        url, vcs = data["url"], data["vcs_info"]
    except (metadata.PackageNotFoundError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(url, str) or not isinstance(vcs, dict) or vcs.get("vcs") != "git":
        return None
    commit = vcs.get("commit_id")
    if isinstance(commit, str) and COMMIT_RE.fullmatch(commit) and REPO_RE.fullmatch(url):
        return url, commit
    return None


def _existing(target: Path) -> list[str]:
    """The entries of an existing target that init may keep; anything else is refused."""
    if not target.exists():
        return []
    if not target.is_dir() or target.is_symlink():
        raise AppshelfError(f"{target}: exists and is not a folder; choose a new one")
    names = sorted(p.name for p in target.iterdir())
    other = [n for n in names if not _KEPT.fullmatch(n) and n != ".gitignore"]
    if other:
        raise AppshelfError(
            f"{target}: not empty ({', '.join(other[:5])}); init writes only into a new "
            "folder or one holding just README, LICENSE, .gitignore or .git"
        )
    return names


def _merged_gitignore(path: Path, ours: bytes) -> tuple[bytes, list[str]]:
    """The existing .gitignore with our lines appended where missing (never clobbered)."""
    if path.is_symlink() or not path.is_file():
        raise AppshelfError(f"{path}: not a regular file; remove it or make it one")
    if path.stat().st_size > _GITIGNORE_LIMIT:
        raise AppshelfError(f"{path}: larger than {_GITIGNORE_LIMIT} bytes; is it a .gitignore?")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AppshelfError(f"{path}: not UTF-8 text") from None
    present = {line.strip() for line in text.splitlines()}
    wanted = ours.decode("utf-8").splitlines()
    added = [line for line in wanted if line.strip() not in present and not line.startswith("#")]
    if not added:
        return text.encode("utf-8"), []
    if text and not text.endswith("\n"):
        text += "\n"
    block = ("\n" if text else "") + "# Added by appshelf init\n" + "".join(f"{x}\n" for x in added)
    return (text + block).encode("utf-8"), added


def _check_values(name: str, base_url: str, repo: str, commit: str) -> None:
    if any(c in name for c in '"\\\n') or any(c in base_url for c in '"\\\n '):
        raise AppshelfError(
            "--name and --base-url must not contain quotes, backslashes or newlines"
        )
    try:
        RegistrySection(name=name, base_url=base_url)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise AppshelfError(f"--name/--base-url: {problems}") from None
    if repo != PLACEHOLDER_REPO and not REPO_RE.fullmatch(repo):
        raise AppshelfError(f"--appshelf-repo: {repo!r} is not an https:// repository URL")
    if commit != PLACEHOLDER_COMMIT and not COMMIT_RE.fullmatch(commit):
        raise AppshelfError(
            f"--appshelf-commit: {commit!r} is not a full commit id (40 lowercase hex digits); "
            "a tag or branch could be moved under the workflow that holds your signing key"
        )


def scaffold(target: Path, name: str, base_url: str, repo: str, commit: str) -> Scaffolded:
    """Write the scaffold into a new folder, or one with only README/LICENSE/.gitignore/.git.

    Everything is checked before the first byte is written.
    """
    kept = _existing(target)
    _check_values(name, base_url, repo, commit)
    files = _files(resources.files("appshelf.scaffold"))
    files["apps/hello/1.0.0/hello-1.0.0.tar.gz"] = _example_artifact()
    replacements = {
        "@NAME@": name,
        "@BASE_URL@": base_url,
        "@APPSHELF_REPO@": repo,
        "@APPSHELF_COMMIT@": commit,
    }
    done = Scaffolded(kept=[n for n in kept if n != ".gitignore"])
    if ".gitignore" in kept:
        files[".gitignore"], done.gitignore_added = _merged_gitignore(
            target / ".gitignore", files[".gitignore"]
        )
    for relpath, data in sorted(files.items()):
        if relpath.endswith((".toml", ".yml")):
            text = data.decode("utf-8")
            for token, value in replacements.items():
                text = text.replace(token, value)
            data = text.encode("utf-8")
        path = target / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if relpath != ".gitignore" or ".gitignore" not in kept:
            done.written.append(relpath)
    return done


def _report(directory: Path, done: Scaffolded, pinned: bool) -> None:
    click.echo(f"Added to {directory} ({len(done.written)} files):")
    for relpath in done.written:
        click.echo(f"  {relpath}")
    if done.gitignore_added:
        click.echo(f"Appended to .gitignore: {', '.join(done.gitignore_added)}")
    if done.kept:
        click.echo(f"Kept as they were: {', '.join(done.kept)}")
    if not pinned:
        click.secho(
            "Warning: set APPSHELF_REPO and APPSHELF_COMMIT in .github/workflows/publish.yml "
            "(or rerun with --appshelf-repo URL --appshelf-commit SHA): this appshelf was not "
            "installed from a git commit, so init cannot tell which one to pin. The workflow "
            "fails until they are set.",
            err=True,
            fg="yellow",
        )
    click.echo(
        "Next: `appshelf build` to try it; push to GitHub, enable Pages (Source: GitHub "
        "Actions) and add the APPSHELF_SIGNING_KEY secret (see registry.toml)."
    )


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--name", default="My app registry", show_default=True, help="Registry name.")
@click.option(
    "--base-url",
    default="https://example.github.io/my-registry/",
    show_default=True,
    help="Where it will be served (the Pages workflow passes the real address itself).",
)
@click.option(
    "--appshelf-repo",
    metavar="URL",
    help="The https git repository the publish workflow installs appshelf from "
    "[default: the one this appshelf was installed from].",
)
@click.option(
    "--appshelf-commit",
    metavar="SHA",
    help="The full 40-hex commit of it to install [default: the installed one].",
)
def command(
    directory: Path,
    name: str,
    base_url: str,
    appshelf_repo: str | None,
    appshelf_commit: str | None,
) -> None:
    """Create a registry repository in DIRECTORY (new, or holding only README/LICENSE/.git)."""
    if not base_url.endswith("/"):
        base_url += "/"
    source = installed_source()
    repo = appshelf_repo or (source[0] if source else PLACEHOLDER_REPO)
    commit = appshelf_commit or (source[1] if source else PLACEHOLDER_COMMIT)
    done = scaffold(directory, name, base_url, repo, commit)
    _report(directory, done, pinned=repo != PLACEHOLDER_REPO and commit != PLACEHOLDER_COMMIT)
