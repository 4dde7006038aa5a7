"""The site generator without a browser: links, determinism, overrides, hostile input."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from click.testing import CliRunner
from site_support import (
    DEPRECATE_REASON,
    TAKEDOWN_REASON,
    build_site,
    build_with_lifecycle,
)

from appshelf.cli import main
from appshelf.errors import SiteBuildError, SourceTreeError
from appshelf.formats.consistent import plain_path
from appshelf.formats.log import decode_bundle, decode_entry, tiles_for
from appshelf.site.generator import filesize
from appshelf.site.markdown import render_markdown, safe_link

BASE = "https://example.github.io/shelf/"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: list[str] = []
        self.scripts_inline = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(values["id"] or "")
        for name in ("href", "src"):
            value = values.get(name)
            if value is not None:
                self.links.append(value)
        if tag == "script" and "src" not in values:
            self.scripts_inline += 1


def _parsed(root: Path, page: str) -> _Links:
    parser = _Links()
    parser.feed((root / page).read_text(encoding="utf-8"))
    return parser


def _section(page: str, anchor: str) -> str:
    """The HTML of the version section `anchor` (`v-<version>`) of an app page."""
    start = page.index(f'<details class="version-details" id="{anchor}"')
    return page[start:].split('<details class="version-details"', 2)[1]


def _check_links(out: Path) -> int:
    """Every href/src of every page points at a file of the site (or leaves the site),
    and every #fragment at an id of the page it names; ids are unique on each page."""
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    ids = {page: _parsed(out, page).ids for page in pages}
    for page, found in ids.items():
        assert len(found) == len(set(found)), f"{page}: an id appears twice"
    checked = 0
    for page in pages:
        parsed = _parsed(out, page)
        links, inline_scripts = parsed.links, parsed.scripts_inline
        assert inline_scripts == 0, f"{page}: inline script (the CSP forbids it)"
        # 404.html is served at any depth, so it links by absolute path below base_url.
        page_url = urljoin(BASE, page)
        for link in links:
            if link.startswith(("https://", "http://", "mailto:")) and not link.startswith(BASE):
                continue
            target = urlsplit(urljoin(page_url, link))
            assert target.netloc == "example.github.io", f"{page}: {link} leaves the site"
            assert target.path.startswith("/shelf/"), f"{page}: {link} escapes the base path"
            relpath = unquote(target.path[len("/shelf/") :]) or "index.html"
            path = out / relpath
            if relpath.endswith("/"):
                path = path / "index.html"
            assert path.is_file(), f"{page}: broken link {link} -> {relpath}"
            fragment = unquote(urlsplit(link).fragment)
            if fragment and path.suffix == ".html":
                target_page = path.relative_to(out).as_posix()
                assert fragment in ids[target_page], f"{page}: {link}: no id {fragment!r}"
            checked += 1
    return checked


def test_every_internal_link_resolves(example_source: Path, tmp_path: Path) -> None:
    odd = example_source / "apps/hello-world/1.2.0+build.5"  # "+" is %2B in URLs
    odd.mkdir()
    (odd / "hello+world_1.2.0.tar.gz").write_bytes(b"odd names\n")
    out = tmp_path / "out"
    build_site(example_source, out, base_url=BASE)
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    assert {"index.html", "404.html", "apps/kv-store/1.1.0/index.html"} <= pages
    assert "apps/hello-world/1.2.0+build.5/index.html" in pages
    assert _check_links(out) > 300


