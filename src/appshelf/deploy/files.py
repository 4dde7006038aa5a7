"""What each deployed file is: its kind (which decides upload order and caching) and type.

Pure functions of the relative path and of the set of artifact paths, so the planner
and its tests need no bucket.
"""

from __future__ import annotations

from enum import Enum

from appshelf.formats.anip import ANIP_ROOT
from appshelf.formats.bins import is_bin_path
from appshelf.formats.consistent import plain_path
from appshelf.formats.deploysettings import DeploySection
from appshelf.formats.layout import is_active_document
from appshelf.formats.publishers import PUBLISHERS_FILE
from appshelf.formats.statement import STATEMENT_FILE

SNAPSHOT = "snapshot.json"
CHECKPOINT = "log/checkpoint"
TOP_INDEXES = frozenset({"registry.json", "index.json", "keys.json", PUBLISHERS_FILE, CHECKPOINT})
TUF_DIR = "tuf/"
TUF_TIMESTAMP = "tuf/timestamp.json"
TUF_ROOT = "tuf/root.json"
STATE_KEY = ".appshelf/deploy-state.json"  # digests of what was deployed (saves HEAD requests)
INBOX = ".appshelf/inbox/"  # publishers upload here; `build --deploy` ingests it


class Kind(Enum):
    ARTIFACT = "artifact"  # immutable once published
    LOG_TILE = "log-tile"  # log/tile/...: immutable, named by the checkpoint
    ASSET = "asset"  # icons, css, js, images: referenced by what comes later
    MANIFEST = "manifest"  # apps/<key>/<version>/manifest.json, pinned by app.json
    # A pinned file under its content-addressed name (formats/consistent.py): a new name
    # for new bytes, never replaced, read through a consistent snapshot only.
    COPY = "pinned-copy"
    # A manifest that replaces a deployed one (a yank, an app's new metadata): the old
    # app.json still pins the old bytes, so it goes up with the index files, not before.
    MANIFEST_REPLACED = "manifest-replaced"
    APP_INDEX = "app-index"  # apps/<key>/app.json and versions.json, pinned by the snapshot
    TOP_INDEX = "top-index"  # registry.json, index.json, keys.json, bins/: snapshot-pinned
    PAGE = "page"  # HTML, feeds, schemas and everything else, pointing at the above
    SNAPSHOT = "snapshot"  # the signed root: written last, conditionally
    # [tuf] (docs/spec.md §16): TUF metadata names every file above, snapshot.json
    # included, so it goes up after it, and the TUF timestamp (which pins the rest) last.
    TUF_METADATA = "tuf-metadata"
    TUF_TIMESTAMP = "tuf-timestamp"

    @property
    def phase(self) -> int:
        """Upload phase: a reader must never see a file before the files it names."""
        return _PHASES[self]


_PHASES = {
    Kind.ARTIFACT: 1,
    Kind.ASSET: 1,
    # Log tiles: after the artifacts their entries name, one at a time in path order, so
    # that of two racing deploys the first conditional write decides which one goes on.
    Kind.LOG_TILE: 2,
    Kind.MANIFEST: 3,
    Kind.COPY: 3,
    Kind.MANIFEST_REPLACED: 4,
    Kind.APP_INDEX: 4,
    Kind.TOP_INDEX: 5,
    Kind.PAGE: 5,
    Kind.SNAPSHOT: 6,
    Kind.TUF_METADATA: 7,
    Kind.TUF_TIMESTAMP: 8,
}

_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".xml": "application/xml",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".tar.gz": "application/gzip",
    ".tgz": "application/gzip",
    ".gz": "application/gzip",
    ".tar": "application/x-tar",
    ".zip": "application/zip",
    ".wasm": "application/wasm",
    ".mpk": "application/octet-stream",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}
_PLAIN_NAMES = frozenset({"CNAME", ".nojekyll"})
_ASSET_SUFFIXES = (
    ".css",
    ".js",
    ".mjs",
    ".map",
    ".png",
    ".svg",
    ".jpg",
    ".jpeg",
    ".gif",
    ".webp",
    ".ico",
    ".woff",
    ".woff2",
)


