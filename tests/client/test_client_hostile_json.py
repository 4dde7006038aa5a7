"""Hostile JSON from the network or disk: refused with the client's own errors, never a crash.

Each payload once crashed the client with a raw RecursionError, rfc8785 or ValueError
traceback (or, for duplicate keys, was read differently than another parser would).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appshelf.cli import main
from appshelf.client import trusted as t
from appshelf.client.keys import keys_from_file, trusted_keys
from appshelf.client.lock import read_lock
from appshelf.client.state import StateStore
from appshelf.errors import AppshelfError, JsonRejectedError, MalformedError
from appshelf.formats.boundedjson import MAX_INT, loads_bounded
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import RegistryIndex, Snapshot
from appshelf.signing.keys import development_key
from conftest import build
from generations import repin

from .conftest import CLIENT_NOW, ClientFactory

KEYS = trusted_keys(allow_dev_key=True)
DEV_KEYID = development_key().keyid
# Inserted into the snapshot's signed body; the envelope stays otherwise intact.
HOSTILE = {
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, r"nested deeper than 64 levels"),
    "huge integer": (b"9" * 4000, r"integer 9+\.\.\. \(4000 digits\) is outside"),
    "NaN": (b"NaN", r"NaN is not JSON"),
    "Infinity": (b"-Infinity", r"-Infinity is not JSON"),
    "1e999": (b"1e999", r"number 1e999 is out of range"),
    "lone surrogate": (b'"\\ud800"', r"a string holds a lone UTF-16 surrogate"),
}


@pytest.fixture
def built(example_source: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    build(example_source, out)
    return out


def _with_field(snapshot: bytes, value: bytes) -> bytes:
    """The snapshot with `"x": value` spliced into its signed body, as raw text."""
    head, sep, tail = snapshot.partition(b'"signed":{')
    assert sep
    return head + sep + b'"x":' + value + b"," + tail


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_snapshot_is_malformed(built: Path, make_client: ClientFactory, name: str) -> None:
    value, message = HOSTILE[name]
    path = built / "snapshot.json"
    path.write_bytes(_with_field(path.read_bytes(), value))
    with pytest.raises(MalformedError, match=rf"^snapshot\.json: {message}"):
        make_client(built).refresh()


def test_duplicate_keys_are_refused(built: Path, make_client: ClientFactory) -> None:
    """Two "signed" bodies: one parser would verify the last, another show the first."""
    path = built / "snapshot.json"
    real = path.read_bytes()
    forged = real.replace(b'"signatures":', b'"signed":{"type":"forged"},"signatures":', 1)
    path.write_bytes(forged)
    with pytest.raises(MalformedError, match=r"^snapshot\.json: duplicate key 'signed'"):
        make_client(built).refresh()


def _repin_and_sign(root: Path, relpath: str, data: bytes) -> None:
    """What a compromised build or signer could publish: hostile bytes, validly pinned."""
    repin(root, relpath, data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"type":"appshelf.index","type":"appshelf.index"}', r"duplicate key 'type'"),
        (b'{"apps":' + b"[" * 5000 + b"]" * 5000 + b"}", r"nested deeper than 64 levels"),
        (b'{"apps":[],"n":1' + b"0" * 30 + b"}", r"integer 10+\.\.\. \(31 digits\) is outside"),
    ],
)
def test_hostile_pinned_file_is_malformed(
    built: Path, make_client: ClientFactory, data: bytes, message: str
) -> None:
    _repin_and_sign(built, "index.json", data)
    client = make_client(built)
    with pytest.raises(MalformedError, match=rf"^index\.json: {message}"):
        client.index()


def test_cli_reports_hostile_json_without_a_traceback(built: Path, tmp_path: Path) -> None:
    path = built / "snapshot.json"
    path.write_bytes(_with_field(path.read_bytes(), b"[" * 100_000))
    state = ["--state-dir", str(tmp_path / "state"), "--allow-dev-key"]
    for args in (
        ["verify", str(built), *state],
        ["search", "-r", str(built), *state, "kv"],
        ["fetch", "-r", str(built), *state, "kv-store", "-d", str(tmp_path / "d")],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert "nested deeper than 64 levels" in result.output
        assert "Traceback" not in result.output and result.exception is not None
        assert isinstance(result.exception, SystemExit)


def test_bounded_reader_limits() -> None:
    assert loads_bounded(b'{"a":[1,-2,3.5,"\\ud83d\\ude00",null,true]}') == {
        "a": [1, -2, 3.5, "\U0001f600", None, True]
    }
    assert loads_bounded(str(MAX_INT).encode()) == MAX_INT
    assert loads_bounded(b"[" * 64 + b"]" * 64) is not None
    assert loads_bounded(b'"[[[[' + b"[" * 100 + b'"') == "[[[[" + "[" * 100
    for bad in (str(MAX_INT + 1).encode(), b"[" * 65 + b"]" * 65, b"\xff", b'"\xed\xa0\x80"'):
        with pytest.raises(JsonRejectedError):
            loads_bounded(bad)
    with pytest.raises(JsonRejectedError, match=r"more than the 2 allowed"):
        loads_bounded(b"123", max_bytes=2)


def test_keys_state_and_lock_files_are_bounded(tmp_path: Path) -> None:
    deep = b'{"keys":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    keys = tmp_path / "keys.json"
    keys.write_bytes(deep)
    with pytest.raises(AppshelfError, match=r"keys.json: expected a keys.json"):
        keys_from_file(keys)
    lock = tmp_path / "appshelf.lock"
    lock.write_bytes(deep)
    with pytest.raises(AppshelfError, match=r"not a valid appshelf lock file: nested deeper"):
        read_lock(lock)
    store = StateStore(tmp_path / "state")
    store.folder.mkdir()
    store.path_for("https://r.example/").write_bytes(deep)
    with pytest.raises(AppshelfError, match=r"the client state file is corrupt"):
        store.load("https://r.example/")


# -- property tests: anything in, only appshelf's own errors out -----------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None), max_size=20)
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(codec=None), max_size=8), inner, max_size=4),
    max_leaves=20,
)
_signatures = st.lists(
    st.fixed_dictionaries(
        {"keyid": st.sampled_from([DEV_KEYID, "ab"]) | _scalars, "sig": st.text(max_size=130)}
    )
    | _json_values,
    max_size=3,
)
_envelopes = st.fixed_dictionaries(
    {
        "signed": st.dictionaries(st.sampled_from(["type", "meta", "version", "x"]), _json_values)
        .map(lambda body: {**body, "type": "appshelf.snapshot"})
        | _json_values,
        "signatures": _signatures,
    }
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


_inputs = (
    st.binary(max_size=200)
    | _json_values.map(_dumps)
    | _envelopes.map(_dumps)
    | st.tuples(st.integers(0, 3000), _json_values).map(
        lambda nv: b"[" * nv[0] + _dumps(nv[1]) + b"]" * nv[0]
    )
    | st.tuples(st.integers(0, 3000), _json_values).map(
        lambda nv: b'{"keys":' * nv[0] + _dumps(nv[1]) + b"}" * nv[0]
    )
)


def _only_own_errors(action: Any) -> None:
    with contextlib.suppress(AppshelfError):
        action()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_inputs)
def test_any_registry_bytes(data: bytes) -> None:
    """As a snapshot, and as index files that match their pins (a compromised signer)."""
    _only_own_errors(lambda: t.verify_snapshot(data, KEYS, CLIENT_NOW, None))
    snapshot = t.TrustedSnapshot(_pinning({"index.json": data}), DEV_KEYID, "0" * 64)
    _only_own_errors(lambda: t.parse_document(snapshot, "index.json", RegistryIndex, data))
    _only_own_errors(lambda: t.parse_app(snapshot, "kv-store", data))


@settings(max_examples=150, deadline=None)
@given(_inputs)
def test_any_local_file_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="appshelf-hyp-") as folder:
        path = Path(folder) / "file.json"
        path.write_bytes(data)
        _only_own_errors(lambda: keys_from_file(path))
        _only_own_errors(lambda: read_lock(path))
        store = StateStore(Path(folder))
        store.path_for("r").write_bytes(data)
        _only_own_errors(lambda: store.load("r"))


def _pinning(files: dict[str, bytes]) -> Snapshot:
    meta = {path: {"sha256": sha256_hex(data), "length": len(data)} for path, data in files.items()}
    meta[t.app_path("kv-store")] = meta["index.json"]
    return Snapshot.model_validate(
        {
            "registry": "https://r.example/",
            "version": 1,
            "issued": "2026-01-01T00:00:00Z",
            "expires": "2027-01-01T00:00:00Z",
            "meta": meta,
        }
    )
