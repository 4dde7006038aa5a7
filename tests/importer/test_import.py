"""`appshelf import` and `appshelf sync` against a realistic Flows registry served on
127.0.0.1 (tests/importer/flows_fixture.py), then `appshelf build` of the result."""

from __future__ import annotations

import hashlib
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


def _versions_path(server: FlowsServer, key: str) -> str:
    apps = server.registry.json("core/registry.json")["apps"]  # type: ignore[index]
    return str(apps[key]["appMetadataUrl"])[len(server.url) :]


def _edit_versions(server: FlowsServer, key: str, change: object) -> str:
    """Apply `change(entries)` to the app's versions.json; returns its URL path."""
    path = _versions_path(server, key)
    data = server.registry.json(path)
    change(data["versions"])  # type: ignore[index, operator]
    server.registry.put_json(path, data)
    return path


def _assert_nothing_written(tmp_path: Path, tree: Path) -> None:
    assert not tree.exists(), files_under(tree)
    assert files_under(tmp_path) == set()


@pytest.mark.parametrize(
    ("checksum", "shown"),
    [
        ("sha256:unknown", "'sha256:unknown'"),
        (None, "None"),
        ("sha256:", "'sha256:'"),
        ("md5:0cc175b9c0f1b6a831c399e269772661", "'md5:0cc175b9c0f1b6a831c399e269772661'"),
        ("sha256:" + "A" * 64, "'sha256:" + "A" * 64),
    ],
)
def test_unknown_checksum_is_refused(
    flows: FlowsServer, tmp_path: Path, checksum: str | None, shown: str
) -> None:
    def change(entries: list[dict[str, object]]) -> None:
        entries[0]["artifactChecksum"] = checksum

    path = _edit_versions(flows, "anthropic", change)
    work = tmp_path / "work"
    work.mkdir()
    tree = work / "tree"
    output = refused(
        do_import(flows, tree),
        f"{flows.url}{path}: versions[0].artifactChecksum: {shown}",
        "no checksum to pin",
    )
    assert "1.0.0" in output
    _assert_nothing_written(work, tree)


def test_a_checksum_that_does_not_match_the_bytes_is_refused(
    flows: FlowsServer, tmp_path: Path
) -> None:
    key = "aws-api-cloudcontrol"

    def change(entries: list[dict[str, object]]) -> None:
        entries[-1]["artifactChecksum"] = "sha256:" + "0" * 64

    _edit_versions(flows, key, change)
    work = tmp_path / "work"
    work.mkdir()
    output = refused(
        do_import(flows, work / "tree", "--verify"),
        f"apps/{key} ",
        "checksum mismatch: the registry says sha256:" + "0" * 64,
    )
    assert "refusing it" in output
    _assert_nothing_written(work, work / "tree")


def test_a_download_for_a_missing_length_is_checked_too(flows: FlowsServer, tmp_path: Path) -> None:
    """Without --verify, an artifact whose HEAD tells no size is downloaded, and hashed."""
    key = "anthropic"
    path = _versions_path(flows, key)
    entry = flows.registry.json(path)["versions"][0]  # type: ignore[index]
    target = flows.registry.redirects.get(entry["artifactUrl"][len(flows.url) :])
    object_path = (target or entry["artifactUrl"])[len(flows.url) :]
    flows.registry.no_length.add(object_path)
    flows.registry.files[object_path] += b"tampered"
    refused(do_import(flows, tmp_path / "tree"), "checksum mismatch")


def test_oversize_json_is_refused(flows: FlowsServer, tmp_path: Path) -> None:
    size = len(flows.registry.files["core/registry.json"])
    output = refused(
        do_import(flows, tmp_path / "tree", "--max-json-size", str(size - 1)),
        f"larger than the {size - 1:,} bytes allowed",
    )
    assert "registry.json" in output
    # A versions.json over the limit names the app.
    path = _versions_path(flows, "clickup")
    flows.registry.files[path] += b" " * (size + 10)
    refused(
        do_import(flows, tmp_path / "tree", "--max-json-size", str(size + 5)),
        "apps.clickup.appMetadataUrl",
        f"larger than the {size + 5:,} bytes allowed",
    )
    assert not (tmp_path / "tree").exists()


