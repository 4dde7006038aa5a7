"""Plan the ANIP read mirror under `registry-api/v1/` (docs/spec.md section 15).

Written from the plan's app summaries and the release log, which cover every app
(also those the build reuses unchanged), so the mirror is the same whichever apps were
planned. appshelf apps are ANIP packages and its templates ANIP templates. A package's
manifest digest is that of the manifest as first published (the release log's
`manifest`), so locks and receipts never change when a version is yanked or the app's
description is edited; its service definition is the release artifact.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

from appshelf.builder.outputs import OutputFile, OutputFiles, url_for, version_dir
from appshelf.builder.plan import AppSummary, RegistryPlan, ReleaseSummary
from appshelf.builder.templates import newest_first, templates_document
from appshelf.formats.anip import (
    ANIP_PINS,
    ANIP_ROOT,
    INDEX_FILE,
    AnipKey,
    AnipKeys,
    AnipLineage,
    AnipLock,
    AnipPackage,
    AnipPublication,
    AnipPublications,
    AnipPublisher,
    AnipReceipt,
    AnipTemplate,
    AnipTemplates,
    MirrorPins,
    Status,
)
from appshelf.formats.canonical import model_to_json, sha256_hex
from appshelf.formats.documents import ArtifactRef, FileDigest, KeysDocument
from appshelf.formats.templates import TemplateEntry
from appshelf.signing.envelope import signed_envelope_json
from appshelf.signing.keys import RegistryKey
from appshelf.signing.releaselog import LoggedRelease, LogState
from appshelf.source.anip_options import AnipMirrorOptions


def anip_files(plan: RegistryPlan, key: RegistryKey) -> OutputFiles:
    """Every mirror file and `mirrors/anip.json`, which pins them.

    Args:
        plan: The planned registry (summaries of every app, and the release log).
        key: The registry key: it signs the receipts.

    Returns:
        Output path -> file.
    """
    assert plan.log is not None
    base = plan.tree.config.registry.base_url
    options = plan.tree.config.mirrors
    docs: dict[str, bytes] = {f"{ANIP_ROOT}keys": model_to_json(_keys(plan.keys, key))}
    publications: list[AnipPublication] = []
    listing = templates_document(base, plan.summaries, plan.log)
    templates = [_template(base, entry) for entry in (listing.templates if listing else [])]
    for template in templates:
        docs[f"{ANIP_ROOT}templates/{template.templateId}/{template.version}"] = model_to_json(
            template
        )
    for summary, release, logged in _releases(plan.summaries, plan.log):
        if summary.index.kind == "template":
            continue
        package = _package(base, summary, release, logged, key.keyid)
        folder = f"{ANIP_ROOT}packages/{summary.key}/{release.version}/"
        lock = model_to_json(package.lock)
        docs[f"{folder}{INDEX_FILE}"] = html_safe(model_to_json(package))
        docs[f"{folder}lock"] = lock
        docs[f"{folder}receipt"] = _receipt(base, package, logged.index, options, key)
        publications.append(_publication(package))
    newest_first(publications, lambda p: p.publishedAt)
    docs[f"{ANIP_ROOT}publications"] = model_to_json(
        AnipPublications(registry=base, publications=publications)
    )
    docs[f"{ANIP_ROOT}templates/{INDEX_FILE}"] = html_safe(
        model_to_json(AnipTemplates(registry=base, templates=templates))
    )
    files = {path: OutputFile.from_bytes(data) for path, data in docs.items()}
    pins = MirrorPins.model_construct(
        registry=base,
        files={
            path: FileDigest.model_construct(sha256=f.sha256, length=f.size)
            for path, f in sorted(files.items())
        },
    )
    files[ANIP_PINS] = OutputFile.from_bytes(model_to_json(pins))
    return files


def html_safe(data: bytes) -> bytes:
    """JSON for a file named index.html: GitHub Pages serves it as text/html, so a name or
    description holding `<script>` would run on the registry's origin. `<`, `>` and `&`
    occur only inside strings; as `\\u003c`, `\\u003e` and `\\u0026` they mean the same
    to a JSON reader and are no markup to a browser."""
    return data.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


def _releases(
    summaries: list[AppSummary], log: LogState
) -> Iterator[tuple[AppSummary, ReleaseSummary, LoggedRelease]]:
    for summary in summaries:
        for release in summary.releases:
            yield summary, release, log.releases[(summary.key, release.version)]


def _keys(keys: KeysDocument, key: RegistryKey) -> AnipKeys:
    return AnipKeys(
        activeKeyId=key.keyid,
        mode="dev" if key.development else "production",
        keys=[
            AnipKey(
                keyId=k.keyid,
                publicKey=base64.b64encode(bytes.fromhex(k.public)).decode(),
                publicKeyHex=k.public,
                status=k.status,
                development=k.development,
            )
            for k in keys.keys
        ],
    )


def _status(yanked: str | None, deprecated: str | None) -> Status:
    return "yanked" if yanked is not None else "deprecated" if deprecated is not None else "active"


def _artifact(logged: LoggedRelease) -> ArtifactRef:
    return ArtifactRef(**logged.entry.artifact.model_dump())


def _package(
    base: str, summary: AppSummary, release: ReleaseSummary, logged: LoggedRelease, keyid: str
) -> AnipPackage:
    entry, standing = logged.entry, logged.standing
    folder = f"{ANIP_ROOT}packages/{summary.key}/{release.version}"
    lock = AnipLock(
        packageId=summary.key,
        version=release.version,
        manifestDigest=f"sha256:{entry.manifest.sha256}",
        serviceDefinitionDigest=f"sha256:{entry.artifact.sha256}",
        registryKeyId=keyid,
    )
    return AnipPackage(
        packageId=summary.key,
        version=release.version,
        name=summary.index.name,
        description=summary.index.description,
        publishedAt=release.published,
        status=_status(release.yanked, standing.deprecated),
        yanked=release.yanked,
        deprecated=standing.deprecated,
        replacement=standing.replacement if standing.deprecated is not None else None,
        manifestDigest=lock.manifestDigest,
        serviceDefinitionDigest=lock.serviceDefinitionDigest,
        lockDigest=f"sha256:{sha256_hex(model_to_json(lock))}",
        registryKeyId=keyid,
        manifestUrl=url_for(base, f"{version_dir(summary.key, release.version)}/manifest.json"),
        lockUrl=url_for(base, f"{folder}/lock"),
        receiptUrl=url_for(base, f"{folder}/receipt"),
        artifact=_artifact(logged),
        lineage=AnipLineage(
            logIndex=logged.index,
            dependencies=entry.dependencies,
            provides=entry.provides,
            requires=entry.requires,
        ),
        lock=lock,
    )


def _publication(package: AnipPackage) -> AnipPublication:
    return AnipPublication(
        packageId=package.packageId,
        version=package.version,
        name=package.name,
        publishedAt=package.publishedAt,
        status=package.status,
        manifestDigest=package.manifestDigest,
        serviceDefinitionDigest=package.serviceDefinitionDigest,
        url=package.lockUrl.rsplit("/", 1)[0],
    )


def _receipt(
    base: str, package: AnipPackage, index: int, options: AnipMirrorOptions, key: RegistryKey
) -> bytes:
    """The registry's signed receipt, naming the publisher when registry.toml does."""
    publisher = (
        AnipPublisher(id=options.anip_publisher_id, type=options.anip_publisher_type)
        if options.anip_publisher_id is not None
        else None
    )
    body = AnipReceipt(
        registry=base,
        packageId=package.packageId,
        version=package.version,
        publishedAt=package.publishedAt,
        manifestDigest=package.manifestDigest,
        serviceDefinitionDigest=package.serviceDefinitionDigest,
        lockDigest=package.lockDigest,
        registryKeyId=package.registryKeyId,
        logIndex=index,
        publisher=publisher,
    )
    return signed_envelope_json(model_to_json(body), key)[0]


def _template(base: str, entry: TemplateEntry) -> AnipTemplate:
    """A templates.json entry in ANIP's terms."""
    return AnipTemplate(
        templateId=entry.key,
        version=entry.version,
        name=entry.name,
        description=entry.description,
        publishedAt=entry.published,
        status=_status(entry.yanked, entry.deprecated),
        anipSpecVersion=entry.anip_spec_version,
        projectType=entry.project_type,
        industries=entry.industries,
        domains=entry.domains,
        documents=entry.documents,
        connections=entry.connections,
        discovery=entry.discovery,
        capabilities=entry.capabilities,
        payloadDigest=f"sha256:{entry.artifact.sha256}",
        artifact=entry.artifact,
        manifestUrl=url_for(base, entry.manifest_path),
        url=url_for(base, f"{ANIP_ROOT}templates/{entry.key}/{entry.version}"),
    )
