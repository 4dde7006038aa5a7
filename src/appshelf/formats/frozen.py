"""A frozen pydantic model that shares its "fields set" among instances.

pydantic gives every instance its own `__pydantic_fields_set__`, a `set` of the names
given at construction. A set costs 216 bytes, and 728 once it holds more than five
names. That was more than the instances' own fields: 87 MiB of the 250 MiB a cold
20,000-version build held after planning, over 200,000 per-version models (benchmarks/
NOTES.md). Instances of a frozen model never change that set, so equal sets can be one
read-only set, kept once per combination of names. It stays a `set` subclass because
pydantic-core's `exclude_unset` serialisation asks for a set (a `frozenset` fails).

The only pydantic code that changes it is assignment, which a frozen model refuses, and
`model_copy(update=...)`, which changes the copy's set: copies get their own `set` back
(`__copy__`, `__deepcopy__`).
"""

from __future__ import annotations

from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict


class SharedNames(set[str]):
    """The field names given to many instances at once: read only."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("these field names are shared by frozen model instances")

    add = discard = remove = pop = clear = update = _refuse  # type: ignore[assignment]
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse  # type: ignore[assignment]


# Every combination of names seen: a handful per model class, never per instance.
_SHARED: dict[frozenset[str], SharedNames] = {}


class FrozenModel(BaseModel):
    """A frozen model (`extra="forbid"`) whose instances share their fields-set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass must stay frozen: assignment would change the shared set.

        Raises:
            TypeError: the subclass is not frozen.
        """
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.model_config.get("frozen") or cls.model_config.get("extra") == "allow":
            raise TypeError(f"{cls.__name__}: a FrozenModel must be frozen, without extra fields")

    def model_post_init(self, context: Any, /) -> None:
        """Swap the set pydantic just made for the shared one with the same names."""
        names = frozenset(self.__pydantic_fields_set__)
        shared = _SHARED.get(names)
        if shared is None:
            shared = _SHARED.setdefault(names, SharedNames(names))
        object.__setattr__(self, "__pydantic_fields_set__", shared)

    def __copy__(self) -> Self:
        return _with_own_names(super().__copy__())

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return _with_own_names(super().__deepcopy__(memo))


_M = TypeVar("_M", bound=BaseModel)


def _with_own_names(copied: _M) -> _M:
    """A copy gets a plain set of its own: `model_copy(update=...)` changes it."""
    object.__setattr__(copied, "__pydantic_fields_set__", set(copied.__pydantic_fields_set__))
    return copied
