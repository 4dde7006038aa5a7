"""Where templates and static files come from: the registry's overrides, then built-ins.

As in MkDocs, one Jinja2 loader searches the registry's own folder (`[site] overrides`
in registry.toml) before the built-in theme, so a registry can replace any template
(or extend `base.html` from its own `main.html`) and any static file, or add new ones.
The built-in theme is the top-level `templates/` folder of a checkout; a wheel carries
it as `appshelf/site/_theme/` (setup.py copies it in at build time).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from appshelf.errors import Problem, SourceTreeError

STATIC_DIR = "static"
MAX_STATIC_BYTES = 8 << 20
_STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")


def builtin_theme_dir() -> Path:
    """The installed copy inside the package, else the checkout's `templates/`."""
    here = Path(__file__).resolve().parent
    installed = here / "_theme"
    if (installed / "base.html").is_file():
        return installed
    checkout = here.parents[2] / "templates"
    if (checkout / "base.html").is_file():
        return checkout
    raise RuntimeError(  # a broken installation, not a user error
        f"appshelf's site templates are missing (looked in {installed} and {checkout})"
    )


@dataclass(frozen=True)
class Theme:
    """The template search path, most specific first."""

    dirs: tuple[Path, ...]

    def environment(self) -> jinja2.Environment:
        return jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in self.dirs]),
            autoescape=jinja2.select_autoescape(["html", "xml"], default=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def static_files(self) -> dict[str, Path]:
        """`static/` relpath -> file; a file in an earlier folder hides a later one."""
        found: dict[str, Path] = {}
        for theme_dir in reversed(self.dirs):
            root = theme_dir / STATIC_DIR
            if not root.is_dir():
                continue
            for folder, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if _STATIC_NAME.match(d))
                for name in sorted(filenames):
                    path = Path(folder) / name
                    if not _STATIC_NAME.match(name) or not path.is_file():
                        continue
                    found[path.relative_to(root).as_posix()] = path
        return found


def registry_theme(source_root: Path, overrides: str | None) -> Theme:
    """The theme for a registry: its override folder (checked to stay inside the
    source tree) in front of the built-in one."""
    builtin = builtin_theme_dir()
    if overrides is None:
        return Theme((builtin,))
    root = source_root.resolve()
    folder = root / overrides
    try:
        resolved = folder.resolve(strict=True)
    except (OSError, RuntimeError):
        raise SourceTreeError(
            [Problem("registry.toml", "site.overrides", f"folder {overrides!r} not found")]
        ) from None
    if root not in resolved.parents or not resolved.is_dir():
        raise SourceTreeError(
            [
                Problem(
                    "registry.toml",
                    "site.overrides",
                    f"{overrides!r} must be a folder inside the source tree",
                )
            ]
        )
    if resolved == root / "apps" or (root / "apps") in resolved.parents:
        raise SourceTreeError(
            [Problem("registry.toml", "site.overrides", "must not be inside apps/")]
        )
    _check_links(root, resolved)
    return Theme((resolved, builtin))


def _check_links(root: Path, folder: Path) -> None:
    """Templates and static files are read from here: no symlink may leave the tree."""
    problems: list[Problem] = []
    for current, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = Path(current) / name
            if not path.is_symlink():
                continue
            try:
                target = path.resolve(strict=True)
            except (OSError, RuntimeError):
                target = None
            if target is None or root not in target.parents:
                rel = path.relative_to(root).as_posix()
                problems.append(Problem(rel, "", "symlink points outside the source tree"))
    if problems:
        raise SourceTreeError(problems)


def read_static(path: Path, relpath: str) -> bytes:
    """A static file's bytes, refusing huge files (and symlinks out of the theme)."""
    size = path.stat().st_size
    if size > MAX_STATIC_BYTES:
        raise SourceTreeError(
            [
                Problem(
                    f"static/{relpath}",
                    "",
                    f"file is {size} bytes; the limit is {MAX_STATIC_BYTES}",
                )
            ]
        )
    return path.read_bytes()
