"""Read a registry's published state over HTTP(S), for hosts with no API (GitHub Pages).

`appshelf build --previous-url URL` starts from what is live, as `--deploy` does for S3:
the build verifies the live snapshot and release log (builder/previous.py) and holds the
source to them, even though a CI runner starts with an empty folder each time. Requests
go through the client's transport: its size limits, deadlines, CA settings and errors
that name the real cause.
"""

from __future__ import annotations

from appshelf.client.neterrors import without_userinfo
from appshelf.client.transport import HttpTransport
from appshelf.errors import NotFoundError, RemoteAccessError, RepositoryError, TransportError

_HINT = "the published registry must be readable to build on it"


class HttpSource:
    """A `PublishedSource` over plain HTTP GETs; nothing read is trusted until the build
    has checked it against the signing key."""

    def __init__(self, base_url: str):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._transport = HttpTransport(self.base_url)
        self.description = without_userinfo(self.base_url)  # never a password in messages

    def read(self, relpath: str, limit: int) -> bytes | None:
        try:
            return b"".join(self._transport.chunks(relpath, limit, relpath))
        except NotFoundError:
            return None
        except (TransportError, RepositoryError) as exc:
            raise RemoteAccessError(f"{exc}; {_HINT}") from None

    def is_empty(self) -> bool | None:
        return None  # a web host cannot be listed: a 404 may be the wrong address

    def close(self) -> None:
        self._transport.close()
