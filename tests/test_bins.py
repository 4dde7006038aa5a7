"""Hashed bins (docs/spec.md section 4.8): which bin a per-app file belongs to, how many
bins a build makes, and what a bin must hold to be accepted."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from appshelf.client import RegistryClient, trusted_keys
from appshelf.client.verify import verify_registry
from appshelf.formats.bins import (
    all_bin_paths,
    bin_index,
    bin_of,
    bin_path,
    bin_prefix,
    bin_problem,
    binned_name,
    bits_for,
    is_bin_path,
    split_pins,
)
from appshelf.formats.documents import MAX_BIN_BITS, BinDocument, FileDigest
from conftest import FIXED_NOW, REPO_ROOT, build

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import generate

REGISTRY = "https://registry.example.com/"
PIN = FileDigest(sha256="ab" * 32, length=1)


def _top_bits(name: str, bits: int) -> int:
    """The spec's rule, written out independently: the top `bits` bits of SHA-256."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest, "big") >> (256 - bits)


@pytest.mark.parametrize(
    ("names", "bits"),
    [(0, 0), (1, 0), (2, 1), (4, 1), (5, 2), (16, 2), (17, 3), (10_000, 7), (16_384, 7)],
)
def test_bin_count_is_the_smallest_power_of_two_at_least_sqrt(names: int, bits: int) -> None:
    assert bits_for(names) == bits
    assert (1 << bits) ** 2 >= names and (bits == 0 or (1 << (bits - 1)) ** 2 < names)


def test_bin_count_is_capped() -> None:
    assert bits_for(2**40) == MAX_BIN_BITS == 16
    assert len(all_bin_paths(16)) == 65536 and all_bin_paths(16)[-1] == "bins/ffff.json"


@pytest.mark.parametrize("bits", [0, 1, 3, 4, 7, 8, 13, 16])
def test_a_bin_is_the_top_bits_of_the_key_digest(bits: int) -> None:
    for key in ("hello", "kv-store", "a", "z" * 64, "app-00000", "app-09999"):
        assert bin_index(key, bits) == _top_bits(key, bits)
        assert bin_of(f"apps/{key}/app.json", bits) == bin_of(f"apps/{key}/versions.json", bits)
        assert bin_of(f"apps/{key}/app.json", bits) == bin_path(_top_bits(key, bits), bits)


def test_prefixes_are_fixed_width_lowercase_hex() -> None:
    assert all_bin_paths(0) == ["bins/0.json"]
    assert all_bin_paths(1) == ["bins/0.json", "bins/1.json"]
    assert all_bin_paths(4)[-1] == "bins/f.json"
    assert all_bin_paths(5)[:2] == ["bins/00.json", "bins/01.json"]
    assert all_bin_paths(7)[-1] == "bins/7f.json" and len(all_bin_paths(7)) == 128
    assert bin_prefix(10, 12) == "00a"
    paths = all_bin_paths(9)
    assert paths == sorted(paths) and len(set(paths)) == 512  # sorted as numbers too
    assert all(is_bin_path(p) for p in paths)
    assert not is_bin_path("bins/0.json.bak") and not is_bin_path("bins/AB.json")


def test_only_per_app_files_are_binned_and_the_whole_path_must_match() -> None:
    assert binned_name("apps/hello/app.json") == "hello"
    assert binned_name("apps/hello/versions.json") == "hello"
    assert binned_name("v1/apps/com.example.chat/index.json") == "com.example.chat"
    assert binned_name("v1/apps/com.example.chat/index.html") == "com.example.chat"
    for top in (
        "registry.json",
        "index.json",
        "keys.json",
        "log/checkpoint",
        "templates.json",
        "publishers.json",
        "v1/search",
        "bins/0.json",
        "apps/hello/1.0.0/manifest.json",  # pinned by app.json, not by a bin
        "apps/hello/app.json.bak",
        "xapps/hello/app.json",
        "apps/Hello/app.json",
        "apps/hello/app.json\n",
        "apps//app.json",
        "v1/apps/com.example.chat/1.0.0",
    ):
        assert binned_name(top) is None, top
        assert bin_of(top, 3) is None


