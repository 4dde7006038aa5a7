"""Read a registry's published state over HTTP(S), for hosts with no API (GitHub Pages).

`appshelf build --previous-url URL` starts from what is live, as `--deploy` does for S3:
published versions stay immutable, their first-published times stay, and the snapshot
version keeps increasing, even though a CI runner starts with an empty folder each time.
"""

from __future__ import annotations

import requests

from appshelf.build.previous import PreviousOutput
from appshelf.deploy.errors import RemoteAccessError
from appshelf.deploy.files import SNAPSHOT
from appshelf.deploy.state import RemoteState, previous_from_remote
from appshelf.source.text import url_without_userinfo

MAX_BYTES = 64 * 1024 * 1024


def _get(session: requests.Session, url: str, missing_ok: bool = False) -> bytes | None:
    shown = url_without_userinfo(url)  # messages never show a user name or password
    try:
        response = session.get(url, timeout=30, stream=True)
    except requests.RequestException as exc:
        detail = str(exc) if shown == url else type(exc).__name__
        raise RemoteAccessError(f"{shown}: cannot be fetched ({detail})") from None
    with response:
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code != 200:
            raise RemoteAccessError(
                f"{shown}: HTTP {response.status_code}; the published registry must be readable "
                "to build on it (drop --previous-url only for the very first publish)"
            )
        data = response.raw.read(MAX_BYTES + 1, decode_content=True)
    if len(data) > MAX_BYTES:
        raise RemoteAccessError(f"{shown}: larger than {MAX_BYTES} bytes; not an index file")
    return bytes(data)


def read_published_http(base_url: str) -> PreviousOutput:
    """The live snapshot, keys.json and every app.json; an absent snapshot is a first build."""
    if not base_url.endswith("/"):
        base_url += "/"
    with requests.Session() as session:
        snapshot = _get(session, base_url + SNAPSHOT, missing_ok=True)
        if snapshot is None:
            return PreviousOutput()
        state = RemoteState(snapshot_bytes=snapshot)
        envelope = state.snapshot()
        assert envelope is not None
        for relpath in envelope.signed.meta:
            if relpath == "keys.json" or relpath.endswith("/app.json"):
                data = _get(session, base_url + relpath)
                assert data is not None
                state.documents[relpath] = data
    return previous_from_remote(state)
