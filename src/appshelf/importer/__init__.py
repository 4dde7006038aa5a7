"""`appshelf import` and `appshelf sync`: bring a Spacelift Flows registry into an
appshelf source tree, and keep federated apps' versions mirrored (docs/spec.md 13).

It sits beside client/ and deploy/ (above formats/ and source/): it fetches with the
client's HTTP transport (deadlines, retries, CA handling, byte limits) and writes what
the source layer reads, checked by the source layer's own models and URL rules.
"""

from appshelf.errors import FlowsImportError
from appshelf.importer.run import ImportOptions, ImportReport, import_flows
from appshelf.importer.sync import SyncOptions, SyncReport, sync_tree

__all__ = [
    "FlowsImportError",
    "ImportOptions",
    "ImportReport",
    "SyncOptions",
    "SyncReport",
    "import_flows",
    "sync_tree",
]
