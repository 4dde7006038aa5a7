"""Trusted state: the highest snapshot version and release-log head seen per registry,
kept between runs.

This is what turns "signed" into "current": without it, a mirror could serve an old,
validly signed snapshot forever. One small JSON file per registry, written atomically.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from appshelf.client.files import atomic_file, read_small_file
from appshelf.errors import JsonRejectedError, StateError
from appshelf.formats.boundedjson import loads_bounded

STATE_ENV = "APPSHELF_STATE_DIR"
MAX_STATE_BYTES = 64 * 1024  # a state file is ~200 bytes


class RegistryState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    registry: str
    snapshot_version: int = Field(ge=0, default=0)
    snapshot_sha256: str | None = None
    # The release log's tree head last accepted; every later snapshot's must extend it.
    log_size: int | None = Field(ge=0, default=None)
    log_root: str | None = Field(pattern=r"^[0-9a-f]{64}$", default=None)


def default_state_dir(environ: dict[str, str] | None = None) -> Path:
    """$APPSHELF_STATE_DIR, else $XDG_STATE_HOME/appshelf, else ~/.local/state/appshelf."""
    env = dict(os.environ) if environ is None else environ
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "appshelf"


class StateStore:
    """Per-registry state files named by a hash of the registry's base URL."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path_for(self, registry: str) -> Path:
        name = hashlib.sha256(registry.encode()).hexdigest()[:32]
        return self.folder / f"registry-{name}.json"

    def load(self, registry: str) -> RegistryState:
        path = self.path_for(registry)
        try:
            data = read_small_file(path, MAX_STATE_BYTES)
        except FileNotFoundError:
            return RegistryState(registry=registry)
        except OSError as exc:
            raise StateError(f"{path}: cannot read the client state ({exc.strerror})") from None
        try:
            state = RegistryState.model_validate(loads_bounded(data))
        except (JsonRejectedError, ValidationError):
            raise StateError(
                f"{path}: the client state file is corrupt; delete it only if you trust "
                "the registry's current snapshot (this resets rollback protection)"
            ) from None
        if state.registry != registry:
            raise StateError(f"{path}: holds the state of {state.registry}, not {registry}")
        return state

    def save(self, state: RegistryState) -> None:
        path = self.path_for(state.registry)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Private to the user, as before: it is nobody else's trust decision.
            with atomic_file(path, mode=0o600) as handle:
                handle.write(state.model_dump_json(indent=2).encode() + b"\n")
        except OSError as exc:
            raise StateError(f"{path}: cannot write the client state ({exc.strerror})") from None
