"""Helpers for the site tests: builds with the site, pages that log every error.

Not a conftest.py: a second module named `conftest` would shadow tests/conftest.py
for `from conftest import ...`. Fixtures from tests/conftest.py are used by name.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from appshelf.builder import BuildOptions, BuildReport, build_registry
from appshelf.site import site_generator
from appshelf.source.lifecycle import record_standing

CHROMIUM = os.environ.get("APPSHELF_CHROMIUM", "/usr/bin/chromium")
NO_BROWSER = (
    "no Chromium found (APPSHELF_CHROMIUM, chromium, chromium-browser or google-chrome on "
    "PATH, or Playwright's own): on Debian `apt-get install chromium` (scripts/test.sh does "
    "it), on Ubuntu `snap install chromium` or `.venv/bin/playwright install chromium`"
)


def find_chromium(playwright_own: str | None = None) -> str | None:
    """The browser for the tests: $APPSHELF_CHROMIUM, else one on PATH, else Playwright's
    own download (`playwright install chromium`), the usual route on Ubuntu."""
    explicit = os.environ.get("APPSHELF_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return playwright_own if playwright_own and Path(playwright_own).exists() else None


def missing_browser() -> None:
    """Skip with a clear message; in CI (CI=true, as .ci/run runs) a missing browser fails."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"{NO_BROWSER}; CI requires the browser tests")
    pytest.skip(NO_BROWSER)


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
FIXED_NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
LIFECYCLE_NOW = FIXED_NOW + timedelta(days=3)
# What build_with_lifecycle asks of kv-store (example-registry), by version.
YANK_REASON = "loses writes under <b>load</b>"  # markup: must show as text
DEPRECATE_REASON = "the 1.0 line is over"
TAKEDOWN_REASON = "removed at the author's request"


def build_site(source: Path, output: Path, **options: Any) -> BuildReport:
    """Build a registry with its HTML site, a fixed clock and the development key."""
    options.setdefault("now", FIXED_NOW)
    options.setdefault("environ", {})
    options.setdefault("generators", (site_generator(),))
    return build_registry(source, output, BuildOptions(**options))


def build_with_lifecycle(source: Path, output: Path, **options: Any) -> BuildReport:
    """Build, then yank kv-store 1.1.0 (again, with a new reason), deprecate 1.0.0 for
    1.1.1 and take 0.9.0 down with `appshelf.source.lifecycle`, and build again three
    days later: the release log then holds a change of each kind."""
    build_site(source, output, **options)
    record_standing(source, "kv-store", "1.1.0", "yank", YANK_REASON)
    record_standing(source, "kv-store", "1.0.0", "deprecate", DEPRECATE_REASON, "1.1.1")
    record_standing(source, "kv-store", "0.9.0", "takedown", TAKEDOWN_REASON)
    return build_site(source, output, now=LIFECYCLE_NOW, **options)


@dataclass
class Watched:
    """A page plus every console error, page error and failed request it produced."""

    page: Any
    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)  # substrings of expected errors

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


def open_page(browser: Any, **context_options: Any) -> tuple[Any, Watched]:
    """A new context whose requests may only reach 127.0.0.1 (never the internet)."""
    context = browser.new_context(**context_options)

    def only_local(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    context.route("**/*", only_local)
    page = context.new_page()
    watched = Watched(page)
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and watched.errors.append(f"console: {m.text} ({m.location.get('url', '')})")
        ),
    )
    page.on("pageerror", lambda exc: watched.errors.append(f"page error: {exc}"))
    page.on(
        "response", lambda r: r.status >= 400 and watched.errors.append(f"HTTP {r.status}: {r.url}")
    )
    page.on("dialog", lambda d: watched.errors.append(f"dialog opened: {d.message}"))
    return context, watched


def save_artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