def test_deeply_nested_json_is_refused(flows: FlowsServer, tmp_path: Path) -> None:
    path = _versions_path(flows, "pinecone")
    flows.registry.files[path] = b'{"versions": ' + b"[" * 100 + b"]" * 100 + b"}"
    refused(do_import(flows, tmp_path / "tree"), f"{flows.url}{path}", "nested deeper than 64")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("../../etc", "is not an appshelf app key"),
        ("Anthropic", "is not an appshelf app key"),
        ("a/b", "is not an appshelf app key"),
        (".hidden", "is not an appshelf app key"),
        ("x" * 65, "is not an appshelf app key"),
    ],
)
def test_hostile_app_key_is_refused(
    flows: FlowsServer, tmp_path: Path, key: str, message: str
) -> None:
    registry = flows.registry.json("core/registry.json")
    apps = registry["apps"]  # type: ignore[index]
    apps[key] = apps["anthropic"]
    flows.registry.put_json("core/registry.json", registry)
    work = tmp_path / "work"
    work.mkdir()
    refused(do_import(flows, work / "tree"), message, "rename it upstream")
    _assert_nothing_written(work, work / "tree")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("iconUrl", "ICON/..%2F..%2Fescape.svg", "the icon's file name '..%2F..%2Fescape.svg'"),
        ("iconUrl", "ICON/logo.jpg", "the icon's file name 'logo.jpg'"),
        ("iconUrl", "ICON/.svg", "the icon's file name '.svg'"),
        ("iconUrl", "javascript:alert(1)//x.svg", "must be an http(s) URL"),
        ("color", "#fff", "blockStyle.color: must be #RRGGBB, got '#fff'"),
        ("color", "red\n", "blockStyle.color: must be #RRGGBB"),
    ],
)
def test_hostile_icon_name_or_colour_is_refused(
    flows: FlowsServer, tmp_path: Path, field: str, value: str, message: str
) -> None:
    registry = flows.registry.json("core/registry.json")
    style = registry["apps"]["clickup"]["blockStyle"]  # type: ignore[index]
    style[field] = value.replace("ICON", flows.url + "core/apps/clickup")
    flows.registry.put_json("core/registry.json", registry)
    refused(do_import(flows, tmp_path / "tree"), "apps.'clickup'.blockStyle", message)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("BASE../../etc/passwd", "must not contain . or .. path segments"),
        ("BASEa/%2e%2e/b/bundle.tar.gz", "must not contain . or .. path segments"),
        ("BASEa/b%2Fc.tar.gz", "encoded separators"),
        ("http://user:secret@127.0.0.1/x.tar.gz", "must not contain a user name or password"),
        ("BASEapps/clickup/1.0.0/bundle.tar.gz", "at a path appshelf writes itself"),
        ("https://example.com/download?file=x.tar.gz", "no query string"),
        ("ftp://example.com/x.tar.gz", "must be an http(s) URL"),
    ],
)
def test_hostile_artifact_url_is_refused_before_it_is_fetched(
    flows: FlowsServer, tmp_path: Path, url: str, message: str
) -> None:
    def change(entries: list[dict[str, object]]) -> None:
        entries[0]["artifactUrl"] = url.replace("BASE", flows.url)

    _edit_versions(flows, "clickup", change)
    output = refused(do_import(flows, tmp_path / "tree"), message)
    assert "secret" not in output
    assert not any(m == "HEAD" for m, _ in flows.hits)  # nothing was measured


def test_hostile_version_is_refused(flows: FlowsServer, tmp_path: Path) -> None:
    def change(entries: list[dict[str, object]]) -> None:
        entries[0]["version"] = "../1.0.0"

    _edit_versions(flows, "clickup", change)
    refused(do_import(flows, tmp_path / "tree"), "versions[0].version: '../1.0.0' is not a SemVer")


def test_internal_hosts_need_the_flag(flows: FlowsServer, tmp_path: Path) -> None:
    result = run(
        "import", flows.url + "core/registry.json", "-o", tmp_path / "t", "--base-url", flows.url
    )
    refused(result, "points at the non-public address 127.0.0.1", "--allow-internal-hosts")
    assert flows.hits == {}


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("file:///etc/passwd", "is not an http(s) URL"),
        ("http://user:pw@127.0.0.1:1/x", "must not contain a user name or password"),
    ],
)
def test_a_redirect_is_checked_before_it_is_followed(
    flows: FlowsServer, tmp_path: Path, location: str, message: str
) -> None:
    path = _versions_path(flows, "clickup")
    flows.registry.redirects[path] = location
    refused(do_import(flows, tmp_path / "tree"), f"redirects to {location!r}, which {message}")


def test_an_icon_appshelf_refuses_is_left_out_with_a_warning(
    flows: FlowsServer, tmp_path: Path
) -> None:
    """Four real core-registry logos carry <metadata> or a DOCTYPE: the app is imported
    without its icon, and the warning says why."""
    flows.registry.files["core/apps/anthropic/logo.svg"] = (
        b'<svg xmlns="http://www.w3.org/2000/svg"><metadata>x</metadata></svg>'
    )
    del flows.registry.files["core/apps/clickup/logo.svg"]
    tree = tmp_path / "tree"
    result = do_import(flows, tree)
    assert result.exit_code == 0, result.output
    assert "Warning: apps/anthropic: icon logo.svg not imported: " in result.output
    assert "element <metadata> is not allowed" in result.output
    assert "Warning: apps/clickup: icon logo.svg not imported: " in result.output
    for key in ("anthropic", "clickup"):
        assert "icon" not in tomllib.loads((tree / "apps" / key / "app.toml").read_text())
    assert run("build", tree, "-o", tmp_path / "out").exit_code == 0


