"""`appshelf init`: scaffold a registry repository that publishes itself to GitHub Pages."""

from __future__ import annotations

import gzip
import io
import tarfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click
import pydantic

from appshelf import __version__
from appshelf.errors import AppshelfError
from appshelf.source.models import RegistrySection

# Package-data names -> names in the new repository (dot-files do not ship well in wheels).
_RENAMES = {"gitignore": ".gitignore", "github": ".github"}
_SKIP = {"__init__.py", "__pycache__"}


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


def scaffold(target: Path, name: str, base_url: str, requirement: str) -> list[str]:
    """Write the scaffold into an empty or new folder; return the paths written."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AppshelfError(f"{target}: exists and is not an empty folder; choose a new one")
    if any(c in name for c in '"\\\n') or any(c in base_url for c in '"\\\n '):
        raise AppshelfError(
            "--name and --base-url must not contain quotes, backslashes or newlines"
        )
    try:
        RegistrySection(name=name, base_url=base_url)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise AppshelfError(f"--name/--base-url: {problems}") from None
    files = _files(resources.files("appshelf.scaffold"))
    files["apps/hello/1.0.0/hello-1.0.0.tar.gz"] = _example_artifact()
    replacements = {"@NAME@": name, "@BASE_URL@": base_url, "@REQUIREMENT@": requirement}
    written: list[str] = []
    for relpath, data in sorted(files.items()):
        if relpath.endswith((".toml", ".yml")):
            text = data.decode("utf-8")
            for token, value in replacements.items():
                text = text.replace(token, value)
            data = text.encode("utf-8")
        path = target / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(relpath)
    return written


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
    "--requirement",
    default=f"appshelf=={__version__}",
    show_default=True,
    help="What the publish workflow pip-installs (e.g. a git+https:// URL of appshelf).",
)
def command(directory: Path, name: str, base_url: str, requirement: str) -> None:
    """Create a new registry repository in DIRECTORY, ready for GitHub Pages."""
    if not base_url.endswith("/"):
        base_url += "/"
    written = scaffold(directory, name, base_url, requirement)
    click.echo(f"Created {directory} ({len(written)} files):")
    for relpath in written:
        click.echo(f"  {relpath}")
    click.echo(
        "Next: `appshelf build` to try it; push to GitHub, enable Pages (Source: GitHub "
        "Actions) and add the APPSHELF_SIGNING_KEY secret (see registry.toml)."
    )
