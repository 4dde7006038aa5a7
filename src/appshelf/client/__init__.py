"""The consumer side: a verifying client, search, resolution, fetch, lock and verify."""

from appshelf.client.client import Download, RegistryClient
from appshelf.client.keys import trusted_keys
from appshelf.client.transport import Limits

__all__ = ["Download", "Limits", "RegistryClient", "trusted_keys"]