def test_target_must_be_new_or_empty(flows: FlowsServer, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "keep.txt").write_text("mine")
    refused(do_import(flows, tree), "already exists and is not an empty folder", "appshelf sync")
    assert files_under(tree) == {"keep.txt"}
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    refused(do_import(flows, link), "is a symlink")
    assert not (tmp_path / "elsewhere").exists()


def test_import_from_a_folder(flows: FlowsServer, tmp_path: Path) -> None:
    """A checkout (or bucket copy) of the registry: files under its URL are read from the
    folder (the root is guessed from appMetadataUrl); federated apps come over HTTP."""
    folder = tmp_path / "checkout"
    for path, data in flows.registry.files.items():
        if path.startswith("core/"):
            (folder / path[5:]).parent.mkdir(parents=True, exist_ok=True)
            (folder / path[5:]).write_bytes(data)
    flows.registry.files = {
        p: d for p, d in flows.registry.files.items() if not p.startswith("core/")
    }
    tree = tmp_path / "tree"
    result = run("import", folder, "-o", tree, "--base-url", flows.url, "--allow-internal-hosts")
    assert result.exit_code == 0, result.output
    assert "Imported 30 apps" in result.output and "8 federated" in result.output
    assert not any(p.startswith("core/") for _, p in flows.hits)
    assert run("build", tree, "-o", tmp_path / "out").exit_code == 0
    published = json.loads((tmp_path / "out/registry.json").read_text())["apps"]
    assert set(published) == set(MANIFESTS)


# --- sync ---------------------------------------------------------------------------


