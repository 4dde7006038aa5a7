"""ANIP starter templates: the payload a template version publishes, and its safety limits.

A template (an app whose app.toml says `kind = "template"`) publishes one JSON file per
version, its *bundle*: `{"template": <manifest>, "documents": [{"path", "content"}]}`
(docs/spec.md section 15 has every field). The ANIP Registry refuses templates that
could hurt whoever imports them, and so does the build, before anything is signed:
the payload is at most 1 MiB and its manifest 128 KiB; at most 20 documents, 20
connections, 200 discovery records and 100 capability mappings; documents are Markdown
`.md` files without raw HTML; secret fields hold environment references, never values;
nothing executable (install scripts, hooks, commands); and the ANIP spec version is the
one this registry supports. Pure: bytes in, a summary or a `TemplateError` out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any, Final

from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict

from appshelf.errors import CanonicalJSONError, JsonRejectedError, TemplateError
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.canonical import canonical_json, sha256_hex
from appshelf.source.text import free_text, name_text

ANIP_SPEC_VERSION: Final = "anip/0.24"  # the template.anipSpecVersion this registry takes
MAX_PAYLOAD: Final = 1 << 20  # the bundle file
MAX_MANIFEST: Final = 128 << 10  # RFC 8785 bytes of its `template` member
LIMITS: Final = {"documents": 20, "connections": 20, "discovery": 200, "capabilities": 100}
MAX_LABELS: Final = 32

_DOC_PATH = re.compile(
    r"^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,63}/){0,3}[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.md\Z"
)
_LABEL = re.compile(r"^[a-z0-9][a-z0-9+._-]{0,31}\Z")
# An environment reference: ${NAME} or env:NAME, NAME in upper case as shells use.
ENV_REFERENCE = re.compile(r"^(?:\$\{[A-Z][A-Z0-9_]{0,127}\}|env:[A-Z][A-Z0-9_]{0,127})\Z")
# Member names are compared lower-cased without `_` and `-` (install_script = installScript).
_SECRET_WORDS = ("secret", "password", "passwd", "token", "apikey", "privatekey", "credential")
_EXEC_NAMES = frozenset(
    {
        "install",
        "preinstall",
        "postinstall",
        "uninstall",
        "exec",
        "execute",
        "run",
        "shell",
        "cmd",
        "entrypoint",
        "setup",
        "onimport",
        "oninstall",
        "oncreate",
        "postcreate",
    }
)
_EXEC_SUFFIXES = ("script", "scripts", "command", "commands", "hook", "hooks")
_MANIFEST_MEMBERS: Final = frozenset(
    {"anipSpecVersion", "projectType", "industries", "domains", "starter", *LIMITS} - {"documents"}
)


class TemplateSummary(BaseModel):
    """What the build keeps of a checked bundle (templates.json, the site, the mirror)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sha256: str  # of the bundle bytes that were checked
    anip_spec_version: str
    project_type: str
    industries: list[str]
    domains: list[str]
    documents: list[str]  # paths, in bundle order
    connections: int
    discovery: int
    capabilities: int


def check_template(data: bytes) -> TemplateSummary:
    """Check a bundle against every ANIP safety rule.

    Args:
        data: The bundle file's bytes.

    Returns:
        Its summary.

    Raises:
        TemplateError: The first rule it breaks, with the JSON path of the field.
    """
    if len(data) > MAX_PAYLOAD:
        raise TemplateError(
            "", f"payload is {len(data)} bytes; ANIP allows at most 1 MiB ({MAX_PAYLOAD})"
        )
    try:
        bundle = loads_bounded(data)
    except JsonRejectedError as exc:
        raise TemplateError("", f"not a JSON template bundle ({exc})") from None
    if not isinstance(bundle, dict):
        raise TemplateError("", "must be a JSON object with `template` and `documents`")
    _check_members(bundle, "")  # executable and secret fields first: they say most
    unknown = sorted(set(bundle) - {"template", "documents"})
    if unknown:
        raise TemplateError(
            unknown[0], "unknown member (a bundle holds `template` and `documents`)"
        )
    manifest = bundle.get("template")
    if not isinstance(manifest, dict):
        raise TemplateError("template", "required: the template manifest, a JSON object")
    size = _manifest_size(manifest)
    if size > MAX_MANIFEST:
        raise TemplateError(
            "template", f"manifest is {size} bytes; ANIP allows at most 128 KiB ({MAX_MANIFEST})"
        )
    documents = _documents(bundle.get("documents"))
    counts = {
        name: _records(manifest, name) for name in ("connections", "discovery", "capabilities")
    }
    return TemplateSummary(
        sha256=sha256_hex(data),
        anip_spec_version=_spec_version(manifest),
        project_type=_name(manifest.get("projectType"), "template.projectType", required=True),
        industries=_labels(manifest, "industries"),
        domains=_labels(manifest, "domains"),
        documents=documents,
        **counts,
    )


def _manifest_size(manifest: dict[str, Any]) -> int:
    unknown = sorted(set(manifest) - _MANIFEST_MEMBERS)
    if unknown:
        known = ", ".join(sorted(_MANIFEST_MEMBERS))
        raise TemplateError(f"template.{unknown[0]}", f"unknown member (a manifest holds {known})")
    try:
        return len(canonical_json(manifest))
    except CanonicalJSONError as exc:
        raise TemplateError("template", f"not representable as RFC 8785 JSON ({exc})") from None


