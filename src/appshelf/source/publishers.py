"""`publishers/<id>.toml` and `orgs/<id>.toml`: who may publish, and with which keys.

Read under the source reader's rules (regular files inside the tree, size caps, ids
that fullmatch the app-key alphabet); the result is the `publishers.json` document
the build verifies statements against and publishes (docs/spec.md section 10).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from appshelf.errors import DidKeyError
from appshelf.formats.didkey import parse_did_key
from appshelf.formats.publishers import Organisation, Publisher, PublisherKey, PublishersDocument
from appshelf.signing.keys import key_id
from appshelf.source.models import APP_KEY_RE, SHA256_RE, Name, _Config, check_identities

if TYPE_CHECKING:
    from appshelf.source.tree import _Reader

PUBLISHERS_DIR = "publishers"
ORGS_DIR = "orgs"
MAX_IDENTITIES = 10_000
_ConfigT = TypeVar("_ConfigT", "PublisherConfig", "OrgConfig")


class PublisherKeyConfig(_Config):
    """One key: `public` (64 hex digits) or `did` (a Calimero did:key), and its status."""

    public: str | None = None
    did: str | None = None
    status: Literal["active", "retired", "revoked"] = "active"

    @field_validator("public")
    @classmethod
    def _public(cls, value: str | None) -> str | None:
        if value is not None and not SHA256_RE.fullmatch(value):
            raise ValueError(f"must be a 64-hex-digit Ed25519 public key, got {value[:80]!r}")
        return value

    @field_validator("did")
    @classmethod
    def _did(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_did_key(value)
            except DidKeyError as exc:
                raise ValueError(f"not a did:key of an Ed25519 key ({exc})") from None
        return value

    @model_validator(mode="after")
    def _one_of(self) -> PublisherKeyConfig:
        if (self.public is None) == (self.did is None):
            raise ValueError("give exactly one of public or did")
        return self

    def key(self) -> PublisherKey:
        raw = parse_did_key(self.did) if self.did is not None else bytes.fromhex(self.public or "")
        return PublisherKey(keyid=key_id(raw), public=raw.hex(), status=self.status, did=self.did)


class PublisherConfig(_Config):
    """`publishers/<id>.toml`."""

    name: Annotated[Name, Field(min_length=1, max_length=200)]
    keys: list[PublisherKeyConfig] = Field(min_length=1, max_length=32)


class OrgConfig(_Config):
    """`orgs/<id>.toml`."""

    name: Annotated[Name, Field(min_length=1, max_length=200)]
    members: list[str] = Field(min_length=1, max_length=1000)

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        return sorted(check_identities(value))


def read_identities(reader: _Reader, root: Path, registry: str) -> PublishersDocument | None:
    """The registry's publishers and organisations; None when it declares none.

    Every problem is recorded on `reader` (file and field), as for app folders."""
    publishers = [
        _publisher(reader, path, config)
        for path, config in _configs(reader, root / PUBLISHERS_DIR, PublisherConfig)
    ]
    orgs = [
        Organisation(id=path.stem, name=config.name, members=config.members)
        for path, config in _configs(reader, root / ORGS_DIR, OrgConfig)
    ]
    if not publishers and not orgs:
        return None
    known = {p.id for p in publishers}
    for org in orgs:
        if org.id in known:
            reader.problem(root / ORGS_DIR / f"{org.id}.toml", "", "a publisher has this id too")
        for member in org.members:
            if member not in known:
                reader.problem(
                    root / ORGS_DIR / f"{org.id}.toml", "members", f"no publisher {member!r}"
                )
    seen: dict[str, str] = {}
    for publisher in publishers:
        for key in publisher.keys:
            if seen.setdefault(key.keyid, publisher.id) != publisher.id:
                reader.problem(
                    root / PUBLISHERS_DIR / f"{publisher.id}.toml",
                    "keys",
                    f"key {key.keyid[:16]}... is also a key of {seen[key.keyid]!r}",
                )
    return PublishersDocument(registry=registry, publishers=publishers, organisations=orgs)


def _publisher(reader: _Reader, path: Path, config: PublisherConfig) -> Publisher:
    keys = [k.key() for k in config.keys]
    if len({k.keyid for k in keys}) != len(keys):
        reader.problem(path, "keys", "a key is listed twice")
    return Publisher(id=path.stem, name=config.name, keys=keys)


def _configs(reader: _Reader, folder: Path, model: type[_ConfigT]) -> list[tuple[Path, _ConfigT]]:
    if not reader.present(folder):
        return []
    if folder.is_symlink() or not folder.is_dir():
        reader.problem(folder, "", "must be a folder (not a link)")
        return []
    reader.dirs_inside[folder] = None
    entries = reader.list_dir(folder)
    if len(entries) > MAX_IDENTITIES:
        reader.problem(folder, "", f"holds {len(entries)} entries; at most {MAX_IDENTITIES}")
        return []
    found: list[tuple[Path, _ConfigT]] = []
    for path in entries:
        if path.suffix != ".toml" or not APP_KEY_RE.fullmatch(path.stem):
            reader.problem(path, "", "expected <id>.toml, the id 1-64 of a-z 0-9 _ - ")
            continue
        config = reader.read_model(path, model)
        if config is not None:
            found.append((path, config))
    return found