def test_listing_pages_for_javascript_off(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("appshelf.site.generator.PAGE_SIZE", 2)
    out = tmp_path / "out"
    build_site(example_source, out, base_url=BASE)
    assert (out / "page/3/index.html").is_file() and not (out / "page/4").exists()
    third = (out / "page/3/index.html").read_text()
    assert 'href="../../apps/slack-notify/index.html"' in third  # the 5th app
    assert "5 apps, page 3 of 3" in third and 'aria-current="page" href="../../page/3/' in third
    _check_links(out)


def test_output_is_deterministic_and_rebuild_writes_nothing(
    example_source: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    build_site(example_source, first)
    build_site(example_source, second)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    again = build_site(example_source, first)
    assert not again.changed and again.files_written == 0


def test_site_files(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_site(example_source, out, base_url=BASE)
    assert (out / ".nojekyll").read_bytes() == b""
    assert not (out / "CNAME").exists()
    assert f"Sitemap: {BASE}sitemap.xml" in (out / "robots.txt").read_text()
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.parse(out / "feed.xml").getroot()
    entries = feed.findall(f"{atom}entry")
    assert len(entries) == 14
    first = entries[0]
    assert first.findtext(f"{atom}title") == "Jira Sync 3.2.0"  # newest published
    link = first.find(f"{atom}link").get("href")  # type: ignore[union-attr]
    assert link == f"{BASE}apps/jira-sync/index.html#v-3.2.0"
    assert first.findtext(f"{atom}id") == f"{BASE}apps/jira-sync/3.2.0/index.html"  # as before
    published = [e.findtext(f"{atom}published") or "" for e in entries]
    assert published == sorted(published, reverse=True)
    sm = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    locs = [e.text for e in ET.parse(out / "sitemap.xml").getroot().iter(f"{sm}loc")]
    assert f"{BASE}index.html" in locs and f"{BASE}apps/kv-store/index.html" in locs
    assert not [loc for loc in locs if "/1.1.0/" in (loc or "")]  # version folders only lead on
    not_found = (out / "404.html").read_text()
    assert 'href="/shelf/static/site.css?v=' in not_found
    yanked = (out / "apps/kv-store/index.html").read_text()
    assert "yanked" in yanked and "corrupts values larger than 1 MiB" in yanked


def test_cname_and_overrides(example_source: Path, tmp_path: Path) -> None:
    theme = example_source / "theme"
    (theme / "static").mkdir(parents=True)
    (theme / "main.html").write_text(
        '{% extends "base.html" %}{% block footer %}<p id="custom">Run by the ACME '
        "platform team</p>{% endblock %}"
    )
    (theme / "static" / "site.css").write_text("body { color: rebeccapurple; }\n")
    (theme / "static" / "logo.txt").write_text("extra file\n")
    registry = example_source / "registry.toml"
    registry.write_text(
        registry.read_text() + '\n[site]\noverrides = "theme"\ncname = "apps.example.com"\n'
    )
    out = tmp_path / "out"
    build_site(example_source, out)
    assert (out / "CNAME").read_text() == "apps.example.com\n"
    assert (out / "static/site.css").read_text() == "body { color: rebeccapurple; }\n"
    assert (out / "static/logo.txt").is_file()
    assert (out / "static/verify.js").is_file()  # built-ins still there
    for page in ("index.html", "apps/kv-store/index.html", "keys/index.html"):
        assert "Run by the ACME platform team" in (out / page).read_text()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('overrides = "missing"', "site.overrides: folder 'missing' not found"),
        ('overrides = "../elsewhere"', "must be a folder inside the source tree"),
        ('overrides = "apps"', "must not be inside apps/"),
        ('cname = "Not A Host"', "site.cname: must be a lowercase host name"),
    ],
)
def test_bad_site_settings(
    example_source: Path, tmp_path: Path, setting: str, message: str
) -> None:
    registry = example_source / "registry.toml"
    registry.write_text(registry.read_text() + f"\n[site]\n{setting}\n")
    with pytest.raises(SourceTreeError) as caught:
        build_site(example_source, tmp_path / "out")
    assert "registry.toml: " in str(caught.value) and message in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_override_symlink_out_of_tree_refused(example_source: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not publish")
    (example_source / "theme" / "static").mkdir(parents=True)
    os.symlink(secret, example_source / "theme" / "static" / "leak.txt")
    registry = example_source / "registry.toml"
    registry.write_text(registry.read_text() + '\n[site]\noverrides = "theme"\n')
    with pytest.raises(SourceTreeError, match=r"theme/static/leak\.txt: symlink points outside"):
        build_site(example_source, tmp_path / "out")


def test_broken_override_template_is_a_clear_error(example_source: Path, tmp_path: Path) -> None:
    (example_source / "theme").mkdir()
    (example_source / "theme" / "main.html").write_text(
        '{% extends "base.html" %}\n{% block footer %}{{ oops( }}{% endblock %}\n'
    )
    registry = example_source / "registry.toml"
    registry.write_text(registry.read_text() + '\n[site]\noverrides = "theme"\n')
    with pytest.raises(SiteBuildError, match=r"main.html: line 2: "):
        build_site(example_source, tmp_path / "out")
    result = CliRunner().invoke(main, ["build", str(example_source), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "Error: " in result.output and "main.html: line 2" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_cli_build_includes_site_unless_no_site(example_source: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    with_site, without = tmp_path / "with", tmp_path / "without"
    assert runner.invoke(main, ["build", str(example_source), "-o", str(with_site)]).exit_code == 0
    assert (with_site / "index.html").is_file() and (with_site / "static/site.js").is_file()
    result = runner.invoke(main, ["build", str(example_source), "-o", str(without), "--no-site"])
    assert result.exit_code == 0
    assert not (without / "index.html").exists() and (without / "index.json").is_file()


def test_text_is_escaped_everywhere(example_source: Path, tmp_path: Path) -> None:
    app = example_source / "apps" / "hello-world" / "app.toml"
    app.write_text(
        app.read_text().replace(
            'description = "The smallest', 'description = "<script>alert(1)</script> The smallest'
        )
    )
    out = tmp_path / "out"
    build_site(example_source, out)
    for page in ("index.html", "apps/hello-world/index.html"):
        text = (out / page).read_text()
        assert "<script>alert(1)" not in text
        assert "&lt;script&gt;alert(1)" in text
    assert "<script>" not in (out / "feed.xml").read_text()


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/x", True),
        ("http://example.com", True),
        ("mailto:a@example.com", True),
        ("docs/usage.md", True),
        ("#install", True),
        ("//cdn.example.com/x.png", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("java\u200bscript:alert(1)", False),
        ("vbscript:x", False),
        ("data:text/html,<b>x</b>", False),
        ("data:image/png;base64,AAAA", False),
        ("file:///etc/passwd", False),
    ],
)
def test_safe_link(url: str, ok: bool) -> None:
    assert safe_link(url) is ok


def test_markdown_has_no_raw_html_or_script_links() -> None:
    html = render_markdown(
        "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "[a](javascript:alert(1)) [b](JAVASCRIPT:alert(1)) <javascript:alert(1)>\n"
        "[c](https://example.com) ![d](data:image/svg+xml,<svg onload=alert(1)>)\n"
    )
    assert "<script" not in html and '<img src="x"' not in html
    assert 'href="javascript' not in html.lower() and 'src="data:' not in html
    assert '<a href="https://example.com" rel="nofollow ugc noopener noreferrer">c</a>' in html
    assert html.startswith("<h2>Title</h2>")  # the page's own <h1> is the app name


def test_filesize() -> None:
    assert [filesize(n) for n in (0, 1023, 1024, 1536, 5 << 20, 3 << 30)] == [
        "0 B",
        "1023 B",
        "1.0 KB",
        "1.5 KB",
        "5.0 MB",
        "3.0 GB",
    ]


def _shown_command(page: Path, command: str, section: str | None = None) -> list[str]:
    """The `appshelf <command> ...` a page (or its section with id `section`) shows, as
    the shell would split it."""
    import html
    import re
    import shlex

    text = page.read_text(encoding="utf-8")
    if section is not None:
        text = _section(text, section)
    text = html.unescape(text)
    found = re.search(rf"(appshelf {command} [^<]+)</code>", text)
    assert found, f"{page}: no {command} command shown"
    return shlex.split(found.group(1))


@contextmanager
def _served_build(
    example_source: Path, tmp_path: Path, with_key: bool
) -> Iterator[tuple[str, Path, list[str]]]:
    """example-registry built now (so its snapshot is fresh) and served; yields the URL,
    the output folder and the trust options a client needs for it."""
    from datetime import UTC, datetime

    from appshelf.signing.keys import write_new_key_file
    from conftest import StaticServer

    options: dict[str, object] = {"now": datetime.now(UTC).replace(microsecond=0)}
    trust = ["--allow-dev-key"]
    if with_key:
        key = write_new_key_file(tmp_path / "registry.key")
        options["key_file"] = tmp_path / "registry.key"
        trust = ["--key", key.public_hex]
    root = tmp_path / "www"
    with StaticServer(root) as server:
        build_site(example_source, root, base_url=server.url, **options)
        yield server.url, root, trust


@pytest.mark.parametrize("with_key", [False, True])
def test_the_verify_command_shown_on_app_pages_works(
    example_source: Path, tmp_path: Path, with_key: bool
) -> None:
    """Copy the command from the page, run it against the served registry: it passes."""
    with _served_build(example_source, tmp_path, with_key) as (url, root, trust):
        argv = _shown_command(root / "apps/kv-store/index.html", "verify")
        assert argv[:3] == ["appshelf", "verify", url]
        assert argv[3 : 3 + len(trust)] == trust
        argv += ["--state-dir", str(tmp_path / "state")]
        result = CliRunner().invoke(main, argv[1:])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("with_key", [False, True])
def test_the_install_command_shown_works(
    example_source: Path, tmp_path: Path, with_key: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The install snippet of the app page (latest) and of an old version's section, run
    as shown: each downloads that version, verified, into vendor/."""
    monkeypatch.chdir(tmp_path)
    with _served_build(example_source, tmp_path, with_key) as (url, root, trust):
        page = root / "apps/kv-store/index.html"
        for version in ("1.1.1", "1.0.0"):
            argv = _shown_command(page, "fetch", f"v-{version}")
            pin = f"kv-store@{version}"
            assert argv == ["appshelf", "fetch", "-r", url, *trust, pin, "-d", "vendor/"]
            argv += ["--state-dir", str(tmp_path / "state")]
            result = CliRunner().invoke(main, argv[1:])
            assert result.exit_code == 0, result.output
            name = f"kv-store-{version}.tar.gz"
            fetched = (tmp_path / "vendor" / name).read_bytes()
            assert fetched == (root / "apps/kv-store" / version / name).read_bytes()


@pytest.mark.parametrize("with_key", [False, True])
def test_keys_page_warns_only_about_the_development_key(
    example_source: Path, tmp_path: Path, with_key: bool
) -> None:
    with _served_build(example_source, tmp_path, with_key) as (_url, root, trust):
        import json

        keys = json.loads((root / "keys.json").read_text())["keys"]
        page = (root / "keys/index.html").read_text()
    assert [k["development"] for k in keys] == [not with_key]
    assert f'<code class="public">{keys[0]["public"]}</code>' in page
    assert ('id="key-warning"' in page) is not with_key
    assert ('data-status="development"' in page) is not with_key
    assert " ".join(trust) in page  # the command that trusts this key


# Issue 10, item 6: the site shows what the release log says about each app.


def _logged_about(out: Path, app: str) -> list[tuple[int, str, str]]:
    """(index, action, version) of every release-log entry about `app`, read from the
    published entry bundles (this example's log fits one)."""
    size = int((out / "log/checkpoint").read_text().splitlines()[1])
    bundles = [ref for ref in tiles_for(size) if ref.level == "entries"]
    assert len(bundles) == 1
    found = []
    for index, data in enumerate(decode_bundle((out / bundles[0].path).read_bytes(), size)):
        entry = decode_entry(data)
        if getattr(entry, "app", None) == app:
            found.append((index, getattr(entry, "action", "release"), entry.version))  # type: ignore[union-attr]
    return found


@pytest.fixture
def lifecycle_site(example_source: Path, tmp_path: Path) -> Path:
    """example-registry built, then built again after site_support.build_with_lifecycle's
    yank, deprecation and takedown of kv-store versions."""
    out = tmp_path / "out"
    build_with_lifecycle(example_source, out, base_url=BASE)
    return out


def test_deprecated_and_yanked_versions_show_reason_and_replacement(lifecycle_site: Path) -> None:
    out = lifecycle_site
    app_page = (out / "apps/kv-store/index.html").read_text()
    row = app_page[app_page.index('<tr id="row-1.0.0"') :].split("</tr>", 1)[0]
    assert 'data-status="deprecated"' in row
    assert f"Deprecated: {DEPRECATE_REASON}; use " in row
    assert '<a href="#v-1.1.1" data-slot="replacement">1.1.1</a> instead' in row
    yanked_row = app_page[app_page.index('<tr id="row-1.1.0"') :].split("</tr>", 1)[0]
    assert "Yanked: loses writes under &lt;b&gt;load&lt;/b&gt;" in yanked_row  # escaped
    assert "<b>load" not in app_page

    section = _section(app_page, "v-1.0.0")
    summary = section.split("</summary>", 1)[0]
    assert 'data-status="deprecated"' in summary
    notice = re.search(r'<p class="notice warn deprecated-notice">(.*?)</p>', section)
    assert notice is not None and DEPRECATE_REASON in notice.group(1)
    assert '<a href="#v-1.1.1" data-slot="replacement">1.1.1</a>' in notice.group(1)
    yanked = _section(app_page, "v-1.1.0")
    assert "This version was yanked:</strong> loses writes under &lt;b&gt;load" in yanked
    manifest = json.loads((out / "apps/kv-store/1.0.0/manifest.json").read_bytes())
    assert manifest["signed"]["replacement"] == "1.1.1"  # what the page shows is signed
    assert _check_links(out) > 300


def test_taken_down_version_keeps_a_page_that_says_why(lifecycle_site: Path) -> None:
    out = lifecycle_site
    detail = json.loads((out / "apps/kv-store/app.json").read_bytes())
    assert "0.9.0" not in [v["version"] for v in detail["versions"]]
    left = sorted(p.name for p in (out / "apps/kv-store/0.9.0").iterdir())
    # Besides the page, only the previous snapshot's copy of the manifest, for one build
    # (docs/spec.md 4.1.1); the artifact is gone.
    assert [name for name in left if plain_path(name) is None] == ["index.html"]
    about = [
        (i, action) for i, action, version in _logged_about(out, "kv-store") if version == "0.9.0"
    ]
    index, action = about[-1]
    assert action == "takedown"

    gone = (out / "apps/kv-store/0.9.0/index.html").read_text().replace("&#39;", "'")
    assert "This version was taken down</strong> on " in gone
    assert '<time datetime="2026-01-18T12:00:00Z">2026-01-18</time>' in gone
    assert TAKEDOWN_REASON in gone and f"entry {index}" in gone
    assert '<meta name="robots" content="noindex">' in gone
    assert 'href="../index.html#v-1.1.1">1.1.1</a>' in gone  # the latest

    app_page = (out / "apps/kv-store/index.html").read_text().replace("&#39;", "'")
    notice = re.search(r'<li id="takedown-0.9.0">(.*?)</li>', app_page)
    assert notice is not None
    assert '<a href="0.9.0/index.html">0.9.0</a> was taken down' in notice.group(1)
    assert 'id="v-0.9.0"' not in app_page  # no section: nothing is published
    assert '<time datetime="2026-01-18T12:00:00Z">2026-01-18</time>' in notice.group(1)
    assert TAKEDOWN_REASON in notice.group(1) and f"entry {index}" in notice.group(1)
    sitemap = (out / "sitemap.xml").read_text()
    assert "kv-store/0.9.0/" not in sitemap and "kv-store/index.html" in sitemap
    _check_links(out)


def test_history_lists_the_apps_log_entries_newest_first(lifecycle_site: Path) -> None:
    out = lifecycle_site
    page = (out / "apps/kv-store/index.html").read_text()
    history = page[page.index('<section aria-labelledby="history-h">') :].split("</section>")[0]
    rows = re.findall(
        r'<tr id="log-(\d+)" data-action="(\w+)">.*?<time datetime="([^"]+)">.*?'
        r'<th scope="row" data-label="Event">([^<]+)</th>.*?'
        r'<a href="[^"]+">([^<]+)</a>.*?<td data-label="Reason" class="reason">(.*?)</td>',
        history,
        re.S,
    )
    logged = _logged_about(out, "kv-store")
    assert [(int(r[0]), r[1], r[4]) for r in rows] == logged[::-1]  # all of them, newest first
    labels = {r[1]: r[3] for r in rows}
    assert labels == {
        "takedown": "taken down",
        "deprecate": "deprecated",
        "yank": "yanked",
        "release": "released",
    }
    newest = rows[:3]
    assert [r[1] for r in newest] == ["takedown", "deprecate", "yank"]
    assert {r[2] for r in newest} == {"2026-01-18T12:00:00Z"}
    assert TAKEDOWN_REASON in newest[0][5].replace("&#39;", "'")
    assert newest[1][5] == (
        f'{DEPRECATE_REASON}; use <a href="#v-1.1.1" data-slot="replacement">1.1.1</a> instead'
    )
    links = re.findall(r'<td data-label="Version"><a href="([^"]+)">', history)
    assert "#takedown-0.9.0" in links and "#v-1.0.0" in links  # on this page
    assert 'href="../../log/checkpoint">checkpoint</a>' in history
    assert '<a href="#history-h">History</a>' in page
    other = (out / "apps/jira-sync/index.html").read_text()  # untouched: releases only
    assert re.findall(r'data-action="(\w+)"', other) == ["release", "release"]


def test_version_folder_page_leads_to_its_section(example_source: Path, tmp_path: Path) -> None:
    """/apps/<key>/<version>/ is a small page without script that sends the browser to
    the version's section of the app page, which shows what the version page showed."""
    odd = example_source / "apps/hello-world/1.2.0+build.5"
    odd.mkdir()
    (odd / "hello+world_1.2.0.tar.gz").write_bytes(b"odd names\n")
    app = example_source / "apps" / "hello-world" / "app.toml"
    app.write_text(app.read_text().replace('name = "Hello World"', 'name = "Hello <World>"'))
    out = tmp_path / "out"
    build_site(example_source, out, base_url=BASE)
    stub = (out / "apps/hello-world/1.2.0+build.5/index.html").read_text()
    assert "<script" not in stub and "{{" not in stub and "<World>" not in stub
    assert "Hello &lt;World&gt; 1.2.0+build.5" in stub
    assert '<meta http-equiv="refresh" content="0; url=\'../index.html#v-1.2.0+build.5\'">' in stub
    assert f'<link rel="canonical" href="{BASE}apps/hello-world/index.html">' in stub
    assert '<a href="../index.html#v-1.2.0+build.5" id="version-link">' in stub
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', stub)
    assert csp is not None and "default-src 'none'" in csp.group(1)
    assert "script-src" not in csp.group(1)  # default-src 'none' covers scripts
    css = re.search(r'<link rel="stylesheet" href="\.\./\.\./\.\./([^"?]+)\?v=', stub)
    assert css is not None and (out / css.group(1)).is_file()

    page = (out / "apps/hello-world/index.html").read_text()
    section = _section(page, "v-1.1.0")
    manifest = json.loads((out / "apps/hello-world/1.1.0/manifest.json").read_bytes())
    signed = manifest["signed"]
    artifact = signed["artifact"]
    assert f'href="1.1.0/{artifact["filename"]}" download' in section
    assert f"({artifact['size']} bytes)" in section and artifact["sha256"] in section
    assert (
        'href="1.1.0/manifest.json"' in section and 'data-manifest="1.1.0/manifest.json"' in section
    )
    assert f'<time datetime="{signed["published"]}">' in section
    assert manifest["signatures"][0]["sig"] in section
    assert 'class="button verify-button"' in section and "appshelf fetch -r" in section
    slack = _section((out / "apps/slack-notify/index.html").read_text(), "v-1.0.0")
    assert (
        '<a href="../../apps/http-client/index.html">http-client</a> <code>^1.0.0</code>' in slack
    )
    assert 'id="v-1.2.0+build.5"' in page
    assert (out / "apps/hello-world/1.2.0+build.5/hello+world_1.2.0.tar.gz").is_file()


def test_override_of_the_retired_version_template_warns(
    example_source: Path, tmp_path: Path
) -> None:
    """version.html is no longer rendered: an override of it is named in a warning;
    overrides of app.html and _version.html are used."""
    theme = example_source / "theme"
    theme.mkdir()
    (theme / "version.html").write_text('{% extends "main.html" %}')
    builtin = Path(__file__).resolve().parents[2] / "templates"
    (theme / "_version.html").write_text(
        (builtin / "_version.html").read_text().replace("<h4>Artifact</h4>", "<h4>ARTIFACT!</h4>")
    )
    registry = example_source / "registry.toml"
    registry.write_text(registry.read_text() + '\n[site]\noverrides = "theme"\n')
    report = build_site(example_source, tmp_path / "out")
    assert [w for w in report.warnings if "version.html" in w] == [
        "theme/version.html: no longer used: version details are sections of app.html "
        "(templates/_version.html) (docs/site.md)"
    ]
    page = (tmp_path / "out/apps/kv-store/index.html").read_text()
    assert page.count("<h4>ARTIFACT!</h4>") == page.count('class="version-details"') > 1
    result = CliRunner().invoke(main, ["build", str(example_source), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0 and "Warning: theme/version.html: no longer used" in result.output
