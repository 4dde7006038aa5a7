"""Field values that used to slip through or crash: a trailing newline (Python's `$`
matches before one), control and bidirectional characters, dates outside what datetime
can represent, deep nesting, and artifact URLs that reach inside a network. Each is
refused as a source error naming the file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.errors import SigningKeyError
from appshelf.signing.keys import parse_private_key
from appshelf.source.models import AppConfig, RegistryConfig, ReleaseConfig
from test_source_errors import run_build, write

HEX = "a" * 64
REGISTRY = {"name": "r", "base_url": "https://r.example.com/"}
APP = {"name": "App", "description": "An app."}
PINNED = {"artifact_url": "https://files.example.com/a.tar.gz", "sha256": HEX, "size": 1}


def refused(model: type[pydantic.BaseModel], data: dict[str, Any], field: str) -> str:
    """The message pydantic gives for `field`; fails when the data is accepted."""
    with pytest.raises(pydantic.ValidationError) as info:
        model.model_validate(data)
    errors = {".".join(str(p) for p in e["loc"]) or "(file)": e["msg"] for e in info.value.errors()}
    assert field in errors, errors
    return errors[field]


NEWLINE_CASES: list[tuple[type[pydantic.BaseModel], dict[str, Any], str]] = [
    (AppConfig, {**APP, "tags": ["kv\n"]}, "tags"),
    (AppConfig, {**APP, "color": "#FFFFFF\n"}, "color"),
    (AppConfig, {**APP, "icon": "logo.svg\n"}, "icon"),
    (ReleaseConfig, {"artifact": "a.tar.gz\n"}, "artifact"),
    (ReleaseConfig, {"provides": ["storage.kv\n"]}, "provides"),
    (ReleaseConfig, {"requires": ["storage.kv\n"]}, "requires"),
    (ReleaseConfig, {**PINNED, "sha256": HEX + "\n"}, "sha256"),
    (ReleaseConfig, {"dependencies": {"kv-store\n": "^1.0.0"}}, "dependencies"),
    (ReleaseConfig, {"dependencies": {"kv-store": "^1.0.0\n"}}, "dependencies"),
    (RegistryConfig, {"registry": REGISTRY, "site": {"cname": "a.example.com\n"}}, "site.cname"),
    (RegistryConfig, {"registry": REGISTRY, "signing": {"key_id": HEX + "\n"}}, "signing.key_id"),
    (
        RegistryConfig,
        {"registry": REGISTRY, "signing": {"retired_keys": [HEX + "\n"]}},
        "signing.retired_keys",
    ),
    (RegistryConfig, {"registry": REGISTRY, "signing": {"key_env": "KEY\n"}}, "signing.key_env"),
]


@pytest.mark.parametrize(("model", "data", "field"), NEWLINE_CASES)
def test_trailing_newline_is_refused(
    model: type[pydantic.BaseModel], data: dict[str, Any], field: str
) -> None:
    refused(model, data, field)


def test_trailing_newline_in_key_seed_is_refused() -> None:
    text = json.dumps({"type": "appshelf.private-key", "seed": "1" * 64 + "\n"})
    with pytest.raises(SigningKeyError, match="seed: expected 64 hex digits"):
        parse_private_key(text, "key.json")


def test_trailing_newline_in_folder_and_file_names(example_source: Path, tmp_path: Path) -> None:
    """Names from the file system reach published paths: they are checked the same way."""
    apps = example_source / "apps"
    (apps / "kv-store").rename(apps / "kv-store\n")
    artifact = apps / "hello-world/1.0.0/hello-world-1.0.0.tar.gz"
    artifact.rename(artifact.with_name(artifact.name + "\n"))
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1
    assert "invalid app key 'kv-store\\n'" in output
    assert "hello-world-1.0.0.tar.gz\n: artifact file name must be" in output


SPOOF = "\u202e"  # RIGHT-TO-LEFT OVERRIDE


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (AppConfig, {**APP, "name": f"Invoice{SPOOF}fdp.exe"}, "name"),
        (AppConfig, {**APP, "name": "Two\nlines"}, "name"),
        (AppConfig, {**APP, "name": "Bell\x07"}, "name"),
        (AppConfig, {**APP, "name": "mark\u200f"}, "name"),
        (AppConfig, {**APP, "category": "cat\u2066"}, "category"),
        (AppConfig, {**APP, "license": "MIT\x85"}, "license"),
        (AppConfig, {**APP, "description": "nul\x00"}, "description"),
        (AppConfig, {**APP, "description": f"over{SPOOF}ride"}, "description"),
        (AppConfig, {**APP, "description": "form\x0cfeed"}, "description"),
        (AppConfig, {**APP, "homepage": "https://example.com/\x00"}, "homepage"),
        (ReleaseConfig, {"notes": "escape \x1b[31m"}, "notes"),
        (ReleaseConfig, {"yanked": f"bad{SPOOF}"}, "yanked"),
        (RegistryConfig, {"registry": {**REGISTRY, "name": f"r{SPOOF}"}}, "registry.name"),
        (
            RegistryConfig,
            {"registry": {**REGISTRY, "description": "\x7f"}},
            "registry.description",
        ),
        (
            RegistryConfig,
            {"registry": REGISTRY, "site": {"overrides": "theme\n"}},
            "site.overrides",
        ),
    ],
)
def test_control_and_bidi_characters_are_refused(
    model: type[pydantic.BaseModel], data: dict[str, Any], field: str
) -> None:
    assert "must not contain" in refused(model, data, field)


def test_free_text_keeps_line_breaks_tabs_and_bidi_marks_only() -> None:
    text = "First line\n\tindented \u200f\u061c and RTL marks"
    assert AppConfig.model_validate({**APP, "description": text}).description == text
    assert ReleaseConfig.model_validate({"notes": text}).notes == text
    refused(ReleaseConfig, {"notes": text + "\x00"}, "notes")


def test_bidi_override_in_app_name_via_cli(example_source: Path, tmp_path: Path) -> None:
    write(
        example_source / "apps/kv-store/app.toml",
        'name = "KV \\u202Eexe.txt"\ndescription = "d"\n',
    )
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1 and "Traceback" not in output
    assert "apps/kv-store/app.toml: name: must not contain control, line-break or bidi" in output
    assert "U+202E" in output


@pytest.mark.parametrize(
    ("published", "field"),
    [
        ("9999-12-31T23:59:59-01:00", "published"),  # a TOML date-time
        ('"9999-12-31T23:59:59-01:00"', "published"),  # a string
        ("0001-01-01T00:00:00+01:00", "published"),
        ("9000-01-01T00:00:01Z", "published"),
        ("1969-12-31T23:59:59Z", "published"),
    ],
)
def test_published_outside_the_range_is_refused(
    example_source: Path, tmp_path: Path, published: str, field: str
) -> None:
    write(example_source / "apps/kv-store/1.0.0/release.toml", f"published = {published}\n")
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1 and "Traceback" not in output, output
    assert "apps/kv-store/1.0.0/release.toml: published:" in output
    assert "1970-01-01T00:00:00Z" in output or "RFC 3339" in output


def test_deeply_nested_toml_is_a_source_error(example_source: Path, tmp_path: Path) -> None:
    depth = 100_000
    write(example_source / "apps/kv-store/app.toml", "a = " + "[" * depth + "]" * depth + "\n")
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1 and "Traceback" not in output
    assert "apps/kv-store/app.toml: invalid TOML (nested too deeply)" in output


@pytest.mark.parametrize(
    "epoch",
    ["253402300000", "-1", "+5", "٣"],  # year 9999, negative, signed, not ASCII
)
def test_bad_source_date_epoch_is_a_clean_error(
    example_source: Path, tmp_path: Path, epoch: str
) -> None:
    result = CliRunner().invoke(
        main,
        ["build", str(example_source), "-o", str(tmp_path / "out")],
        env={"SOURCE_DATE_EPOCH": epoch},
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: SOURCE_DATE_EPOCH: ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https:///a.tar.gz", "must name a host"),
        ("https://files.example.com/a/..", ". or .. path segments"),
        ("https://files.example.com/a/./b", ". or .. path segments"),
        ("https://files.example.com/a/%2e%2e/b", ". or .. path segments"),
        ("https://files.example.com/a/..%2Fetc", "encoded separators"),
        ("https://files.example.com/a%5cb", "encoded separators"),
        ("https://files.example.com\\@evil.example/a", "user name or password"),
        ("https://AKIA:secret@files.example.com/a.tar.gz", "user name or password"),
        ("https://files.example.com:0/a", "port 0"),
        ("https://999.1.1.1/a", "neither a name nor an IP address"),
    ],
)
def test_malformed_artifact_url_is_refused(url: str, message: str) -> None:
    text = refused(ReleaseConfig, {**PINNED, "artifact_url": url}, "artifact_url")
    assert message in text
    assert "secret" not in text


INTERNAL = [
    "https://localhost/a.tar.gz",
    "https://LocalHost./a.tar.gz",
    "https://build.localhost/a.tar.gz",
    "https://127.0.0.1/a.tar.gz",
    "https://2130706433/a.tar.gz",
    "https://0x7f.1/a.tar.gz",
    "https://[::1]/a.tar.gz",
    "https://[::ffff:127.0.0.1]/a.tar.gz",
    "https://10.0.0.8/a.tar.gz",
    "https://172.16.1.1/a.tar.gz",
    "https://192.168.1.1:8443/a.tar.gz",
    "https://[fc00::1]/a.tar.gz",
    "https://[fe80::1]/a.tar.gz",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://0.0.0.0/a.tar.gz",
]


def pinned_release(url: str) -> str:
    return f'artifact_url = "{url}"\nsha256 = "{HEX}"\nsize = 1\n'


def test_internal_artifact_hosts_are_refused_unless_allowed(
    example_source: Path, tmp_path: Path
) -> None:
    """An artifact under the registry's own base_url is another matter (being designed)."""
    apps = example_source / "apps"
    for index, url in enumerate(INTERNAL):
        write(apps / f"jira-sync/9.0.{index}/release.toml", pinned_release(url))
    write(apps / "jira-sync/9.1.0/release.toml", pinned_release("https://8.8.8.8/a.tar.gz"))
    config = example_source / "registry.toml"
    config.write_text(
        config.read_text().replace("http://127.0.0.1:8000/", "https://127.0.0.1:8443/")
    )
    own = pinned_release("https://127.0.0.1:8443/files/a.tar.gz")
    write(apps / "jira-sync/9.2.0/release.toml", own)
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1
    assert output.startswith(f"Error: the source tree has {len(INTERNAL)} problems:"), output
    for index in range(len(INTERNAL)):
        assert f"apps/jira-sync/9.0.{index}/release.toml: artifact_url: points at" in output
    assert "allow_internal_artifact_hosts = true" in output
    text = config.read_text().replace(
        "[signing]", "allow_internal_artifact_hosts = true\n\n[signing]"
    )
    config.write_text(text)
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 0, output


def test_userinfo_in_urls_is_never_echoed(example_source: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert run_build(example_source, site)[0] == 0
    for endpoint in ("https://AKIA:hunter2secret@s3.example.com", "hunter2secret"):
        result = CliRunner().invoke(
            main,
            ["deploy", str(site), "s3://bucket", "--endpoint-url", endpoint],
            env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
        )
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: --endpoint-url: ")
        assert "hunter2secret" not in result.output
    result = CliRunner().invoke(
        main,
        [
            "build",
            str(example_source),
            "-o",
            str(tmp_path / "out"),
            "--previous-url",
            "http://user:hunter2secret@127.0.0.1:1/",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "connection refused by 127.0.0.1:1" in result.output
    assert "hunter2secret" not in result.output
    config = example_source / "registry.toml"
    config.write_text(
        config.read_text().replace(
            "http://127.0.0.1:8000/", "ftp://user:hunter2secret@127.0.0.1:8000/"
        )
    )
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1 and "registry.toml: registry.base_url: must be" in output
    assert "hunter2secret" not in output
