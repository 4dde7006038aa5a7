"""The stdlib fast path of `canonical_json` is byte-identical to the `rfc8785` library.

`canonical_json` uses `json.dumps` when its own output shows no float, no integer beyond
2**53 and no character outside the BMP, and `rfc8785` otherwise. These tests compare it
with `rfc8785.dumps` directly on the JCS vectors, on tricky random data and on every
document of a real build.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from appshelf.errors import CanonicalJSONError
from appshelf.formats.canonical import canonical_json
from conftest import VECTORS, build

JCS = VECTORS / "jcs"
ALPHABET = (
    [chr(c) for c in range(0x00, 0x30)]
    + list("aZé€\u2028\u2029\u007f\ufeff\ue000\uffff")
    + ["\U0001f600", "\U00010000", "\U0010ffff", '"', "\\", "/"]
)


def _same_as_reference(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:  # the reference refuses: so must we, with appshelf's own error
        with pytest.raises(CanonicalJSONError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize("name", sorted(p.stem for p in (JCS / "input").glob("*.json")))
def test_jcs_vectors_match_the_library(name: str) -> None:
    data = json.loads((JCS / "input" / f"{name}.json").read_bytes())
    assert (
        canonical_json(data)
        == rfc8785.dumps(data)
        == (JCS / "output" / f"{name}.json").read_bytes()
    )


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(6)))
    if kind == 1:
        return rng.choice([0, -1, 1, 2**53 - 1, 2**53, -(2**53), 2**53 + 1, 10**15, 10**16, 123456])
    if kind == 2:
        return rng.choice([0.5, -0.0, 1e21, 1e-7, 3.0, 1.5e300, 2.0**60])
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return f"n:{rng.randrange(10**20)}.5e"  # looks like a number inside a string
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(4))): _random_value(
            rng, depth + 1
        )
        for _ in range(rng.randrange(5))
    }


def test_random_values_match_the_library() -> None:
    rng = random.Random(8785)
    for _ in range(3000):
        _same_as_reference(_random_value(rng))


def test_non_bmp_key_order_uses_utf16_code_units() -> None:
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert list(json.loads(canonical_json(value))) == ["a", "\U0001f600", "\ue000"]


def test_every_built_document_matches_the_library(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(example_source, out)
    documents = sorted(out.rglob("*.json"))
    assert len(documents) > 20
    for path in documents:
        data = json.loads(path.read_bytes())
        assert canonical_json(data) == rfc8785.dumps(data), path
        if "signed" in data:
            assert canonical_json(data["signed"]) == rfc8785.dumps(data["signed"]), path


def test_envelope_built_around_the_body_equals_its_canonical_form() -> None:
    from appshelf.signing.envelope import sign_body, signed_envelope_json
    from appshelf.signing.keys import development_key

    key = development_key()
    body = {"type": "appshelf.manifest", "notes": 'é \u2028 "q" \U0001f600', "size": 12}
    envelope_json, signature = signed_envelope_json(canonical_json(body), key)
    assert envelope_json == rfc8785.dumps(sign_body(body, key))
    assert json.loads(envelope_json)["signatures"] == [{"keyid": key.keyid, "sig": signature}]
