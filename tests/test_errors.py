"""The one-module rule for exceptions (appshelf/errors.py's docstring): every public
exception class of the package is defined in `appshelf.errors`, its name ends in `Error`,
and it sits under one of the two roots; the client's old names still work, deprecated."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import pytest

import appshelf
import appshelf.client
import appshelf.client.errors
from appshelf import errors
from appshelf.errors import AppshelfError, DataError, RequestError


def _public_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined (not imported) in any appshelf module, by where."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(appshelf.__path__, "appshelf."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith("_")
            ):
                found[f"{info.name}.{name}"] = value
    for name, value in vars(errors).items():
        if inspect.isclass(value) and issubclass(value, BaseException):
            found[f"appshelf.errors.{name}"] = value
    return found


def test_every_public_exception_lives_in_appshelf_errors() -> None:
    found = _public_exceptions()
    elsewhere = sorted(where for where in found if not where.startswith("appshelf.errors."))
    assert elsewhere == [], "define these in appshelf/errors.py"
    assert len(found) > 40  # the walk did find the module's classes


def test_every_name_ends_in_error_and_sits_under_a_root() -> None:
    for where, cls in _public_exceptions().items():
        assert cls.__name__.endswith("Error"), where
        if cls not in (AppshelfError, DataError, RequestError):
            assert issubclass(cls, DataError) != issubclass(cls, RequestError), where
    assert set(errors.__all__) == {
        name for name, value in vars(errors).items() if inspect.isclass(value)
    } - {"Iterable", "dataclass"}


def test_every_name_in_the_docstring_tree_exists_and_every_class_is_in_it() -> None:
    doc = errors.__doc__ or ""
    tree = doc[doc.index("```text") : doc.index("```", doc.index("```text") + 3)]
    for name in errors.__all__:
        if name != "Problem":
            assert name in tree, f"{name} is missing from the tree in the module docstring"


@pytest.mark.parametrize("module", [appshelf.client, appshelf.client.errors])
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Malformed", errors.MalformedError),
        ("Rollback", errors.RollbackError),
        ("Expired", errors.ExpiredError),
        ("UnknownKey", errors.UntrustedSignatureError),
        ("Timeout", errors.RegistryTimeoutError),
        ("InvalidRange", errors.InvalidRangeError),
    ],
)
def test_old_client_names_are_the_same_classes_with_a_warning(
    module: object, old: str, new: type[AppshelfError]
) -> None:
    with pytest.warns(DeprecationWarning, match=rf"\.{old} is deprecated; use .*{new.__name__}"):
        alias = getattr(module, old)
    assert alias is new
    with pytest.raises(alias):
        raise new("caught under the old name")


def test_every_deprecated_name_maps_to_a_client_error() -> None:
    for old, cls in appshelf.client.errors.DEPRECATED.items():
        assert cls.__name__.endswith("Error") and cls.__name__ != old
        assert getattr(errors, cls.__name__) is cls


def test_from_import_of_an_old_name_works() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from appshelf.client.errors import LockMismatch
    assert LockMismatch is errors.LockMismatchError
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nonsense'"):
        _ = appshelf.client.errors.Nonsense
    with pytest.raises(ImportError):
        from appshelf.client import Nonsense  # noqa: F401
