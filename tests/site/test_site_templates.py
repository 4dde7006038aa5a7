"""ANIP starter templates on the browse site, in a real Chromium: their own section,
linked from the listing, and not among the apps (neither listed nor found by search)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from site_support import (
    CHROMIUM_ARGS,
    Watched,
    build_site,
    find_chromium,
    missing_browser,
    open_page,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "anip"))
from anip_support import add_template

pytestmark = pytest.mark.browser
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        path = find_chromium(playwright.chromium.executable_path)
        if path is None:
            missing_browser()
        chromium = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context, result = open_page(browser, viewport={"width": 1280, "height": 900})
    yield result
    context.close()
    assert result.unexpected() == []


def test_templates_have_their_own_section(
    example_source: Path, static_server: Any, watched: Watched
) -> None:
    add_template(example_source)
    build_site(example_source, static_server.root, base_url=static_server.url)
    page = watched.page
    page.goto(static_server.url + "index.html")
    expect(page.locator("#all-apps > li")).to_have_count(5)  # the apps only
    expect(page.locator("#all-apps")).not_to_contain_text("Orders starter")
    page.fill("#q", "order services")  # only in the template's description: not an app
    expect(page.locator("#status")).to_have_text("No app matches.")
    page.fill("#q", "")
    page.click("#templates-link a")
    expect(page).to_have_url(static_server.url + "templates/index.html")
    card = page.locator('#templates > li[data-template="starter"]')
    expect(card).to_have_count(1)
    expect(card).to_contain_text("anip/0.24")
    expect(card).to_contain_text("README.md, docs/design.md")
    card.locator("h2 a").click()
    expect(page).to_have_url(static_server.url + "apps/starter/index.html")
    expect(page.locator("#template-kind")).to_have_text("Starter template")


def test_no_templates_no_section(example_source: Path, tmp_path: Path) -> None:
    build_site(example_source, tmp_path / "out")
    assert not (tmp_path / "out/templates").exists()
    assert 'id="templates-link"' not in (tmp_path / "out/index.html").read_text()
