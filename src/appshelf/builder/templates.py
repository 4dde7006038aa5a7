"""Plan `templates.json` (docs/spec.md section 15): every template version, from the app
summaries (which carry each checked bundle, also for apps reused unchanged) and the
release log (artifact, log index and standing of every release)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, TypeVar

from appshelf.builder.outputs import version_dir
from appshelf.formats.documents import ArtifactRef
from appshelf.formats.templates import TEMPLATES_PATH, TemplateEntry, TemplatesIndex
from appshelf.signing.releaselog import LogState

if TYPE_CHECKING:
    from appshelf.builder.plan import AppSummary

TEMPLATES_FILE: Final = TEMPLATES_PATH
# Files of the static read-API mirrors that the snapshot pins (each pins its own files).
MIRROR_PINS: Final = ("mirrors/anip.json",)


def templates_document(
    base: str, summaries: Sequence[AppSummary], log: LogState
) -> TemplatesIndex | None:
    """templates.json, or None when the registry has no template (the file is absent)."""
    templates = [s for s in summaries if s.index.kind == "template"]
    if not templates:
        return None
    entries = []
    for summary in templates:
        for release in summary.releases:
            logged = log.releases[(summary.key, release.version)]
            bundle = release.template
            assert bundle is not None  # every version of a template was checked
            entries.append(
                TemplateEntry(
                    key=summary.key,
                    version=release.version,
                    name=summary.index.name,
                    description=summary.index.description,
                    published=release.published,
                    yanked=release.yanked,
                    deprecated=logged.standing.deprecated,
                    anip_spec_version=bundle.anip_spec_version,
                    project_type=bundle.project_type,
                    industries=bundle.industries,
                    domains=bundle.domains,
                    documents=bundle.documents,
                    connections=bundle.connections,
                    discovery=bundle.discovery,
                    capabilities=bundle.capabilities,
                    log_index=logged.index,
                    manifest_path=f"{version_dir(summary.key, release.version)}/manifest.json",
                    artifact=ArtifactRef(**logged.entry.artifact.model_dump()),
                )
            )
    newest_first(entries, lambda e: e.published)
    return TemplatesIndex(registry=base, templates=entries)


ItemT = TypeVar("ItemT")


def newest_first(items: list[ItemT], published: Callable[[ItemT], str]) -> None:
    """Sort in place by publication time, newest first. Items come in app key order,
    each app's versions newest first (SemVer precedence), and the sort is stable, so
    ties stay by id ascending, then newest version first."""
    items.sort(key=published, reverse=True)
