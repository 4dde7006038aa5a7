"""Named registries (`appshelf registry add`), `-r NAME` everywhere, APPSHELF_KEY, key ids
refused with the right message, `keygen --public`, `show` and `versions`: the consumer's
day-to-day, over a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from appshelf.cli import main
from conftest import StaticServer, build


@dataclass
class Setup:
    server: StaticServer
    public: str
    keyid: str
    env: dict[str, str]

    def run(self, *args: str, **env: str) -> Result:
        return CliRunner(env={**self.env, **env}).invoke(main, list(args))


@pytest.fixture
def setup(example_source: Path, tmp_path: Path) -> Iterator[Setup]:
    runner = CliRunner()
    key_file = tmp_path / "registry.key"
    made = json.loads(runner.invoke(main, ["keygen", "-o", str(key_file), "--json"]).output)
    root = tmp_path / "www"
    with StaticServer(root) as server:
        build(example_source, root, base_url=server.url, key_file=key_file, now=datetime.now(UTC))
        env = {
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "APPSHELF_STATE_DIR": str(tmp_path / "state"),
            "APPSHELF_KEY": "",
            "APPSHELF_REGISTRY": "",
        }
        yield Setup(server, made["public"], made["keyid"], env)


def test_registry_add_then_every_command_takes_the_name(setup: Setup, tmp_path: Path) -> None:
    result = setup.run("registry", "add", "team", setup.server.url, "--key", setup.public)
    assert result.exit_code == 0, result.output
    config = tmp_path / "config/appshelf/registries.json"
    assert json.loads(config.read_text()) == {
        "registries": {"team": {"url": setup.server.url, "keys": [setup.public]}}
    }
    listed = setup.run("registry", "list")
    assert f"team  {setup.server.url}  keys: {setup.public[:16]}..." in listed.output
    for args in (
        ("search", "-r", "team", "kv"),
        ("resolve", "-r", "team", "jira-sync@3.1"),
        ("verify", "-r", "team"),
        ("verify", "team"),
        ("show", "-r", "team", "kv-store"),
        ("versions", "-r", "team", "kv-store"),
        ("lock", "-r", "team", "slack-notify", "-o", str(tmp_path / "x.lock")),
        ("fetch", "-r", "team", "kv-store@1.0.0", "-d", str(tmp_path / "dl")),
    ):
        result = setup.run(*args)
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / "dl/kv-store-1.0.0.tar.gz").is_file()
    assert setup.run("search", "kv", APPSHELF_REGISTRY="team").exit_code == 0
    result = setup.run("registry", "remove", "team")
    assert result.exit_code == 0 and json.loads(config.read_text()) == {"registries": {}}
    result = setup.run("search", "-r", "team", "kv")
    assert result.exit_code == 1 and "team: no registry of that name in" in result.output
    result = setup.run("registry", "remove", "team")
    assert result.exit_code == 1 and "no registry named 'team'" in result.output


def test_key_from_the_environment(setup: Setup) -> None:
    assert setup.run("search", "-r", setup.server.url, "kv").exit_code == 1
    result = setup.run("search", "-r", setup.server.url, "kv", APPSHELF_KEY=setup.public)
    assert result.exit_code == 0 and "kv-store 1.1.1" in result.output


def test_a_key_id_is_refused_with_the_right_message(setup: Setup) -> None:
    for command in (("search", "kv"), ("verify",)):
        result = setup.run(*command, "-r", setup.server.url, "--key", setup.keyid)
        assert result.exit_code == 1
        assert (
            "this is a key id; the full public key is needed: appshelf keygen --public KEYFILE prints it"
            in result.output
        )
        assert "rotated" not in result.output and "Traceback" not in result.output


def test_keygen_public_prints_the_public_half(tmp_path: Path) -> None:
    key_file = tmp_path / "k.key"
    made = json.loads(CliRunner().invoke(main, ["keygen", "-o", str(key_file), "--json"]).output)
    before = key_file.read_bytes()
    result = CliRunner().invoke(main, ["keygen", "--public", str(key_file)])
    assert result.exit_code == 0
    assert f"public key: {made['public']}" in result.output
    assert f"key id:     {made['keyid']}" in result.output
    as_json = json.loads(
        CliRunner().invoke(main, ["keygen", "--public", str(key_file), "--json"]).output
    )
    assert (as_json["public"], as_json["keyid"]) == (made["public"], made["keyid"])
    assert key_file.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["k.key"]
    result = CliRunner().invoke(main, ["keygen", "--public", str(tmp_path / "missing.key")])
    assert result.exit_code == 1 and "cannot use the signing key" in result.output


def test_show_and_versions(setup: Setup) -> None:
    url = setup.server.url
    result = setup.run("versions", "-r", url, "--key", setup.public, "kv-store")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["1.1.1", "1.1.0", "1.0.0", "0.9.0"]
    assert "[YANKED: corrupts values" in lines[1]
    rows = json.loads(
        setup.run("versions", "-r", url, "--key", setup.public, "kv-store", "--json").output
    )
    assert [r["version"] for r in rows] == ["1.1.1", "1.1.0", "1.0.0", "0.9.0"]
    assert rows[1]["yanked"] and rows[0]["artifact"]["sha256"]
    result = setup.run("show", "-r", url, "--key", setup.public, "kv-store")
    assert result.exit_code == 0 and result.output.startswith("KV Store (kv-store) 1.1.1\n")
    assert "provides    storage.kv" in result.output
    shown = json.loads(
        setup.run("show", "-r", url, "--key", setup.public, "kv-store@1.1.0", "--json").output
    )
    assert shown["version"] == "1.1.0" and shown["yanked"] and shown["signed_by"] == setup.keyid
    result = setup.run("show", "-r", url, "--key", setup.public, "kv-store@9.9.9")
    assert (
        result.exit_code == 1
        and "kv-store has no version '9.9.9' (published: 1.1.1" in result.output
    )
    result = setup.run("versions", "-r", url, "--key", setup.public, "nope")
    assert result.exit_code == 1 and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "invalid"),
        (
            '{"registries": {"Bad Name": {"url": "https://x/", "keys": ["' + "a" * 64 + '"]}}}',
            "not a valid name",
        ),
        (
            '{"registries": {"x": {"url": "ftp://x/", "keys": ["' + "a" * 64 + '"]}}}',
            "registries.x.url",
        ),
        ('{"registries": {"x": {"url": "https://x/", "keys": ["abc"]}}}', "registries.x.keys.0"),
        ('{"registries": {"x": {"url": "https://x/", "keys": []}}}', "registries.x.keys"),
        ('{"other": 1}', "other: Extra inputs are not permitted"),
        (" " * (1 << 20) + "{}", "larger than 1048576 bytes"),
    ],
)
def test_a_hostile_config_file_is_refused_clearly(
    setup: Setup, tmp_path: Path, content: str, message: str
) -> None:
    config = tmp_path / "config/appshelf/registries.json"
    config.parent.mkdir(parents=True)
    config.write_text(content)
    result = setup.run("search", "-r", "x", "kv")
    assert result.exit_code == 1 and message in result.output, result.output
    assert str(config) in result.output and "Traceback" not in result.output


def test_the_config_file_is_not_followed_through_a_symlink(setup: Setup, tmp_path: Path) -> None:
    config = tmp_path / "config/appshelf/registries.json"
    config.parent.mkdir(parents=True)
    (tmp_path / "elsewhere.json").write_text('{"registries": {}}')
    config.symlink_to(tmp_path / "elsewhere.json")
    result = setup.run("registry", "list")
    assert result.exit_code == 1 and "a symlink is not followed" in result.output
    result = setup.run("registry", "add", "x", "ftp://nope", "--key", setup.public)
    assert result.exit_code == 1


def test_registry_add_checks_what_it_stores(setup: Setup, tmp_path: Path) -> None:
    for args, message in (
        (
            ("Bad Name", setup.server.url, "--key", setup.public),
            "is not a valid name"[:0] + "a registry name is",
        ),
        (("ok", "ftp://x/", "--key", setup.public), "URL: an http(s):// URL or an absolute folder"),
        (("ok", setup.server.url, "--key", "abc"), "is not an Ed25519 public key"),
    ):
        result = setup.run("registry", "add", *args)
        assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "config/appshelf/registries.json").exists()