def content_type(relpath: str) -> str:
    if relpath.startswith(ANIP_ROOT):  # the ANIP mirror: JSON, whatever the name
        return "application/json"
    name = relpath.rsplit("/", 1)[-1]
    if name in _PLAIN_NAMES:
        return "text/plain; charset=utf-8"
    if relpath.startswith("v1/") and not name.startswith("index."):
        return "application/json"  # the Calimero mirror's answers (spec 12): no extension
    lower = name.lower()
    for suffix in (".tar.gz", *(s for s in _TYPES if s != ".tar.gz")):
        if lower.endswith(suffix):
            return _TYPES[suffix]
    return "application/octet-stream"


def content_disposition(relpath: str, kind: Kind | None = None) -> str | None:
    """`attachment` for the SVGs under apps/ (publishers' icons): S3 cannot send a
    Content-Security-Policy, so an SVG opened directly from the bucket downloads instead
    of running as a document of the registry's origin. `<img>` ignores the header.
    Artifacts whose names a browser renders (`.html`, `.xml`, ...; a build refuses them,
    but a site may come from elsewhere) download too."""
    if relpath.startswith("apps/") and relpath.lower().endswith(".svg"):
        return "attachment"
    if kind is Kind.ARTIFACT and is_active_document(relpath.rsplit("/", 1)[-1]):
        return "attachment"
    return None


# Checked in this order, after the artifacts: exact names, then folders, then copies.
_NAMED = {
    SNAPSHOT: Kind.SNAPSHOT,
    TUF_TIMESTAMP: Kind.TUF_TIMESTAMP,
    **dict.fromkeys(TOP_INDEXES, Kind.TOP_INDEX),
}
_FOLDERS = ((TUF_DIR, Kind.TUF_METADATA), ("log/tile/", Kind.LOG_TILE))
# apps/<key>/<file> and apps/<key>/<version>/<file>, by (path segments, file name).
_APP_FILES = {
    (3, "app.json"): Kind.APP_INDEX,
    (3, "versions.json"): Kind.APP_INDEX,
    (4, "manifest.json"): Kind.MANIFEST,
    # A publisher's statement: immutable, before the manifest pinning it.
    (4, STATEMENT_FILE): Kind.ARTIFACT,
}


def kind_of(relpath: str, artifacts: frozenset[str]) -> Kind:
    """Classify one path; `artifacts` are the paths app.json files name as artifacts."""
    if relpath in artifacts:
        return Kind.ARTIFACT
    if relpath in _NAMED:
        return _NAMED[relpath]
    for folder, kind in _FOLDERS:
        if relpath.startswith(folder):
            return kind
    if is_bin_path(relpath):  # bins/<prefix>.json: pinned by the snapshot
        return Kind.TOP_INDEX
    if is_copy(relpath):
        return Kind.COPY
    parts = relpath.split("/")
    app_file = _APP_FILES.get((len(parts), parts[-1])) if parts[0] == "apps" else None
    if app_file is not None:
        return app_file
    if relpath.lower().endswith(_ASSET_SUFFIXES):
        return Kind.ASSET
    return Kind.PAGE


def is_copy(relpath: str) -> bool:
    """A content-addressed copy of a file a snapshot pins (docs/spec.md 4.1.1)."""
    return plain_path(relpath) is not None


def cache_control(kind: Kind, config: DeploySection, relpath: str = "") -> str:
    """Artifacts, log tiles, content-addressed copies and versioned TUF metadata
    (`tuf/<N>.<role>.json`, whose bytes never change) are immutable; the snapshot and the
    TUF timestamp short-lived."""
    if kind in (Kind.ARTIFACT, Kind.LOG_TILE, Kind.COPY):
        return config.immutable_cache_control
    if kind is Kind.TUF_METADATA and relpath != TUF_ROOT:
        return config.immutable_cache_control
    if kind in (Kind.SNAPSHOT, Kind.TUF_TIMESTAMP):
        return config.snapshot_cache_control
    return config.cache_control
