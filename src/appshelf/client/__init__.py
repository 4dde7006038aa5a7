"""The consumer side: a verifying client, search, resolution, fetch, lock and verify."""

from appshelf.client.client import Download, RegistryClient
from appshelf.client.keys import TrustedKeys, trusted_keys
from appshelf.client.resolve import Plan, PlannedInstall
from appshelf.client.transport import Limits
from appshelf.client.trusted import TrustedManifest, TrustedSnapshot

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