def test_one_app_makes_one_bin_and_every_bin_is_present() -> None:
    top, bins = split_pins({"apps/solo/app.json": PIN, "index.json": PIN}, bits_for(1))
    assert top == {"index.json": PIN}
    assert bins == {"bins/0.json": {"apps/solo/app.json": PIN}}
    pins = {f"apps/app-{i}/app.json": PIN for i in range(40)}
    top, bins = split_pins(pins, bits_for(40))
    assert top == {} and list(bins) == all_bin_paths(3)
    assert sum(len(b) for b in bins.values()) == 40
    for where, binned in bins.items():
        assert all(bin_of(path, 3) == where for path in binned)


def _bin(prefix: str, bits: int, meta: dict[str, FileDigest]) -> BinDocument:
    return BinDocument(registry=REGISTRY, bits=bits, prefix=prefix, meta=meta)


def test_a_bin_must_be_the_one_the_snapshot_pins() -> None:
    key = next(k for k in (f"app-{i}" for i in range(100)) if bin_index(k, 3) == 5)
    other = next(k for k in (f"app-{i}" for i in range(100)) if bin_index(k, 3) == 2)
    good = _bin("5", 3, {f"apps/{key}/app.json": PIN})
    assert bin_problem(good, "bins/5.json", 3, REGISTRY) is None
    assert "not to this bin" in str(
        bin_problem(_bin("5", 3, {f"apps/{other}/app.json": PIN}), "bins/5.json", 3, REGISTRY)
    )
    assert "is bin '5' of 3 bits" in str(bin_problem(good, "bins/2.json", 3, REGISTRY))
    assert "of 4 bits" in str(bin_problem(_bin("5", 4, {}), "bins/5.json", 3, REGISTRY))
    assert "05" not in all_bin_paths(3) and bin_problem(
        _bin("05", 3, {}), "bins/5.json", 3, REGISTRY
    )
    assert "registry" in str(bin_problem(good, "bins/5.json", 3, "https://other.example/"))
    assert "not a per-app file" in str(
        bin_problem(_bin("5", 3, {"index.json": PIN}), "bins/5.json", 3, REGISTRY)
    )


def test_a_growing_registry_changes_its_bins_and_readers_of_the_last_one_still_read(
    tmp_path: Path,
) -> None:
    """From 4 apps (2 bins) to 5 (4 bins), through a real build and the client: the new
    bins replace the old plain ones, and a client holding the previous snapshot still
    finds its bins and app.json files by their content-addressed names."""
    source, out = tmp_path / "source", tmp_path / "out"
    generate.generate_small(source, 5, 1, seed=2)
    fifth = source / "apps" / generate.app_key(4)
    shutil.move(fifth, tmp_path / "later")
    build(source, out)
    assert json.loads((out / "snapshot.json").read_bytes())["signed"]["bins"] == {"bits": 1}
    keys = trusted_keys(allow_dev_key=True)
    now = lambda: FIXED_NOW + timedelta(hours=2)  # noqa: E731
    old = RegistryClient(out, keys, allow_dev_key=True, state_dir=tmp_path / "s1", clock=now)
    old.refresh()  # this reader holds the 2-bin snapshot
    shutil.move(tmp_path / "later", fifth)
    build(source, out, now=FIXED_NOW + timedelta(hours=1))
    signed = json.loads((out / "snapshot.json").read_bytes())["signed"]
    assert signed["bins"] == {"bits": 2}
    assert sorted(p.name for p in (out / "bins").iterdir() if len(p.name) < 10) == [
        "0.json",
        "1.json",
        "2.json",
        "3.json",
    ]
    for index in range(4):  # the previous snapshot's bins are still served by digest
        assert old.app(generate.app_key(index)).key == generate.app_key(index)
    with RegistryClient(
        out, keys, allow_dev_key=True, state_dir=tmp_path / "s2", clock=now
    ) as client:
        report = verify_registry(client, artifacts=True)
        assert report.ok, report.failures
        assert client.app_keys() == sorted(generate.app_key(i) for i in range(5))
    old.close()
