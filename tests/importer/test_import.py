"""`appshelf import` and `appshelf sync` against a realistic Flows registry served on
127.0.0.1 (tests/importer/flows_fixture.py), then `appshelf build` of the result."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from appshelf.cli import main
from importer.flows_fixture import MANIFESTS, FlowsServer, make_registry, tarball

MiB = 1024 * 1024


@pytest.fixture
def flows() -> Iterator[FlowsServer]:
    with FlowsServer() as server:
        server.registry = make_registry(server.url)
        yield server


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def do_import(server: FlowsServer, tree: Path, *extra: str) -> Result:
    return run(
        "import",
        server.url + "core/registry.json",
        "-o",
        tree,
        "--base-url",
        server.url,
        "--name",
        "Flows core, mirrored",
        "--allow-internal-hosts",
        *extra,
    )


def refused(result: Result, *parts: str) -> str:
    """The run failed as a user error: exit 1, `Error: ...` naming every part, no traceback."""
    output = result.output
    assert result.exit_code == 1, output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in output and output.startswith("Error: "), output
    for part in parts:
        assert part in output, (part, output)
    return output


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_import_builds_the_same_registry(flows: FlowsServer, tmp_path: Path) -> None:
    tree, out = tmp_path / "tree", tmp_path / "out"
    result = do_import(flows, tree)
    assert result.exit_code == 0, result.output
    assert "Imported 30 apps" in result.output and "8 federated" in result.output
    assert "Warning" not in result.output
    # Sizes came from HEAD where it told one, else from a download that was hashed.
    assert 0 < flows.downloads() < 70
    built = run("build", tree, "-o", out)
    assert built.exit_code == 0, built.output

    source = flows.registry.json("core/registry.json")["apps"]  # type: ignore[index]
    published = json.loads((out / "registry.json").read_text())["apps"]
    assert len(source) == len(published) == len(MANIFESTS) >= 20
    assert set(published) == set(source)
    for key, app in source.items():
        mine = published[key]
        assert mine["name"] == app["name"]
        assert mine["description"] == app["description"]
        assert mine["blockStyle"]["color"] == app["blockStyle"]["color"]  # case kept
        assert mine["blockStyle"]["iconUrl"].rsplit("/", 1)[1] == MANIFESTS[key]["logo"]
        icon = out / "apps" / key / MANIFESTS[key]["logo"]
        assert (
            icon.read_bytes() == flows.registry.files[f"core/apps/{key}/{MANIFESTS[key]['logo']}"]
        )

    # Every version, with the same artifact URL and checksum; sizes match the bytes.
    for key, app in source.items():
        upstream = flows.registry.json(app["appMetadataUrl"][len(flows.url) :])
        theirs = {v["version"]: v for v in upstream["versions"]}  # type: ignore[index]
        ours = json.loads((out / "apps" / key / "versions.json").read_text())["versions"]
        assert {v["version"]: v for v in ours} == theirs
        for version in theirs:
            release = tomllib.loads((tree / "apps" / key / version / "release.toml").read_text())
            assert release["size"] == len(tarball(key, version))

    # Federated apps record where their versions come from; the others do not.
    for key in source:
        app_toml = tomllib.loads((tree / "apps" / key / "app.toml").read_text())
        if key in flows.registry.federated:
            assert app_toml["upstream"] == source[key]["appMetadataUrl"]
        else:
            assert "upstream" not in app_toml
    registry_toml = tomllib.loads((tree / "registry.toml").read_text())
    assert registry_toml["registry"] == {
        "name": "Flows core, mirrored",
        "base_url": flows.url,
        "allow_internal_artifact_hosts": True,
    }


def test_verify_downloads_and_hashes_every_artifact(flows: FlowsServer, tmp_path: Path) -> None:
    result = do_import(flows, tmp_path / "tree", "--verify")
    assert result.exit_code == 0, result.output
    artifacts = sum(len(v["versions"]) for k, v in _all_versions(flows).items())
    assert flows.downloads() == artifacts
    assert not any(m == "HEAD" for m, _ in flows.hits)


def _all_versions(server: FlowsServer) -> dict[str, dict[str, list[dict[str, str]]]]:
    apps = server.registry.json("core/registry.json")["apps"]  # type: ignore[index]
    return {
        k: server.registry.json(a["appMetadataUrl"][len(server.url) :]) for k, a in apps.items()
    }  # type: ignore[misc]
