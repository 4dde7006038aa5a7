"""Third-party known answers: RFC 8785 (JCS), Ed25519 (RFC 8032, SUPERCOP, Wycheproof), SemVer.

Each runs through the same function appshelf uses in production, not a parallel copy.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import pytest
import semver

from appshelf.formats.canonical import canonical_json
from appshelf.signing.envelope import signature_is_valid
from appshelf.signing.keys import development_key, key_id, parse_private_key
from conftest import REPO_ROOT, VECTORS

JCS = VECTORS / "jcs"
ED25519 = VECTORS / "ed25519"
SEMVER = VECTORS / "semver"
JCS_NAMES = sorted(p.stem for p in (JCS / "input").glob("*.json"))


@pytest.mark.parametrize("name", JCS_NAMES)
def test_jcs_vectors(name: str) -> None:
    data = json.loads((JCS / "input" / f"{name}.json").read_bytes())
    expected = (JCS / "output" / f"{name}.json").read_bytes()
    assert canonical_json(data) == expected
    hex_text = "".join((JCS / "outhex" / f"{name}.txt").read_text().split())
    assert bytes.fromhex(hex_text) == expected


def test_jcs_vector_set_is_complete() -> None:
    assert JCS_NAMES == ["arrays", "french", "structures", "unicode", "values", "weird"]


def test_jcs_es6_numbers() -> None:
    lines = (JCS / "es6testfile_10k.txt").read_text().splitlines()
    assert len(lines) == 10_000
    for line in lines:
        hex_ieee, expected = line.split(",")
        value = struct.unpack(">d", bytes.fromhex(hex_ieee.zfill(16)))[0]
        assert canonical_json(value) == expected.encode(), line


def _sign(seed: bytes, message: bytes) -> tuple[str, bytes]:
    key = parse_private_key(seed.hex(), origin="vector")
    return key.public_hex, key.signing_key.sign(message).signature


def test_ed25519_rfc8032() -> None:
    data = json.loads((ED25519 / "rfc8032_7_1.json").read_bytes())
    assert len(data["vectors"]) == 5
    for vector in data["vectors"]:
        message = bytes.fromhex(vector["message"])
        public, signature = _sign(bytes.fromhex(vector["secret_key"]), message)
        assert public == vector["public_key"], vector["name"]
        assert signature.hex() == vector["signature"], vector["name"]
        assert signature_is_valid(bytes.fromhex(public), message, signature)
    assert len(data["negative"]) == 3
    for case in data["negative"]:
        assert not signature_is_valid(
            bytes.fromhex(case["public_key"]),
            bytes.fromhex(case["message"]),
            bytes.fromhex(case["signature"]),
        ), case


def test_ed25519_supercop_sign_input() -> None:
    lines = (ED25519 / "sign.input").read_text().splitlines()
    assert len(lines) == 1024
    for number, line in enumerate(lines, 1):
        sk_pk, pk, msg, sig_msg, _ = line.split(":")
        message = bytes.fromhex(msg)
        public, signature = _sign(bytes.fromhex(sk_pk[:64]), message)
        assert public == pk, number
        assert signature.hex() == sig_msg[:128], number
        assert signature_is_valid(bytes.fromhex(pk), message, signature), number


def test_ed25519_wycheproof() -> None:
    data = json.loads((ED25519 / "wycheproof_ed25519_test.json").read_bytes())
    checked = 0
    for group in data["testGroups"]:
        public = bytes.fromhex(group["publicKey"]["pk"])
        for test in group["tests"]:
            valid = signature_is_valid(
                public, bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
            )
            assert valid == (test["result"] == "valid"), test["tcId"]
            checked += 1
    assert checked == 151


def test_key_id_is_sha256_of_raw_public_key() -> None:
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    import hashlib

    assert key_id(public) == hashlib.sha256(public).hexdigest()


def _lines(name: str) -> list[str]:
    return (SEMVER / name).read_text().splitlines()


def test_semver_valid_and_invalid() -> None:
    """Version folder names are checked with semver.Version.is_valid (source/tree.py)."""
    valid, invalid = _lines("valid.txt"), _lines("invalid.txt")
    assert (len(valid), len(invalid)) == (56, 45)
    assert all(semver.Version.is_valid(v) for v in valid)
    assert not any(semver.Version.is_valid(v) for v in invalid)


def test_semver_precedence() -> None:
    chain = [semver.Version.parse(v) for v in _lines("precedence.txt")]
    assert chain == sorted(chain) and len(set(chain)) == len(chain) == 11
    for line in _lines("greater_than_pairs.tsv"):
        greater, lesser = line.split("\t")
        assert semver.Version.parse(greater) > semver.Version.parse(lesser), line
    for line in _lines("equal_precedence_pairs.tsv"):
        a, b = line.split("\t")
        assert semver.Version.parse(a).compare(b) == 0, line


def test_semver_vectors_drive_the_source_reader(tmp_path: Path) -> None:
    """The same lists, through the real version-folder check of the source reader."""
    from appshelf.errors import SourceTreeError
    from appshelf.source.tree import load_source_tree

    root = tmp_path / "reg"
    app = root / "apps" / "demo"
    app.mkdir(parents=True)
    (root / "registry.toml").write_text('[registry]\nname = "t"\nbase_url = "https://x.test/"\n')
    (app / "app.toml").write_text('name = "Demo"\ndescription = "d"\n')
    names = [v for v in _lines("invalid.txt") if "/" not in v and v not in (".", "..")]
    for name in names:
        (app / name).mkdir()
        (app / name / "a.bin").write_bytes(b"x")
    with pytest.raises(SourceTreeError) as caught:
        load_source_tree(root)
    assert len(caught.value.problems) == len(names)
    assert all("not a SemVer 2.0.0 version" in p.message for p in caught.value.problems)


def test_development_key_as_the_spec_derives_it() -> None:
    """docs/spec.md 4.2: seed = SHA-256 of the quoted ASCII string; public key and key id."""
    spec = (REPO_ROOT / "docs" / "spec.md").read_text()
    stated = re.search(
        r"SHA-256 of the (\d+) ASCII bytes\n`([^`]+)` \(no newline\):\n\n"
        r"- seed `([0-9a-f]{64})`\n- public `([0-9a-f]{64})`\n- key id `([0-9a-f]{64})`",
        spec,
    )
    assert stated, "docs/spec.md must state the development key's derivation"
    length, text, seed, public, keyid = stated.groups()
    message = text.encode("ascii")
    assert len(message) == int(length)
    assert hashlib.sha256(message).hexdigest() == seed
    derived, _ = _sign(bytes.fromhex(seed), b"")
    assert derived == public and key_id(bytes.fromhex(public)) == keyid
    assert hashlib.sha256(bytes.fromhex(public)).hexdigest() == keyid
    dev = development_key()
    assert (dev.public_hex, dev.keyid, bytes(dev.signing_key).hex()) == (public, keyid, seed)
