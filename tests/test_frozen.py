"""FrozenModel: instances share one read-only fields-set, and pydantic still works."""

from __future__ import annotations

import copy
import pickle

import pytest
from pydantic import ConfigDict, ValidationError

from appshelf.formats.documents import FileDigest
from appshelf.formats.flows import FlowsVersion
from appshelf.formats.frozen import FrozenModel, SharedNames


class Pair(FrozenModel):
    name: str
    size: int = 0
    note: str | None = None


def test_instances_with_the_same_names_share_one_set() -> None:
    first, second = Pair(name="a", size=1), Pair(name="b", size=2)
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    assert first.__pydantic_fields_set__ == {"name", "size"}
    assert isinstance(first.__pydantic_fields_set__, SharedNames)


def test_different_names_get_different_sets() -> None:
    short, full = Pair(name="a"), Pair(name="a", size=0)
    assert short.model_fields_set == {"name"}
    assert full.model_fields_set == {"name", "size"}
    assert short == full  # equality is by values, as in pydantic


def test_model_construct_and_validation_share_too() -> None:
    built = Pair.model_construct(name="a", size=1)
    parsed = Pair.model_validate_json(b'{"name": "b", "size": 3}')
    assert built.__pydantic_fields_set__ is parsed.__pydantic_fields_set__


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.add("x"),
        lambda s: s.discard("name"),
        lambda s: s.remove("name"),
        lambda s: s.pop(),
        lambda s: s.clear(),
        lambda s: s.update({"x"}),
        lambda s: s.difference_update({"name"}),
        lambda s: s.intersection_update(set()),
        lambda s: s.symmetric_difference_update({"x"}),
        lambda s: s.__ior__({"x"}),
        lambda s: s.__iand__(set()),
        lambda s: s.__isub__({"name"}),
        lambda s: s.__ixor__({"x"}),
    ],
)
def test_the_shared_set_refuses_every_change(mutate: object) -> None:
    names = Pair(name="a").__pydantic_fields_set__
    with pytest.raises(TypeError, match="shared"):
        mutate(names)  # type: ignore[operator]
    assert names == {"name"}


def test_assignment_is_refused_and_leaves_the_set_alone() -> None:
    pair = Pair(name="a")
    with pytest.raises(ValidationError):
        pair.size = 4
    assert Pair(name="z").model_fields_set == {"name"}


def test_model_copy_with_update_gives_the_copy_its_own_set() -> None:
    pair = Pair(name="a")
    changed = pair.model_copy(update={"size": 5})
    assert changed.size == 5
    assert changed.model_fields_set == {"name", "size"}
    assert pair.model_fields_set == {"name"}
    assert Pair(name="b").model_fields_set == {"name"}


def test_copy_deepcopy_and_pickle_round_trip() -> None:
    pair = Pair(name="a", note="n")
    for other in (copy.copy(pair), copy.deepcopy(pair), pickle.loads(pickle.dumps(pair))):
        assert other == pair
        assert other.model_fields_set == {"name", "note"}
        assert other.model_dump(exclude_unset=True) == {"name": "a", "note": "n"}


def test_exclude_unset_serialisation_still_works() -> None:
    pair = Pair(name="a")
    assert pair.model_dump(exclude_unset=True) == {"name": "a"}
    assert pair.model_dump_json(exclude_unset=True) == '{"name":"a"}'


def test_a_subclass_must_stay_frozen() -> None:
    with pytest.raises(TypeError, match="must be frozen"):

        class Thawed(FrozenModel):
            model_config = ConfigDict(frozen=False)
            name: str

    with pytest.raises(TypeError, match="without extra"):

        class Open(FrozenModel):
            model_config = ConfigDict(extra="allow", frozen=True)
            name: str


def test_the_spec_models_use_it() -> None:
    digest = FileDigest(sha256="0" * 64, length=1)
    other = FileDigest(sha256="1" * 64, length=2)
    assert digest.__pydantic_fields_set__ is other.__pydantic_fields_set__
    assert issubclass(FlowsVersion, FrozenModel)
