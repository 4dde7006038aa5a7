"""Where `appshelf import` and `sync` get their bytes: the client's HTTP transport, or
the folder of a Flows registry on disk for the URLs under the root it stands for.

Every URL comes from a registry that may be hostile, so each is checked before it is
requested, and so is every redirect target (`url_policy`): an http(s) URL with a host,
no credentials, no dot segments, and (unless internal hosts are allowed) not loopback,
a private network or a cloud metadata service. Every read is bounded; JSON goes
through the bounded reader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appshelf.client.transport import FolderTransport, HttpTransport, Limits
from appshelf.errors import FlowsImportError, JsonRejectedError, NotFoundError
from appshelf.formats.boundedjson import loads_bounded
from appshelf.source.text import artifact_url_problem, internal_host_problem

MiB = 1024 * 1024


def url_policy(allow_internal: bool) -> Callable[[str], str | None]:
    """The check every fetched URL and redirect target must pass: why not, or None.

    Args:
        allow_internal: Allow loopback, private and link-local hosts (tests, intranets).
    """

    def check(url: str) -> str | None:
        if not url.startswith(("https://", "http://")):
            return "is not an http(s) URL"
        problem = artifact_url_problem(url)
        if problem is None and not allow_internal:
            problem = internal_host_problem(url)
            if problem is not None:
                problem += " (pass --allow-internal-hosts if that host is meant)"
        return problem

    return check


@dataclass(frozen=True)
class Measured:
    """An artifact's pins as found: its size, and whether its bytes were hashed."""

    size: int
    sha256: str | None  # the digest computed from a download; None when HEAD told the size
    downloaded: bool


@dataclass
class Fetcher:
    """Reads URLs: from `folder` when under `root_url` and present there, else over HTTP."""

    transport: HttpTransport
    folder: FolderTransport | None = None
    root_url: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"head": 0, "download": 0})

    def _relpath(self, url: str) -> str | None:
        if self.folder is None or self.root_url is None or not url.startswith(self.root_url):
            return None
        return url[len(self.root_url) :].split("?", 1)[0] or None

    def chunks(self, url: str, limit: int, what: str) -> Iterator[bytes]:
        """The bytes of `url`, at most `limit` (LengthExceededError beyond)."""
        relpath = self._relpath(url)
        if relpath is not None and self.folder is not None:
            try:
                return self.folder.chunks(relpath, limit, what)
            except NotFoundError:
                pass  # not in the folder (a registry checkout without artifacts): fetch it
        return self.transport.url_chunks(url, limit, what)

    def read(self, url: str, limit: int, what: str) -> bytes:
        return b"".join(self.chunks(url, limit, what))

    def json(self, url: str, limit: int, what: str) -> Any:
        """`url` parsed by the bounded JSON reader.

        Raises:
            FlowsImportError: not JSON, or outside the reader's limits.
            TransportError: it could not be read, or is larger than `limit`.
        """
        data = self.read(url, limit, what)
        try:
            return loads_bounded(data, max_bytes=limit)
        except JsonRejectedError as exc:
            raise FlowsImportError([f"{what} ({url}): {exc}"]) from None

    def measure(self, url: str, limit: int, what: str, download: bool) -> Measured:
        """The artifact's size: a local file's, HTTP HEAD's Content-Length, or (when HEAD
        tells none, or `download`) the length of the bytes downloaded and hashed.

        Raises:
            TransportError: it could not be read, or is larger than `limit`.
        """
        local = self._relpath(url) is not None
        if not download and not local:
            self.counts["head"] += 1
            size = self.transport.head_length(url, what)
            if size is not None:
                if size > limit:
                    raise FlowsImportError(
                        [f"{what}: {url} is {size:,} bytes, more than the {limit:,} allowed"]
                    )
                return Measured(size, None, False)
        self.counts["download"] += 0 if local else 1
        digest = hashlib.sha256()
        size = 0
        for chunk in self.chunks(url, limit, what):
            digest.update(chunk)
            size += len(chunk)
        return Measured(size, digest.hexdigest(), True)


def open_fetcher(
    source: str,
    root_url: str | None,
    allow_internal: bool,
    limits: Limits | None = None,
    ca_file: Path | None = None,
) -> tuple[Fetcher, str]:
    """A fetcher for `source` (a folder, a .json file, or a URL) and the URL of its
    registry.json.

    A URL source stands for its own folder (the registry.json URL up to its last `/`).
    A folder stands for `root_url` when given; without it, URLs ending in
    `apps/<key>/...` are looked up in the folder by that path (see `guess_root`).

    Raises:
        FlowsImportError: the source is neither an http(s) URL nor an existing folder or file.
    """
    check = url_policy(allow_internal)
    if source.startswith(("https://", "http://")):
        url = source if source.endswith(".json") else source.rstrip("/") + "/registry.json"
        problem = check(url)
        if problem is not None:
            raise FlowsImportError([f"{url}: {problem}"])
        transport = HttpTransport(url.rsplit("/", 1)[0] + "/", limits, ca_file, url_check=check)
        return Fetcher(transport), url
    path = Path(source)
    if path.is_file():
        folder, name = path.parent, path.name
    elif path.is_dir():
        folder, name = path, "registry.json"
    else:
        raise FlowsImportError([f"{source}: neither an http(s) URL nor a folder or file"])
    transport = HttpTransport("http://127.0.0.1/", limits, ca_file, url_check=check)
    root = root_url if root_url is None or root_url.endswith("/") else root_url + "/"
    fetcher = Fetcher(transport, FolderTransport(folder), root)
    return fetcher, name


def read_source_registry(fetcher: Fetcher, url: str, limit: int) -> Any:
    """registry.json itself: a path relative to the folder, or a URL."""
    if fetcher.folder is not None and not url.startswith(("https://", "http://")):
        data = b"".join(fetcher.folder.chunks(url, limit, "registry.json"))
        try:
            return loads_bounded(data, max_bytes=limit)
        except JsonRejectedError as exc:
            raise FlowsImportError([f"{fetcher.folder.root / url}: {exc}"]) from None
    return fetcher.json(url, limit, "registry.json")


def guess_root(metadata_urls: dict[str, str]) -> str | None:
    """The URL a Flows registry folder stands for, from its apps' appMetadataUrl: the
    prefix before `apps/<key>/versions.json` that most apps share (ties: the smallest)."""
    votes: dict[str, int] = {}
    for key, url in metadata_urls.items():
        suffix = f"apps/{key}/versions.json"
        if url.endswith("/" + suffix):
            prefix = url[: -len(suffix)]
            votes[prefix] = votes.get(prefix, 0) + 1
    if not votes:
        return None
    return min(votes, key=lambda prefix: (-votes[prefix], prefix))
