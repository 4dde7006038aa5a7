"""Read a registry's published state over HTTP(S), for hosts with no API (GitHub Pages).

`appshelf build --previous-url URL` starts from what is live, as `--deploy` does for S3:
the build verifies the live snapshot and release log (build/previous.py) and holds the
source to them, even though a CI runner starts with an empty folder each time.
"""

from __future__ import annotations

import requests

from appshelf.deploy.errors import RemoteAccessError


class HttpSource:
    """A `PublishedSource` over plain HTTP GETs; nothing here is trusted until the build
    has checked it against the signing key."""

    def __init__(self, base_url: str, session: requests.Session | None = None):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.description = self.base_url
        self._session = session or requests.Session()

    def read(self, relpath: str, limit: int) -> bytes | None:
        url = self.base_url + relpath
        try:
            response = self._session.get(url, timeout=(10, 30), stream=True)
        except requests.RequestException as exc:
            raise RemoteAccessError(
                f"{url}: cannot be fetched ({type(exc).__name__}); the published registry "
                "must be readable to build on it"
            ) from None
        with response:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise RemoteAccessError(
                    f"{url}: HTTP {response.status_code}; the published registry must be "
                    "readable to build on it"
                )
            try:
                data = response.raw.read(limit + 1, decode_content=True)
            except Exception as exc:  # urllib3 raises several kinds on a broken body
                raise RemoteAccessError(
                    f"{url}: the response broke off ({type(exc).__name__}); try again"
                ) from None
        if len(data) > limit:
            raise RemoteAccessError(f"{url}: larger than {limit} bytes; not a registry file")
        return bytes(data)

    def is_empty(self) -> bool | None:
        return None  # a web host cannot be listed: a 404 may be the wrong address
