"""A version's section shows both signatures and its Verify button checks both (issue 11
item 6), in a real Chromium over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import test_site_browser
from site_support import Watched, build_site

from publisher_helpers import declare, new_key, new_version, set_owners, sign

pytestmark = pytest.mark.browser
# The browser tests' fixtures: one Chromium per module, pages that fail on any error.
browser = test_site_browser.browser
watched = test_site_browser.watched

APP, NEW = "kv-store", "1.2.0"


@pytest.fixture
def site(
    example_source: Path, static_server: Any, tmp_path: Path
) -> tuple[Any, Path, dict[str, Any]]:
    keys = {name: new_key(tmp_path, name) for name in ("alice", "mallory")}
    declare(example_source, "alice", [(keys["alice"][1], "active")])
    set_owners(example_source, APP, ["alice"])
    folder = new_version(example_source, APP, NEW, 'provides = ["storage.kv"]\n')
    code, out = sign(folder, static_server.url, "alice", keys["alice"][0])
    assert code == 0, out
    build_site(example_source, static_server.root, base_url=static_server.url)
    return static_server, static_server.root, {"keys": keys, "folder": folder}


_open_version = test_site_browser._open_version
_verify = test_site_browser._verify  # in the section the address names


def test_both_signatures_shown_and_verified(
    site: tuple[Any, Path, dict[str, Any]], watched: Watched
) -> None:
    server, root, extra = site
    alice = extra["keys"]["alice"][1]
    page = watched.page
    section = _open_version(page, server.url, APP, NEW)
    shown = section.locator(".publisher").inner_text()
    assert f"Published by Alice Example (alice, key {alice.keyid[:16]}…)" in shown
    assert "countersigned by the registry" in shown
    result, text = _verify(page)
    assert result == "pass", text
    assert "Ed25519 signature is valid" in text
    assert f"Publisher signature is valid: Alice Example (alice), key {alice.keyid}" in text
    assert "statement and the registry's manifest agree" in text

    # A statement re-signed by another key (as a compromised host might serve): refused.
    statement = root / f"apps/{APP}/{NEW}/statement.json"
    good = statement.read_bytes()
    code, out = sign(extra["folder"], server.url, "alice", extra["keys"]["mallory"][0])
    assert code == 0, out
    shutil.copy(extra["folder"] / "statement.json", statement)
    result, text = _verify(page)
    assert result == "fail" and "NOT the statement the signed manifest pins" in text, text
    statement.write_bytes(good)

    # The publisher's key revoked in publishers.json: its signature no longer counts.
    listing = root / "publishers.json"
    original = listing.read_text()
    listing.write_text(json.dumps(json.loads(original.replace('"active"', '"revoked"'))))
    result, text = _verify(page)
    assert result == "fail" and "not signed by any key listed in publishers.json" in text, text
    listing.write_text(original)
    assert _verify(page)[0] == "pass"


def test_version_without_a_publisher_says_so(
    site: tuple[Any, Path, dict[str, Any]], watched: Watched
) -> None:
    server, _, _ = site
    page = watched.page
    section = _open_version(page, server.url, APP, "1.1.1")
    assert section.locator(".publisher").count() == 0
    result, text = _verify(page)
    assert result == "pass", text
    assert "No publisher signature: only the registry signed this version." in text


def test_app_page_shows_owners_and_the_latest_publisher(
    site: tuple[Any, Path, dict[str, Any]], watched: Watched
) -> None:
    server, _, extra = site
    page = watched.page
    page.goto(server.url + f"apps/{APP}/index.html")
    assert "Alice Example alice" in " ".join(page.locator("#owners li").all_inner_texts())
    latest = page.locator("#latest-publisher").inner_text()
    assert f"Published by Alice Example (key {extra['keys']['alice'][1].keyid[:16]}…)" in latest
    page.goto(server.url + "apps/hello-world/index.html")  # no owners, no publisher
    assert page.locator("#owners").count() == 0 and page.locator("#latest-publisher").count() == 0
