"""The consumer side: a verifying client, search, resolution, fetch, lock and verify."""

from appshelf.client.client import Download, RegistryClient
from appshelf.client.errors import deprecated_alias
from appshelf.client.keys import TrustedKeys, trusted_keys
from appshelf.client.resolve import Plan, PlannedInstall
from appshelf.client.transport import Limits
from appshelf.client.trusted import TrustedManifest, TrustedSnapshot


def __getattr__(name: str) -> type:
    """The client's old exception names (`Malformed`, ...), deprecated: appshelf.errors."""
    return deprecated_alias(__name__, name)


__all__ = [
    "Download",
    "Limits",
    "Plan",
    "PlannedInstall",
    "RegistryClient",
    "TrustedKeys",
    "TrustedManifest",
    "TrustedSnapshot",
    "trusted_keys",
]
