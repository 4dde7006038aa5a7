"""Generators (the HTML site) can return lazy files, rendered only when needed.

A no-op rebuild renders nothing; a change renders only the pages whose fingerprint
changed; a page changed or deleted on disk is rendered again; a lost cache costs
renders, never a wrong or rewritten file.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from appshelf.builder.cache import CACHE_DIR
from appshelf.builder.outputs import OutputFile, OutputFiles
from appshelf.builder.plan import RegistryPlan
from conftest import FIXED_NOW, build

TEMPLATE_VERSION = "1"


class PageGenerator:
    """One page per app, rendered from app.json's digest; counts its renders."""

    def __init__(self) -> None:
        self.renders: Counter[str] = Counter()

    def __call__(self, plan: RegistryPlan) -> OutputFiles:
        pages: OutputFiles = {}
        for app in plan.apps:
            digest = plan.files[f"apps/{app.source.key}/app.json"].sha256

            def render(key: str = app.source.key, name: str = app.detail.metadata.name) -> bytes:
                self.renders[key] += 1
                return f"<h1>{name}</h1>\n".encode()

            pages[f"site/{app.source.key}.html"] = OutputFile.lazy(
                f"{TEMPLATE_VERSION}:{digest}", render
            )
        return pages


def test_lazy_pages_render_only_when_needed(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pages = PageGenerator()
    first = build(example_source, out, generators=(pages,))
    assert set(pages.renders) == {
        "hello-world",
        "http-client",
        "jira-sync",
        "kv-store",
        "slack-notify",
    }
    assert (out / "site/kv-store.html").read_text() == "<h1>KV Store</h1>\n"
    assert first.files_written == first.files_total

    pages.renders.clear()
    noop = build(example_source, out, generators=(pages,))
    assert (noop.files_written, sum(pages.renders.values())) == (0, 0)

    app_toml = example_source / "apps/kv-store/app.toml"
    app_toml.write_text(app_toml.read_text().replace('name = "KV Store"', 'name = "KV Store 2"'))
    changed = build(example_source, out, generators=(pages,), now=FIXED_NOW + timedelta(hours=1))
    assert dict(pages.renders) == {"kv-store": 1}
    assert (out / "site/kv-store.html").read_text() == "<h1>KV Store 2</h1>\n"
    assert changed.files_written > 1

    pages.renders.clear()
    (out / "site/http-client.html").write_text("<h1>defaced</h1>\n")
    (out / "site/jira-sync.html").unlink()
    repaired = build(example_source, out, generators=(pages,), now=FIXED_NOW + timedelta(hours=1))
    assert dict(pages.renders) == {"http-client": 1, "jira-sync": 1}
    assert repaired.files_written == 2
    assert (out / "site/http-client.html").read_text() == "<h1>HTTP Client</h1>\n"


def test_lost_cache_renders_again_but_rewrites_nothing(
    example_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    pages = PageGenerator()
    build(example_source, out, generators=(pages,))
    for path in (tmp_path / CACHE_DIR).iterdir():
        path.unlink()
    pages.renders.clear()
    report = build(example_source, out, generators=(pages,))
    assert sum(pages.renders.values()) == 5 and report.files_written == 0