@pytest.fixture
def imported(flows: FlowsServer, tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    result = do_import(flows, tree)
    assert result.exit_code == 0, result.output
    return tree


def _publish(server: FlowsServer, key: str, version: str) -> None:
    """What the app repository's release workflow does: a release, then versions.json."""
    data = tarball(key, version)
    asset = f"spacelift-io/flows-app-{key}/releases/download/v{version}/bundle.tar.gz"
    server.registry.files[asset] = data
    server.registry.no_length.add(asset)

    def change(entries: list[dict[str, object]]) -> None:
        digest = hashlib.sha256(data).hexdigest()
        entries.insert(
            0,
            {
                "version": version,
                "artifactUrl": server.url + asset,
                "artifactChecksum": f"sha256:{digest}",
            },
        )

    _edit_versions(server, key, change)


def test_sync_adds_new_upstream_versions(
    flows: FlowsServer, imported: Path, tmp_path: Path
) -> None:
    quiet = run("sync", imported)
    assert quiet.exit_code == 0, quiet.output
    assert "Synced 8 upstreams: 0 versions added, 0 pinned." in quiet.output
    _publish(flows, "clickup", "3.0.0")
    _publish(flows, "segment", "9.1.0")
    result = run("sync", imported)
    assert result.exit_code == 0, result.output
    assert "Added clickup 3.0.0" in result.output and "Added segment 9.1.0" in result.output
    release = tomllib.loads((imported / "apps/clickup/3.0.0/release.toml").read_text())
    assert release["size"] == len(tarball("clickup", "3.0.0"))
    out = tmp_path / "out"
    assert run("build", imported, "-o", out).exit_code == 0
    versions = json.loads((out / "apps/clickup/versions.json").read_text())["versions"]
    assert versions[0]["version"] == "3.0.0"
    again = run("sync", imported)
    assert "0 versions added" in again.output


def test_sync_refuses_an_upstream_that_changed_an_imported_version(
    flows: FlowsServer, imported: Path
) -> None:
    before = {p: p.read_bytes() for p in imported.rglob("*") if p.is_file()}
    _publish(flows, "clickup", "3.0.0")  # would be added, but the sync is refused whole

    def change(entries: list[dict[str, object]]) -> None:
        entries[-1]["artifactChecksum"] = "sha256:" + "e" * 64

    _edit_versions(flows, "clickup", change)
    first = flows.registry.json(_versions_path(flows, "clickup"))["versions"][-1]  # type: ignore[index]
    refused(
        run("sync", imported),
        f"apps/clickup/{first['version']}/release.toml: upstream ",
        f"changed version {first['version']}: artifactChecksum is 'sha256:",
        "in the tree and 'sha256:" + "e" * 64 + "' upstream",
        "a published version never changes",
    )
    after = {p: p.read_bytes() for p in imported.rglob("*") if p.is_file()}
    assert after == before


def test_sync_refuses_a_moved_artifact_url(flows: FlowsServer, imported: Path) -> None:
    def change(entries: list[dict[str, object]]) -> None:
        entries[0]["artifactUrl"] = str(entries[0]["artifactUrl"]).replace("bundle", "other")

    _edit_versions(flows, "openrouter", change)
    refused(run("sync", imported), "changed version", "artifactUrl is 'http")


def test_sync_keeps_a_version_upstream_dropped(flows: FlowsServer, imported: Path) -> None:
    """The race the community registry had: an empty versions.json was published."""
    _edit_versions(flows, "pinecone", lambda entries: entries.clear())
    result = run("sync", imported)
    assert result.exit_code == 0, result.output
    assert "Warning: apps/pinecone: upstream " in result.output
    assert "no longer lists 1.0.0" in result.output
    assert (imported / "apps/pinecone/1.0.0/release.toml").is_file()


def test_sync_fills_missing_sizes_and_checksums(
    flows: FlowsServer, imported: Path, tmp_path: Path
) -> None:
    """An artifact_url release without size (or sha256): the build says to run sync,
    sync pins it (HEAD, or download and hash), then the build passes offline."""
    folder = imported / "apps/anthropic/1.0.0"
    text = (folder / "release.toml").read_text()
    url = tomllib.loads(text)["artifact_url"]
    (folder / "release.toml").write_text(
        f'artifact_url = "{url}"\nnotes = "first"\n\n[dependencies]\n'
    )
    other = imported / "apps/aws-api-cloudcontrol/1.0.0/release.toml"
    pinned = tomllib.loads(other.read_text())
    other.write_text(f'artifact_url = "{pinned["artifact_url"]}"\nsha256 = "{pinned["sha256"]}"\n')
    failed = run("build", imported, "-o", tmp_path / "out")
    assert failed.exit_code == 1
    assert "sha256 and size required (`appshelf sync` records them" in failed.output
    result = run("sync", imported)
    assert result.exit_code == 0, result.output
    assert "Pinned anthropic 1.0.0" in result.output
    assert "Pinned aws-api-cloudcontrol 1.0.0" in result.output
    filled = tomllib.loads((folder / "release.toml").read_text())
    assert filled["sha256"] == tomllib.loads(text)["sha256"]
    assert filled["size"] == tomllib.loads(text)["size"] and filled["notes"] == "first"
    assert tomllib.loads(other.read_text())["size"] == pinned["size"]
    assert run("build", imported, "-o", tmp_path / "out").exit_code == 0


def test_sync_refuses_a_fill_whose_bytes_disagree(flows: FlowsServer, imported: Path) -> None:
    other = imported / "apps/aws-api-cloudcontrol/1.0.0/release.toml"
    pinned = tomllib.loads(other.read_text())
    other.write_text(f'artifact_url = "{pinned["artifact_url"]}"\nsha256 = "{"1" * 64}"\n')
    flows.registry.no_head.update(flows.registry.files)  # so the bytes are downloaded
    refused(run("sync", imported), "release.toml says sha256 " + "1" * 64, "refusing it")
    assert "size" not in tomllib.loads(other.read_text())


def test_oversize_artifact_is_refused(flows: FlowsServer, tmp_path: Path) -> None:
    """By HEAD's Content-Length, and (without one) while downloading."""
    output = refused(
        do_import(flows, tmp_path / "tree", "--max-artifact-size", "100"),
        "more than the 100 allowed",
        "larger than the 100 bytes allowed",
    )
    assert "artifact" in output
    assert not (tmp_path / "tree").exists()


def test_guess_root_takes_the_prefix_most_apps_share() -> None:
    from appshelf.importer.fetch import guess_root

    urls = {
        "a": "https://r.example/core/apps/a/versions.json",
        "b": "https://r.example/core/apps/b/versions.json",
        "c": "https://raw.example/o/flows-app-c/refs/heads/main/versions.json",
        "d": "https://other.example/apps/d/versions.json",
    }
    assert guess_root(urls) == "https://r.example/core/"
    assert guess_root({"c": urls["c"]}) is None
    tie = {
        "a": "https://b.example/apps/a/versions.json",
        "b": "https://a.example/apps/b/versions.json",
    }
    assert guess_root(tie) == "https://a.example/"


def test_import_from_the_folder_url(flows: FlowsServer, tmp_path: Path) -> None:
    """SOURCE may be the URL of the folder that holds registry.json."""
    tree = tmp_path / "tree"
    result = run(
        "import", flows.url + "core/", "-o", tree, "--base-url", flows.url, "--allow-internal-hosts"
    )
    assert result.exit_code == 0, result.output
    assert "Imported 30 apps" in result.output
    assert "from " + flows.url + "core/." in (tree / "registry.toml").read_text()
