"""The browse site in a real Chromium (Debian's), served over HTTP on 127.0.0.1.

One browser for the module; each test gets a fresh context whose requests can only
reach 127.0.0.1, and fails if any page logs a console error, throws, opens a dialog
or gets an HTTP error, unless the test expects that exact error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from site_support import (
    CHROMIUM_ARGS,
    DEPRECATE_REASON,
    TAKEDOWN_REASON,
    YANK_REASON,
    Watched,
    build_site,
    build_with_lifecycle,
    find_chromium,
    missing_browser,
    open_page,
    save_artifact,
)

from appshelf.formats.canonical import canonical_json
from appshelf.site.preview import PreviewEvent, PreviewServer

pytestmark = pytest.mark.browser
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "anip"))
from anip_support import add_template  # noqa: E402

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
    context, result = open_page(
        browser,
        permissions=["clipboard-read", "clipboard-write"],
        viewport={"width": 1280, "height": 900},
    )
    yield result
    context.close()
    assert result.unexpected() == []


@pytest.fixture
def site(example_source: Path, static_server: Any) -> tuple[Any, Path]:
    """example-registry with its site, built for the server's own URL."""
    build_site(example_source, static_server.root, base_url=static_server.url)
    return static_server, static_server.root


def _result_names(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#results .card h2").all_inner_texts()]


def test_search_and_filters(site: tuple[Any, Path], watched: Watched) -> None:
    server, _ = site
    page = watched.page
    page.goto(server.url + "index.html")
    expect(page.locator("#all-apps > li")).to_have_count(5)
    page.fill("#q", "webhook")  # only in Slack Notify's description
    expect(page.locator("#results > li")).to_have_count(1)
    assert _result_names(page) == ["Slack Notify"]
    expect(page.locator("#all-apps")).to_be_hidden()
    expect(page.locator("#status")).to_have_text("1 app matches.")
    assert "q=webhook" in page.url

    page.fill("#q", "storage.kv")  # provided by kv-store, required by jira-sync
    expect(page.locator("#results > li")).to_have_count(2)
    assert sorted(_result_names(page)) == ["Jira Sync", "KV Store"]
    page.fill("#q", "no such thing anywhere")
    expect(page.locator("#status")).to_have_text("No app matches.")
    page.fill("#q", "")
    expect(page.locator("#all-apps")).to_be_visible()
    expect(page.locator("#results")).to_be_hidden()

    page.click('button.chip[data-category="data"]')
    expect(page.locator('button.chip[data-category="data"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator("#results > li")).to_have_count(1)
    assert _result_names(page) == ["KV Store"]
    page.click('button.chip[data-category=""]')
    page.select_option("#tag", "http")
    expect(page.locator("#results > li")).to_have_count(1)
    assert _result_names(page) == ["HTTP Client"]
    # a result links to its app page
    page.click("#results .card h2 a")
    expect(page).to_have_url(server.url + "apps/http-client/index.html")

    # filters come from the URL, so tag links on cards and app pages work
    page.goto(server.url + "index.html?category=integrations")
    expect(page.locator("#results > li")).to_have_count(3)
    page.goto(server.url + "apps/kv-store/index.html")
    page.click(".app-header .tags a >> text=storage")
    expect(page.locator("#results > li")).to_have_count(1)
    expect(page.locator("#tag")).to_have_value("storage")


def test_keyboard_and_focus(site: tuple[Any, Path], watched: Watched) -> None:
    server, _ = site
    page = watched.page
    page.goto(server.url + "index.html")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => [document.activeElement.textContent, "
        "getComputedStyle(document.activeElement).outlineStyle]"
    )
    assert focused == ["Skip to content", "solid"]
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.focus("#q")
    page.keyboard.type("kv")
    expect(page.locator("#results > li")).to_have_count(2)  # KV Store, and storage.kv
    page.keyboard.press("Tab")  # to the tag select, then the category chips
    assert page.evaluate("() => document.activeElement.id") == "tag"


def test_app_page_checksum_copy_and_download(site: tuple[Any, Path], watched: Watched) -> None:
    server, root = site
    page = watched.page
    artifact = root / "apps/kv-store/1.1.1/kv-store-1.1.1.tar.gz"
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    page.goto(server.url + "apps/kv-store/index.html")
    expect(page.locator("h1")).to_have_text("KV Store")
    expect(page.locator("#latest-sha256")).to_have_text(sha)
    row = page.locator('[id="row-1.1.1"]')
    expect(row.locator("code.hash")).to_have_text(sha)
    expect(page.locator('[id="row-1.1.0"] .badge.warn')).to_have_text("yanked")
    expect(page.locator(".readme .prose")).to_contain_text("Stores values by key")
    expect(page.locator('a[href="https://github.com/example/kv-store"]')).to_have_text("Repository")
    expect(page.locator(".main-col")).to_contain_text(f'echo "{sha}  kv-store-1.1.1.tar.gz"')

    button = page.locator("#latest-sha256 + button.copy")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == sha

    href = row.locator("a[download]").get_attribute("href")
    response = page.request.get(server.url + "apps/kv-store/" + href)
    assert response.ok and hashlib.sha256(response.body()).hexdigest() == sha
    section = page.locator('[id="v-1.1.1"]')
    expect(section).not_to_have_attribute("open", "")
    page.click('[id="row-1.1.1"] th a')  # to the version's section, opened
    expect(page).to_have_url(server.url + "apps/kv-store/index.html#v-1.1.1")
    expect(section).to_have_attribute("open", "")
    expect(section.locator("code.sha256")).to_have_text(sha)
    expect(section.locator("code.sha256")).to_be_in_viewport()
    keyid = json.loads((root / "keys.json").read_text())["keys"][0]["keyid"]
    expect(section).to_contain_text(keyid)


def _open_version(page: Any, base: str, app: str, version: str) -> Any:
    """Open /apps/<app>/<version>/ as an old link would; it must land on the app page's
    section for the version, opened and on screen. Returns the section."""
    page.goto(f"{base}apps/{app}/{version}/index.html")
    expect(page).to_have_url(f"{base}apps/{app}/index.html#v-{version}")
    section = page.locator(f'[id="v-{version}"]')
    expect(section).to_have_attribute("open", "")
    expect(section.locator(":scope > summary")).to_be_in_viewport()
    return section


def _verify(page: Any) -> tuple[str, str]:
    """Run Verify in the version section the address names (#v-<version>)."""
    anchor = page.evaluate("() => decodeURIComponent(location.hash.slice(1))")
    section = page.locator(f'[id="{anchor}"]')
    section.locator(".verify-button").click()
    output = section.locator(".verify-output[data-result]")
    output.wait_for()
    return output.get_attribute("data-result") or "", output.inner_text()


def test_version_folder_lands_on_its_section(site: tuple[Any, Path], watched: Watched) -> None:
    """/apps/<key>/<version>/ (an old link, or one typed by hand) opens the app page at
    the version's section, which shows what the version page showed."""
    server, root = site
    page = watched.page
    section = _open_version(page, server.url, "slack-notify", "1.0.0")
    envelope = json.loads((root / "apps/slack-notify/1.0.0/manifest.json").read_text())
    artifact = envelope["signed"]["artifact"]
    expect(section.locator("code.sha256")).to_have_text(artifact["sha256"])
    expect(section).to_contain_text(f"({artifact['size']} bytes)")
    expect(section.locator(":scope > summary time")).to_have_attribute(
        "datetime", envelope["signed"]["published"]
    )
    download = section.locator("a.button[download]")
    expect(download).to_have_text(f"Download {artifact['filename']}")
    response = page.request.get(server.url + "apps/slack-notify/" + download.get_attribute("href"))
    assert hashlib.sha256(response.body()).hexdigest() == artifact["sha256"]
    expect(section.locator('a[href="../../apps/http-client/index.html"]')).to_be_visible()
    expect(section.locator('a[href="1.0.0/manifest.json"]').first).to_be_visible()
    expect(section).to_contain_text(envelope["signatures"][0]["sig"])
    expect(section.locator('[id="install-v-1.0.0"]')).to_contain_text("slack-notify@1.0.0")
    assert page.locator("details.version-details[open]").count() == 1  # only this one
    result, text = _verify(page)
    assert result == "pass", text
    # a pre-release ("-" in the folder and the anchor)
    odd = _open_version(page, server.url, "hello-world", "2.0.0-beta.1")
    expect(odd.locator(".badge", has_text="pre-release")).to_be_visible()


def test_verify_passes_then_fails_when_tampered(site: tuple[Any, Path], watched: Watched) -> None:
    server, root = site
    page = watched.page
    _open_version(page, server.url, "kv-store", "1.1.1")
    result, text = _verify(page)
    assert result == "pass", text
    assert "Ed25519 signature is valid" in text and "SHA-256 matches" in text
    assert "Verified" in text

    artifact = root / "apps/kv-store/1.1.1/kv-store-1.1.1.tar.gz"
    good = artifact.read_bytes()
    bad = bytearray(good)
    bad[20] ^= 0x01
    artifact.write_bytes(bytes(bad))
    result, text = _verify(page)
    assert result == "fail" and "SHA-256 is " in text and "FAILED" in text

    artifact.write_bytes(good)
    manifest = root / "apps/kv-store/1.1.1/manifest.json"
    original = manifest.read_text()
    assert "durable key-value" in original
    manifest.write_text(original.replace("durable key-value", "durable key–value"))
    result, text = _verify(page)
    assert result == "fail" and "does NOT match the manifest" in text

    manifest.write_text(original)
    assert _verify(page)[0] == "pass"


def test_verify_external_artifact_says_what_was_checked(
    site: tuple[Any, Path], watched: Watched
) -> None:
    server, _ = site
    watched.allowed += ["ERR_BLOCKED_BY_CLIENT", "github.com"]  # no internet in tests
    page = watched.page
    _open_version(page, server.url, "jira-sync", "3.2.0")
    result, text = _verify(page)
    assert result == "skip", text
    assert "Ed25519 signature is valid" in text
    assert "NOT checked" in text and "https://github.com" in text and "CORS" in text
    assert "Incomplete" in text


def test_verify_without_ed25519_says_so(site: tuple[Any, Path], watched: Watched) -> None:
    server, _ = site
    page = watched.page
    page.add_init_script(
        """(() => {
          const original = crypto.subtle.importKey.bind(crypto.subtle);
          crypto.subtle.importKey = (format, key, algorithm, ...rest) => {
            const name = typeof algorithm === "string" ? algorithm : algorithm.name;
            if (name === "Ed25519") {
              return Promise.reject(new DOMException("Unrecognized name.", "NotSupportedError"));
            }
            return original(format, key, algorithm, ...rest);
          };
        })();"""
    )
    _open_version(page, server.url, "hello-world", "1.1.0")
    result, text = _verify(page)
    assert result == "skip", text
    assert "does not support Ed25519" in text and "NOT checked" in text
    assert "SHA-256 matches" in text


JCS_VECTORS: list[Any] = [
    {"b": 1, "a": [True, False, None], "c": {"z": "", "y": {}}},
    {"\u00e9": 1, "z": 2, "Z": 3, "\U0001f600": 4, "\ufb01": 5, "a": 6, "": 7},
    ["tab\t", "nl\n", 'quote"', "back\\slash", "ctrl\u0001\u001f", "del\u007f", "\u2028\u2029"],
    {"unicode": "Grüße, 日本語, emoji \U0001f680", "slash": "a/b", "html": "<script>&'"},
    [0, -0, 1, -1, 9007199254740991, -9007199254740991, 169, 1048576],
    [0.5, 1.5e-7, 1e21, 123.456, -2.5e300],
    [[], {}, [[]], {"a": {"b": {"c": []}}}],
]


def test_js_canonicalisation_matches_python(site: tuple[Any, Path], watched: Watched) -> None:
    server, root = site
    page = watched.page
    page.goto(server.url + "apps/kv-store/index.html")
    canonical = (
        "text => Array.from(new TextEncoder().encode("
        "window.appshelfVerify.canonicalize(JSON.parse(text))))"
    )
    for value in JCS_VECTORS:
        got = bytes(page.evaluate(canonical, json.dumps(value)))
        assert got == rfc8785.dumps(value), value
    manifests = sorted(root.glob("apps/*/*/manifest.json"))
    assert len(manifests) == 14
    for path in manifests:
        signed = json.loads(path.read_text())["signed"]
        got = bytes(page.evaluate(canonical, json.dumps(signed)))
        assert got == canonical_json(signed), path


def test_hostile_readme_runs_nothing(
    example_source: Path, static_server: Any, watched: Watched
) -> None:
    readme = example_source / "apps/hello-world/README.md"
    readme.write_text(
        "# Hello\n\n<script>window.__pwned = 'script'</script>\n\n"
        "<img src=x onerror=\"window.__pwned='img'\">\n\n"
        "[click me](javascript:window.__pwned='link') "
        "[encoded](jav&#x09;ascript:window.__pwned='entity') "
        "<javascript:window.__pwned='autolink'> "
        '<a href="javascript:window.__pwned=1">raw</a> '
        "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) "
        "[fine](https://example.com/docs)\n"
    )
    build_site(example_source, static_server.root, base_url=static_server.url)
    page = watched.page
    page.goto(static_server.url + "apps/hello-world/index.html")
    prose = page.locator(".readme .prose")
    expect(prose).to_contain_text("<script>window.__pwned")  # shown as text
    assert prose.locator("script, img, iframe, object").count() == 0
    hrefs = prose.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["https://example.com/docs"]
    for text in ("click me", "encoded"):
        page.get_by_text(text, exact=False).first.click()
    assert page.evaluate("() => window.__pwned") is None
    assert page.url == static_server.url + "apps/hello-world/index.html"


def test_sub_path_base_url(example_source: Path, static_server: Any, watched: Watched) -> None:
    out = static_server.root / "team" / "shelf"
    base = static_server.url + "team/shelf/"
    build_site(example_source, out, base_url=base)
    page = watched.page
    page.goto(base + "index.html")
    assert (
        page.evaluate("() => getComputedStyle(document.querySelector('.card')).borderRadius")
        == "10px"
    )  # the stylesheet loaded from the sub-path
    page.click("text=KV Store")
    expect(page).to_have_url(base + "apps/kv-store/index.html")
    page.click('[id="row-1.1.1"] th a')
    expect(page).to_have_url(base + "apps/kv-store/index.html#v-1.1.1")
    result, text = _verify(page)
    assert result == "pass", text
    page.click(".crumbs >> text=Apps")
    expect(page).to_have_url(base + "index.html")
    page.fill("#q", "jira")
    expect(page.locator("#results > li")).to_have_count(1)
    page.click("#results .card h2 a")
    expect(page).to_have_url(base + "apps/jira-sync/index.html")
    page.goto(base + "404.html")
    page.click("text=Browse all apps")
    expect(page).to_have_url(base + "index.html")
    feed = page.request.get(base + "feed.xml").text()
    assert f'href="{base}apps/jira-sync/index.html#v-3.2.0"' in feed
    _open_version(page, base, "jira-sync", "3.2.0")  # the old address, under the sub-path


def test_pages_work_without_javascript(site: tuple[Any, Path], browser: Any) -> None:
    server, root = site
    context, watched = open_page(browser, java_script_enabled=False)
    page = watched.page
    page.goto(server.url + "index.html")
    expect(page.locator("#all-apps > li")).to_have_count(5)
    expect(page.locator("noscript")).to_have_count(1)
    expect(page.locator("#q")).to_be_hidden()
    page.click("text=Slack Notify")
    sha = hashlib.sha256(
        (root / "apps/slack-notify/1.1.0/slack-notify-1.1.0.tar.gz").read_bytes()
    ).hexdigest()
    expect(page.locator("#latest-sha256")).to_have_text(sha)
    expect(page.locator("button.copy").first).to_be_hidden()
    context.close()
    assert watched.unexpected() == []


PAGES = {
    "index": "index.html",
    "app": "apps/kv-store/index.html",
    "version": "apps/kv-store/index.html#v-1.1.0",
    "keys": "keys/index.html",
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_and_narrow_screens(site: tuple[Any, Path], browser: Any, scheme: str) -> None:
    server, _ = site
    for width in (1280, 360):
        context, watched = open_page(
            browser, viewport={"width": width, "height": 800}, color_scheme=scheme
        )
        page = watched.page
        for name, path in PAGES.items():
            page.goto(server.url + path)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways at {width}px"
            page.screenshot(path=save_artifact(f"{name}-{width}-{scheme}.png"), full_page=True)
        context.close()
        assert watched.unexpected() == []


WORDS = ["storage", "network", "chat", "vision", "audio", "metrics", "queue", "cache"]


def _words(n: int) -> tuple[str, str]:
    a, b = WORDS[n % 8], WORDS[(n // 8) % 8]
    return a, (b if b != a else "general")


def _synthetic_registry(root: Path, count: int) -> None:
    """`count` apps with one tiny version each; words vary so searches discriminate."""
    (root / "apps").mkdir(parents=True)
    (root / "registry.toml").write_text(
        '[registry]\nname = "Synthetic"\nbase_url = "http://127.0.0.1:8000/"\n'
    )
    for n in range(count):
        a, b = _words(n)
        folder = root / "apps" / f"app-{n:05d}"
        (folder / "1.0.0").mkdir(parents=True)
        (folder / "app.toml").write_text(
            f'name = "App {n:05d} {a.title()}"\n'
            f'description = "Synthetic app number {n} for {a} and {b} workloads."\n'
            f'tags = ["{a}", "{b}"]\ncategory = "{b}"\n'
        )
        (folder / "1.0.0" / f"app-{n:05d}.bin").write_bytes(f"artifact {n}\n".encode())
        (folder / "1.0.0" / "release.toml").write_text(
            f'published = 2025-01-01T00:00:00Z\nprovides = ["{a}.api"]\n'
        )


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A scratch folder in RAM when the machine has one: the 10,000-app tree is 40,000
    small files, and on slow disks writing them costs more than everything measured."""
    shm = Path("/dev/shm")
    roomy = False
    if shm.is_dir() and os.access(shm, os.W_OK):
        stats = os.statvfs(shm)
        roomy = stats.f_bavail * stats.f_frsize > 2 << 30  # containers often give 64 MB
    if roomy:
        folder = Path(tempfile.mkdtemp(prefix="appshelf-test-", dir=shm))
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path / "scratch"


def test_search_speed_with_10000_apps(fast_tmp: Path, static_server: Any, browser: Any) -> None:
    """Prints the figures (no timing assertion: speed targets live in benchmarks/)."""
    source, out = fast_tmp / "source", fast_tmp / "site"
    started = time.perf_counter()
    _synthetic_registry(source, 10_000)
    generated = time.perf_counter() - started
    base = static_server.url + "big/"
    report = build_site(source, out, base_url=base)
    (static_server.root / "big").symlink_to(out)
    index_bytes = (out / "index.json").stat().st_size
    context, watched = open_page(browser, viewport={"width": 1280, "height": 900})
    page = watched.page
    page.goto(base + "index.html")
    expect(page.locator("#all-apps > li")).to_have_count(100)  # page 1 of 100
    load_ms = page.evaluate(
        "async () => { const t = performance.now(); await window.appshelfFinder.load(); "
        "return performance.now() - t; }"
    )
    timings = page.evaluate(
        """queries => queries.map(q => {
             const input = document.getElementById("q");
             const runs = [];
             let status = "";
             for (let r = 0; r < 7; r++) {
               input.value = "";
               input.dispatchEvent(new Event("input"));
               document.body.getBoundingClientRect();
               const t = performance.now();
               input.value = q;
               input.dispatchEvent(new Event("input"));
               document.body.getBoundingClientRect();  // include style and layout
               runs.push(performance.now() - t);
               status = document.getElementById("status").textContent;
             }
             runs.sort((a, b) => a - b);
             return [q, runs[3], status];
           })""",
        ["s", "st", "storage", "vision audio", "app-09999", "number 4242", "zzz-nothing", "e"],
    )
    statuses = {query: status for query, _, status in timings}
    assert statuses["app-09999"] == "1 app matches."
    assert statuses["zzz-nothing"] == "No app matches."
    assert statuses["e"] == "10000 apps match, showing 60."
    page.fill("#q", "")
    page.select_option("#tag", "queue")
    expected = sum(1 for n in range(10_000) if "queue" in _words(n))
    expect(page.locator("#status")).to_have_text(f"{expected} apps match, showing 60.")
    context.close()
    assert watched.unexpected() == []
    times = sorted(ms for _, ms, _ in timings)
    print(
        f"\n10,000 apps: source generated in {generated:.1f} s, built with site in "
        f"{report.seconds:.1f} s ({report.files_total} files); index.json {index_bytes} bytes "
        f"fetched+parsed in {load_ms:.0f} ms; search per keystroke (filter + render + layout, "
        f"median of 7 runs): overall median {times[len(times) // 2]:.1f} ms, worst query "
        f"{times[-1]:.1f} ms; " + ", ".join(f"{q!r} {ms:.1f} ms" for q, ms, _ in timings)
    )


def test_serve_rebuilds_and_reloads(example_source: Path, browser: Any) -> None:
    events: list[PreviewEvent] = []
    app_toml = example_source / "apps/kv-store/app.toml"
    original = app_toml.read_text()
    with PreviewServer(
        example_source, port=0, debounce=0.2, on_event=events.append, environ={}
    ) as server:
        context, watched = open_page(browser)
        page = watched.page
        page.goto(server.url + "apps/kv-store/index.html")
        lead = page.locator(".app-header .lead")
        expect(lead).to_have_text(
            "A durable key-value store block that other apps use to keep state between runs."
        )
        app_toml.write_text(original.replace("A durable key-value", "A live-previewed key-value"))
        started = time.monotonic()
        expect(lead).to_contain_text("A live-previewed key-value", timeout=5000)
        print(f"\nserve: edit shown in the browser after {time.monotonic() - started:.2f} s")

        app_toml.write_text(original + "\nunknown_key = 1\n")
        overlay = page.locator("#appshelf-preview-error")
        expect(overlay).to_contain_text("apps/kv-store/app.toml: unknown_key", timeout=5000)
        expect(lead).to_contain_text("A live-previewed key-value")  # last good site
        still = page.request.get(server.url + "apps/kv-store/index.html")
        assert still.ok and "A live-previewed key-value" in still.text()

        app_toml.write_text(original)
        expect(lead).to_contain_text("A durable key-value", timeout=5000)
        expect(overlay).to_have_count(0)
        context.close()
        assert watched.unexpected() == []
    kinds = "".join(e.kind[0] for e in events if e.kind != "unchanged")  # b, f
    assert re.fullmatch(r"bb+f+b+", kinds), kinds  # extra rebuilds are harmless
    assert "unknown key" in next(e.message for e in events if e.kind == "failed")


# An icon with script, as if it had got past the build's check (a bug, or an output
# folder edited by hand): the header is what must still keep its script from running.
ACTIVE_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" '
    "onload=\"document.documentElement.setAttribute('data-onload', 'ran')\">"
    "<script>document.documentElement.setAttribute('data-script', 'ran')</script>"
    '<rect width="64" height="64" fill="#2563EB"/></svg>'
)


def _ran(browser: Any, url: str) -> dict[str, str | None]:
    """Open `url` directly as a document and report what its scripts did."""
    context, watched = open_page(browser)
    watched.allowed.append("Blocked script execution")  # Chromium's note under sandbox
    page = watched.page
    response = page.goto(url)
    assert response is not None and response.ok
    expect(page.locator("rect")).to_have_count(1)
    ran = {name: page.locator("svg").get_attribute(name) for name in ("data-script", "data-onload")}
    context.close()
    assert watched.unexpected() == []
    return ran


def test_icon_opened_directly_from_serve_runs_no_script(
    example_source: Path, browser: Any, static_server: Any
) -> None:
    # The control: served without the header (a plain static server), the icon's
    # script and handler do run in this Chromium, so the test below can see it.
    (static_server.root / "icon.svg").write_text(ACTIVE_ICON)
    assert _ran(browser, static_server.url + "icon.svg") == {
        "data-script": "ran",
        "data-onload": "ran",
    }
    with PreviewServer(example_source, port=0, environ={}) as server:
        icon = server.output / "apps/hello-world/icon.svg"
        icon.write_text(ACTIVE_ICON)
        assert _ran(browser, server.url + "apps/hello-world/icon.svg") == {
            "data-script": None,
            "data-onload": None,
        }


# Issue 14, item 8: the site next to PyPI's. Each check runs at a desktop and a phone width.
WIDTHS = (1280, 390)


def _each_width(
    browser: Any, name: str, allowed: tuple[str, ...] = (), **options: Any
) -> Iterator[tuple[int, Any]]:
    """A fresh page per width (screenshot saved as test-artifacts/<name>-<width>.png when
    the body of the loop is done); fails on any console or HTTP error not `allowed`."""
    for width in WIDTHS:
        context, watched = open_page(browser, viewport={"width": width, "height": 900}, **options)
        watched.allowed += allowed
        try:
            yield width, watched.page
            watched.page.screenshot(path=save_artifact(f"{name}-{width}.png"), full_page=True)
        finally:
            context.close()
        assert watched.unexpected() == []


def _no_sideways_scroll(page: Any) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways"


def _on_screen(page: Any, locator: Any, width: int) -> None:
    """The element is drawn inside the viewport's width, and is what the browser
    finds at its own centre (nothing covers it, it is not clipped away)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box is not None, locator
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (locator, box, width)
    hit = locator.evaluate(
        "el => { const r = el.getBoundingClientRect();"
        " const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
        " return el.contains(at); }"
    )
    assert hit, f"{locator} is covered or clipped"


def test_versions_table_works_on_narrow_screens(site: tuple[Any, Path], browser: Any) -> None:
    """Every column of every version, the Download link included, is on screen without
    scrolling the table or the page sideways."""
    server, _ = site
    for width, page in _each_width(browser, "versions"):
        page.goto(server.url + "apps/kv-store/index.html")
        _no_sideways_scroll(page)
        scroller = page.locator(".table-scroll")
        assert scroller.evaluate("el => el.scrollWidth <= el.clientWidth"), width
        first = page.locator("table.versions tbody tr").first
        expect(first).to_have_id("row-1.1.1")
        for cell in ("a[download]", "time", "code.hash", "button.copy"):
            _on_screen(page, first.locator(cell), width)
        expect(first.locator("td").nth(1)).to_contain_text("201 B")


def test_yank_reason_and_badge_in_versions_table(site: tuple[Any, Path], browser: Any) -> None:
    server, _ = site
    for width, page in _each_width(browser, "yanked"):
        page.goto(server.url + "apps/kv-store/index.html")
        row = page.locator('[id="row-1.1.0"]')
        expect(row.locator(".badge.warn")).to_have_text("yanked")
        reason = row.get_by_text("corrupts values larger than 1 MiB; use 1.1.1")
        expect(reason).to_be_visible()
        _on_screen(page, reason, width)
        expect(page.locator('[id="row-1.1.1"]')).not_to_contain_text("Yanked")


def test_readme_comes_before_the_versions(site: tuple[Any, Path], browser: Any) -> None:
    server, _ = site
    for _width, page in _each_width(browser, "readme"):
        page.goto(server.url + "apps/kv-store/index.html")
        readme = page.locator(".readme").bounding_box()
        versions = page.locator("#versions-h").bounding_box()
        assert readme and versions and readme["y"] < versions["y"]
        page.click(".page-nav >> text=Versions (4)")
        expect(page.locator("#versions-h")).to_be_in_viewport()


def _lines_of(page: Any, selector: str, token: str) -> int:
    """On how many lines the browser draws `token` inside the element `selector`."""
    return int(
        page.evaluate(
            """([selector, token]) => {
                 const root = document.querySelector(selector);
                 if (!root) return 0;
                 const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
                 for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                   const at = node.data.indexOf(token);
                   if (at < 0) continue;
                   const range = document.createRange();
                   range.setStart(node, at);
                   range.setEnd(node, at + token.length);
                   const tops = Array.from(range.getClientRects(), r => Math.round(r.top));
                   return new Set(tops).size;
                 }
                 return -1;
               }""",
            [selector, token],
        )
    )


def test_code_blocks_scroll_instead_of_wrapping_tokens(
    example_source: Path, static_server: Any, browser: Any
) -> None:
    long_token = "--an-option-that-is-far-too-long-for-a-phone-" + "x" * 60
    readme = example_source / "apps/kv-store/README.md"
    readme.write_text(readme.read_text() + f"\n```sh\nkv-store serve {long_token}\n```\n")
    build_site(example_source, static_server.root, base_url=static_server.url)
    sha = hashlib.sha256(
        (static_server.root / "apps/kv-store/1.1.1/kv-store-1.1.1.tar.gz").read_bytes()
    ).hexdigest()
    for width, page in _each_width(browser, "code-blocks"):
        page.goto(static_server.url + "apps/kv-store/index.html")
        _no_sideways_scroll(page)
        assert _lines_of(page, ".readme .prose pre", long_token) == 1, width
        assert _lines_of(page, "#verify-h ~ pre.cmd", sha) == 1, width
        assert _lines_of(page, "#install-command", "kv-store@1.1.1") == 1, width
        assert _lines_of(page, "#install-command", static_server.url) == 1, width
        if width < 600:  # the block scrolls, not the page
            assert page.locator("#verify-h ~ pre.cmd").first.evaluate(
                "el => el.scrollWidth > el.clientWidth && getComputedStyle(el).overflowX == 'auto'"
            )


def test_install_snippet_with_copy_button(site: tuple[Any, Path], browser: Any) -> None:
    server, _ = site
    options = {"permissions": ["clipboard-read", "clipboard-write"]}
    for width, page in _each_width(browser, "install", **options):
        for version, snippet in (("1.1.1", "install-command"), ("1.0.0", "install-v-1.0.0")):
            if version == "1.1.1":  # the latest, at the top of the app page
                page.goto(server.url + "apps/kv-store/index.html")
            else:  # in the version's section
                _open_version(page, server.url, "kv-store", version)
            pin = f"kv-store@{version}"
            command = f"appshelf fetch -r {server.url} --allow-dev-key {pin} -d vendor/"
            expect(page.locator(f'[id="{snippet}"]')).to_have_text(command)
            button = page.locator(f'.snippet:has([id="{snippet}"]) button.copy')
            _on_screen(page, button, width)
            expect(button).to_have_attribute("aria-label", "Copy the install command")
            button.click()
            expect(button).to_have_text("Copied")
            assert page.evaluate("() => navigator.clipboard.readText()") == command


def test_keys_page(site: tuple[Any, Path], browser: Any) -> None:
    server, root = site
    key = json.loads((root / "keys.json").read_text())["keys"][0]
    for width, page in _each_width(browser, "keys"):
        section = _open_version(page, server.url, "kv-store", "1.1.1")
        section.locator(f'a[href="../../keys/index.html#key-{key["keyid"]}"]').click()
        expect(page).to_have_url(server.url + f"keys/index.html#key-{key['keyid']}")
        page.goto(server.url + "index.html")
        page.click(".site-header >> text=Signing keys")
        expect(page).to_have_url(server.url + "keys/index.html")
        expect(page.locator("h1")).to_have_text("Signing keys")
        card = page.locator(f'[id="key-{key["keyid"]}"]')
        expect(card.locator("code.keyid")).to_have_text(key["keyid"])
        expect(card.locator("code.public")).to_have_text(key["public"])
        expect(card.locator('[data-status="active"]')).to_have_text("active")
        expect(card.locator('[data-status="development"]')).to_be_visible()
        warning = page.locator("#key-warning")
        expect(warning).to_contain_text("development key")
        _on_screen(page, warning, width)
        _no_sideways_scroll(page)
        raw = page.locator("main a", has_text="keys.json")
        expect(raw).to_have_attribute("href", "../keys.json")
        assert page.request.get(server.url + "keys.json").json()["keys"] == [key]


def test_old_version_pages_point_at_the_latest(site: tuple[Any, Path], browser: Any) -> None:
    server, _ = site
    for width, page in _each_width(browser, "newer-version"):
        latest = _open_version(page, server.url, "kv-store", "1.1.1")
        expect(latest.locator(".newer-version")).to_have_count(0)
        beta = _open_version(page, server.url, "hello-world", "2.0.0-beta.1")
        expect(beta.locator(".newer-version")).to_contain_text("not the latest")
        old = _open_version(page, server.url, "kv-store", "1.0.0")
        banner = old.locator(".newer-version")
        expect(banner).to_contain_text("A newer version of KV Store exists: 1.1.1")
        _on_screen(page, banner, width)
        banner.locator("a").click()  # on the same page: the latest's section opens
        expect(page).to_have_url(server.url + "apps/kv-store/index.html#v-1.1.1")
        expect(latest).to_have_attribute("open", "")
        expect(latest.locator(":scope > summary")).to_be_in_viewport()


def test_verify_external_artifact_explanation_is_on_screen(
    site: tuple[Any, Path], browser: Any
) -> None:
    """The not-checked explanation is drawn in the result list, not off-screen (its
    class used to collide with the skip link's)."""
    server, _ = site
    no_internet = ("ERR_BLOCKED_BY_CLIENT", "github.com")
    for width, page in _each_width(browser, "verify-external", no_internet):
        section = _open_version(page, server.url, "jira-sync", "3.2.0")
        result, _ = _verify(page)
        assert result == "skip"
        item = section.locator(".verify-output .checks li", has_text="CORS")
        expect(item).to_be_visible()
        _on_screen(page, item, width)
        output = section.locator(".verify-output").bounding_box()
        box = item.bounding_box()
        assert output and box and output["y"] <= box["y"] < output["y"] + output["height"]


# Issue 10, item 6: lifecycle and history from the release log.


@pytest.fixture
def lifecycle_site(example_source: Path, static_server: Any) -> tuple[Any, Path]:
    """example-registry after a yank, a deprecation and a takedown of kv-store versions
    (site_support.build_with_lifecycle), built for the server's own URL."""
    build_with_lifecycle(example_source, static_server.root, base_url=static_server.url)
    return static_server, static_server.root


def test_history_section_and_replacement_link(
    lifecycle_site: tuple[Any, Path], browser: Any
) -> None:
    server, _ = lifecycle_site
    for width, page in _each_width(browser, "history"):
        page.goto(server.url + "apps/kv-store/index.html")
        _no_sideways_scroll(page)
        page.locator(".page-nav a", has_text="History").click()
        expect(page).to_have_url(server.url + "apps/kv-store/index.html#history-h")
        rows = page.locator("table.history tbody tr")
        expect(rows.first).to_have_attribute("data-action", "takedown")
        for row, event, version, reason in (
            (rows.nth(0), "taken down", "0.9.0", TAKEDOWN_REASON),
            (rows.nth(1), "deprecated", "1.0.0", DEPRECATE_REASON),
            (rows.nth(2), "yanked", "1.1.0", YANK_REASON),
        ):
            expect(row.locator("th")).to_have_text(event)
            expect(row.locator("td a").first).to_have_text(version)
            expect(row.locator("td.reason")).to_contain_text(reason)  # as text, not markup
            for cell in ("th", "time", "td.reason"):
                _on_screen(page, row.locator(cell), width)
        expect(rows.last.locator("th")).to_have_text("released")
        checkpoint = page.locator("#history-h ~ p a", has_text="checkpoint")
        response = page.request.get(
            server.url + "apps/kv-store/" + checkpoint.get_attribute("href")
        )
        assert response.ok and response.text().splitlines()[0] == server.url.split("://")[1][:-1]
        # the deprecated version's row links its replacement
        replacement = page.locator('[id="row-1.0.0"] a[data-slot="replacement"]')
        _on_screen(page, replacement, width)
        replacement.click()
        expect(page).to_have_url(server.url + "apps/kv-store/index.html#v-1.1.1")
        expect(page.locator('[id="v-1.1.1"]')).to_have_attribute("open", "")
        deprecated = _open_version(page, server.url, "kv-store", "1.0.0")
        expect(deprecated.locator(".deprecated-notice")).to_contain_text(
            f"This version is deprecated: {DEPRECATE_REASON}. The publisher says to use 1.1.1"
        )


def test_taken_down_version_page_explains_itself(
    lifecycle_site: tuple[Any, Path], browser: Any
) -> None:
    server, _ = lifecycle_site
    for width, page in _each_width(browser, "takedown"):
        page.goto(server.url + "apps/kv-store/index.html")
        notice = page.locator('[id="takedown-0.9.0"]')
        expect(notice).to_contain_text(f"0.9.0 was taken down 2026-01-18: {TAKEDOWN_REASON}")
        _on_screen(page, notice, width)
        notice.locator("a").click()
        expect(page).to_have_url(server.url + "apps/kv-store/0.9.0/index.html")
        expect(page.locator("h1")).to_have_text("KV Store 0.9.0")
        explained = page.locator("#takedown")
        expect(explained).to_contain_text(f"taken down on 2026-01-18: {TAKEDOWN_REASON}")
        _on_screen(page, explained, width)
        _no_sideways_scroll(page)
        assert not page.request.get(server.url + "apps/kv-store/0.9.0/manifest.json").ok
        page.locator("main a", has_text="history").click()
        expect(page).to_have_url(server.url + "apps/kv-store/index.html#history-h")


# ANIP starter templates (docs/spec.md section 15): their own section, linked from the
# listing, and not among the apps (neither listed nor found by search).
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


def test_anip_mirror_index_files_run_nothing(
    example_source: Path, static_server: Any, watched: Watched
) -> None:
    """The ANIP mirror's index.html files are JSON that a host serves as text/html (as
    GitHub Pages does): a description with markup shows as text and runs nothing."""
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    app_toml = example_source / "apps/kv-store/app.toml"
    app_toml.write_text(
        app_toml.read_text().replace('description = "', f'description = "{hostile} ', 1)
    )
    with (example_source / "registry.toml").open("a") as f:
        f.write("\n[mirrors]\nanip = true\n")
    build_site(example_source, static_server.root, base_url=static_server.url)
    page = watched.page
    response = page.goto(static_server.url + "registry-api/v1/packages/kv-store/1.1.1")
    assert response is not None and "text/html" in response.headers["content-type"]
    assert page.url.endswith("/1.1.1/")  # redirected to the folder's index file
    expect(page.locator("body")).to_contain_text('"packageId":"kv-store"')
    expect(page.locator("script, img")).to_have_count(0)
