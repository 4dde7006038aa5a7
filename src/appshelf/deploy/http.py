"""Read a registry's published state over HTTP(S), for hosts with no API (GitHub Pages).

`appshelf build --previous-url URL` starts from what is live, as `--deploy` does for S3:
published versions stay immutable, their first-published times stay, and the snapshot
version keeps increasing, even though a CI runner starts with an empty folder each time.
"""

from __future__ import annotations

from appshelf.build.previous import PreviousOutput
from appshelf.client.errors import NotFound, RepositoryError, TransportError
from appshelf.client.transport import HttpTransport
from appshelf.deploy.errors import RemoteAccessError
from appshelf.deploy.files import SNAPSHOT
from appshelf.deploy.state import RemoteState, previous_from_remote

MAX_BYTES = 64 * 1024 * 1024
_HINT = (
    "the published registry must be readable to build on it (drop --previous-url only for "
    "the very first publish)"
)


def _get(transport: HttpTransport, relpath: str, missing_ok: bool = False) -> bytes | None:
    """The client's transport: its limits, deadlines, CA settings and error messages."""
    try:
        return b"".join(transport.chunks(relpath, MAX_BYTES, relpath))
    except NotFound as exc:
        if missing_ok:
            return None
        raise RemoteAccessError(f"{exc}; {_HINT}") from None
    except (TransportError, RepositoryError) as exc:
        raise RemoteAccessError(f"{exc}; {_HINT}") from None


def read_published_http(base_url: str) -> PreviousOutput:
    """The live snapshot, keys.json and every app.json; an absent snapshot is a first build."""
    if not base_url.endswith("/"):
        base_url += "/"
    transport = HttpTransport(base_url)
    try:
        snapshot = _get(transport, SNAPSHOT, missing_ok=True)
        if snapshot is None:
            return PreviousOutput()
        state = RemoteState(snapshot_bytes=snapshot)
        envelope = state.snapshot()
        assert envelope is not None
        for relpath in envelope.signed.meta:
            if relpath == "keys.json" or relpath.endswith("/app.json"):
                data = _get(transport, relpath)
                assert data is not None
                state.documents[relpath] = data
    finally:
        transport.close()
    return previous_from_remote(state)
