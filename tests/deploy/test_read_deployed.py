"""read_site's refusals, and what read_deployed and documents_to_fetch make of a bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from appshelf.deploy.plan import documents_to_fetch, read_deployed
from appshelf.deploy.site import read_site
from appshelf.deploy.state import RemoteObject, RemoteState
from appshelf.errors import BuiltSiteError
from conftest import build


def _bucket_of(site: Path) -> RemoteState:
    """A bucket holding exactly `site`."""
    local = read_site(site)
    state = RemoteState(snapshot_bytes=local.snapshot_bytes, snapshot_etag='"s"')
    for rel, f in local.files.items():
        state.objects[rel] = RemoteObject(f'"{rel}"', f.size, f.sha256)
    return state


def test_read_site_refuses_a_folder_without_a_readable_snapshot(
    example_source: Path, tmp_path: Path
) -> None:
    with pytest.raises(BuiltSiteError, match=r"has no snapshot\.json"):
        read_site(tmp_path)
    site = tmp_path / "site"
    build(example_source, site)
    (site / "keys.json").write_bytes(b"{")
    with pytest.raises(BuiltSiteError, match=r"snapshot\.json or keys\.json cannot be read"):
        read_site(site)


def test_read_deployed_and_the_documents_it_needs(example_source: Path, tmp_path: Path) -> None:
    site_dir = tmp_path / "site"
    build(example_source, site_dir)
    site = read_site(site_dir)
    state = _bucket_of(site_dir)
    app_jsons = sorted(r for r in site.files if r.startswith("apps/") and r.endswith("/app.json"))
    # Deploying the same build: nothing to read; building: every app.json, bins, keys.json.
    assert documents_to_fetch(site, state) == []
    building = documents_to_fetch(None, state)
    assert set(app_jsons) | {"keys.json"} <= set(building)
    assert any(rel.startswith("bins/") for rel in building), building
    # Equal app.json files are not fetched: the local ones say every version is published.
    deployed = read_deployed(site, state)
    assert deployed.notes == []
    assert deployed.version == site.snapshot.version
    expected = {(d.key, e.version) for d in site.apps.values() for e in d.versions}
    assert set(deployed.published) == expected
    # A deployed app.json the snapshot does not pin still counts, with a note; unreadable,
    # it is ignored with a note (and its app's versions are not known to be published).
    kv, hello = "apps/kv-store/app.json", "apps/hello-world/app.json"
    state.objects[kv] = RemoteObject('"x"', 1, "0" * 64)
    state.documents[kv] = (site_dir / kv).read_bytes() + b" "
    state.objects[hello] = RemoteObject('"y"', 1, "0" * 64)
    state.documents[hello] = b"{"
    assert documents_to_fetch(site, state) == [hello, kv]
    deployed = read_deployed(site, state)
    assert set(deployed.published) == {p for p in expected if p[0] != "hello-world"}
    assert deployed.notes == [
        f"ignored the deployed {hello}: unreadable and not in the snapshot",
        f"the deployed {kv} does not match the deployed snapshot (an interrupted or losing "
        "deploy wrote it); its versions are treated as published",
    ]
    state.documents[kv] = (site_dir / kv).read_bytes()
    state.documents[hello] = (site_dir / hello).read_bytes()
    assert read_deployed(site, state).notes == []
