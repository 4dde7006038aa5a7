"""Named registries and their trusted keys (`appshelf registry add`), like `helm repo add`.

The file is `$XDG_CONFIG_HOME/appshelf/registries.json` (default `~/.config`). It is read
as hostile input: a regular file (no symlink followed), at most 1 MiB, validated.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    model_serializer,
)

from appshelf.client.files import atomic_file
from appshelf.errors import ConfigError

CONFIG_LIMIT = 1 << 20
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_HEX_KEY = r"^[0-9a-fA-F]{64}$"  # pydantic-core (Rust regex): $ is the very end
_LOCATION = r"^(https?://[^\s\"\\]{1,2000}|/[^\n\"\\]{0,4000})$"


class NamedRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(pattern=_LOCATION)]
    keys: list[Annotated[str, StringConstraints(pattern=_HEX_KEY)]] = Field(
        min_length=1, max_length=32
    )
    # Refuse versions without a publisher's signature (docs/client.md).
    require_publisher: bool = False

    @model_serializer(mode="wrap")
    def _omit_default_policy(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Written only when set, so config files from before the option stay as they were."""
        data: dict[str, Any] = handler(self)
        if not data.get("require_publisher"):
            data.pop("require_publisher", None)
        return data


class ConsumerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registries: dict[str, NamedRegistry] = Field(default_factory=dict, max_length=1000)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "appshelf" / "registries.json"


def _read_bounded(path: Path) -> bytes | None:
    try:
        # No symlink followed; O_NONBLOCK so a FIFO planted there cannot hang us.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read ({exc.strerror}; a symlink is not followed)"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ConfigError(f"{path}: not a regular file")
        data = handle.read(CONFIG_LIMIT + 1)
    if len(data) > CONFIG_LIMIT:
        raise ConfigError(f"{path}: larger than {CONFIG_LIMIT} bytes")
    return data


def load_config(path: Path | None = None) -> ConsumerConfig:
    """The config at `path` (default: `config_path()`); an absent file is an empty config."""
    path = path or config_path()
    data = _read_bounded(path)
    if data is None:
        return ConsumerConfig()
    try:
        config = ConsumerConfig.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ConfigError(f"{path}: invalid ({problems})") from None
    for name in config.registries:
        if not NAME_RE.fullmatch(name):
            raise ConfigError(f"{path}: registries: {name[:40]!r} is not a valid name")
    return config


def save_config(config: ConsumerConfig, path: Path | None = None) -> None:
    path = path or config_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as handle:
            handle.write(config.model_dump_json(indent=2).encode() + b"\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror})") from None


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{name[:40]!r}: a registry name is 1-63 of a-z 0-9 . _ - (starting with a letter "
            "or digit)"
        )
    return name


def add_registry(
    name: str,
    url: str,
    keys: list[str],
    path: Path | None = None,
    require_publisher: bool = False,
) -> Path:
    """Add or replace the named registry; return the config file written."""
    path = path or config_path()
    config = load_config(path)
    try:
        entry = NamedRegistry(url=url, keys=keys, require_publisher=require_publisher)
    except ValidationError as exc:
        field = exc.errors()[0]["loc"][0]
        what = (
            "--key: a 64-hex-digit Ed25519 public key"
            if field == "keys"
            else ("URL: an http(s):// URL or an absolute folder")
        )
        raise ConfigError(f"{name}: invalid {what} is needed") from None
    config.registries[check_name(name)] = entry
    ConsumerConfig.model_validate(config.model_dump())  # the count limit
    save_config(config, path)
    return path


def remove_registry(name: str, path: Path | None = None) -> Path:
    path = path or config_path()
    config = load_config(path)
    if config.registries.pop(name, None) is None:
        raise ConfigError(f"no registry named {name!r} in {path}")
    save_config(config, path)
    return path


def lookup(location: str, path: Path | None = None) -> NamedRegistry | None:
    """The named registry `location` names, if it is a bare name (not a URL or a path)."""
    if "/" in location or ":" in location or not NAME_RE.fullmatch(location):
        return None
    path = path or config_path()
    found = load_config(path).registries.get(location)
    if found is None and not Path(location).is_dir():
        raise ConfigError(
            f"{location}: no registry of that name in {path} (see `appshelf registry list`), "
            "and no such folder"
        )
    return found
