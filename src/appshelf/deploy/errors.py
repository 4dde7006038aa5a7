"""Deploy's shared advice; its errors live in appshelf.errors with every other one."""

from __future__ import annotations

REBUILD_HINT = (
    "rebuild from the latest deployed state and deploy again: `appshelf build SOURCE "
    "--deploy s3://...` reads what is deployed before building"
)