def _spec_version(manifest: dict[str, Any]) -> str:
    value = manifest.get("anipSpecVersion")
    if value != ANIP_SPEC_VERSION:
        got = repr(value)[:60] if value is not None else "nothing"
        raise TemplateError(
            "template.anipSpecVersion",
            f"must be {ANIP_SPEC_VERSION!r}, the ANIP spec version this registry "
            f"supports; got {got}",
        )
    return ANIP_SPEC_VERSION


def _name(value: object, field: str, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        raise TemplateError(field, "must be a string of 1 to 200 characters")
    try:
        return name_text(value)
    except ValueError as exc:
        raise TemplateError(field, str(exc)) from None


def _labels(manifest: dict[str, Any], member: str) -> list[str]:
    value = manifest.get(member, [])
    field = f"template.{member}"
    if not isinstance(value, list) or len(value) > MAX_LABELS:
        raise TemplateError(field, f"must be a list of at most {MAX_LABELS} labels")
    for index, label in enumerate(value):
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise TemplateError(
                f"{field}[{index}]", "must be a lowercase label [a-z0-9+._-], 1-32 chars"
            )
    if len(set(value)) != len(value):
        raise TemplateError(field, "labels must not repeat")
    return list(value)


def _records(manifest: dict[str, Any], member: str) -> int:
    """connections, discovery, capabilities: lists of objects, within ANIP's counts."""
    value = manifest.get(member, [])
    field = f"template.{member}"
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TemplateError(field, "must be a list of JSON objects")
    limit = LIMITS[member]
    if len(value) > limit:
        raise TemplateError(field, f"has {len(value)} entries; ANIP allows at most {limit}")
    return len(value)


def _documents(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise TemplateError(
            "documents", "required: a list of {path, content} objects (may be empty)"
        )
    if len(value) > LIMITS["documents"]:
        raise TemplateError(
            "documents", f"has {len(value)} entries; ANIP allows at most {LIMITS['documents']}"
        )
    paths: list[str] = []
    for index, document in enumerate(value):
        field = f"documents[{index}]"
        extra = sorted(set(document) - {"path", "content"})
        if extra:
            raise TemplateError(
                f"{field}.{extra[0]}", "unknown member (a document holds path and content)"
            )
        path, content = document.get("path"), document.get("content")
        if not isinstance(path, str) or not _DOC_PATH.fullmatch(path):
            raise TemplateError(
                f"{field}.path",
                "must be a relative .md file name (Markdown only: [A-Za-z0-9._-] segments, "
                f"at most 4 deep), got {str(path)[:80]!r}",
            )
        if path in paths:
            raise TemplateError(f"{field}.path", f"{path!r} appears twice")
        if not isinstance(content, str):
            raise TemplateError(f"{field}.content", "required: the Markdown text")
        _check_markdown(content, f"{field}.content ({path})")
        paths.append(path)
    return paths


@cache
def _parser() -> MarkdownIt:
    # CommonMark with HTML recognised, so that raw HTML shows up as tokens to refuse.
    return MarkdownIt("commonmark", {"html": True})


def _check_markdown(text: str, field: str) -> None:
    """Safe Markdown: no control characters and no raw HTML, block or inline."""
    try:
        free_text(text)
    except ValueError as exc:
        raise TemplateError(field, str(exc)) from None
    for token in _parser().parse(text):
        found = [token, *(token.children or [])]
        for item in found:
            if item.type in ("html_block", "html_inline"):
                line = f" (line {token.map[0] + 1})" if token.map else ""
                raise TemplateError(
                    field,
                    f"raw HTML is not allowed in template documents{line}: "
                    f"{item.content.strip()[:60]!r}",
                )


def _walk(value: object, path: str) -> Iterator[tuple[str, str, object]]:
    """(path, member name, value) of every object member, depth first."""
    if isinstance(value, dict):
        for name, item in value.items():
            where = f"{path}.{name}" if path else name
            yield where, name, item
            yield from _walk(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _normal(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def is_executable_name(name: str) -> bool:
    """Install scripts, hooks, commands: member names that ask an importer to run code."""
    normal = _normal(name)
    return normal in _EXEC_NAMES or normal.endswith(_EXEC_SUFFIXES)


def is_secret_name(name: str) -> bool:
    normal = _normal(name)
    return any(word in normal for word in _SECRET_WORDS)


def _check_members(bundle: dict[str, Any], path: str) -> None:
    for where, name, value in _walk(bundle, path):
        if where.startswith("documents[") and name in ("path", "content"):
            continue
        if is_executable_name(name):
            raise TemplateError(
                where,
                "executable-looking fields (install scripts, hooks, commands) are refused: "
                "a template is reviewed starter material, never code to run",
            )
        if is_secret_name(name):
            _check_secret(value, where)


def _check_secret(value: object, where: str) -> None:
    """A secret field holds environment references (or a structure of them), never a
    value; the value is not echoed in the message."""
    if isinstance(value, bool) or value is None:
        return  # "requiresSecret": true names no secret
    if isinstance(value, dict):
        for name, item in value.items():
            _check_secret(item, f"{where}.{name}")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_secret(item, f"{where}[{index}]")
        return
    if not isinstance(value, str) or not ENV_REFERENCE.fullmatch(value):
        raise TemplateError(
            where,
            "secret fields must be environment references like ${API_TOKEN} or "
            "env:API_TOKEN, never secret values",
        )
