"""Deploy errors, named after who must act."""

from __future__ import annotations

from appshelf.errors import AppshelfError


class SiteError(AppshelfError):
    """The local output folder is not a complete, self-consistent appshelf build."""


class DeployRefusedError(AppshelfError):
    """What is deployed forbids this deploy (a published version would change or vanish)."""


class DeployConflictError(AppshelfError):
    """Another deploy changed the bucket after this one read it: this one lost the race."""


class RemoteAccessError(AppshelfError):
    """The bucket cannot be reached or the credentials are refused."""


REBUILD_HINT = (
    "rebuild from the latest deployed state and deploy again: `appshelf build SOURCE "
    "--deploy s3://...` reads what is deployed before building"
)
