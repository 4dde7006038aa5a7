"""The API reference is complete: every public name of `appshelf.client` (and of its
errors module, `appshelf.errors` and `appshelf.builder`) has a Google-style docstring
whose Args name exactly the parameters, whose Raises name real appshelf errors, and which
says what it Returns. Docstrings are read and parsed with griffe, the library
mkdocstrings renders them with; the structure (parameters, fields, methods) comes from
the live objects."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import griffe
import pytest
from pydantic import BaseModel

from appshelf.errors import AppshelfError
from conftest import REPO_ROOT

MODULES = ["appshelf.client", "appshelf.client.errors", "appshelf.errors", "appshelf.builder"]
# Public functions that are not re-exported but that docs/api.md documents.
EXTRA = ["appshelf.client.resolve.resolve", "appshelf.client.resolve.parse_requirement"]
# Public methods that cannot raise an appshelf error: no Raises section is expected (and
# the test checks their source has no `raise` of its own).
NO_RAISE = {
    "RegistryClient.close",
    "TrustedSnapshot.registry",
    "TrustedSnapshot.bin_for",
    "TrustedSnapshot.missing_bins",
    "TrustedSnapshot.pins",
    "TrustedSnapshot.location",
}

Sections = dict[griffe.DocstringSectionKind, list[Any]]


def _public_names() -> list[str]:
    names = [f"{mod}.{name}" for mod in MODULES for name in importlib.import_module(mod).__all__]
    return sorted(set(names + EXTRA))


@pytest.fixture(scope="module")
def package() -> griffe.Object | griffe.Alias:
    return griffe.load(
        "appshelf",
        search_paths=[REPO_ROOT / "src"],
        docstring_parser=griffe.Parser.google,
        resolve_aliases=True,
    )


def _runtime(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _sections(obj: griffe.Object | griffe.Alias, where: str) -> Sections:
    assert obj.docstring is not None and obj.docstring.value.strip(), f"{where}: no docstring"
    found: Sections = {}
    for section in obj.docstring.parse(griffe.Parser.google):
        found.setdefault(section.kind, []).extend(
            section.value if isinstance(section.value, list) else [section.value]
        )
    return found


def _names(sections: Sections, kind: griffe.DocstringSectionKind) -> set[str]:
    return {item.name for item in sections.get(kind, [])}


def _parameters(func: Callable[..., Any]) -> set[str]:
    params = list(inspect.signature(func).parameters.values())
    return {
        ("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + p.name
        for p in params
        if p.name not in ("self", "cls")
    }


def _appshelf_errors() -> dict[str, type]:
    found: dict[str, type] = {}
    todo: list[type] = [AppshelfError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def _raises_ok(sections: Sections, where: str) -> None:
    raises = sections.get(griffe.DocstringSectionKind.raises, [])
    assert raises, f"{where}: no Raises section"
    errors = _appshelf_errors()
    for item in raises:
        name = str(item.annotation)
        # OSError: what a local file system may raise, documented rather than hidden.
        assert name in errors or name in ("OSError", "LookupError"), (
            f"{where}: Raises names {name!r}, which is not an appshelf error"
        )
        assert item.description.strip(), f"{where}: Raises {name} says nothing about when"


def _check_callable(
    func: Callable[..., Any],
    obj: griffe.Object | griffe.Alias,
    where: str,
    raises: bool,
    returns: bool = True,
) -> None:
    sections = _sections(obj, where)
    wanted = _parameters(func)
    if wanted:
        assert _names(sections, griffe.DocstringSectionKind.parameters) == wanted, (
            f"{where}: Args must name exactly {sorted(wanted)}"
        )
    annotation = inspect.signature(func).return_annotation
    if returns and annotation not in (None, "None", inspect.Signature.empty):
        assert sections.get(griffe.DocstringSectionKind.returns), f"{where}: no Returns section"
    if raises:
        _raises_ok(sections, where)


def _fields(cls: type) -> set[str]:
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls)}
    if issubclass(cls, BaseModel):
        return set(cls.model_fields)
    return set()


def _methods(cls: type) -> Iterator[tuple[str, Any]]:
    for name, member in vars(cls).items():
        if not name.startswith("_") and (
            inspect.isfunction(member) or isinstance(member, property)
        ):
            yield name, member


def _check_class(cls: type, obj: griffe.Object | griffe.Alias, where: str) -> None:
    sections = _sections(obj, where)
    if issubclass(cls, BaseException):
        return  # raised, not constructed by callers: the summary is the documentation
    fields = _fields(cls)
    if fields:
        assert _names(sections, griffe.DocstringSectionKind.attributes) >= fields, (
            f"{where}: Attributes must name every field {sorted(fields)}"
        )
    else:
        _check_callable(cls.__init__, obj, where, raises=True)
    for name, member in _methods(cls):
        key = f"{cls.__name__}.{name}"
        # A property's summary says what it is, as for an attribute: no Returns section.
        prop = isinstance(member, property)
        func = member.fget if prop else member
        if key in NO_RAISE:
            _raises_nothing(func, f"{where}.{name}")
        _check_callable(
            func, obj.members[name], f"{where}.{name}", raises=key not in NO_RAISE, returns=not prop
        )


def _raises_nothing(func: Callable[..., Any], where: str) -> None:
    """Keeps NO_RAISE honest: an exempt method has no raise statement of its own."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    assert not any(isinstance(node, ast.Raise) for node in ast.walk(tree)), (
        f"{where} raises, so it needs a Raises section (take it out of NO_RAISE)"
    )


@pytest.mark.parametrize("dotted", _public_names())
def test_public_name_is_documented(dotted: str, package: griffe.Object | griffe.Alias) -> None:
    obj = package[dotted.removeprefix("appshelf.")]
    value = _runtime(dotted)
    if inspect.isclass(value):
        _check_class(value, obj, dotted)
    elif inspect.isfunction(value):
        _check_callable(value, obj, dotted, raises=True)
    else:  # a type alias: documented by the string after its assignment
        _sections(obj, dotted)


def test_reference_builds_and_renders_the_sections(tmp_path: Path) -> None:
    """mkdocs --strict fails on any griffe warning (a documented parameter that does not
    exist, a broken cross-reference); the page shows the client's sections."""
    site = tmp_path / "site"
    mkdocs = Path(sys.executable).with_name("mkdocs")
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    page = (site / "api" / "index.html").read_text()
    for anchor in (
        "appshelf.client.RegistryClient.download",
        "appshelf.client.Plan",
        "appshelf.client.Download",
        "appshelf.errors.RollbackError",
        "appshelf.builder.build_registry",
    ):
        assert f'id="{anchor}"' in page, anchor
    download = page.split('id="appshelf.client.RegistryClient.download"', 1)[1]
    download = download.split('id="appshelf.client.RegistryClient.download_manifest"', 1)[0]
    for section in ("Parameters:", "Returns:", "Raises:", "UnknownVersionError"):
        assert section in download, section
    for page_name in ("spec", "client", "deploy", "site"):
        assert (site / page_name / "index.html").is_file(), page_name
