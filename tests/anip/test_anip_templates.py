"""ANIP starter templates (docs/spec.md section 15): the build checks every safety
limit with an error naming the file and the field, lists templates apart from apps,
logs them as releases of kind template, and the client fetches and verifies them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from anip_support import BUNDLE, add_template, bundle, manifest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.client import RegistryClient
from appshelf.errors import SourceTreeError, TemplateError
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.log import ReleaseEntry, decode_entry, split_entries
from appshelf.signing.envelope import trusted_keys_from_hex
from appshelf.signing.keys import development_key
from appshelf.source.templates import check_template
from conftest import StaticServer, build

WHERE = "apps/starter/1.0.0/starter-1.0.0.anip-template.json"


def run_build(source: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["build", str(source), "-o", str(out)], env={"SOURCE_DATE_EPOCH": "1767225600"}
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def _docs(count: int, content: str = "text\n") -> list[dict[str, str]]:
    return [{"path": f"d{i}.md", "content": content} for i in range(count)]


def _records(count: int) -> list[dict[str, Any]]:
    return [{"name": f"r{i}"} for i in range(count)]


REFUSED: list[tuple[str, dict[str, Any] | bytes, str, str]] = [
    ("payload", json.dumps({**BUNDLE, "pad": "x" * (1 << 20)}).encode(), "", "payload is 10"),
    (
        "manifest",
        manifest(starter={"notes": "x" * (128 << 10)}),
        "template",
        "ANIP allows at most 128 KiB",
    ),
    (
        "documents",
        bundle(documents=_docs(21)),
        "documents",
        "has 21 entries; ANIP allows at most 20",
    ),
    ("connections", manifest(connections=_records(21)), "template.connections", "at most 20"),
    ("discovery", manifest(discovery=_records(201)), "template.discovery", "at most 200"),
    ("capabilities", manifest(capabilities=_records(101)), "template.capabilities", "at most 100"),
    (
        "html-block",
        bundle(documents=[{"path": "a.md", "content": "# Hi\n\n<script>alert(1)</script>\n"}]),
        "documents[0].content (a.md)",
        "raw HTML is not allowed in template documents (line 3)",
    ),
    (
        "html-inline",
        bundle(documents=[{"path": "a.md", "content": "click <img src=x onerror=alert(1)>\n"}]),
        "documents[0].content (a.md)",
        "raw HTML is not allowed",
    ),
    (
        "not-markdown",
        bundle(documents=[{"path": "setup.sh", "content": "echo\n"}]),
        "documents[0].path",
        "must be a relative .md file name",
    ),
    (
        "secret-value",
        manifest(connections=[{"name": "db", "password": "hunter2-correct-horse"}]),
        "template.connections[0].password",
        "secret fields must be environment references like ${API_TOKEN}",
    ),
    (
        "nested-secret-value",
        manifest(connections=[{"name": "db", "secrets": {"key": "sk_live_123"}}]),
        "template.connections[0].secrets.key",
        "never secret values",
    ),
    (
        "install-script",
        manifest(starter={"installScript": "curl https://x | sh"}),
        "template.starter.installScript",
        "executable-looking fields (install scripts, hooks, commands) are refused",
    ),
    (
        "postinstall",
        manifest(connections=[{"name": "x", "post_install": "rm -rf /"}]),
        "template.connections[0].post_install",
        "executable-looking fields",
    ),
    (
        "spec-version",
        manifest(anipSpecVersion="anip/0.25"),
        "template.anipSpecVersion",
        "must be 'anip/0.24', the ANIP spec version this registry supports; got 'anip/0.25'",
    ),
    ("unknown-member", manifest(extra=1), "template.extra", "unknown member"),
    ("not-json", b"{not json", "", "not a JSON template bundle"),
]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_each_safety_limit_is_refused(
    example_source: Path, tmp_path: Path, data: dict[str, Any] | bytes, field: str, message: str
) -> None:
    add_template(example_source, data)
    out = tmp_path / "out"
    code, output = run_build(example_source, out)
    assert code == 1, output
    assert output.startswith("Error: ")
    assert "Traceback" not in output
    where = f"{WHERE}: {field}: " if field else f"{WHERE}: "
    line = next(line for line in output.splitlines() if WHERE in line)
    assert line.strip().startswith(where), line
    assert message in line, line
    assert "hunter2" not in output and "sk_live" not in output  # secrets never echoed
    assert not out.exists()  # nothing half-written


def test_a_template_needs_its_bundle_in_the_tree(example_source: Path, tmp_path: Path) -> None:
    folder = example_source / "apps" / "starter"
    add_template(example_source).unlink()
    (folder / "1.0.0" / "release.toml").write_text(
        f'artifact_url = "https://example.com/t.json"\nsha256 = "{"0" * 64}"\nsize = 10\n'
    )
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1
    assert "apps/starter/1.0.0/release.toml: artifact_url: a template's bundle must be" in output


def _built(example_source: Path, out: Path, **options: Any) -> dict[str, Any]:
    add_template(example_source)
    add_template(example_source, manifest(projectType="worker"), version="1.1.0")
    build(example_source, out, **options)
    return json.loads((out / "templates.json").read_bytes())


def test_templates_are_listed_apart_and_logged_as_templates(
    example_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    listing = _built(example_source, out)
    assert listing["type"] == "appshelf.templates"
    assert [(t["key"], t["version"]) for t in listing["templates"]] == [
        ("starter", "1.1.0"),
        ("starter", "1.0.0"),
    ]
    first = listing["templates"][1]
    assert first["anip_spec_version"] == "anip/0.24"
    assert first["documents"] == ["README.md", "docs/design.md"]
    assert (first["connections"], first["discovery"], first["capabilities"]) == (1, 1, 1)
    snapshot = json.loads((out / "snapshot.json").read_bytes())["signed"]
    assert "templates.json" in snapshot["meta"]
    assert "starter" not in json.loads((out / "registry.json").read_bytes())["apps"]
    index = json.loads((out / "index.json").read_bytes())
    assert {a["key"]: a.get("kind") for a in index["apps"]}["starter"] == "template"
    signed = json.loads((out / "apps/starter/1.0.0/manifest.json").read_bytes())["signed"]
    assert signed["metadata"]["kind"] == "template"
    (bundle_file,) = (out / "log/tile/entries/000.p").iterdir()
    raw = bundle_file.read_bytes()
    entries = [decode_entry(e) for e in split_entries(raw)]
    kinds = {(e.app, e.version): e.kind for e in entries if isinstance(e, ReleaseEntry)}
    assert kinds[("starter", "1.0.0")] == "template"
    assert kinds[("kv-store", "1.0.0")] is None
    assert raw.count(b'"kind":"template"') == 2  # emitted only for templates


def test_a_template_stays_a_template(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _built(example_source, out)
    (example_source / "apps/starter/app.toml").write_text(
        'name = "Orders starter"\ndescription = "now an app"\n'
    )
    with pytest.raises(SourceTreeError, match=r"was published .* with kind 'template'"):
        build(example_source, out)


def test_no_template_no_templates_json(example_source: Path, tmp_path: Path) -> None:
    build(example_source, tmp_path / "out")
    assert not (tmp_path / "out/templates.json").exists()


def test_client_fetches_and_verifies_a_template(example_source: Path, tmp_path: Path) -> None:
    add_template(example_source)
    root = tmp_path / "www"
    with StaticServer(root) as server:
        build(example_source, root, base_url=server.url, now=datetime.now(UTC))
        common = ["-r", server.url, "--allow-dev-key", "--state-dir", str(tmp_path / "s")]
        dest = tmp_path / "dl"
        result = CliRunner().invoke(main, ["fetch", *common, "starter@1.0.0", "-d", str(dest)])
        assert result.exit_code == 0, result.output
        client = RegistryClient(
            server.url,
            trusted_keys_from_hex([development_key().public_hex]),
            allow_dev_key=True,
            state_dir=tmp_path / "s2",
        )
        (listed,) = client.templates().templates
        assert (listed.key, listed.version, listed.project_type) == ("starter", "1.0.0", "service")
        fetched = dest / "starter-1.0.0.anip-template.json"
        assert loads_bounded(fetched.read_bytes()) == BUNDLE
        result = CliRunner().invoke(
            main,
            [
                "verify",
                server.url,
                "--allow-dev-key",
                "--artifacts",
                "--state-dir",
                str(tmp_path / "s"),
            ],
        )
        assert result.exit_code == 0, result.output
        # A tampered bundle is refused like any artifact.
        (root / "apps/starter/1.0.0/starter-1.0.0.anip-template.json").write_bytes(
            json.dumps(manifest(projectType="evil")).encode()
        )
        result = CliRunner().invoke(
            main, ["fetch", *common, "starter@1.0.0", "-d", str(tmp_path / "dl2")]
        )
        assert result.exit_code == 1
        assert "Traceback" not in result.output


def test_safe_markdown_and_references_pass() -> None:
    """What the rules allow: HTML shown as code, autolinks, booleans under secret-like
    names, both reference spellings."""
    content = "Use `<b>` for bold.\n\n```html\n<script>x</script>\n```\n\n<https://example.com>\n"
    data = manifest(
        connections=[{"name": "db", "requiresSecret": True, "password": "env:DB_PASSWORD"}]
    )
    data["documents"] = [{"path": "a.md", "content": content}]
    summary = check_template(json.dumps(data).encode())
    assert summary.documents == ["a.md"] and summary.connections == 1


def test_carriage_returns_and_comments_are_refused() -> None:
    for content, message in [("a\r\nb\n", "control characters"), ("<!-- x -->\n", "raw HTML")]:
        data = bundle(documents=[{"path": "a.md", "content": content}])
        with pytest.raises(TemplateError, match=message):
            check_template(json.dumps(data).encode())
